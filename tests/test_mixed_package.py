"""The mixed-model package's stages: formula updates, the statsmodels reference as a consistent
result, factorisation strategies chosen by named thresholds, results not mutated after fitting."""
from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest

from xltstats.errors import ConfigError
from xltstats.models import fit_mixed
from xltstats.models.formula import parse_formula
from xltstats.models.mixed import StatsmodelsMixedResults, update_formula
from xltstats.models.mixed import _deviance

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("xlt_bench_mixed_p", REPO / "benchmarks" / "mixed.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


@pytest.mark.parametrize("formula, change, expected", [
    ("y ~ a + b + c + (1|s) + (1|t)", ". ~ . - b", "y ~ a + c + (1 | s) + (1 | t)"),
    ("y ~ a + b + (1|s)", ". ~ . - a - b", "y ~ 1 + (1 | s)"),
    ("y ~ a + b + (1|s)", ". ~ . - a", "y ~ b + (1 | s)"),
    ("y ~ a + (1|s)", ". ~ . - not_there", "y ~ a + (1 | s)"),
    ("y ~ a + (1|s)", ". ~ . + b", "y ~ a + b + (1 | s)"),
    ("y ~ a + (1|s)", "z ~ .", "z ~ a + (1 | s)"),
    ("y ~ 0 + a + b + (1|s)", ". ~ . - b", "y ~ 0 + a + (1 | s)"),
    ("y ~ a + I(a ** 2) + (x || s) + (1|s/t)", ". ~ . - I(a ** 2)",
     "y ~ a + (1 | s) + (0 + x | s) + (1 | s) + (1 | s:t)"),
])
def test_update_formula(formula, change, expected):
    assert update_formula(formula, change) == expected
    assert update_formula(parse_formula(formula), change) == expected


@pytest.mark.parametrize("change", ["a - b", ". ~ a - b", ". ~ . - (1|s)"])
def test_update_formula_rejects_what_it_cannot_do(change):
    with pytest.raises(ConfigError):
        update_formula("y ~ a + b + (1|s)", change)


def test_update_refits_on_the_same_rows():
    data = bench.load_golden_table("sim_three_factor").iloc[:800]
    full = fit_mixed("score ~ distance + (1|source) + (1|target)", data)
    reduced = full.update(update_formula(full.parsed, ". ~ . - distance"), reml=False)
    direct = fit_mixed("score ~ 1 + (1 | source) + (1 | target)", data, reml=False)
    assert reduced.formula == "score ~ 1 + (1 | source) + (1 | target)"
    assert reduced.nobs == full.nobs and not reduced.reml
    assert reduced.llf == pytest.approx(direct.llf, rel=1e-12)


def test_statsmodels_result_is_consistent():
    """Built once from statsmodels' numbers: bse is the root of cov_params()'s diagonal, the fitted
    values follow from its fixed effects, and they are statsmodels' own."""
    data = bench.load_golden_table("sim_three_factor").iloc[:500]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = fit_mixed("score ~ distance + (1|source) + (1|target)", data, method="statsmodels")
    assert isinstance(m, StatsmodelsMixedResults)
    sm = m.statsmodels_result
    np.testing.assert_allclose(m.bse, np.sqrt(np.diag(m.cov_params())), rtol=1e-12)
    np.testing.assert_allclose(m.params, np.asarray(sm.fe_params), rtol=1e-12)
    np.testing.assert_allclose(m.bse, np.asarray(sm.bse_fe), rtol=1e-10)
    np.testing.assert_allclose(m.tvalues, m.params / m.bse, rtol=1e-12)
    np.testing.assert_allclose(m.predict(data, include_random=False), m._design.X @ m.params.to_numpy())
    np.testing.assert_allclose(m.fittedvalues, m.predict(data), rtol=1e-10)
    ci = m.conf_int()
    np.testing.assert_allclose(ci["upper"] - ci["lower"], 2 * 1.959963984540054 * m.bse, rtol=1e-9)


def test_strategy_follows_the_named_thresholds(monkeypatch):
    data = bench.load_golden_table("sim_slopes")
    intercepts = fit_mixed("score ~ x + (1 | source) + (1 | target)", data)
    assert isinstance(intercepts._dev.factorisation, _deviance.DiagonalSchur)
    slopes = fit_mixed("score ~ x + (1 + x | source) + (1 | target)", data)
    assert isinstance(slopes._dev.factorisation, _deviance.Dense)
    monkeypatch.setattr(_deviance, "DENSE_LIMIT", 10)
    block = fit_mixed("score ~ x + (1 + x | source) + (1 | target)", data)
    assert isinstance(block._dev.factorisation, _deviance.BlockSchur)
    assert block.llf == pytest.approx(slopes.llf, rel=1e-9)
    monkeypatch.setattr(_deviance, "BLOCK_SCHUR_REST_LIMIT", 5)
    with pytest.raises(ConfigError, match="not supported"):
        fit_mixed("score ~ x + (1 + x | source) + (1 | target)", data)


def test_results_are_not_changed_by_inference_or_prediction():
    data = bench.load_golden_table("sim_three_factor").iloc[:600]
    m = fit_mixed("score ~ distance + (1|source) + (1|target)", data)
    before = {k: v for k, v in vars(m).items() if isinstance(v, (float, int, bool, str))}
    params, vc = m.params.copy(), m.variance_components.copy()
    m.variance_components_ci()
    m.prediction_interval(data.iloc[:5])
    m.refit(reml=False)
    assert {k: v for k, v in vars(m).items() if isinstance(v, (float, int, bool, str))} == before
    assert m.params.equals(params) and m.variance_components.equals(vc)
