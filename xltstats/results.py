"""The results table: one row per model, task, source, target, n_target_examples and seed.

Schema (long format)::

    model, task, source, target, score, metric, n_source_examples, n_target_examples, seed

plus any extra columns, which are kept.  :func:`validate_results` turns ``source``/``target`` into
ISO 639-3 codes (keeping what was given in ``source_code``/``target_code``), coerces ``score`` to
float and the counts and seed to integers (``n_source_examples`` may be unknown: nullable Int64).
An empty ``score`` marks a row to predict: a fit leaves it out of every model and cross-validation
and predicts it in ``predictions.csv``.
Multi-source runs have ``source == "mul"`` and a ``source_languages`` column holding a JSON object
``{"deu": 500, "eng": 1000}`` (ISO 639-3 -> training examples, sorted keys).

Experimental conditions
-----------------------
Rows that differ only by an experimental condition (adapter composition, arithmetic weights, MLM
steps, re-initialised layers) carry an optional ``condition`` column, which then joins the row key
(like ``source_languages``).  Its canonical text is ``key=value`` pairs sorted by key and joined by
``;`` (``compose=stack;mlm_steps=100``, ``la=ara:0.70+eng:0.30``, ``reinit=0-1``); keys are
identifiers, values are non-empty and contain neither ``;`` nor ``=``.  A mapping (a dict, or a JSON
object in JSON lines) is accepted and written in that form.  An empty cell means "no condition".
Structured columns beside it (``lambda``, ``mlm_steps``, ``method`` ...) are kept; a column named like
a condition key must agree with it on every row where both are given.  Tables without the column
are read exactly as before.  :func:`parse_condition` / :func:`format_condition` convert.

Scores and scales
-----------------
:data:`METRICS` gives each metric's range on its native scale: proportions (accuracy, F1, EM,
LAS, UAS, nDCG, MRR) on 0-1, BLEU/chrF/spBLEU on 0-100.  Papers report both kinds on either scale,
so a metric may also come on the other one (a factor of 100 away).  The scale is decided per
(metric, task, model) group: 0-1 when every score of the group is at most 1, else 0-100.  A metric
whose groups disagree is an error (the classic mistake of concatenating a 0-1 file with a 0-100
one) unless ``rescale=True``, which puts every metric on its native scale, keeps the score as
given in ``score_original`` and records the conversions in ``df.attrs["rescaled"]``.  The scale of
each metric in the returned table is in ``df.attrs["score_scales"]``.  Known limit: a 0-100 group
in which every score is at most 1 (say BLEU of a model that never works) reads as 0-1.

Row numbers in errors are data rows as a user counts them in the file: 1-based, header not
counted, blank lines counted as the rows they are in the file; for JSON lines the line number.
"""
from __future__ import annotations

import difflib
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from xltstats._io import atomic_write_with
from xltstats.errors import InputError
from xltstats.languages import LanguageCodeError, normalise_codes, to_iso639_3

__all__ = [
    "REQUIRED_COLUMNS",
    "KEY_COLUMNS",
    "MULTI_SOURCE",
    "METRICS",
    "METRIC_ALIASES",
    "FORMATS",
    "read_results",
    "write_results",
    "validate_results",
    "CONDITION",
    "parse_condition",
    "format_condition",
    "key_columns",
]

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

#: Metric name -> (low, high) on its native scale.
METRICS: dict[str, tuple[float, float]] = {
    "accuracy": (0.0, 1.0),
    "f1": (0.0, 1.0),
    "macro_f1": (0.0, 1.0),
    "em": (0.0, 1.0),
    "las": (0.0, 1.0),
    "uas": (0.0, 1.0),
    "ndcg": (0.0, 1.0),
    "mrr": (0.0, 1.0),
    "bleu": (0.0, 100.0),
    "chrf": (0.0, 100.0),
    "spbleu": (0.0, 100.0),
}
#: Other spellings accepted in the ``metric`` column (compared lower-cased).
METRIC_ALIASES = {
    "acc": "accuracy",
    "exact_match": "em",
    "f1_macro": "macro_f1",
    "macro-f1": "macro_f1",
    "sp_bleu": "spbleu",
    "sacrebleu": "bleu",
    "chrf2": "chrf",
    "ndcg@k": "ndcg",
}
FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".parquet": "parquet"}

_STRING_COLUMNS = ("model", "task", "source", "target", "metric")
_TEXT_COLUMNS = _STRING_COLUMNS + (SOURCE_LANGUAGES, CONDITION, "source_code", "target_code")
_INTEGER_COLUMNS = ("n_source_examples", "n_target_examples", "seed")
# pandas' default missing-value markers, applied to every column except the text ones, where only
# an empty field is missing (so that a language code such as "NA" is not lost).
_NA_MARKERS = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
               "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"]
_UNIT, _PERCENT = "0-1", "0-100"


# --------------------------------------------------------------------------- reading

def read_results(path, *, rescale: bool = False) -> pd.DataFrame:
    """Read and validate a results table (.csv, .tsv, .jsonl or .parquet)."""
    path = Path(path)
    table, rows = _read_table(path)
    return _validate(table, file=str(path), rows=rows, rescale=rescale)


def read_table(path, *, what: str = "table", required: tuple[str, ...] = (), allow_empty: bool = False) -> pd.DataFrame:
    """The one table reader of every command: .csv .tsv .jsonl or .parquet, not validated as results.

    Text columns (language codes, model and task names) are missing only when empty, so an ISO
    639-3 code such as ``nan`` (Min Nan Chinese) or ``NA`` is read as that code; other columns use
    pandas' usual missing-value markers.  ``required`` columns must be present and the table must
    have rows; problems are :class:`InputError` errors naming the file (and row where known).
    """
    path = Path(path)
    table, _rows = _read_table(path)
    for column in required:
        if column not in table.columns:
            raise InputError(f"the {what} needs column(s) {', '.join(repr(c) for c in required)}; it has "
                             f"{', '.join(map(str, table.columns)) or 'none'}", file=path, column=column)
    if table.empty and not allow_empty:
        raise InputError(f"the {what} has no rows", file=path)
    return table.reset_index(drop=True)


def _format_of(path: Path) -> str:
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise InputError(f"unsupported file extension {path.suffix!r}; use one of "
                         f"{', '.join(FORMATS)}", file=path)
    return kind


def _read_table(path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """The raw table and, per row, its data-row number in the file."""
    kind = _format_of(path)
    if not path.exists():
        raise InputError("file not found", file=path)
    if path.is_dir():
        raise InputError("is a folder, not a results file", file=path)
    if kind in ("csv", "tsv"):
        return _read_delimited(path, "," if kind == "csv" else "\t")
    if kind == "jsonl":
        return _read_jsonl(path)
    return _read_parquet(path)


def _not_utf8(path: Path) -> InputError:
    """Where the first byte that is not UTF-8 is: absolute byte offset, and the data row."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        bad = data[error.start:error.start + 1].hex()
        hint = (" (the file looks like UTF-16: save it as UTF-8)" if data[:2] in (b"\xff\xfe", b"\xfe\xff")
                else " (save the file as UTF-8)")
        return InputError(f"not UTF-8 text: byte 0x{bad} at byte {error.start + 1:,} of the file "
                          f"({error.reason}){hint}", file=path,
                          row=line - 1 if path.suffix.lower() in (".csv", ".tsv") else line)
    return InputError("not UTF-8 text", file=path)


def _check_header(path: Path, separator: str) -> None:
    """Refuse a header that names a column twice (pandas would rename the second ``score.1``)."""
    import csv

    with open(path, encoding="utf-8-sig", newline="") as handle:
        first = handle.readline()
    if "\x00" in first:
        raise InputError("the header line holds NUL bytes: not a text table", file=path, row=None)
    names = next(csv.reader([first], delimiter=separator), [])
    seen = set()
    for name in (n.strip() for n in names):
        if name in seen and name:
            raise InputError("column appears more than once in the header", file=path, column=name)
        seen.add(name)


def _read_delimited(path: Path, separator: str) -> tuple[pd.DataFrame, np.ndarray]:
    try:
        _check_header(path, separator)
        header = pd.read_csv(path, sep=separator, nrows=0, encoding="utf-8-sig").columns
        na_values = {column: ([""] if column in _TEXT_COLUMNS else _NA_MARKERS)
                     for column in header}
        table = pd.read_csv(
            path, sep=separator, encoding="utf-8-sig", skip_blank_lines=False,
            keep_default_na=False, na_values=na_values,
            dtype={column: str for column in header if column in _TEXT_COLUMNS},
        )
    except pd.errors.EmptyDataError:
        raise InputError("file is empty (no header line)", file=path) from None
    except UnicodeDecodeError:
        raise _not_utf8(path) from None
    except (pd.errors.ParserError, ValueError) as error:
        # pandas counts physical lines with the header as line 1; a data row is one less.
        line = re.search(r"\bline (\d+)", str(error))
        raise InputError(f"cannot parse as {'CSV' if separator == ',' else 'TSV'}: "
                         f"{str(error).strip()}", file=path,
                         row=int(line.group(1)) - 1 if line else None) from None
    rows = np.arange(1, len(table) + 1)
    blank = table.isna().all(axis=1).to_numpy()
    if blank.any():
        table = table.loc[~blank].reset_index(drop=True)
        rows = rows[~blank]
    return table, rows


def _read_jsonl(path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise _not_utf8(path) from None
    lines = text.split("\n")
    rows = np.asarray([number for number, line in enumerate(lines, start=1) if line.strip()],
                      dtype=np.int64)
    table = _read_jsonl_arrow(path)
    if table is None or len(table) != len(rows):
        table = _read_jsonl_python(path, lines)
    return table, rows


def _read_jsonl_arrow(path: Path) -> pd.DataFrame | None:
    """Fast path (pyarrow's C++ reader); None when the file needs the line-by-line reader:
    malformed lines, columns that change type, nested values."""
    import pyarrow as pa
    import pyarrow.json as pa_json

    try:
        table = pa_json.read_json(path)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError):
        return None
    if any(pa.types.is_nested(field.type) or pa.types.is_timestamp(field.type)
           for field in table.schema):
        return None
    return table.to_pandas()


def _read_jsonl_python(path: Path, lines: list[str]) -> pd.DataFrame:
    records = []
    decode = json.JSONDecoder().decode
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = decode(line)
        except json.JSONDecodeError as error:
            raise InputError(f"not valid JSON ({error.msg} at character {error.pos + 1})",
                             file=path, row=number) from None
        if not isinstance(record, dict):
            raise InputError(f"each line must be a JSON object, got {type(record).__name__}",
                             file=path, row=number)
        records.append(record)
    return pd.DataFrame.from_records(records)


def _read_parquet(path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    try:
        table = pd.read_parquet(path)
    except Exception as error:  # pyarrow raises ArrowInvalid, OSError, ... for corrupt files
        raise InputError(f"not a readable Parquet file ({type(error).__name__}: {error})",
                         file=path) from None
    table = table.reset_index(drop=True)
    return table, np.arange(1, len(table) + 1)


# --------------------------------------------------------------------------- writing

def write_results(df: pd.DataFrame, path, *, float_format: str | None = None) -> Path:
    """Write ``df`` to ``path``; the format follows the extension (.csv .tsv .jsonl .parquet).

    The file appears complete or not at all: it is written to a temporary file in the same
    folder and then renamed over ``path``. ``float_format`` (e.g. ``"%.10g"``) applies to CSV and TSV.
    Any table can be written this way, not only results tables: nothing is validated here.
    """
    path = Path(path)
    kind = _format_of(path)

    def write(temporary: str) -> None:
        if kind in ("csv", "tsv"):
            df.to_csv(temporary, index=False, sep="," if kind == "csv" else "\t", lineterminator="\n",
                      encoding="utf-8", float_format=float_format)
        elif kind == "jsonl":
            _write_jsonl(df, temporary)
        else:
            df.to_parquet(temporary, index=False)

    return atomic_write_with(path, write)


def _write_jsonl(df: pd.DataFrame, target: str) -> None:
    # Column by column: every distinct value is encoded once, then the lines are concatenated.
    columns = []
    for index, name in enumerate(df.columns):
        prefix = ("{" if index == 0 else ", ") + json.dumps(str(name), ensure_ascii=False) + ": "
        columns.append((prefix + _json_fragments(df.iloc[:, index])).tolist())
    columns.append(["}\n"] * len(df))
    with open(target, "w", encoding="utf-8", newline="\n") as handle:
        handle.writelines("".join(parts) for parts in zip(*columns))


def _json_fragments(column: pd.Series) -> np.ndarray:
    """The JSON text of every value of a column (missing values as null)."""
    missing = column.isna().to_numpy()
    if pd.api.types.is_float_dtype(column.dtype):
        values = column.to_numpy(dtype=float, na_value=np.nan)
        texts = np.array([repr(value) for value in values.tolist()], dtype=object)
        texts[~np.isfinite(values)] = "null"  # JSON has no infinities
    elif pd.api.types.is_integer_dtype(column.dtype):
        values = column.to_numpy(dtype=np.int64, na_value=0)
        texts = np.array([str(value) for value in values.tolist()], dtype=object)
    else:
        try:
            codes, uniques = pd.factorize(column, use_na_sentinel=True)
            values = uniques.tolist()
        except TypeError:  # unhashable values such as dicts
            codes, values = np.arange(len(column)), column.tolist()
        encoded = [json.dumps(value, ensure_ascii=False, default=_json_default)
                   for value in values]
        texts = np.asarray(encoded + ["null"], dtype=object)[codes]
    texts[missing] = "null"
    return texts


def _json_default(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


# --------------------------------------------------------------------------- validation

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


class _Reporter:
    """Raises InputErrors, turning table positions into the file's row numbers."""

    def __init__(self, file, rows: np.ndarray):
        self.file = file
        self.rows = rows

    def row(self, position: int) -> int:
        return int(self.rows[position])

    def __call__(self, message: str, position: int, column: str):
        raise InputError(message, file=self.file, row=self.row(position), column=column)


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


def _first(mask) -> int:
    return int(np.flatnonzero(np.asarray(mask))[0])


def _plain(value) -> str:
    """A number as a user wrote it (``1.5``, ``3``), never numpy's ``np.float64(1.5)``."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return str(int(number)) if number.is_integer() and abs(number) < 1e16 else repr(number)
    return repr(value)


def _kind_of(value) -> str:
    if isinstance(value, (list, tuple, np.ndarray)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (bytes, bytearray)):
        return "bytes"
    if isinstance(value, (pd.Timestamp, np.datetime64)) or hasattr(value, "isoformat"):
        return "a date/time"
    return f"a {type(value).__name__}"


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
    text = _text_column(series, "metric", fail).str.lower()
    text = text.replace(METRIC_ALIASES)
    unknown = ~text.isin(list(METRICS)).to_numpy()
    if unknown.any():
        position = _first(unknown)
        value = series.iloc[position]
        close = difflib.get_close_matches(text.iloc[position], list(METRICS), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        fail(f"unknown metric {value!r}; known metrics: {', '.join(METRICS)}{hint}",
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


def _parse_source_languages(text: str) -> tuple[str | None, str | None]:
    try:
        return None, json.dumps(parse_source_languages(text))
    except InputError as error:
        return error.message, None


def key_columns(df: pd.DataFrame) -> list[str]:
    """The columns that identify a row of ``df``: :data:`KEY_COLUMNS`, plus ``source_languages``
    and ``condition`` when the table has them."""
    return list(KEY_COLUMNS) + [column for column in (SOURCE_LANGUAGES, CONDITION)
                                if column in df.columns]


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


def _show(value) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _check_scales(out: pd.DataFrame, fail, rescale: bool) -> None:
    scores = out["score"].to_numpy()
    metric = out["metric"]
    metric_codes, metric_names = pd.factorize(metric)
    bounds = np.array([_accepted_range(name) for name in metric_names], dtype=float)
    low, high = bounds[metric_codes, 0], bounds[metric_codes, 1]
    outside = (scores < low) | (scores > high)
    if outside.any():
        position = _first(outside)
        name = metric.iloc[position]
        fail(f"score {scores[position]:g} is outside the range of metric {name!r} "
             f"({_range_text(name)})", position, "score")
    grouped = out.groupby(["metric", "task", "model"], sort=False)["score"]
    group_max = grouped.transform("max")
    _check_lone_percent(out, scores, grouped, fail)
    is_unit = (group_max <= 1.0).to_numpy()
    scales: dict[str, str] = {}
    converted: dict[str, int] = {}
    for name in pd.unique(metric):
        in_metric = (metric == name).to_numpy()
        native_unit = METRICS[name][1] <= 1.0
        unit_rows = in_metric & is_unit
        percent_rows = in_metric & ~is_unit
        if unit_rows.any() and percent_rows.any() and not rescale:
            first_unit, first_percent = _first(unit_rows), _first(percent_rows)
            position = max(first_unit, first_percent)
            other = min(first_unit, first_percent)
            other_row = fail.row(other)
            where = lambda i: f"model {out['model'].iloc[i]!r}, task {out['task'].iloc[i]!r}"
            fail(f"metric {name!r} mixes 0-1 and 0-100 scales: scores for {where(first_unit)} "
                 f"are all <= 1 while {where(first_percent)} has {scores[first_percent]:g}; "
                 f"this row is on the {_UNIT if position == first_unit else _PERCENT} scale, "
                 f"row {other_row} on the {_PERCENT if position == first_unit else _UNIT} "
                 f"scale (convert one, or rescale=True)", position, "score")
        if rescale:
            to_convert = percent_rows if native_unit else unit_rows
            scales[name] = _UNIT if native_unit else _PERCENT
            if to_convert.any():
                converted[name] = int(to_convert.sum())
        else:
            scales[name] = _UNIT if unit_rows.any() else _PERCENT
    if rescale:
        if "score_original" not in out.columns:
            out["score_original"] = out["score"]
        factor = np.ones(len(out))
        native_unit = np.array([METRICS[name][1] <= 1.0 for name in metric_names])[metric_codes]
        factor[native_unit & ~is_unit] = 0.01
        factor[~native_unit & is_unit] = 100.0
        out["score"] = out["score"] * factor
        out.attrs["rescaled"] = converted
    out.attrs["score_scales"] = scales


def _check_lone_percent(out: pd.DataFrame, scores: np.ndarray, grouped, fail) -> None:
    """A proportion metric's group (metric, task, model) whose scores are all within 0-1 except a
    few above 1 (one accuracy of 55, or 1.0000001, among 0.4-0.9) is an error naming the row: the
    whole group would otherwise be read as 0-100 and divided by 100 on rescaling."""
    above = pd.Series(scores > 1.0, index=out.index)
    n_above = above.groupby([out["metric"], out["task"], out["model"]], sort=False).transform("sum").to_numpy()
    n = grouped.transform("count").to_numpy()  # scored rows (rows to predict have no score)
    native_unit = out["metric"].map(lambda name: METRICS[name][1] <= 1.0).to_numpy(dtype=bool)
    lone = (native_unit & (scores > 1.0) & (n_above <= np.maximum(1, 0.05 * n))
            & (n - n_above >= np.maximum(2, 2 * n_above)))
    if lone.any():
        position = _first(lone)
        name, task, model = (out[c].iloc[position] for c in ("metric", "task", "model"))
        others = int(n[position] - n_above[position])
        fail(f"score {_plain(scores[position])} is above 1 while the other {others} scores of metric "
             f"{name!r}, task {task!r}, model {model!r} are all within 0-1: one score on the 0-100 "
             "scale (or a rounding error) in a 0-1 group; fix this row", position, "score")


def _factor(name: str) -> float:
    """Factor from a metric's native scale to its other common scale."""
    return 100.0 if METRICS[name][1] <= 1.0 else 0.01


def _accepted_range(name: str) -> tuple[float, float]:
    """Scores a metric may take on either of its two scales."""
    low, high = METRICS[name]
    factor = _factor(name)
    return min(low, low * factor), max(high, high * factor)


def _range_text(name: str) -> str:
    low, high = METRICS[name]
    other = (low * _factor(name), high * _factor(name))
    return f"{low:g}-{high:g}, or {other[0]:g}-{other[1]:g} on the other scale"
