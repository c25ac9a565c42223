"""Numbers and names as a paper prints them, and the one LaTeX table writer.

:func:`format_frame` gives every cell of a table the text the report shows (p-values ``< 0.001`` or
three significant digits, whole numbers as integers, other numbers to four significant digits);
:func:`latex_table` turns a table into a booktabs ``tabular`` (in a ``table`` with caption and
label) with readable column and feature names.  The report's tables and the fit's own
``tables/*.tex`` (:func:`xltstats.models.tables.write_table`) are both written by it; the CSV
tables keep full precision and ``snake_case`` names (they are the data).
"""
from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from .labels import format_p, is_p_column, readable

__all__ = ["format_frame", "latex_escape", "latex_table", "latex_text", "NAME_COLUMNS"]

_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


_LATEX_TABLE = str.maketrans(_LATEX_SPECIAL)


def latex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters (``\\ & % $ # _ { } ~ ^``) escaped."""
    return text.translate(_LATEX_TABLE)


def _format_value(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "–"
    if isinstance(value, (float, np.floating)):
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
            return f"{value:.3g}"
        if abs(value) >= 1000:
            return str(int(value)) if value == round(value) else f"{value:.1f}"
        return f"{value:.4g}"
    return str(value)


def _integer_valued(column: pd.Series) -> bool:
    """A float column whose every value is a whole number (counts read back from CSV as floats)."""
    if not pd.api.types.is_float_dtype(column):
        return False
    values = column.dropna().to_numpy(float)
    return values.size > 0 and bool(np.all(np.isfinite(values))) and bool(np.all(values == np.round(values))) \
        and bool(np.all(np.abs(values) < 1e15))


def format_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Every cell as a fixed-precision string (the same text in Markdown and LaTeX).

    Float columns holding only whole numbers (counts such as ``n`` after a CSV round trip) are
    written as integers, not as ``2180.0``.
    """
    columns = {}
    for c in frame.columns:
        if is_p_column(c) and pd.api.types.is_numeric_dtype(frame[c]):
            columns[str(c)] = [format_p(v) for v in frame[c].tolist()]
        elif _integer_valued(frame[c]):
            columns[str(c)] = ["–" if pd.isna(v) else str(int(v)) for v in frame[c].tolist()]
        else:
            columns[str(c)] = [_format_value(v) for v in frame[c].tolist()]
    return pd.DataFrame(columns, index=range(len(frame)))


# Columns whose values are feature, term or other snake_case names: written readable in the LaTeX
# tables (text columns only: ``statistic`` is a number in a coefficient table, a name in mixed_fit).
NAME_COLUMNS = ("effect", "term", "feature", "features", "most_correlated_with", "predictor", "variable", "group",
                "group_a", "group_b", "component", "statistic", "estimator", "baseline", "method")
_SNAKE = re.compile(r"[a-z0-9]+(_[a-z0-9]+)*")
_LATEX_UNICODE = (("R²", "$R^2$"), ("χ²", "$\\chi^2$"), ("²", "\\textsuperscript{2}"), ("|r|", "$|r|$"),
                  ("<", "$<$"), (">", "$>$"), ("≤", "$\\leq$"), ("≥", "$\\geq$"), ("×", "$\\times$"),
                  ("∞", "$\\infty$"), ("→", "$\\to$"), ("–", "--"))
# A cell that is one number in e-notation (``1.23e-05``, what _format_value writes for tiny and huge values).
_E_NOTATION = re.compile(r"(-?\d+(?:\.\d+)?)e([+-])0*(\d+)")


def latex_text(text) -> str:
    """Text for LaTeX: special characters escaped, ``code`` as \\texttt, and the Unicode the report
    uses (R², χ², <, –) as pdflatex reads it."""
    parts = str(text).split("`")
    out = []
    for index, part in enumerate(parts):
        escaped = latex_escape(part)
        for plain, latex in _LATEX_UNICODE:
            escaped = escaped.replace(plain, latex)
        out.append(f"\\texttt{{{escaped}}}" if index % 2 and index < len(parts) - 1 else escaped)
    return "".join(out)


def _latex_cell(text: str) -> str:
    """One value cell: a number in e-notation as ``$1.23 \\times 10^{-5}$``, anything else as text."""
    match = _E_NOTATION.fullmatch(text)
    if match:
        mantissa, sign, exponent = match.groups()
        return f"${mantissa} \\times 10^{{{'-' if sign == '-' else ''}{exponent}}}$"
    return latex_text(text)


def _readable_names(value: str) -> str:
    """A cell naming one or more features (``a_b, c_d`` or ``a_b c_d``) with readable names; a
    cell that is not a list of snake_case names (a term such as ``I(x ** 2)``) split at commas only."""
    parts = [p for p in re.split(r",\s*|\s+", value.strip()) if p]
    if len(parts) > 1 and all(_SNAKE.fullmatch(p) for p in parts):
        return ", ".join(readable(p) for p in parts)
    return ", ".join(readable(part.strip()) for part in value.split(","))


def latex_table(frame: pd.DataFrame, *, caption: str | None = None, label: str | None = None) -> str:
    """A booktabs table for a paper: numbers rounded as in the HTML (p-values ``< 0.001`` or three
    significant digits, whole numbers as integers, e-notation as ``\\times 10^{k}``), readable column
    and feature names (``Syntactic distance``, ``SE``, ``95% CI low``), numeric columns
    right-aligned; wrapped in a ``table`` with ``\\caption`` and ``\\label`` when given."""
    shown = format_frame(frame)
    for column, original in zip(shown.columns, frame.columns):
        if column.lower() in NAME_COLUMNS and not pd.api.types.is_numeric_dtype(frame[original]):
            shown[column] = [_readable_names(value) for value in shown[column]]
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
               for c in frame.columns]
    lines = ["\\begin{tabular}{" + "".join("r" if n else "l" for n in numeric) + "}", "\\toprule",
             " & ".join(latex_text(readable(c)) for c in shown.columns) + " \\\\", "\\midrule"]
    lines += [" & ".join(_latex_cell(v) for v in row) + " \\\\" for row in shown.itertuples(index=False)]
    lines += ["\\bottomrule", "\\end{tabular}"]
    if caption is not None or label is not None:
        lines = (["\\begin{table}[ht]", "\\centering", *lines]
                 + ([f"\\caption{{{latex_text(caption)}}}"] if caption is not None else [])
                 + ([f"\\label{{{label}}}"] if label is not None else []) + ["\\end{table}"])
    return "\n".join(lines) + "\n"
