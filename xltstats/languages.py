"""Language codes: normalise whatever a results table uses to ISO 639-3.

Accepted inputs: ISO 639-1 (``de``), ISO 639-2/T and /B (``deu``, ``ger``), ISO 639-3 (``pcm``),
BCP-47 tags and POSIX/FLORES locales (``de-DE``, ``zh-Hant``, ``pt_BR``, ``de_DE.UTF-8``,
``eng_Latn``) and the Universal Dependencies codes (``lzh``, ``hyw``, ``qhe``, ``qtd``, ...).
Region and script subtags are dropped: they do not change the language.

Every decision that is not the plain ISO mapping (macro-languages, individual languages folded
into their macro code, code-switching pseudo-codes, collective codes that are ambiguous, dataset
oddities) lives in one table shipped with the package, ``xltstats/data/language_overrides.csv``
with columns ``code, iso639_3, name, reason``.  ``iso639_3`` holding several codes separated by
``|`` marks an ambiguous code: it raises :class:`LanguageCodeError` listing the candidates.

The policy in that table: macro-languages stay as the macro code (``zho``, ``ara``, ``fas``,
``msa``, ``est``, ``lav``, ``swa``, ``nor``, ``hbs``) because URIEL/lang2vec has its richest
entries under those codes and most transfer datasets use them; the standard individual language
that FLORES-style codes name (``cmn``, ``arb``, ``pes``, ``zsm``, ``swh``, ...) is folded into the
macro code so that tables using either convention join; distinct languages inside a macro-language
(``yue``, ``lzh``, ``kmr``, ``nno``) stay separate.  Norwegian ``no``, ``nb`` and ``nob`` become
``nor``; Nynorsk stays ``nno``.
"""
from __future__ import annotations

import csv
import difflib
import functools
import importlib.util
import re
from pathlib import Path

import numpy as np
import pandas as pd

from xltstats.errors import InputError, XltstatsError
from xltstats.paths import package_data

__all__ = [
    "LanguageCodeError",
    "to_iso639_3",
    "language_name",
    "normalise_codes",
    "uriel_languages",
    "in_uriel",
    "language_overrides",
]

_OVERRIDES_FILE = "language_overrides.csv"
# Codes that are well formed but name no language (undetermined, no linguistic content, ...).
_NOT_A_LANGUAGE = {"und", "zxx", "mis"}
_PRIVATE_USE = re.compile(r"^q[a-t][a-z]$")


class LanguageCodeError(XltstatsError, ValueError):
    """A language code that is unknown or ambiguous.

    ``candidates`` lists the codes an ambiguous code may stand for; ``suggestions`` lists known
    codes close to an unknown one.
    """

    def __init__(self, message: str, *, code=None, candidates=(), suggestions=()):
        self.code = code
        self.candidates = list(candidates)
        self.suggestions = list(suggestions)
        super().__init__(message)


@functools.lru_cache(maxsize=1)
def language_overrides() -> pd.DataFrame:
    """The shipped override table (columns code, iso639_3, name, reason), codes lower-cased."""
    with open(package_data(_OVERRIDES_FILE), newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    table = pd.DataFrame(rows, columns=["code", "iso639_3", "name", "reason"]).fillna("")
    table["code"] = table["code"].str.strip().str.lower()
    if table["code"].duplicated().any():
        dups = sorted(table.loc[table["code"].duplicated(), "code"])
        raise RuntimeError(f"{_OVERRIDES_FILE} lists codes twice: {dups}")
    return table


@functools.lru_cache(maxsize=1)
def _override_map() -> dict[str, tuple[list[str], str]]:
    table = language_overrides()
    return {
        code: (target.split("|"), name)
        for code, target, name in zip(table["code"], table["iso639_3"], table["name"])
    }


def _lang2vec_data_dir() -> Path | None:
    # Located without importing lang2vec: its import pulls pkg_resources, missing on new setuptools.
    spec = importlib.util.find_spec("lang2vec")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "data"
    return folder if folder.is_dir() else None


@functools.lru_cache(maxsize=1)
def uriel_languages() -> frozenset[str]:
    """ISO 639-3 codes URIEL (as shipped with lang2vec) has an entry for; empty if not installed."""
    folder = _lang2vec_data_dir()
    if folder is None or not (folder / "features.npz").exists():
        return frozenset()
    with np.load(folder / "features.npz", allow_pickle=True) as archive:
        return frozenset(str(code) for code in archive["langs"])


def in_uriel(code: str) -> bool:
    """Whether URIEL has an entry for the language (after normalisation)."""
    return to_iso639_3(code) in uriel_languages()


def _clean(code: str) -> str:
    text = code.strip()
    # POSIX locales: de_DE.UTF-8, sr_RS@latin
    text = re.split(r"[.@]", text, maxsplit=1)[0]
    return text.replace("_", "-").lower()


class _Unresolved(Exception):
    """Internal: why a code could not be resolved (suggestions are added by the caller)."""

    def __init__(self, why: str, candidates=()):
        self.why = why
        self.candidates = list(candidates)
        super().__init__(why)


def _resolve(cleaned: str) -> str:
    overrides = _override_map()
    for key in (cleaned, cleaned.split("-")[0]):
        if key in overrides:
            targets, _ = overrides[key]
            if len(targets) > 1:
                raise _Unresolved("ambiguous", targets)
            return targets[0]
    from langcodes import Language
    from langcodes.tag_parser import LanguageTagError

    try:
        language = Language.get(cleaned)
    except (LanguageTagError, ValueError):
        raise _Unresolved("not a well-formed language tag") from None
    subtag = language.language
    if not subtag or subtag in _NOT_A_LANGUAGE:
        raise _Unresolved("it names no particular language")
    if _PRIVATE_USE.match(subtag):
        raise _Unresolved("private-use code with no agreed meaning")
    if not Language.get(subtag).is_valid():
        raise _Unresolved("not in ISO 639")
    try:
        alpha3 = Language.get(subtag).to_alpha3()
    except LookupError:
        raise _Unresolved("no ISO 639-3 equivalent") from None
    # The normalised subtag (e.g. a retired code's replacement) may itself be overridden.
    if alpha3 in overrides and len(overrides[alpha3][0]) == 1:
        return overrides[alpha3][0][0]
    return alpha3


@functools.lru_cache(maxsize=1)
def _known_codes() -> tuple[list[str], dict[str, str]]:
    """Codes offered as suggestions, and lower-cased English names -> ISO 639-3 code."""
    import langcodes.data_dicts as tables

    codes = set(tables.LANGUAGE_ALPHA3) | set(tables.LANGUAGE_ALPHA3.values())
    codes |= set(uriel_languages())
    codes |= set(_override_map())
    codes = sorted(code for code in codes if code.isalpha())
    names: dict[str, str] = {}
    for code in codes:
        try:
            target = _resolve(code)
        except _Unresolved:
            continue
        name = _name_of(target).lower()
        if not name.startswith("unknown language"):
            names.setdefault(name, target)
    return codes, names


def _suggestions(cleaned: str) -> list[str]:
    """Known codes near ``cleaned``: widely used languages (with a 639-1 code) first."""
    import langcodes.data_dicts as tables

    major = set(tables.LANGUAGE_ALPHA3) | set(tables.LANGUAGE_ALPHA3.values())
    codes, names = _known_codes()
    key = cleaned.split("-")[0]
    close_codes = difflib.get_close_matches(key, codes, n=30, cutoff=0.6)
    close_codes.sort(key=lambda code: (code not in major,
                                       -difflib.SequenceMatcher(None, key, code).ratio()))
    from_codes = []
    for close in close_codes[:4]:
        try:
            from_codes.append(_resolve(close))
        except _Unresolved:
            continue
    from_names = [names[name] for name in
                  difflib.get_close_matches(cleaned, list(names), n=3, cutoff=0.75)]
    # A long input is more likely a misspelt name than a misspelt code.
    found = from_names + from_codes if len(key) > 3 else from_codes + from_names
    unique = list(dict.fromkeys(found))[:5]
    return [f"{code} ({_name_of(code)})" for code in unique]


@functools.lru_cache(maxsize=65536)
def to_iso639_3(code: str) -> str:
    """The ISO 639-3 code of ``code`` (see the module docstring for what is accepted).

    Raises :class:`LanguageCodeError` for unknown codes (with close suggestions) and for
    ambiguous ones (with the candidates).
    """
    if not isinstance(code, str):
        raise LanguageCodeError(f"language code must be a string, got {code!r}", code=code)
    cleaned = _clean(code)
    if not cleaned:
        raise LanguageCodeError("empty language code", code=code)
    try:
        return _resolve(cleaned)
    except _Unresolved as problem:
        if problem.candidates:
            raise LanguageCodeError(
                f"ambiguous language code {code!r}: could be any of "
                f"{', '.join(problem.candidates)}; use one of these codes",
                code=code, candidates=problem.candidates) from None
        suggestions = _suggestions(cleaned)
        hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
        raise LanguageCodeError(f"unknown language code {code!r}: {problem.why}{hint}",
                                code=code, suggestions=suggestions) from None


@functools.lru_cache(maxsize=16384)
def _name_of(iso: str) -> str:
    overrides = _override_map()
    if iso in overrides and overrides[iso][1]:
        return overrides[iso][1]
    from langcodes import Language

    exact = Language.get(iso, normalize=False).language_name("en")
    if not exact.startswith("Unknown language"):
        return exact
    return Language.get(iso).language_name("en")


def language_name(code: str) -> str:
    """English name of the language ``code`` stands for (after normalisation)."""
    return _name_of(to_iso639_3(code))


def normalise_codes(values, *, file=None, column=None, rows=None) -> list[str]:
    """Normalise a sequence of codes to ISO 639-3, converting each distinct value once.

    On the first bad value raises :class:`~xltstats.errors.InputError` naming ``file``,
    ``column`` and the row: ``rows[i]`` when ``rows`` is given (the file's data-row numbers),
    else ``i + 1``.
    """
    series = pd.Series(values, dtype=object) if not isinstance(values, pd.Series) else values
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    mapped: list[str] = []
    for position, value in enumerate(uniques):
        try:
            mapped.append(to_iso639_3(value if isinstance(value, str) else str(value)))
        except LanguageCodeError as error:
            first = int(np.flatnonzero(codes == position)[0])
            raise InputError(str(error), file=file, row=_row(rows, first), column=column) from None
    missing = np.flatnonzero(codes < 0)
    if missing.size:
        raise InputError("missing language code", file=file, row=_row(rows, int(missing[0])),
                         column=column)
    lookup = np.asarray(mapped, dtype=object)
    return lookup[codes].tolist() if len(codes) else []


def _row(rows, position: int) -> int:
    return int(rows[position]) if rows is not None else position + 1
