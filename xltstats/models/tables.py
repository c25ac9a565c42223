"""Write result tables as CSV, Markdown and LaTeX with deterministic number formatting.

Every table a fit writes (``tables/<name>.csv|.md|.tex``) goes through :func:`write_table` so that two
runs on the same input give byte-identical files: floats are printed with a fixed number of
significant digits (``digits``, default 6) in plain ``%g`` style, missing values are empty in CSV and
``NA`` in Markdown/LaTeX, and rows keep the order of the DataFrame given (callers sort them).
Each file is written to a temporary file in the same folder and then moved into place, so an error
never leaves a half-written table behind.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from .._io import atomic_write_text

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


def _cells(df: pd.DataFrame, digits: int, missing: str) -> list[list[str]]:
    columns = list(df.columns)
    rows = []
    for values in df.itertuples(index=False, name=None):
        rows.append([format_value(v, digits, missing) for v in values])
    return [[str(c) for c in columns]] + rows


def _csv_quote(text: str) -> str:
    if any(ch in text for ch in [",", '"', "\n", "\r"]):
        return '"' + text.replace('"', '""') + '"'
    return text


def table_to_csv(df: pd.DataFrame, digits: int = 6) -> str:
    """CSV text (``\\n`` line ends, empty cells for missing values)."""
    return "".join(",".join(_csv_quote(c) for c in row) + "\n" for row in _cells(df, digits, ""))


def table_to_markdown(df: pd.DataFrame, digits: int = 6) -> str:
    """A GitHub-flavoured pipe table; numeric columns are right-aligned."""
    cells = _cells(df, digits, "NA")
    header, body = cells[0], cells[1:]
    numeric = [pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]) for c in df.columns]
    widths = [max([len(header[j])] + [len(r[j]) for r in body] + [3]) for j in range(len(header))]

    def line(row):
        parts = [(row[j].rjust(widths[j]) if numeric[j] else row[j].ljust(widths[j])) for j in range(len(row))]
        return "| " + " | ".join(p.replace("|", "\\|") for p in parts) + " |\n"

    rule = "|" + "|".join((("-" * (widths[j] + 1)) + ":") if numeric[j] else ("-" * (widths[j] + 2))
                          for j in range(len(header))) + "|\n"
    return line(header) + rule + "".join(line(r) for r in body)


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def table_to_latex(df: pd.DataFrame, digits: int = 6, caption: str | None = None, label: str | None = None) -> str:
    """A booktabs ``tabular`` (wrapped in ``table`` when a caption or label is given)."""
    cells = _cells(df, digits, "NA")
    numeric = [pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]) for c in df.columns]
    spec = "".join("r" if n else "l" for n in numeric)
    lines = [f"\\begin{{tabular}}{{{spec}}}", "\\toprule",
             " & ".join(_latex_escape(c) for c in cells[0]) + " \\\\", "\\midrule"]
    lines += [" & ".join(_latex_escape(c) for c in row) + " \\\\" for row in cells[1:]]
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
              "tex": lambda: _latex_with_note(table_to_latex(shown, digits, caption=caption, label=f"tab:{name}"),
                                              note, len(df.columns))}
    texts = {ext: render[ext]() for ext in formats}
    directory = Path(directory)
    return {ext: atomic_write_text(directory / f"{name}.{ext}", text) for ext, text in texts.items()}
