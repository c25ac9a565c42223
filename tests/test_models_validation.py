"""Cross-validation: splits, baselines, tree determinism, and interval coverage on simulated data."""
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from xltstats.errors import InputError
from xltstats.models.validation import (GradientBoostingEstimator, MeanBaseline, MixedEstimator, OLSEstimator,
                                        cross_validate, group_splits, make_splits)

FEATURES = ["x1", "x2", "x3"]


def linear_pairs(n_lang=10, seed=0, lang_sd=0.0, noise=1.0):
    rng = np.random.default_rng(seed)
    langs = [f"l{i:02d}" for i in range(n_lang)]
    df = pd.DataFrame([(s, t) for s in langs for t in langs if s != t], columns=["source", "target"])
    for f in FEATURES:
        df[f] = rng.normal(size=len(df))
    src = dict(zip(langs, rng.normal(0, lang_sd, n_lang)))
    tgt = dict(zip(langs, rng.normal(0, lang_sd, n_lang)))
    df["score"] = (10 + 2 * df.x1 - 1 * df.x2 + 0.5 * df.x3 + df.source.map(src) + df.target.map(tgt)
                   + rng.normal(0, noise, len(df)))
    return df


def test_splits_hold_out_whole_languages():
    df = linear_pairs(n_lang=6)
    splits = make_splits(df, "leave-one-target-out")
    assert [label for label, _ in splits] == sorted(df.target.unique())
    total = np.zeros(len(df), int)
    for label, test in splits:
        assert set(df.target[test]) == {label} and label not in set(df.target[~test])
        total += test
    assert (total == 1).all()
    random = make_splits(df, "random", k=4, seed=1)
    assert sum(t.sum() for _, t in random) == len(df)
    assert [t.tolist() for _, t in random] == [t.tolist() for _, t in make_splits(df, "random", k=4, seed=1)]
    with pytest.raises(InputError, match="scheme"):
        make_splits(df, "leave-one-out")


def test_grouped_folds_hold_each_language_out_once_and_never_train_on_it():
    df = linear_pairs(n_lang=11)
    splits = make_splits(df, "leave-one-source-out", max_folds=4, seed=3)
    assert len(splits) == 4
    total = np.zeros(len(df), int)
    held_languages = []
    for label, test in splits:
        held = set(df.source[test])
        assert held == set(label.split("+"))
        assert not held & set(df.source[~test])
        held_languages += sorted(held)
        total += test
    assert (total == 1).all()
    assert sorted(held_languages) == sorted(df.source.unique())
    assert sorted(len(label.split("+")) for label, _ in splits) == [2, 3, 3, 3]
    # the same seed gives the same groups; fewer languages than max_folds: one fold each
    assert [lab for lab, _ in splits] == [lab for lab, _ in make_splits(df, "leave-one-source-out", max_folds=4, seed=3)]
    assert [lab for lab, _ in make_splits(df, "leave-one-source-out", max_folds=4, seed=4)] != [lab for lab, _ in splits]
    assert len(group_splits(df.target, max_folds=20)) == 11
    with pytest.raises(InputError, match="max_folds"):
        group_splits(df.target, max_folds=1)


def test_threaded_folds_give_the_same_predictions():
    df = linear_pairs(n_lang=8, seed=5, lang_sd=1.0)
    est = {"ols": OLSEstimator(FEATURES), "mixed": MixedEstimator("score ~ x1 + x2 + x3 + (1|source) + (1|target)"),
           "gbt": GradientBoostingEstimator(FEATURES, n_estimators=50)}
    one = cross_validate(df, est, scheme="leave-one-target-out", max_folds=4).predictions
    two = cross_validate(df, est, scheme="leave-one-target-out", max_folds=4, n_jobs=2).predictions
    pd.testing.assert_frame_equal(one, two)
    assert one["fold"].nunique() == 4


def test_ols_fold_predictions_match_sklearn_and_metrics_by_hand():
    df = linear_pairs(n_lang=7, seed=2)
    cv = cross_validate(df, {"ols": OLSEstimator(FEATURES)}, scheme="leave-one-source-out")
    pred = cv.predictions.set_index("row")
    for label, test in make_splits(df, "leave-one-source-out"):
        ref = LinearRegression().fit(df.loc[~test, FEATURES], df.loc[~test, "score"])
        np.testing.assert_allclose(pred.loc[np.flatnonzero(test), "prediction"], ref.predict(df.loc[test, FEATURES]),
                                   rtol=1e-9)
    m = cv.metrics().iloc[0]
    err = pred["observed"] - pred["prediction"]
    assert m["rmse"] == pytest.approx(np.sqrt((err ** 2).mean()))
    assert m["mae"] == pytest.approx(err.abs().mean())
    assert m["r2"] == pytest.approx(1 - (err ** 2).sum() / ((pred["observed"] - pred["observed"].mean()) ** 2).sum())


def test_linear_truth_ols_beats_trees_and_intervals_cover():
    df = linear_pairs(n_lang=12, seed=4)
    est = {"ols": OLSEstimator(FEATURES), "mean": MeanBaseline(),
           "gbt": GradientBoostingEstimator(FEATURES, n_estimators=60)}
    cv = cross_validate(df, est, scheme="random", k=5)
    m = cv.metrics().set_index("estimator")
    assert m.loc["ols", "rmse"] == pytest.approx(1.0, abs=0.15)  # the noise SD
    assert m.loc["ols", "rmse"] < m.loc["gbt", "rmse"] < m.loc["mean", "rmse"]
    assert 0.92 <= m.loc["ols", "coverage"] <= 0.98
    assert 0.88 <= m.loc["gbt", "coverage"] <= 0.99
    comp = cv.comparison().set_index("estimator")
    assert comp.loc["ols", "folds_better"] == 5
    assert "ols beats gbt" in cv.summary()


def test_mean_baseline_fallbacks():
    train = pd.DataFrame({"source": ["a", "a", "b", "b"], "target": ["x", "y", "x", "y"], "score": [1.0, 3.0, 5.0, 9.0]})
    new = pd.DataFrame({"source": ["a", "b", "c"], "target": ["x", "z", "z"]})
    pi = MeanBaseline().fit(train).predict_interval(new)
    assert pi["prediction"].tolist() == [3.0, 7.0, 4.5]
    within_target = np.sqrt(((np.array([1, 5, 3, 9]) - np.array([3, 3, 6, 6])) ** 2).sum() / 2)
    assert pi["upper"][0] - pi["prediction"][0] == pytest.approx(1.959964 * within_target, rel=1e-5)


def test_trees_are_deterministic_and_quantile_intervals_work():
    df = linear_pairs(n_lang=8, seed=5)
    a = GradientBoostingEstimator(FEATURES, n_estimators=40, seed=3).fit(df).predict_interval(df)
    b = GradientBoostingEstimator(FEATURES, n_estimators=40, seed=3).fit(df).predict_interval(df)
    pd.testing.assert_frame_equal(a, b)
    q = GradientBoostingEstimator(FEATURES, n_estimators=40, interval="quantile").fit(df).predict_interval(df)
    assert (q["lower"] <= q["prediction"]).all() and (q["prediction"] <= q["upper"]).all()
    with pytest.raises(InputError, match="alpha"):
        GradientBoostingEstimator(FEATURES, n_estimators=10, interval="quantile").fit(df).predict_interval(df, 0.1)


def test_mixed_estimator_under_leave_one_target_out():
    df = linear_pairs(n_lang=8, seed=6, lang_sd=2.0)
    formula = "score ~ x1 + x2 + x3 + (1|source) + (1|target)"
    cv = cross_validate(df, {"mixed": MixedEstimator(formula), "ols": OLSEstimator(FEATURES),
                             "mean": MeanBaseline()}, scheme="leave-one-target-out", baseline="ols")
    m = cv.metrics().set_index("estimator")
    # an unseen target's effect is unknown: both models' errors include it, the mixed model uses
    # the known source effects and so predicts better than OLS, with intervals that still cover
    assert m.loc["mixed", "rmse"] < m.loc["ols", "rmse"]
    assert m.loc["mixed", "coverage"] >= 0.85
    assert not cv.failures and not cv.not_converged and "did not converge" not in cv.summary()


def test_unconverged_mixed_fits_are_reported_not_silent():
    df = linear_pairs(n_lang=6, seed=2, lang_sd=2.0)
    formula = "score ~ x1 + x2 + x3 + (1|source) + (1|target)"
    cv = cross_validate(df, {"mixed": MixedEstimator(formula, maxiter=1), "ols": OLSEstimator(FEATURES)},
                        scheme="leave-one-target-out", baseline="ols", n_jobs=2)
    assert len(cv.not_converged) == df["target"].nunique()
    assert all(note.startswith("mixed on ") and "not converged" in note for note in cv.not_converged)
    assert "did not converge" in cv.summary()
    assert cv.predictions.query("estimator == 'mixed'")["prediction"].notna().all()


def test_outer_conformal_calibrates_each_fold_on_the_other_folds_residuals():
    from xltstats.models.validation import conformal_quantile

    df = linear_pairs(n_lang=9, seed=7, lang_sd=1.0)
    gbt = GradientBoostingEstimator(FEATURES, n_estimators=40)
    cv = cross_validate(df, {"gbt": gbt}, scheme="leave-one-target-out", max_folds=4)
    pred = cv.predictions
    resid = (pred["observed"] - pred["prediction"]).abs()
    for fold, rows in pred.groupby("fold"):
        q = conformal_quantile(resid[pred["fold"] != fold], 0.05)
        np.testing.assert_allclose(rows["upper"] - rows["prediction"], q)
        np.testing.assert_allclose(rows["prediction"] - rows["lower"], q)
        # one booster per fold: the point predictions are those of a booster fitted on the training part
        train = df.drop(index=rows["row"])
        alone = GradientBoostingEstimator(FEATURES, n_estimators=40, calibration="outer").fit(train)
        np.testing.assert_allclose(alone.predict_interval(df.loc[rows["row"]])["prediction"], rows["prediction"])
    # the inner design is still there, and gives the old intervals
    inner = cross_validate(df, {"gbt": GradientBoostingEstimator(FEATURES, n_estimators=40, calibration="inner")},
                           scheme="leave-one-target-out", max_folds=4).predictions
    np.testing.assert_allclose(inner["prediction"], pred["prediction"])
    assert not np.allclose(inner["upper"] - inner["lower"], pred["upper"] - pred["lower"])


def test_repeated_feature_rows_are_merged_into_the_same_trees():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3)).round(1)
    x[rng.random(x.shape) < 0.05] = np.nan
    reps = 4
    df = pd.DataFrame(np.repeat(x, reps, axis=0), columns=FEATURES)
    df["score"] = np.repeat(np.nan_to_num(x[:, 0] * 2 - x[:, 1]), reps) + rng.normal(0, 1, len(df))
    merged = GradientBoostingEstimator(FEATURES, n_estimators=60, calibration="outer").fit(df)
    plain = GradientBoostingEstimator(FEATURES, n_estimators=60, calibration="outer",
                                      merge_duplicates=False).fit(df)
    np.testing.assert_allclose(merged.predict_interval(df)["prediction"], plain.predict_interval(df)["prediction"],
                               atol=1e-5)
    # without repeated rows nothing is merged: the very same booster
    once = df.drop_duplicates(FEATURES).reset_index(drop=True)
    a = GradientBoostingEstimator(FEATURES, n_estimators=30, calibration="outer").fit(once).predict_interval(once)
    b = GradientBoostingEstimator(FEATURES, n_estimators=30, calibration="outer",
                                  merge_duplicates=False).fit(once).predict_interval(once)
    pd.testing.assert_frame_equal(a, b)
