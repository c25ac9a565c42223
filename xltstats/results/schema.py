"""Column names of the results table and its row key: the ``source_languages`` and ``condition``
cells (parsed and written in one place).  See :mod:`xltstats.results`.
"""
from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd

from xltstats.errors import InputError
from xltstats.languages import LanguageCodeError, to_iso639_3

REQUIRED_COLUMNS = (
    "model", "task", "source", "target", "score", "metric",
    "n_source_examples", "n_target_examples", "seed",
)
#: Columns that identify a row; ``source_languages`` joins them when the table has it.
KEY_COLUMNS = ("model", "task", "source", "target", "n_target_examples", "seed")
SOURCE_LANGUAGES = "source_languages"
#: Optional column of experimental conditions; joins the row key when present.
CONDITION = "condition"
MULTI_SOURCE = "mul"

_STRING_COLUMNS = ("model", "task", "source", "target", "metric")
_TEXT_COLUMNS = _STRING_COLUMNS + (SOURCE_LANGUAGES, CONDITION, "source_code", "target_code")
_INTEGER_COLUMNS = ("n_source_examples", "n_target_examples", "seed")


def key_columns(df: pd.DataFrame) -> list[str]:
    """The columns that identify a row of ``df``: :data:`KEY_COLUMNS`, plus ``source_languages``
    and ``condition`` when the table has them."""
    return list(KEY_COLUMNS) + [column for column in (SOURCE_LANGUAGES, CONDITION)
                                if column in df.columns]


def parse_source_languages(value, *, file=None, row=None, column: str = SOURCE_LANGUAGES) -> dict[str, int]:
    """The one parser of a ``source_languages`` cell: JSON text (or a dict) ``{code: examples}``.

    Returns {ISO 639-3 code: number of examples}, sorted by code; codes are normalised with
    :func:`xltstats.languages.to_iso639_3`; counts are whole numbers >= 0 (0: the language is in
    the mixture with no examples).  Anything else is an :class:`InputError` naming file, row and column.
    """
    def fail(message: str):
        raise InputError(message, file=file, row=row, column=column)

    if isinstance(value, dict):
        mapping, text = value, json.dumps(value, sort_keys=True)
    else:
        text = str(value)
        try:
            mapping = json.loads(text)
        except json.JSONDecodeError:
            fail(f"not a JSON object: {text!r}")
    if not isinstance(mapping, dict) or not mapping:
        fail(f"expected a non-empty JSON object {{code: examples}}, got {text!r}")
    result: dict[str, int] = {}
    for code, count in mapping.items():
        try:
            iso = to_iso639_3(code)
        except LanguageCodeError as error:
            fail(str(error))
        if isinstance(count, bool) or not isinstance(count, (int, float)) \
                or not float(count).is_integer() or count < 0:
            fail(f"number of examples for {code!r} must be a whole number >= 0, got {count!r}")
        if iso in result:
            fail(f"language {iso!r} given twice ({text!r})")
        result[iso] = int(count)
    return dict(sorted(result.items()))


def source_languages_of(table: pd.DataFrame) -> set[str]:
    """Every language a multi-source row of ``table`` names in its ``source_languages``."""
    if SOURCE_LANGUAGES not in table.columns:
        return set()
    languages: set[str] = set()
    for value in table[SOURCE_LANGUAGES].dropna().unique():
        languages |= set(parse_source_languages(value, column=SOURCE_LANGUAGES))
    return languages


_CONDITION_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")


def parse_condition(value) -> dict[str, str]:
    """The ``{key: value}`` pairs of a condition (canonical text, any order, or a mapping).

    An empty or missing condition gives ``{}``.  Raises :class:`ValueError` with the reason for
    malformed text (a pair without ``=``, an empty key or value, a key given twice).
    """
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return {}
    if isinstance(value, dict):
        items = list(value.items())
    else:
        text = str(value).strip()
        if not text:
            return {}
        items = []
        for part in text.split(";"):
            part = part.strip()
            if not part:
                raise ValueError(f"empty part in condition {text!r} (two ';' in a row, or a "
                                 f"trailing ';')")
            if "=" not in part:
                raise ValueError(f"condition part {part!r} is not key=value (in {text!r})")
            key, _, val = part.partition("=")
            items.append((key, val))
    result: dict[str, str] = {}
    for key, val in items:
        key = str(key).strip()
        val = _condition_value(val)
        if not _CONDITION_KEY.match(key):
            raise ValueError(f"condition key {key!r} must be an identifier (letters, digits, "
                             f"'_', '.'; not starting with a digit)")
        if val == "" or ";" in val or "=" in val:
            raise ValueError(f"condition value {val!r} of {key!r} must be non-empty and contain "
                             f"neither ';' nor '='")
        if key in result:
            raise ValueError(f"condition key {key!r} given twice")
        result[key] = val
    return result


def _condition_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return format(float(value), ".10g")
    return str(value).strip()


def format_condition(mapping) -> str:
    """Canonical text of a condition: ``key=value`` pairs sorted by key, joined by ``;``.

    Numbers are written without trailing zeros (``0.5``, ``100``), booleans as ``true``/``false``.
    ``format_condition(parse_condition(text))`` is the canonical form of ``text``.
    """
    pairs = parse_condition(dict(mapping) if not isinstance(mapping, str) else mapping)
    return ";".join(f"{key}={pairs[key]}" for key in sorted(pairs))
