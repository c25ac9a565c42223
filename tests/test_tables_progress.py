"""Large tables: full CSV, truncated Markdown/LaTeX that say so; progress counters with time left."""
import io

import numpy as np
import pandas as pd

from xltstats.models.tables import table_to_csv, write_table
from xltstats.progress import Progress


def test_large_tables_are_complete_in_csv_and_truncated_in_markdown_and_latex(tmp_path):
    df = pd.DataFrame({"source": [f"l{i}" for i in range(12)], "value": np.arange(12) / 4})
    paths = write_table(df, tmp_path, "big", max_text_rows=5)
    assert paths["csv"].read_text() == table_to_csv(df)
    md = paths["md"].read_text()
    assert "| l4 " in md and "| l5 " not in md and "*First 5 of 12 rows; the full table is big.csv.*" in md
    tex = paths["tex"].read_text()
    assert "l4 &" in tex and "l5 &" not in tex and "First 5 of 12 rows; the full table is big.csv." in tex
    small = write_table(df.head(5), tmp_path, "small", max_text_rows=5)
    assert "First" not in small["md"].read_text() and "First" not in small["tex"].read_text()


def test_counter_reports_done_and_time_left(monkeypatch):
    import xltstats.progress as P

    clock = iter([0.0, 2.0, 4.0, 4.5, 9.0, 10.0, 12.0])
    monkeypatch.setattr(P, "_clock", lambda: next(clock))
    stream = io.StringIO()
    counter = Progress("prog", stream=stream).counter("folds", 4)
    for label in "abcd":
        counter(label)
    lines = stream.getvalue().splitlines()
    # fold c finishes 0.5 s after b: no line; the last fold always has one
    assert lines == ["prog:   folds: 1/4 done (a), 2 s so far, about 6 s left",
                     "prog:   folds: 2/4 done (b), 4 s so far, about 4 s left",
                     "prog:   folds: 4/4 done (d), 9 s so far, about 0 s left"]
    quiet = io.StringIO()
    Progress("prog", quiet=True, stream=quiet).counter("folds", 2)("a")
    assert quiet.getvalue() == ""


def _cell_by_cell_csv(df, digits=6):
    """The CSV as it was written before columns were formatted at once: format_value per cell."""
    from xltstats.models.tables import _csv_quote, format_value

    rows = [[str(c) for c in df.columns]] + [[format_value(v, digits, "") for v in row]
                                             for row in df.itertuples(index=False, name=None)]
    return "".join(",".join(_csv_quote(c) for c in row) + "\n" for row in rows)


def test_column_formatting_gives_the_cell_by_cell_text():
    from xltstats.models.tables import format_value, table_to_latex, table_to_markdown

    rng = np.random.default_rng(0)
    x = rng.normal(size=64) * 10.0 ** rng.integers(-12, 12, 64)
    x[:5] = [np.nan, np.inf, -np.inf, 0.0, -0.0]
    df = pd.DataFrame({
        "f": x, "f32": x.astype(np.float32), "i": rng.integers(-5, 5, 64), "u8": np.arange(64, dtype=np.uint8),
        "b": rng.random(64) > 0.5,
        "text": [["a,b", 'q"x', "p|q", "a_b&c%$#{}~^\\", None, np.nan, 1.5, "plain"][k % 8] for k in range(64)],
        "string": pd.array([None if k % 7 == 0 else f"x{k}|,_" for k in range(64)], dtype="string"),
        "Int64": pd.array([None if k % 5 == 0 else k for k in range(64)], dtype="Int64"),
        "cat": pd.Categorical(["x", "y"] * 32), "a|b_c": range(64)})
    for digits in (6, 3):
        assert table_to_csv(df, digits) == _cell_by_cell_csv(df, digits)
        cells = [[format_value(v, digits, "NA") for v in row] for row in df.itertuples(index=False, name=None)]
        md = table_to_markdown(df, digits).splitlines()
        assert len(md) == 66 and [c.strip().replace("\\|", "|") for c in md[2][2:-2].split(" | ")] == cells[0]
        tex = table_to_latex(df, digits)
        assert tex.count("\\\\\n") == 65 and "a\\_b\\&c\\%\\$\\#\\{\\}\\textasciitilde{}" in tex
    assert table_to_csv(df.iloc[:0]) == _cell_by_cell_csv(df.iloc[:0])
    assert table_to_csv(pd.DataFrame(index=range(2))) == "\n\n\n"
    assert table_to_csv(pd.DataFrame({"v": [-0.0, 0.5, np.nan]})) == "v\n0\n0.5\n\n"
