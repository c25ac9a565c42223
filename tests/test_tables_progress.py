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
