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


def cv_metrics() -> pd.DataFrame:
    """langrank-el's case: OLS far below the mean baseline under leave-one-target-out."""
    return pd.DataFrame({
        "estimator": ["ols", "mixed", "mean", "gbt", "ols", "mean", "ols"],
        "scheme": ["leave-one-target-out"] * 4 + ["random"] * 2 + ["leave-one-source-out"],
        "rmse": [3.2, 0.21, 0.30, 0.29, 0.40, 0.30, 0.5],
        "r2": [-103.0, 0.40, -0.33, -0.2, 0.60, 0.70, -0.1],
        "mean_interval_width": [2064.0, 0.8, 1.0, np.nan, 0.4, 1.0, np.nan]})


def test_a_model_failing_cross_validation_is_marked_by_the_documented_rule():
    from xltstats.pipeline.run import mark_failed_cv

    table, notes = mark_failed_cv(cv_metrics())
    # ols (LOTO): R² < 0 and worse than the mean; gbt: R² < 0 but beats the mean (as the mean is
    # below 0 too); ols (random): worse than the mean but R² > 0; the mean itself never;
    # ols (LOSO): R² < 0 and no mean baseline under that scheme
    assert table["failed"].tolist() == [True, False, False, False, False, False, True]
    assert table.loc[0, "failed_because"] == "held-out R² -103 < 0; RMSE 3.2 > 0.3 of the mean baseline"
    assert table.loc[6, "failed_because"] == "held-out R² -0.1 < 0"
    assert table.loc[3, "failed_because"] == "" and table.loc[4, "failed_because"] == ""
    assert len(notes) == 2 and notes[0].startswith("cross-validation failed: ols under leave-one-target-out (")
    assert "prediction intervals 2,064 wide on average" in notes[0]
    assert notes[0].endswith("do not carry over to the target languages it holds out")
    assert "prediction intervals" not in notes[1] and notes[1].endswith("the source languages it holds out")


def test_the_fits_mixed_table_carries_the_satterthwaite_df_and_p_values():
    """tables/coef_mixed: lmerTest's df and Pr(>|t|) (checked against lmerTest in test_mixed_satterthwaite)
    for the fixed effects; missing, with the reason, for an ML fit."""
    import warnings

    from xltstats.models.mixed import fit_mixed
    from xltstats.pipeline.run import mixed_coefficients

    rng = np.random.default_rng(0)
    data = pd.DataFrame({"source": rng.integers(0, 10, 200).astype(str),
                         "target": rng.integers(0, 8, 200).astype(str), "x": rng.normal(size=200)})
    data["score"] = data["x"] + rng.normal(size=200) + data["target"].astype(int) * 0.3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reml = fit_mixed("score ~ x + (1 | source) + (1 | target)", data)
        ml = fit_mixed("score ~ x + (1 | source) + (1 | target)", data, reml=False)
    table, why = mixed_coefficients(reml)
    assert why == "" and list(table.columns[:8]) == ["effect", "group", "term", "estimate", "std_error",
                                                     "statistic", "df", "p_value"]
    fixed = table[table["effect"] == "fixed"].set_index("term")
    expected = reml.satterthwaite()
    np.testing.assert_allclose(fixed["df"], expected["df"], rtol=0)
    np.testing.assert_allclose(fixed["p_value"], expected["p_value"], rtol=0)
    assert table.loc[table["effect"] != "fixed", ["df", "p_value"]].isna().all().all()
    assert 1 < fixed.loc["Intercept", "df"] < 8  # about the number of targets, not the 200 rows
    table, why = mixed_coefficients(ml)
    assert table["p_value"].isna().all() and "REML" in why
