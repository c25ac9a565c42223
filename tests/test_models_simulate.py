"""Simulated crossed data: the mixed model recovers known fixed effects with calibrated intervals."""
import numpy as np
import pandas as pd
import pytest

from xltstats.errors import InputError
from xltstats.models.simulate import CrossedSimulator, pair_table_for, recovery_study

LANGS = ["eng", "deu", "fra", "spa", "rus", "hin", "jpn", "tur", "fin", "ara", "zho", "kor", "vie", "ind", "swa", "heb"]
COEFS = {"syntactic_distance": -4.0, "genetic_distance": -1.0, "geographic_distance": 0.5}


@pytest.fixture(scope="module")
def simulator():
    pairs = pair_table_for(LANGS, list(COEFS))
    return CrossedSimulator(pairs, COEFS, intercept=50, sd_source=3, sd_target=5, sd_residual=2)


def test_draws_follow_the_model(simulator):
    data = simulator.draw(1)
    assert len(data) == 16 * 15 and set(data.columns) >= {"source", "target", "seed", "score", *COEFS}
    for f in COEFS:
        assert data[f].mean() == pytest.approx(0, abs=1e-12) and data[f].std() == pytest.approx(1)
    pd.testing.assert_frame_equal(simulator.draw(7), simulator.draw(7))
    # with no language effects and no noise the score is exactly the linear predictor
    exact = CrossedSimulator(simulator.pairs, COEFS, intercept=10, sd_source=0, sd_target=0, sd_residual=0).draw(0)
    np.testing.assert_allclose(exact["score"], 10 + exact[list(COEFS)].to_numpy() @ np.array(list(COEFS.values())))
    with pytest.raises(InputError, match="lacks"):
        CrossedSimulator(simulator.pairs, {"nope": 1.0})


def check(summary, n_draws, low, high):
    features = summary[summary.term != "Intercept"]
    assert (features["bias"].abs() < 4 * features["bias_se"]).all(), summary
    pooled = (features["coverage"] * features["n_draws"]).sum() / features["n_draws"].sum()
    assert low <= pooled <= high, summary
    return pooled


def test_mixed_recovery_small(simulator):
    summary, draws = recovery_study(simulator, n_draws=40, seed=11)
    assert len(draws) == 40 * 4
    check(summary, 40, 0.87, 0.99)
    # SEs match the spread of the estimates
    features = summary[summary.term != "Intercept"]
    assert ((features["mean_std_error"] / features["empirical_sd"]).between(0.7, 1.4)).all(), summary


def test_ols_cluster2_recovery_small(simulator):
    summary, _ = recovery_study(simulator, n_draws=40, model="ols", seed=12)
    check(summary, 40, 0.80, 1.0)


@pytest.mark.slow
def test_mixed_recovery_500_draws(simulator):
    summary, _ = recovery_study(simulator, n_draws=500, seed=2026)
    features = summary[summary.term != "Intercept"]
    assert (features["coverage"].between(0.93, 0.97)).all(), summary
    assert (features["bias"].abs() < 3 * features["bias_se"]).all(), summary
    # Wald intervals for the intercept use normal quantiles with only 16 sources/targets: slightly liberal
    intercept = summary.set_index("term").loc["Intercept"]
    assert 0.88 <= intercept["coverage"] <= 0.97 and abs(intercept["bias"]) < 3 * intercept["bias_se"]
