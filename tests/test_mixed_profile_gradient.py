"""The analytic gradient of the ML criterion used by the profile intervals
(``ProfiledDeviance.gradient_parts``) against central finite differences of the same criterion,
on every factorisation strategy (diagonal Schur, dense, block Schur), correlated and uncorrelated
slopes and a multi-membership term; the intervals themselves are checked against lme4's
``confint(method = "profile")`` in test_mixed_golden.py."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from xltstats.models import MixedModelWarning, fit_mixed
from xltstats.models.mixed import _deviance
from xltstats.models.mixed._inference import _full_criterion
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent / "golden"

CASES = {
    "three_factor": ("sim_three_factor", "score ~ distance + (1|source) + (1|target) + (1|task)",
                     _deviance.DiagonalSchur),
    "slopes": ("sim_slopes", "score ~ x + (1 + x | source) + (1 | target)", _deviance.Dense),
    "slopes_uncorrelated": ("sim_slopes", "score ~ x + (1 | source) + (0 + x | source) + (1 | target)",
                            _deviance.DiagonalSchur),
    "multi_membership": ("mm_pairs", "score ~ x + z + (1 | mm(source, target))",
                         _deviance.Dense),
    "slopes_block_schur": ("sim_slopes", "score ~ x + (1 + x | source) + (1 | target)", _deviance.BlockSchur),
}


def _central(f, x, h):
    out = np.zeros(len(x))
    for i in range(len(x)):
        e = np.zeros(len(x))
        e[i] = h
        out[i] = (f(x + e) - f(x - e)) / (2 * h)
    return out


def _fit_away_from_optimum(case, reml, monkeypatch, seed):
    """The case's fit (with the factorisation it names) and a theta away from its optimum (where
    the gradient is ~0), every coordinate moved."""
    table, formula, strategy = CASES[case]
    if strategy is _deviance.BlockSchur:
        monkeypatch.setattr(_deviance, "DENSE_LIMIT", 0)
    data = pd.read_csv(GOLDEN / f"lme4_data_{table}.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MixedModelWarning)
        fit = fit_mixed(formula, data, reml=reml)
    assert isinstance(fit._dev.factorisation, strategy)
    rng = np.random.default_rng(seed)
    lower = fit._design.theta_lower
    return fit, fit.theta + rng.uniform(0.05, 0.2, fit.theta.size) * np.where(np.isfinite(lower), 1.0, -1.0)


@pytest.mark.parametrize("case", sorted(CASES))
def test_gradient_of_ml_criterion_matches_finite_differences(case, monkeypatch):
    fit, theta = _fit_away_from_optimum(case, False, monkeypatch, seed=3)
    assert fit._dev.has_gradient
    log_sigma = math.log(fit.sigma) + 0.1
    value, g_theta, g_log_sigma = _full_criterion(fit, theta, log_sigma, gradient=True)
    assert value == _full_criterion(fit, theta, log_sigma)
    h = 1e-4  # r^2 = y'y - ... cancels: smaller steps are rounding noise
    fd_theta = _central(lambda t: _full_criterion(fit, t, log_sigma), theta, h)
    fd_sigma = (_full_criterion(fit, theta, log_sigma + h) - _full_criterion(fit, theta, log_sigma - h)) / (2 * h)
    scale = max(1.0, float(np.max(np.abs(fd_theta))))
    np.testing.assert_allclose(g_theta, fd_theta, rtol=1e-5, atol=1e-5 * scale)
    assert g_log_sigma == pytest.approx(fd_sigma, rel=1e-6)
    # the two parts separately: d log|A| and d r^2 against differences of the PLS solution
    pls = fit._dev.solve_pls(theta)
    dlogdet, dr2 = fit._dev.gradient_parts(theta, pls)
    fd_logdet = _central(lambda t: fit._dev.solve_pls(t)["logdet_L"], theta, h)
    fd_r2 = _central(lambda t: fit._dev.solve_pls(t)["r2"], theta, h)
    np.testing.assert_allclose(dlogdet, fd_logdet, rtol=1e-5, atol=1e-6 * max(1.0, np.max(np.abs(fd_logdet))))
    np.testing.assert_allclose(dr2, fd_r2, rtol=1e-5, atol=1e-6 * max(1.0, np.max(np.abs(fd_r2))))


def test_gradient_is_zero_at_the_ml_optimum():
    """At the ML optimum with sigma profiled, d/d theta of the criterion vanishes at interior theta
    (a check of the formula that needs no differences at all)."""
    data = pd.read_csv(GOLDEN / "lme4_data_sim_three_factor.csv")
    fit = fit_mixed("score ~ distance + (1|source) + (1|target) + (1|task)", data, reml=False)
    _value, g_theta, g_log_sigma = _full_criterion(fit, fit.theta, math.log(fit.sigma), gradient=True)
    assert abs(g_log_sigma) < 1e-6 * fit.nobs
    interior = fit.theta > 1e-4
    assert interior.any() and np.max(np.abs(g_theta[interior])) < 1e-2


@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_gradient_of_profiled_criterion_matches_finite_differences(case, reml, monkeypatch):
    """The gradient the main optimiser uses (sigma profiled out; REML adds d log|RX'RX|)."""
    fit, theta = _fit_away_from_optimum(case, reml, monkeypatch, seed=5)
    dev = fit._dev
    assert dev.reml == reml
    value, gradient = dev.value_and_gradient(theta)
    assert value == dev(theta)
    h = 1e-4
    fd = _central(dev, theta, h)
    np.testing.assert_allclose(gradient, fd, rtol=1e-5, atol=1e-5 * max(1.0, float(np.max(np.abs(fd)))))
    if reml:  # the REML term alone
        pls = dev.solve_pls(theta)
        fd_rx = _central(lambda t: dev.solve_pls(t)["logdet_RX"], theta, h)
        np.testing.assert_allclose(dev.logdet_RX_gradient(theta, pls), fd_rx, rtol=1e-5,
                                   atol=1e-6 * max(1.0, float(np.max(np.abs(fd_rx)))))
        assert np.max(np.abs(fd_rx)) > 1e-3  # the term is not trivially zero here
