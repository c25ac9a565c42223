"""Validation of a results table: :func:`validate_results` checks every column and returns a
normalised copy; each problem is an :class:`~xltstats.errors.InputError` naming file, row and column.
"""
from __future__ import annotations

import difflib
import json
import math

import numpy as np
import pandas as pd

from xltstats.errors import InputError
from xltstats.languages import normalise_codes

from ._report import _first, _kind_of, _plain, _Reporter, _show
from .metrics import DECLARE_HINT, METRIC_ALIASES, METRICS, _check_scales, declared_metrics
from .schema import (CONDITION, KEY_COLUMNS, MULTI_SOURCE, REQUIRED_COLUMNS, SOURCE_LANGUAGES,
                     _condition_value, key_columns, parse_condition, parse_source_languages)

def validate_results(df: pd.DataFrame, *, file=None, rescale: bool = False) -> pd.DataFrame:
    """Check a results table and return a normalised copy (``df`` itself is not changed).

    Raises :class:`~xltstats.errors.InputError` naming ``file``, the row (1-based position in
    ``df``) and the column of the first problem found.
    """
    return _validate(df, file=file, rows=np.arange(1, len(df) + 1), rescale=rescale)


def _validate(df: pd.DataFrame, *, file, rows: np.ndarray, rescale: bool) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise InputError(f"expected a pandas DataFrame, got {type(df).__name__}", file=file)
    _check_columns(df, file)
    if len(df) == 0:
        raise InputError("the results table has no data rows", file=file)
    out = df.copy()
    fail = _Reporter(file, np.asarray(rows))

    for column in ("model", "task"):
        out[column] = _text_column(out[column], column, fail)
    out["metric"] = _metric_column(out["metric"], fail)
    out["score"] = _score_column(out["score"], fail)
    out["n_target_examples"] = _integer_column(out["n_target_examples"], "n_target_examples",
                                               fail, nullable=False)
    out["seed"] = _integer_column(out["seed"], "seed", fail, nullable=False, negative_ok=True)
    out["n_source_examples"] = _integer_column(out["n_source_examples"], "n_source_examples",
                                               fail, nullable=True)
    _language_columns(out, file, rows, fail)
    if SOURCE_LANGUAGES in out.columns:
        out[SOURCE_LANGUAGES] = _source_languages_column(out, fail)
    elif (out["source"] == MULTI_SOURCE).any():
        position = int(np.flatnonzero((out["source"] == MULTI_SOURCE).to_numpy())[0])
        fail(f"source is {MULTI_SOURCE!r} (multi-source run) but the table has no "
             f"'{SOURCE_LANGUAGES}' column", position, "source")
    if CONDITION in out.columns:
        out[CONDITION] = _condition_column(out, fail)
    _check_duplicates(out, fail)
    _check_scales(out, fail, rescale)
    return out


def _check_columns(df: pd.DataFrame, file) -> None:
    present = [str(column) for column in df.columns]
    missing = [column for column in REQUIRED_COLUMNS if column not in present]
    if missing:
        hints = []
        for column in missing:
            close = difflib.get_close_matches(column, present, n=1, cutoff=0.6)
            lowered = {name.strip().lower(): name for name in present}
            if column in lowered:
                close = [lowered[column]]
            if close:
                hints.append(f"{column!r} (is it {close[0]!r}?)")
            else:
                hints.append(repr(column))
        raise InputError(
            f"required column{'s' if len(missing) > 1 else ''} missing: {', '.join(hints)}; "
            f"the table has {', '.join(map(repr, present)) or 'no columns'}",
            file=file, column=missing[0])
    duplicated = pd.Index(present)[pd.Index(present).duplicated()]
    if len(duplicated):
        raise InputError("column appears more than once", file=file, column=duplicated[0])


def _refuse_odd_cells(series: pd.Series, column: str, fail, expected: str) -> None:
    """A cell of an object column that holds a list, dict, array, bytes or date is refused, named."""
    if not pd.api.types.is_object_dtype(series.dtype):
        return
    odd = series.map(lambda v: isinstance(v, (list, tuple, dict, np.ndarray, bytes, bytearray))
                     or hasattr(v, "isoformat")).to_numpy(dtype=bool)
    if odd.any():
        position = _first(odd)
        fail(f"expected {expected}, got {_kind_of(series.iloc[position])} ({series.iloc[position]!r})",
             position, column)


def _text_column(series: pd.Series, column: str, fail) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(series.dtype) or pd.api.types.is_timedelta64_dtype(series.dtype):
        fail("expected text, got a date/time column", 0, column)
    _refuse_odd_cells(series, column, fail, "text")
    missing = series.isna().to_numpy()
    if missing.any():
        fail("missing value", _first(missing), column)
    text = series.astype(str).str.strip()
    empty = (text == "").to_numpy()
    if empty.any():
        fail("empty value", _first(empty), column)
    return text


def _metric_column(series: pd.Series, fail) -> pd.Series:
    declared = declared_metrics()  # a fit config's metrics (metrics.metric_options)
    text = _text_column(series, "metric", fail).str.lower()
    text = text.where(text.isin(list(declared)), text.replace(METRIC_ALIASES))
    known = [*declared, *(m for m in METRICS if m not in declared)]
    unknown = ~text.isin(known).to_numpy()
    if unknown.any():
        position = _first(unknown)
        value = series.iloc[position]
        close = difflib.get_close_matches(text.iloc[position], known, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        fail(f"unknown metric {value!r}; known metrics: {', '.join(known)}{hint}; {DECLARE_HINT}",
             position, "metric")
    return text


def _numbers(series: pd.Series, column: str, fail, *, exact: bool = False):
    if pd.api.types.is_bool_dtype(series.dtype):
        fail("expected a number, got a boolean", 0, column)
    if pd.api.types.is_datetime64_any_dtype(series.dtype) or pd.api.types.is_timedelta64_dtype(series.dtype):
        fail(f"expected a number, got a date/time ({series.iloc[0]})", 0, column)
    _refuse_odd_cells(series, column, fail, "a number")
    numbers = pd.to_numeric(series, errors="coerce")
    if pd.api.types.is_object_dtype(series.dtype) or pd.api.types.is_string_dtype(series.dtype):
        is_bool = series.map(lambda value: isinstance(value, bool)).to_numpy(dtype=bool) \
            if pd.api.types.is_object_dtype(series.dtype) else np.zeros(len(series), bool)
        bad = (numbers.isna() & series.notna()).to_numpy() | is_bool
        if bad.any():
            position = _first(bad)
            fail(f"not a number: {series.iloc[position]!r}", position, column)
    if exact:
        return numbers.astype("float64"), numbers
    return numbers.astype("float64")


def _score_column(series: pd.Series, fail) -> pd.Series:
    # an empty score is a row to predict (kept out of every fit, predicted in predictions.csv)
    scores = _numbers(series, "score", fail)
    infinite = np.isinf(scores.to_numpy())
    if infinite.any():
        position = _first(infinite)
        fail(f"score must be finite, got {scores.iloc[position]}", position, "score")
    return scores


def _integer_column(series, column, fail, *, nullable, negative_ok=False) -> pd.Series:
    values, exact = _numbers(series, column, fail, exact=True)
    array = values.to_numpy()
    if pd.api.types.is_integer_dtype(exact.dtype):
        # counts beyond 2**53 would be rounded when stored as floats (2**53 + 1 -> 2**53)
        present_exact = exact.notna().to_numpy()
        big = np.asarray([bool(p) and abs(int(v)) > 2**53
                          for p, v in zip(present_exact, exact.to_numpy(dtype=object))], dtype=bool)
        if big.any():
            position = _first(big)
            fail(f"number too large to be stored exactly: {int(exact.iloc[position])} (at most 2^53)",
                 position, column)
    missing = np.isnan(array)
    if missing.any() and not nullable:
        fail("missing value (this column is part of the row key)", _first(missing), column)
    present = ~missing
    fractional = present & (np.floor(np.where(present, array, 0)) != np.where(present, array, 0))
    if fractional.any():
        position = _first(fractional)
        fail(f"expected a whole number, got {_plain(array[position])}", position, column)
    if not negative_ok:
        negative = present & (np.where(present, array, 0) < 0)
        if negative.any():
            position = _first(negative)
            fail(f"must not be negative, got {array[position]:g}", position, column)
    too_big = present & (np.abs(np.where(present, array, 0)) >= 2**53)
    if too_big.any():
        position = _first(too_big)
        fail(f"number too large to be stored exactly: {array[position]:g} (a count must be below 2^53)",
             position, column)
    if nullable:
        return pd.Series(pd.array(np.where(present, array, 0).astype(np.int64),
                                  dtype="Int64"), index=series.index).mask(missing)
    return pd.Series(array.astype(np.int64), index=series.index)


def _language_columns(out: pd.DataFrame, file, rows, fail) -> None:
    for column in ("source", "target"):
        original_column = f"{column}_code"
        raw = out[column]
        missing = raw.isna().to_numpy()
        if missing.any():
            fail("missing language code (this column is part of the row key)",
                 _first(missing), column)
        text = raw.astype(str).str.strip()
        codes = normalise_codes(text, file=file, column=column, rows=rows)
        if original_column not in out.columns:
            # Re-validating a validated table keeps the codes as first given.
            out[original_column] = text
        out[column] = pd.Series(codes, index=out.index, dtype="str")
    multi_target = (out["target"] == MULTI_SOURCE).to_numpy()
    if multi_target.any():
        fail(f"target must be a single language, not {MULTI_SOURCE!r}", _first(multi_target),
             "target")


def _source_languages_column(out: pd.DataFrame, fail) -> pd.Series:
    """Normalise the JSON objects of multi-source runs (each distinct value parsed once)."""
    raw = out[SOURCE_LANGUAGES]
    as_text = raw.map(_json_text)
    codes, uniques = pd.factorize(as_text, use_na_sentinel=True)
    normalised = []
    for index, text in enumerate(uniques):
        problem, value = _parse_source_languages(text)
        if problem:
            fail(problem, _first(codes == index), SOURCE_LANGUAGES)
        normalised.append(value)
    lookup = np.asarray(normalised + [None], dtype=object)
    result = pd.Series(lookup[codes], index=out.index, dtype="object")
    multi = (out["source"] == MULTI_SOURCE).to_numpy()
    lacking = multi & (codes < 0)
    if lacking.any():
        fail(f"source is {MULTI_SOURCE!r} (multi-source run) but '{SOURCE_LANGUAGES}' is empty",
             _first(lacking), SOURCE_LANGUAGES)
    return result.astype("str").where(codes >= 0, None)


def _json_text(value):
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    text = str(value).strip()
    return text or None


def _parse_source_languages(text: str) -> tuple[str | None, str | None]:
    try:
        return None, json.dumps(parse_source_languages(text))
    except InputError as error:
        return error.message, None


def _condition_column(out: pd.DataFrame, fail) -> pd.Series:
    """Canonical condition text (each distinct value parsed once); checks structured columns
    named like a condition key against it."""
    raw = out[CONDITION]
    as_text = raw.map(lambda value: json.dumps(value, sort_keys=True, default=str)
                      if isinstance(value, dict) else value)
    codes, uniques = pd.factorize(as_text, use_na_sentinel=True)
    canonical, parsed = [], []
    for index, value in enumerate(uniques):
        if isinstance(value, str) and value.startswith("{"):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                pass
        try:
            pairs = parse_condition(value)
        except ValueError as error:
            fail(str(error), _first(codes == index), CONDITION)
        canonical.append(";".join(f"{key}={pairs[key]}" for key in sorted(pairs)) or None)
        parsed.append(pairs)
    for index, pairs in enumerate(parsed):
        for key, value in pairs.items():
            if key not in out.columns or key in KEY_COLUMNS or key == CONDITION:
                continue
            rows = codes == index
            column = out[key]
            given = column.notna().to_numpy() & rows
            if not given.any():
                continue
            numeric = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
            if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype):
                values = column.to_numpy(dtype=float, na_value=np.nan)
                differ = given & ~np.isclose(values, numeric, rtol=1e-9, atol=0.0) \
                    if not pd.isna(numeric) else given
            else:
                texts = column.map(_condition_value_or_none)
                differ = given & (texts != value).to_numpy()
            if differ.any():
                position = _first(differ)
                fail(f"column {key!r} is {_condition_value(column.iloc[position])} but the condition says "
                     f"{key}={value} (condition {canonical[index]!r})",
                     position, key)
    lookup = np.asarray(canonical + [None], dtype=object)
    result = pd.Series(lookup[codes], index=out.index, dtype="object")
    return result.astype("str").where(pd.Series(lookup[codes], index=out.index).notna(), None)


def _condition_value_or_none(value):
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return _condition_value(value)


def _check_duplicates(out: pd.DataFrame, fail) -> None:
    key = key_columns(out)
    keys = out[key]
    later = keys.duplicated(keep="first").to_numpy()
    if not later.any():
        return
    position = _first(later)
    group = keys.groupby(key, sort=False, dropna=False).ngroup().to_numpy()
    partner = _first(group == group[position])
    described = ", ".join(f"{column}={_show(out[column].iloc[position])}" for column in key
                          if column not in (SOURCE_LANGUAGES, CONDITION)
                          or not pd.isna(out[column].iloc[position]))
    cause = ""
    for column in ("source", "target"):
        given = out[f"{column}_code"]
        if given.iloc[position] != given.iloc[partner]:
            cause = (f" ({column} codes {given.iloc[partner]!r} and {given.iloc[position]!r} both "
                     f"mean {out[column].iloc[position]!r})")
    fail(f"duplicate row key ({described}): same key as row {fail.row(partner)}{cause}",
         position, ", ".join(key))
