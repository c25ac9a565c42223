"""Write result tables as CSV, Markdown and LaTeX with deterministic number formatting.

Every table a fit writes (``tables/<name>.csv|.md|.tex``) goes through :func:`write_table` so that two
runs on the same input give byte-identical files: floats are printed with a fixed number of
significant digits (``digits``, default 6) in plain ``%g`` style, missing values are empty in CSV and
``NA`` in Markdown, and rows keep the order of the DataFrame given (callers sort them).  The LaTeX
file is for a paper (:func:`xltstats.report.latex.latex_table`, the report's own writer): numbers
rounded, p-values ``< 0.001``, readable names, a caption and a ``tab:<name>`` label.
Each file is written to a temporary file in the same folder and then moved into place, so an error
never leaves a half-written table behind.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from .._io import atomic_write_text
from ..report.labels import readable
from ..report.latex import latex_escape as _latex_escape, latex_table

__all__ = ["format_value", "table_to_csv", "table_to_markdown", "table_to_latex", "write_table", "atomic_write_text"]


def format_value(value, digits: int = 6, missing: str = "") -> str:
    """Format one cell deterministically: floats with ``digits`` significant digits, ints as ints."""
    if value is None or value is pd.NA or value is pd.NaT:
        return missing
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value):
            return missing
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if value == 0:
            return "0"  # avoids "-0"
        text = format(value, f".{digits}g")
        return text
    return str(value)


def _float_texts(values: np.ndarray, digits: int, missing: str) -> list[str]:
    """``format_value`` of every float of a column at once (the same text, value for value)."""
    pattern = f"%.{digits}g"
    texts = [pattern % v for v in values.tolist()]  # '%.6g' % v == format(v, '.6g') for every float
    for i in np.flatnonzero(np.isnan(values)):
        texts[i] = missing
    for i in np.flatnonzero(values == 0):
        texts[i] = "0"  # avoids "-0"
    return texts


def _column_texts(column: pd.Series, digits: int, missing: str) -> tuple[list[str], bool]:
    """The texts of one column (as :func:`format_value` gives them) and whether they are plain numbers
    (numpy floats, ints or bools: no character that CSV, Markdown or LaTeX must escape)."""
    values = column.to_numpy() if isinstance(column.dtype, np.dtype) else None
    if values is not None and values.dtype.kind == "f":
        return _float_texts(values.astype(np.float64, copy=False), digits, missing), True
    if values is not None and values.dtype.kind in "iu":
        return [str(v) for v in values.tolist()], True
    if values is not None and values.dtype.kind == "b":
        return ["true" if v else "false" for v in values.tolist()], True
    if isinstance(column.dtype, pd.StringDtype):  # str or missing, as format_value gives them
        return [missing if v is None else v for v in column.to_numpy(dtype=object, na_value=None)], False
    return [format_value(v, digits, missing) for v in column], False


def _columns(df: pd.DataFrame, digits: int, missing: str) -> tuple[list[str], list[list[str]], list[bool]]:
    """Header, the texts of each column and whether each column is plain numbers."""
    header = [str(c) for c in df.columns]
    texts, plain = [], []
    for j in range(df.shape[1]):
        column_texts, is_plain = _column_texts(df.iloc[:, j], digits, missing)
        texts.append(column_texts)
        plain.append(is_plain)
    return header, texts, plain


def _csv_quote(text: str) -> str:
    if "," in text or '"' in text or "\n" in text or "\r" in text:
        return '"' + text.replace('"', '""') + '"'
    return text


def _rows(header: list[str], texts: list[list[str]], n_rows: int, line) -> str:
    if not texts:
        return line(header) + line([]) * n_rows
    return line(header) + "".join(map(line, zip(*texts)))


def table_to_csv(df: pd.DataFrame, digits: int = 6) -> str:
    """CSV text (``\\n`` line ends, empty cells for missing values)."""
    header, texts, plain = _columns(df, digits, "")
    texts = [t if is_plain else [_csv_quote(c) for c in t] for t, is_plain in zip(texts, plain)]
    return _rows([_csv_quote(c) for c in header], texts, len(df), lambda row: ",".join(row) + "\n")


def _numeric_columns(df: pd.DataFrame) -> list[bool]:
    return [pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]) for c in df.columns]


def table_to_markdown(df: pd.DataFrame, digits: int = 6) -> str:
    """A GitHub-flavoured pipe table; numeric columns are right-aligned."""
    header, texts, plain = _columns(df, digits, "NA")
    numeric = _numeric_columns(df)
    widths = [max(len(header[j]), 3, max(map(len, texts[j]), default=0)) for j in range(len(header))]
    padded = []
    for j, column in enumerate(texts):
        pad = str.rjust if numeric[j] else str.ljust
        column = [pad(c, widths[j]) for c in column]
        padded.append(column if plain[j] else [c.replace("|", "\\|") for c in column])

    def line(parts):
        return "| " + " | ".join(parts) + " |\n"

    head = [(h.rjust(widths[j]) if numeric[j] else h.ljust(widths[j])).replace("|", "\\|") for j, h in enumerate(header)]
    rule = "|" + "|".join((("-" * (widths[j] + 1)) + ":") if numeric[j] else ("-" * (widths[j] + 2))
                          for j in range(len(header))) + "|\n"
    body = _rows(head, padded, len(df), line)
    first = body.index("\n") + 1
    return body[:first] + rule + body[first:]


def table_to_latex(df: pd.DataFrame, digits: int = 6, caption: str | None = None, label: str | None = None) -> str:
    """A booktabs ``tabular`` (wrapped in ``table`` when a caption or label is given)."""
    header, texts, plain = _columns(df, digits, "NA")
    spec = "".join("r" if n else "l" for n in _numeric_columns(df))
    texts = [t if is_plain else [_latex_escape(c) for c in t] for t, is_plain in zip(texts, plain)]
    lines = [f"\\begin{{tabular}}{{{spec}}}", "\\toprule",
             " & ".join(_latex_escape(c) for c in header) + " \\\\", "\\midrule"]
    lines += [" & ".join(row) + " \\\\" for row in (zip(*texts) if texts else [()] * len(df))]
    lines += ["\\bottomrule", "\\end{tabular}"]
    if caption is not None or label is not None:
        inner = ["\\begin{table}[ht]", "\\centering"] + lines
        if caption is not None:
            inner.append(f"\\caption{{{_latex_escape(caption)}}}")
        if label is not None:
            inner.append(f"\\label{{{label}}}")
        inner.append("\\end{table}")
        lines = inner
    return "\n".join(lines) + "\n"


FORMATS = ("csv", "md", "tex")
#: Markdown and LaTeX hold at most this many rows (CSV always holds the whole table): a 500k-row
#: fit's ranking made a 12.6 MB Markdown and a 7 MB LaTeX table that nobody reads.
MAX_TEXT_ROWS = 500


def _latex_with_note(text: str, note: str | None, n_columns: int) -> str:
    if not note:
        return text
    row = f"\\multicolumn{{{max(n_columns, 1)}}}{{l}}{{\\emph{{{_latex_escape(note)}}}}} \\\\\n\\bottomrule"
    return text.replace("\\bottomrule", row, 1)


def write_table(df: pd.DataFrame, directory, name: str, *, formats=FORMATS, digits: int = 6,
                caption: str | None = None, max_text_rows: int = MAX_TEXT_ROWS) -> dict[str, Path]:
    """Write ``df`` as ``<directory>/<name>.csv``, ``.md`` and ``.tex`` (or the ``formats`` asked for).

    CSV holds every row; Markdown and LaTeX the first ``max_text_rows`` and a line saying so.

    Returns {extension: path}. All texts are rendered before anything is written, so a formatting
    error writes nothing.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"write_table needs a DataFrame, got {type(df).__name__}")
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown table format(s) {unknown}; choose from {FORMATS}")
    shown = df
    note = None
    if len(df) > max_text_rows:
        shown = df.head(max_text_rows)
        where = f"the full table is {name}.csv" if "csv" in formats else "the rest is not written"
        note = f"First {max_text_rows:,} of {len(df):,} rows; {where}."
    render = {"csv": lambda: table_to_csv(df, digits),
              "md": lambda: table_to_markdown(shown, digits) + (f"\n*{note}*\n" if note else ""),
              "tex": lambda: _latex_with_note(latex_table(shown, caption=caption if caption is not None else readable(name),
                                                          label=f"tab:{name.replace('_', '-')}"),
                                              note, len(df.columns))}
    texts = {ext: render[ext]() for ext in formats}
    directory = Path(directory)
    return {ext: atomic_write_text(directory / f"{name}.{ext}", text) for ext, text in texts.items()}
