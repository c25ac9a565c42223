"""The hybrid estimator (boosted trees + crossed random intercepts) on simulated crossed data with a
non-linear fixed part: it recovers the planted fixed part and variance components, unseen
languages get a random effect of 0, and its fits are deterministic and portable."""
import json

import numpy as np
import pandas as pd
import pytest

from xltstats.errors import InputError
from xltstats.models.hybrid import HybridEstimator
from xltstats.models.mixed import fit_mixed
from xltstats.models.simulate import CrossedSimulator

SD_SOURCE, SD_TARGET, SD_RESIDUAL = 3.0, 5.0, 2.0
FEATURES = ["x1", "x2", "x3"]


def _nonlinear(x2):
    return 4.0 * np.sin(1.5 * x2)


@pytest.fixture(scope="module")
def simulated():
    """32 x 32 languages; score = 50 + 2 x1 + 4 sin(1.5 x2) + u_source + u_target + e (x3 is noise)."""
    rng = np.random.default_rng(5)
    langs = [f"l{i:02d}" for i in range(32)]
    pairs = pd.DataFrame([(s, t) for s in langs for t in langs if s != t], columns=["source", "target"])
    for f in FEATURES:
        pairs[f] = rng.normal(size=len(pairs))
    simulator = CrossedSimulator(pairs, {"x1": 2.0, "x2": 0.0, "x3": 0.0}, intercept=50, sd_source=SD_SOURCE,
                                 sd_target=SD_TARGET, sd_residual=SD_RESIDUAL)
    data = simulator.draw(11)
    data["fixed_truth"] = 50 + 2.0 * data["x1"] + _nonlinear(data["x2"])
    data["score"] += _nonlinear(data["x2"])
    return data


@pytest.fixture(scope="module")
def fitted(simulated):
    # inner folds of rows: the fixed part and the variance components, not new languages, are the
    # point here, so every random term is in the boosting rounds (GPBoost's design)
    return HybridEstimator(FEATURES, seed=0, validation_group=None).fit(simulated)


def test_recovers_the_fixed_part(simulated, fitted):
    fixed = fitted.predict(simulated, include_random=False).to_numpy()
    truth = simulated["fixed_truth"].to_numpy()
    # the planted fixed part, non-linear term included, within a fraction of its SD (about 3.7)
    assert np.sqrt(np.mean((fixed - truth) ** 2)) < 0.8
    # its pieces: regress the fitted fixed part on the true components
    design = np.column_stack([np.ones(len(truth)), simulated["x1"], _nonlinear(simulated["x2"]), simulated["x3"]])
    coef = np.linalg.lstsq(design, fixed, rcond=None)[0]
    assert coef[1] == pytest.approx(2.0, abs=0.3)      # linear slope
    assert coef[2] == pytest.approx(1.0, abs=0.15)     # the sine term at its planted size
    assert abs(coef[3]) < 0.2                          # the noise feature gets nothing
    # the linear mixed model cannot express the sine: its fixed part is much further off
    linear = fit_mixed("score ~ x1 + x2 + x3 + (1|source) + (1|target)", simulated, reml=False, warn=False)
    linear_fixed = linear.predict(simulated, include_random=False).to_numpy()
    assert np.sqrt(np.mean((fixed - truth) ** 2)) < 0.5 * np.sqrt(np.mean((linear_fixed - truth) ** 2))


def test_recovers_the_variance_components(simulated, fitted):
    vc = fitted.variance_components
    # the oracle: the mixed model of the score minus the true fixed part, the best these data allow
    oracle = fit_mixed("r ~ 1 + (1|source) + (1|target)", simulated.assign(r=simulated["score"] - simulated["fixed_truth"]),
                       reml=False, warn=False).variance_components
    for name, truth in (("source", SD_SOURCE ** 2), ("target", SD_TARGET ** 2), ("Residual", SD_RESIDUAL ** 2)):
        # the trees' in-sample fit absorbs part of the noise (no degrees of freedom are charged
        # for them, as in GPBoost): the residual variance is low by up to a third
        rel = 0.35 if name == "Residual" else 0.15
        assert vc[name] == pytest.approx(oracle[name], rel=rel), (name, vc.to_dict(), oracle.to_dict())
        assert vc[name] == pytest.approx(truth, rel=0.5), (name, vc.to_dict())
    assert vc["Residual"] <= oracle["Residual"] * 1.05
    # the linear mixed model puts the unexplained sine into the residual variance
    linear = fit_mixed("score ~ x1 + x2 + x3 + (1|source) + (1|target)", simulated, reml=False, warn=False)
    assert linear.variance_components["Residual"] > 1.5 * vc["Residual"]
    # BLUPs track the planted language effects' ordering
    assert set(fitted.random_effects) == {"source", "target"}


def test_unseen_language_gets_random_effect_zero(simulated, fitted):
    rows = simulated.iloc[:5].copy()
    blups = fitted.random_effects
    intercept = float(fitted.random_part_.params["Intercept"])
    trees = fitted.booster_.predict(rows[FEATURES].to_numpy(float), raw_score=True)
    seen = fitted.predict_interval(rows)
    expected = trees + intercept + blups["source"].loc[rows["source"], "(Intercept)"].to_numpy() \
        + blups["target"].loc[rows["target"], "(Intercept)"].to_numpy()
    np.testing.assert_allclose(seen["prediction"], expected, rtol=0, atol=1e-9)
    new = rows.assign(target="never-seen")
    unseen = fitted.predict_interval(new)
    np.testing.assert_allclose(unseen["prediction"], expected - blups["target"].loc[rows["target"], "(Intercept)"].to_numpy(),
                               rtol=0, atol=1e-9)
    # the unseen target's whole variance component widens the interval
    assert ((unseen["upper"] - unseen["lower"]) > (seen["upper"] - seen["lower"]) + 1).all()
    both = fitted.predict_interval(rows.assign(source="new-s", target="new-t"))
    np.testing.assert_allclose(both["prediction"], trees + intercept, rtol=0, atol=1e-9)


def test_held_out_targets_predicted_and_covered(simulated):
    test = simulated["target"].isin([f"l{i:02d}" for i in range(6)])
    model = HybridEstimator(FEATURES).fit(simulated[~test])
    pi = model.predict_interval(simulated[test])
    y = simulated.loc[test, "score"].to_numpy()
    covered = ((pi["lower"] <= y) & (y <= pi["upper"])).mean()
    assert 0.85 <= covered <= 1.0
    # the trees learn the fixed part on held-out targets better than the linear mixed model
    linear = fit_mixed("score ~ x1 + x2 + x3 + (1|source) + (1|target)", simulated[~test], warn=False)
    rmse = np.sqrt(np.mean((pi["prediction"].to_numpy() - y) ** 2))
    assert rmse < np.sqrt(np.mean((linear.predict(simulated[test]).to_numpy() - y) ** 2))


def test_missing_features_are_predicted_and_fits_are_deterministic(simulated, fitted):
    rows = simulated.iloc[:4].copy()
    rows.loc[rows.index[:2], "x2"] = np.nan
    pi = fitted.predict_interval(rows)
    assert pi.notna().all().all()
    again = HybridEstimator(FEATURES, seed=0, validation_group=None).fit(simulated)
    pd.testing.assert_frame_equal(again.predict_interval(simulated), fitted.predict_interval(simulated))
    assert again.n_rounds_ == fitted.n_rounds_ and 1 <= fitted.n_rounds_ <= 500


def test_spec_round_trip(simulated, fitted):
    spec = json.loads(json.dumps(fitted.to_spec()))
    loaded = HybridEstimator.from_spec(spec)
    rows = pd.concat([simulated.iloc[:20], simulated.iloc[:3].assign(target="new")])
    # the same numbers exactly: the fitted estimator predicts through the portable random part too
    pd.testing.assert_frame_equal(loaded.predict_interval(rows), fitted.predict_interval(rows), check_exact=True)
    with pytest.raises(InputError, match=r"models\.hybrid\.kind"):
        HybridEstimator.from_spec({"kind": "mixed"})


def test_bad_input(simulated):
    with pytest.raises(InputError, match="x9"):
        HybridEstimator(["x1", "x9"]).fit(simulated)
    with pytest.raises(InputError, match="at least 3 rows"):
        HybridEstimator(FEATURES).fit(simulated.iloc[:2])


def test_default_estimators_and_cross_validation_include_the_hybrid(simulated):
    from xltstats.models.validation import cross_validate, default_estimators

    formula = "score ~ x1 + x2 + x3 + (1|source) + (1|target)"
    estimators = default_estimators(FEATURES, formula)
    assert estimators["hybrid"].random == "(1 | source) + (1 | target)"
    assert "hybrid" not in default_estimators(FEATURES, None)
    result = cross_validate(simulated, {"hybrid": estimators["hybrid"]}, scheme="leave-one-source-out", max_folds=2)
    metrics = result.metrics().set_index("estimator")
    assert metrics.loc["hybrid", "n_predicted"] == len(simulated) and not result.failures
    assert estimators["hybrid"].validation_group == "auto"  # cross_validate set the scheme's on a copy


def test_constant_features_leave_the_random_part(simulated):
    data = simulated.assign(x1=1.0, x2=2.0, x3=np.nan)
    model = HybridEstimator(FEATURES).fit(data)
    assert model.n_rounds_ == 0 and model.booster_ is None
    mixed = fit_mixed("score ~ 1 + (1|source) + (1|target)", data, reml=False, warn=False)
    np.testing.assert_allclose(model.predict(data.iloc[:10]), mixed.predict(data.iloc[:10]), rtol=1e-6)


def test_inner_candidates_are_raced(simulated, fitted):
    # inner folds of rows: boosting on y alone ("none") is far worse after the first inner fold
    # (the languages recur), so it is not boosted on the other folds; the choice is the same
    assert set(fitted.inner_) == {"auto"} and fitted.boosted_random_ == "auto"
    unraced = HybridEstimator(FEATURES, seed=0, validation_group=None, race_margin=100).fit(simulated)
    assert set(unraced.inner_) == {"auto", "none"} and unraced.boosted_random_ == "auto"
    assert unraced.inner_["none"]["mse"] > 1.2 * unraced.inner_["auto"]["mse"]
    # held-out targets: the two are close, both go through every inner fold
    test = simulated["target"].isin([f"l{i:02d}" for i in range(6)])
    held = HybridEstimator(FEATURES, seed=0).fit(simulated[~test])
    assert set(held.inner_) == {"auto", "none"}
