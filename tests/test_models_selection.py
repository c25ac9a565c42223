"""Fair comparisons: multi-source / few-shot tree features, grouping columns for trees and OLS,
model choice by inner cross-validation (never on the outer fold), stacking only when it wins,
conformal coverage for every estimator."""
import json
import math

import numpy as np
import pandas as pd
import pytest

from xltstats.models.selection import CHOSEN, STACKED, convex_weights
from xltstats.models.validation import (GradientBoostingEstimator, MeanBaseline, OLSEstimator, cross_validate,
                                        default_estimators, make_splits)
from xltstats.pipeline.design import grouping_columns, multisource_features, tree_columns


def toy_multisource():
    return pd.DataFrame({
        "model": ["m"] * 4, "task": ["t"] * 4,
        "source": ["mul", "eng", "mul", "deu"],
        "target": ["swe", "swe", "tur", "tur"],
        "n_source_examples": [1500, 800, 1200, np.nan],
        "n_target_examples": [0, 0, 100, 0],
        "source_languages": [json.dumps({"deu": 500, "eng": 1000}), None,
                             json.dumps({"deu": 200, "eng": 900, "tur": 100}), None],
    })


def test_multisource_features_golden_values():
    out, added = multisource_features(toy_multisource())
    assert added == ["log_target_examples", "log_examples_deu", "log_examples_eng", "log_examples_tur",
                     "n_sources", "source_entropy", "log_total_source_examples"]
    assert out["log_examples_deu"].tolist() == pytest.approx([math.log(501), 0, math.log(201), float("nan")],
                                                             nan_ok=True)
    assert out["log_examples_eng"].tolist() == pytest.approx([math.log(1001), math.log(801), math.log(901), 0])
    assert out["log_examples_tur"].tolist() == pytest.approx([0, 0, math.log(101), 0])
    assert out["log_target_examples"].tolist() == pytest.approx([0, 0, math.log(101), 0])
    assert out["n_sources"].tolist() == [2, 1, 3, 1]
    p = np.array([200, 900, 100]) / 1200
    assert out["source_entropy"].iat[2] == pytest.approx(-(p * np.log(p)).sum())
    assert out["log_total_source_examples"].iat[0] == pytest.approx(math.log(1501))
    # prediction: exactly the fitted model's columns, whatever languages the new rows have
    new = pd.DataFrame({"source": ["mul"], "target": ["fin"], "n_target_examples": [10],
                        "source_languages": [json.dumps({"fin": 10, "hin": 40})]})
    made, names = multisource_features(new, ["log_examples_deu", "log_examples_fin", "log_target_examples",
                                             "syntactic_distance", "n_sources"])
    assert names == ["log_target_examples", "log_examples_deu", "log_examples_fin", "n_sources"]
    assert made[names].iloc[0].tolist() == pytest.approx([math.log(11), 0, math.log(11), 2])
    assert "log_examples_hin" not in made


def test_single_source_table_gets_no_pivot_columns():
    table = toy_multisource().iloc[[1, 3]].assign(n_target_examples=0)
    out, added = multisource_features(table)
    assert added == [] and list(out.columns) == list(table.columns)


def test_tree_columns_keep_used_then_varying_extras():
    complete = pd.DataFrame({"a": [1.0, 2, 3], "a_min": [0.5, 1, 2], "a_max": [1.0, 1, 1], "log_examples_eng": [0.0, 1, 2],
                             "log_target_examples": [0.0, 0, 0]})
    assert tree_columns(complete, ["a"], ["log_examples_eng", "log_target_examples"]) == ["a", "a_min",
                                                                                           "log_examples_eng"]


def pooled(seed=0, n_lang=8):
    """Two models whose scores differ by 4 points; pair feature x explains the rest."""
    rng = np.random.default_rng(seed)
    langs = [f"l{i}" for i in range(n_lang)]
    rows = [(m, s, t) for m in ("small", "large") for s in langs for t in langs if s != t]
    df = pd.DataFrame(rows, columns=["model", "source", "target"]).assign(task="pos")
    df["x"] = rng.normal(size=len(df))
    df["score"] = 50 + 2 * df["x"] + 4 * (df["model"] == "large") + rng.normal(0, 0.5, len(df))
    return df


def test_grouping_columns_reach_trees_and_ols():
    df = pooled()
    formula = "score ~ x + (1 | source) + (1 | target) + (1 | model) + (1 | task)"
    groups = grouping_columns(formula, df)
    assert groups == ["model"]  # task has one level
    est = default_estimators(["x"], formula, categorical=groups)
    assert est["ols"].categorical == ["model"] and est["gbt"].categorical == ["model"]
    ols = est["ols"].fit(df)
    assert "model=small" in ols.result_.features  # indicator of the non-reference level
    blind = OLSEstimator(["x"]).fit(df)
    pred = ols.predict_interval(df)["prediction"]
    assert np.sqrt(((pred - df["score"]) ** 2).mean()) < 0.6 < np.sqrt(
        ((blind.predict_interval(df)["prediction"] - df["score"]) ** 2).mean())
    gbt = est["gbt"].fit(df)
    assert gbt.model_.n_features_in_ == 3  # x and one indicator per level
    # an unseen level is not silently the reference level: the prediction is missing
    unseen = df.head(2).assign(model="huge")
    assert ols.predict_interval(unseen)["prediction"].isna().all()
    assert gbt.predict_interval(unseen)["prediction"].isna().all()


class Recorder:
    """Predicts the training mean plus ``bias``; records the rows (by ``uid``) of every fit."""

    def __init__(self, log, bias=0.0):
        self.log, self.bias = log, bias

    def fit(self, data):
        self.log.append(frozenset(data["uid"]))
        fitted = Recorder(self.log, self.bias)
        fitted.mean_ = float(data["score"].mean())
        return fitted

    def predict_interval(self, data, alpha=0.05):
        pred = np.full(len(data), self.mean_ + self.bias)
        return pd.DataFrame({"prediction": pred, "lower": pred - 1, "upper": pred + 1}, index=data.index)


class Oracle:
    """Exact predictions read from a hidden column: a perfect estimator."""

    def fit(self, data):
        return self

    def predict_interval(self, data, alpha=0.05):
        pred = data["truth"].to_numpy(float)
        return pd.DataFrame({"prediction": pred, "lower": pred, "upper": pred}, index=data.index)


@pytest.mark.parametrize("scheme", ["leave-one-target-out", "leave-one-source-out", "random"])
def test_inner_choice_never_sees_the_outer_fold(scheme):
    df = pooled(n_lang=6).assign(uid=lambda d: np.arange(len(d)))
    log = []
    cv = cross_validate(df, {"a": Recorder(log), "b": Recorder([], bias=1.0)}, scheme=scheme, max_folds=3, k=3,
                        select=True, inner_folds=2, race_margin=math.inf)
    splits = make_splits(df, scheme, k=3, max_folds=3)
    assert len(cv.choices) == len(splits)
    # per outer fold: 1 outer fit + 2 inner fits of estimator a, each on rows outside the outer fold
    assert len(log) == 3 * len(splits)
    for i, (label, test) in enumerate(splits):  # folds run in order: 2 inner fits, then the outer fit
        held, train = set(df["uid"][test]), set(df["uid"][~test])
        inner1, inner2, outer = log[3 * i: 3 * i + 3]
        assert outer == train
        assert inner1 < train and inner2 < train and inner1 | inner2 == train and not inner1 & inner2 == train
    assert all(c["chosen"] == "a" for c in cv.choices)  # b is biased
    chosen = cv.predictions[cv.predictions["estimator"] == CHOSEN].set_index("row")["prediction"]
    a = cv.predictions[cv.predictions["estimator"] == "a"].set_index("row")["prediction"]
    pd.testing.assert_series_equal(chosen, a)


def test_stacking_selected_only_when_it_beats_every_single_estimator():
    rng = np.random.default_rng(1)
    df = pooled(seed=1, n_lang=7)
    truth = df["score"].to_numpy()
    # two estimators with independent errors of the same size: their average wins
    df = df.assign(truth=truth, e1=truth + rng.normal(0, 1, len(df)), e2=truth + rng.normal(0, 1, len(df)))

    class Column(Oracle):
        def __init__(self, column):
            self.column = column

        def predict_interval(self, data, alpha=0.05):
            pred = data[self.column].to_numpy(float)
            return pd.DataFrame({"prediction": pred, "lower": pred - 2, "upper": pred + 2}, index=data.index)

    cv = cross_validate(df, {"e1": Column("e1"), "e2": Column("e2")}, max_folds=4, select=True, inner_folds=2)
    sel = cv.selection().iloc[0]
    assert sel["stacked_rmse"] < min(cv.metrics().set_index("estimator").loc[["e1", "e2"], "rmse"])
    assert sel["estimator"] == STACKED and sel["weight_e1"] == pytest.approx(0.5, abs=0.1)
    # the stack, scored on the inner folds by cross-fitting, is also the inner choice of every fold
    assert sel["picks"] == "stacked:4"
    by = cv.predictions.set_index(["estimator", "row"])["prediction"]
    pd.testing.assert_series_equal(by[CHOSEN], by[STACKED])
    assert cv.metrics().set_index("estimator")["selected"].to_dict() == {
        "e1": False, "e2": False, CHOSEN: False, STACKED: True}
    # with an exact estimator the stack cannot beat it (weights 1, 0: a tie is no win)
    cv = cross_validate(df, {"oracle": Oracle(), "e1": Column("e1")}, max_folds=4, select=True, inner_folds=2)
    sel = cv.selection().iloc[0]
    assert sel["estimator"] == "oracle" and sel["stacked_rmse"] == pytest.approx(0, abs=1e-9)
    assert sel["chosen_rmse"] == 0 and sel["picks"] == "oracle:4"


def test_convex_weights_match_a_direct_solution():
    rng = np.random.default_rng(3)
    p = rng.normal(size=(200, 3))
    y = p @ np.array([0.2, 0.8, 0.0]) + rng.normal(0, 0.01, 200)
    w = convex_weights(p, y)
    assert w.sum() == pytest.approx(1) and (w >= 0).all()
    assert w == pytest.approx([0.2, 0.8, 0.0], abs=0.01)
    # the best weight on the simplex by grid search agrees
    grid = [(a, b, 1 - a - b) for a in np.linspace(0, 1, 101) for b in np.linspace(0, 1, 101) if a + b <= 1 + 1e-12]
    best = min(grid, key=lambda g: ((y - p @ np.array(g)) ** 2).sum())
    assert w == pytest.approx(best, abs=0.011)


def test_every_estimator_has_conformal_coverage():
    df = pooled(seed=2, n_lang=7)
    est = {"ols": OLSEstimator(["x"], categorical=["model"]), "mean": MeanBaseline(),
           "gbt": GradientBoostingEstimator(["x"], n_estimators=30, categorical=["model"])}
    cv = cross_validate(df, est, max_folds=4, select=True, inner_folds=2)
    metrics = cv.metrics().set_index("estimator")
    assert list(metrics.index) == ["ols", "mean", "gbt", CHOSEN, STACKED]
    assert metrics["conformal_coverage"].notna().all() and (metrics["conformal_coverage"] > 0.8).all()
    assert math.isnan(metrics.loc[STACKED, "coverage"])  # no model interval of its own
    # the tree baseline's intervals are the cross-conformal ones
    assert metrics.loc["gbt", "coverage"] == metrics.loc["gbt", "conformal_coverage"]
    # by hand: a fold's bound is prediction +- the conformal quantile of the other folds' residuals
    p = cv.predictions[cv.predictions["estimator"] == "ols"]
    fold = p["fold"].iat[0]
    others = (p.loc[p["fold"] != fold, "observed"] - p.loc[p["fold"] != fold, "prediction"]).abs().sort_values()
    m = len(others)
    q = others.iat[min(m, math.ceil((m + 1) * 0.95)) - 1]
    mine = p[p["fold"] == fold]
    assert (mine["conformal_upper"] - mine["prediction"]).to_numpy() == pytest.approx(np.full(len(mine), q))


def test_inner_race_stops_fitting_an_estimator_that_cannot_win():
    df = pooled(n_lang=6).assign(uid=lambda d: np.arange(len(d)))
    slow, fast = [], []
    cv = cross_validate(df, {"good": Recorder(fast), "bad": Recorder(slow, bias=25.0)}, max_folds=3,
                        select=True, inner_folds=3)
    # bad is 25 points off after the first inner fold: not fitted on the other two; good is left
    # alone, so the race ends there too (1 inner + 1 outer fit per outer fold for each)
    assert len(slow) == len(fast) == 2 * 3
    assert [c["chosen"] for c in cv.choices] == ["good"] * 3
    assert [c["n_inner_folds"] for c in cv.choices] == [1] * 3
    assert all(c["weights"] == {"good": 1.0, "bad": 0.0} for c in cv.choices)
