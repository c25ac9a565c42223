"""Reading and writing tables (.csv .tsv .jsonl .parquet): :func:`read_results`, the one table
reader :func:`read_table`, and the atomic :func:`write_results`.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from xltstats._io import atomic_write_with
from xltstats.errors import InputError

from .schema import _TEXT_COLUMNS
from .validation import _validate

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".parquet": "parquet"}
# pandas' default missing-value markers, applied to every column except the text ones, where only
# an empty field is missing (so that a language code such as "NA" is not lost).
_NA_MARKERS = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
               "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"]


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
