"""The model table's row accounting: the rows the models use, and which missing column cost the others."""
from __future__ import annotations

import numpy as np
import pandas as pd

from xltstats.pipeline.design import complete_rows, rows_used_text


def table() -> pd.DataFrame:
    """100 rows: a lacks 40 (30 of them only a), b lacks 15 (5 only b, 10 with a), the score lacks 2."""
    rng = np.random.default_rng(1)
    data = pd.DataFrame({"source": [f"s{i % 7}" for i in range(100)], "target": [f"t{i % 9}" for i in range(100)],
                         "score": rng.uniform(size=100), "a": rng.normal(size=100), "b": rng.normal(size=100)})
    data.loc[0:39, "a"] = np.nan
    data.loc[30:44, "b"] = np.nan
    data.loc[[98, 99], "score"] = np.nan
    return data


def test_the_rows_used_are_counted_and_the_costly_column_named_first():
    text = rows_used_text(table(), ["a", "b"])
    # kept: rows 45..97 = 53
    assert text.startswith("the models use 53 of 100 rows (53.0%); the other 47 (47.0%) were left out")
    assert ("a is missing in 40 rows (40.0%), 30 of them lack nothing else (left out of 'features', "
            "a would give them back)") in text
    assert "b is missing in 15 rows (15.0%), 5 of them lack nothing else" in text
    assert "the score is missing in 2 rows (2.0%), 2 of them lack nothing else" in text
    assert text.index("a is missing") < text.index("b is missing") < text.index("the score")


def test_complete_rows_notes_the_same_accounting_and_nothing_when_every_row_is_used():
    notes: list[str] = []
    complete, used = complete_rows(table(), ["a", "b"], notes)
    assert len(complete) == 53 and used == ["a", "b"]
    assert notes == [rows_used_text(table(), ["a", "b"])]
    full = table().dropna()
    notes = []
    complete_rows(full, ["a", "b"], notes)
    assert notes == [] and rows_used_text(full, ["a", "b"]) == "the models use all 53 rows"


def test_only_the_costliest_columns_are_named():
    data = table().assign(c=np.nan, d=1.0)  # columns b, score and d miss fewer rows than c and a
    data.loc[50:, "c"] = 1.0
    data.loc[[60], "d"] = np.nan
    text = rows_used_text(data, ["a", "b", "c", "d"], most=2)
    assert "c is missing in 50 rows" in text and "a is missing in 40 rows" in text
    assert "b is missing" not in text and text.endswith("; 3 more column(s) miss fewer rows")
