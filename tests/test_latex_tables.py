"""The fit's own ``tables/*.tex`` are ready for a paper (issue 15): booktabs, rounded numbers,
integers as integers, p-values ``< 0.001`` / three significant digits, readable names, LaTeX
specials escaped, a caption and a label; the CSV beside them keeps full precision."""
from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from xltstats.models.tables import table_to_csv, write_table
from xltstats.pipeline.artifacts import TABLES, table_caption

# A LaTeX special character that is not escaped: _ % & # $ not preceded by a backslash (``&`` is the
# column separator and ``$`` opens maths, so those are checked per cell below).
_UNESCAPED = re.compile(r"(?<!\\)[_%#]")
_DECIMAL = re.compile(r"(\d+)\.(\d+)")


def unrounded(cell: str) -> bool:
    """A decimal number with more digits than a paper shows: over four significant digits below
    1000, more than one decimal from 1000 up (the CSV has six significant digits)."""
    for whole, decimals in _DECIMAL.findall(cell):
        significant = (whole + decimals).lstrip("0")
        if (len(significant) > 4 if int(whole) < 1000 else len(decimals) > 1):
            return True
    return False


def latex_problems(text: str) -> list[str]:
    """What is structurally wrong with a LaTeX table: unbalanced environments or braces, rows with
    the wrong number of cells, unescaped specials, unrounded numbers, no caption or label."""
    problems = []
    stack = []
    for kind, env in re.findall(r"\\(begin|end)\{(\w+)\}", text):
        if kind == "begin":
            stack.append(env)
        elif not stack or stack.pop() != env:
            problems.append(f"\\end{{{env}}} without its \\begin")
    problems += [f"\\begin{{{env}}} not closed" for env in stack]
    depth = 0
    for ch in re.sub(r"\\[{}]", "", text):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0:
            problems.append("unbalanced braces")
            break
    if depth > 0:
        problems.append("unbalanced braces")
    spec = re.search(r"\\begin\{tabular\}\{([lrc]+)\}", text)
    if not spec:
        return problems + ["no tabular with a column spec"]
    n_columns = len(spec.group(1))
    body = text[text.index("\\toprule"):text.index("\\bottomrule")]
    for line in body.splitlines():
        if not line.endswith("\\\\") or line.startswith("\\multicolumn"):
            continue
        cells = re.split(r"(?<!\\)&", line[:-2])
        if len(cells) != n_columns:
            problems.append(f"{len(cells)} cells, not {n_columns}: {line[:60]}")
        for cell in cells:
            outside_maths = re.sub(r"(?<!\\)\$[^$]*(?<!\\)\$", "", cell)
            if _UNESCAPED.search(outside_maths) or re.search(r"(?<!\\)\$", outside_maths):
                problems.append(f"unescaped special character in {cell!r}")
            if unrounded(cell):
                problems.append(f"unrounded number in {cell!r}")
    for part in ("\\toprule", "\\midrule", "\\bottomrule", "\\caption{", "\\label{tab:"):
        if part not in text:
            problems.append(f"no {part}")
    return problems


def compile_latex(tex: str, folder) -> subprocess.CompletedProcess:
    document = ("\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage{booktabs}\n"
                "\\begin{document}\n" + tex + "\\end{document}\n")
    (folder / "doc.tex").write_text(document, encoding="utf-8")
    return subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=folder,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def coefficients():
    return pd.DataFrame({
        "effect": ["fixed", "fixed", "fixed", "ran_pars"],
        "group": [None, None, None, "target"],
        "term": ["Intercept", "syntactic_distance", "rate_of_50%_&_#1", "var__(Intercept)"],
        "estimate": [55.558812345678, -18.931123456, 1.234567e-7, 130.66812345],
        "std_error": [2.17132345, 1.3149812, 3.2e-8, np.nan],
        "df": [183.1123, 6263.37, 12.0, np.nan],
        "p_value": [2.26865e-62, 0.0663152, 0.00123456, np.nan],
        "n": [6363.0, 6363.0, 12.0, 6363.0],
        "features": ["phonological_distance inventory_distance", "a_b, c_d", "x", "y"],
    })


def test_fit_tables_tex_is_paper_ready(tmp_path, coefficients):
    written = write_table(coefficients, tmp_path, "coef_mixed", caption=table_caption("coef_mixed"))
    tex = written["tex"].read_text(encoding="utf-8")
    assert latex_problems(tex) == [], tex
    assert "Fixed &  & Intercept" not in tex  # missing cells are a dash, not empty
    assert "Fixed & -- & Intercept & 55.56 & 2.171 & 183.1 & $<$ 0.001 & 6363 &" in tex
    assert "Fixed & -- & Syntactic distance & -18.93 & 1.315 & 6263.4 & 0.0663 & 6363 &" in tex
    assert "rate\\_of\\_50\\%\\_\\&\\_\\#1 & $1.23 \\times 10^{-7}$ & $3.2 \\times 10^{-8}$ & 12 & 0.00123 & 12" in tex
    assert "Random & Target & Var((Intercept))" in tex
    assert "Phonological distance, Inventory distance" in tex and "A b, C d" in tex
    assert tex.splitlines()[4] == "Effect & Group & Term & Estimate & SE & df & p & n & Features \\\\"
    assert "\\caption{Mixed-model fixed effects" in tex and "(\\texttt{tables/coef\\_mixed.csv}).}" in tex
    assert "\\label{tab:coef-mixed}" in tex
    # the CSV is the data: full precision, snake_case names, byte for byte what table_to_csv gives
    assert written["csv"].read_text(encoding="utf-8") == table_to_csv(coefficients)
    assert "55.5588,2.17132,183.112,2.26865e-62" in written["csv"].read_text(encoding="utf-8")


def test_every_fit_table_has_a_caption():
    for name, schema in TABLES.items():
        assert schema.description, name
        caption = table_caption(name)
        assert caption[0].isupper() and caption.endswith(f"(`tables/{name}.csv`).")


def test_long_tables_keep_the_note_inside_the_table(tmp_path):
    frame = pd.DataFrame({"target": [f"l{i}" for i in range(8)], "score": np.linspace(0, 1, 8)})
    tex = write_table(frame, tmp_path, "ranking", max_text_rows=3)["tex"].read_text(encoding="utf-8")
    assert latex_problems(tex) == [], tex
    assert "\\multicolumn{2}{l}{\\emph{First 3 of 8 rows; the full table is ranking.csv.}} \\\\" in tex


def test_the_checker_finds_what_it_looks_for():
    good = "\\begin{table}\\begin{tabular}{lr}\n\\toprule\na & b \\\\\n\\midrule\nx & 1 \\\\\n\\bottomrule\n" \
           "\\end{tabular}\n\\caption{c}\\label{tab:x}\\end{table}"
    assert latex_problems(good) == []
    assert latex_problems(good.replace("x & 1", "x_y & 1"))
    assert latex_problems(good.replace("x & 1", "x & 0.123456789"))
    assert latex_problems(good.replace("x & 1", "x & 1 & 2"))
    assert latex_problems(good.replace("\\end{table}", ""))
    assert latex_problems(good.replace("\\caption{c}", ""))
    raw = good.replace("x & 1", "fixed &  & syntactic\\_distance & -18.9311")  # what the fit wrote before
    assert any("unrounded" in p for p in latex_problems(raw.replace("{lr}", "{llll}")))


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed (structure checked above)")
def test_fit_table_compiles_with_pdflatex(tmp_path, coefficients):
    tex = write_table(coefficients, tmp_path, "coef_mixed", caption=table_caption("coef_mixed"))["tex"]
    proc = compile_latex(tex.read_text(encoding="utf-8"), tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:]
