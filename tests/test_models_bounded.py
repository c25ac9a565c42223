"""The logit-scale mixed model (issue 15) against lme4 fitted to the same logit-transformed scores.

Golden values: benchmarks/logit_mixed_reference.R (lme4 1.1.31), which squeezes and transforms the
shipped simulated table itself and computes the back-transformed 95% intervals of new rows (seen
and unseen sources and targets).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xltstats.errors import ConfigError, InputError
from xltstats.models.bounded import LogitMixedEstimator, LogitScale, fit_logit_mixed

GOLDEN = Path(__file__).resolve().parent / "golden"
FORMULA = "score ~ x1 + x2 + (1 | source) + (1 | target)"


@pytest.fixture(scope="module")
def golden():
    gold = json.loads((GOLDEN / "logit_lme4_sim_bounded.json").read_text())
    data = pd.read_csv(GOLDEN / "logit_data_sim_bounded.csv")
    new = pd.read_csv(GOLDEN / "logit_newdata_sim_bounded.csv")
    return gold, data, new, fit_logit_mixed(FORMULA, data, 0.0, 100.0, warn=False)


def _close(ours, theirs, rel=1e-4, what=""):
    assert math.isclose(ours, theirs, rel_tol=rel, abs_tol=1e-7), f"{what}: ours {ours!r} lme4 {theirs!r}"


def test_the_squeeze_and_logit_are_lme4s_response(golden):
    gold, data, _, fit = golden
    assert fit.scale == LogitScale(0.0, 100.0, gold["n"])
    np.testing.assert_allclose(fit.inner.data["logit_score"].to_numpy()[:5], gold["logit_response_head"], rtol=1e-12)
    # a score of exactly 0 or 100 gets a finite logit, +-log(2n - 1)
    assert gold["logit_response_head"][0] == pytest.approx(math.log(2 * gold["n"] - 1))


def test_estimates_match_lme4(golden):
    gold, _, _, fit = golden
    assert fit.inner.formula.startswith("logit_score ~")
    for name, value in gold["fixef"].items():
        term = "Intercept" if name == "(Intercept)" else name
        _close(fit.params[term], value, what=term)
        _close(fit.bse[term], gold["se"][name], rel=1e-3, what=f"se {term}")
    for row in gold["varcorr"]:
        _close(fit.variance_components[row["grp"]], row["vcov"], rel=1e-3, what=row["grp"])
    _close(fit.sigma, gold["sigma"], rel=1e-4, what="sigma")
    assert fit.llf >= gold["logLik"] - 1e-6


def test_back_transformed_intervals_match_lme4(golden):
    gold, _, new, fit = golden
    pi = fit.prediction_interval(new)
    inner = fit.inner.prediction_interval(new)
    np.testing.assert_allclose(inner["prediction"], gold["new_eta"], rtol=1e-4)
    np.testing.assert_allclose(inner["se_prediction"] ** 2, gold["new_var"], rtol=1e-3)
    for column in ("prediction", "lower", "upper"):
        np.testing.assert_allclose(pi[column], gold[f"new_{column}"], rtol=2e-3, err_msg=column)
    assert ((pi["lower"] >= 0) & (pi["upper"] <= 100) & (pi["lower"] < pi["prediction"])
            & (pi["prediction"] < pi["upper"])).all()
    # the delta-method SE on the score scale
    slope = fit.scale.slope(inner["prediction"])
    np.testing.assert_allclose(pi["se_prediction"], slope * inner["se_prediction"])


def test_the_transformation_is_monotone_and_inverts():
    scale = LogitScale(0.0, 100.0, 50)
    y = np.array([0.0, 0.5, 10, 50, 99.9, 100.0])
    np.testing.assert_allclose(scale.inverse(scale.forward(y)), y, atol=1e-9)
    z = np.linspace(-12, 12, 101)
    back = scale.inverse(z)
    assert (np.diff(back) >= 0).all() and back.min() == 0.0 and back.max() == 100.0
    with pytest.raises(ConfigError, match="finite range"):
        LogitScale(0.0, math.inf, 10)


def test_a_score_outside_the_range_is_refused_naming_the_row(golden):
    _, data, _, _ = golden
    bad = data.copy()
    bad.loc[4, "score"] = 101.0
    with pytest.raises(InputError, match=r"score 101 is outside the range 0 to 100") as info:
        fit_logit_mixed(FORMULA, bad, 0.0, 100.0)
    assert info.value.row == 5 and info.value.column == "score"


def test_the_estimator_predicts_inside_the_range_and_leaves_missing_rows_missing(golden):
    _, data, new, _ = golden
    fitted = LogitMixedEstimator(FORMULA, 0.0, 100.0).fit(data)
    new = new.copy()
    new.loc[1, "x1"] = np.nan
    out = fitted.predict_interval(new)
    assert out["prediction"].isna().tolist() == [False, True, False, False, False, False]
    done = out.dropna()
    assert len(done) == 5 and ((done["lower"] >= 0) & (done["upper"] <= 100)).all()
