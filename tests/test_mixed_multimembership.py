"""The multi-membership random effect ``(1 | mm(source, target))``: one effect per language, both
languages of a pair loading on it with weight 1.

Golden values: lme4 1.1.31 with the multi-membership Zt built by hand (lFormula on a dummy
``(1 | language)``, Zt replaced, mkLmerDevfun / optimizeLmer / mkMerMod), written by
``benchmarks/lme4_multimembership.R`` to ``tests/golden/lme4mm_pairs.json`` from the shipped
``tests/golden/lme4_data_mm_pairs.csv`` (24 languages, 276 unordered pairs x 3 tasks, 6
same-language rows that load with weight 2).  Recovery: tables drawn from
:class:`~xltstats.models.simulate.UnorderedSimulator` with a planted language variance.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xltstats.errors import ConfigError
from xltstats.models.mixed import _deviance, fit_mixed
from xltstats.models.simulate import UnorderedSimulator

GOLDEN = Path(__file__).resolve().parent / "golden"
GOLD = json.loads((GOLDEN / "lme4mm_pairs.json").read_text())
TABLE = pd.read_csv(GOLDEN / GOLD["table"])
MM = "mm(source, target)"


def _close(ours, theirs, rel, what):
    assert math.isclose(ours, theirs, rel_tol=rel, abs_tol=1e-9), f"{what}: ours {ours!r} lme4 {theirs!r}"


@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
@pytest.mark.parametrize("model", sorted(GOLD["models"]))
def test_matches_lme4_hand_built_zt(model, reml):
    spec = GOLD["models"][model]
    ref = spec["REML" if reml else "ML"]
    m = fit_mixed(spec["formula"], TABLE, reml=reml)
    assert m.nobs == ref["nobs"] == len(TABLE)
    _close(m.llf, ref["logLik"], 1e-9, "logLik")
    _close(m.aic, ref["AIC"], 1e-9, "AIC")
    _close(m.bic, ref["BIC"], 1e-9, "BIC")
    _close(m.criterion, ref["criterion"], 1e-9, "criterion")
    for name, value in ref["fixef"].items():
        ours = "Intercept" if name == "(Intercept)" else name
        _close(float(m.params[ours]), value, 1e-6, f"fixef {name}")
        _close(float(m.bse[ours]), ref["se"][name], 1e-5, f"se {name}")
    for group, value in ref["variance"].items():
        _close(float(m.variance_components[MM if group == "language" else group]), value, 1e-5,
               f"variance {group}")
    blups = m.random_effects[MM]["(Intercept)"]
    condsd = m.random_effects_se[MM]["(Intercept)"]
    assert sorted(blups.index) == sorted(ref["ranef"])
    for level, value in ref["ranef"].items():
        assert abs(blups[level] - value) < 1e-6, level
        _close(condsd[level] ** 2, ref["ranef_condvar"][level], 1e-5, f"condVar {level}")


def test_design_has_two_entries_per_row_and_weight_two_for_same_language():
    from xltstats.models.mixed._design import prepare

    _, frame, design, _ = prepare("score ~ x + (1 | mm(source, target))", TABLE)
    Z = design.Z.toarray()
    levels = design.terms[0].levels
    different = (frame["source"] != frame["target"]).to_numpy()
    assert ((Z[different] == 1).sum(axis=1) == 2).all() and (Z[different].sum(axis=1) == 2).all()
    row = int(np.flatnonzero(~different)[0])
    assert Z[row, levels.index(frame["source"].iat[row])] == 2 and Z[row].sum() == 2
    # the same factor whichever column a language sits in: l00 is only ever a source here
    assert set(levels) == set(frame["source"]) | set(frame["target"])


@pytest.mark.parametrize("formula", ["score ~ x + z + (1 | mm(source, target)) + (1 | task)",
                                     "score ~ x + z + (1 | mm(source, target)) + (1 + x | task)"])
def test_factorisations_agree(formula, monkeypatch):
    """The multi-membership block is never the one eliminated by a Schur complement; every
    strategy that can take the model gives the same optimum."""
    default = fit_mixed(formula, TABLE)
    monkeypatch.setattr(_deviance, "DIAGONAL_SCHUR_REST_LIMIT", -1)
    dense = fit_mixed(formula, TABLE)
    monkeypatch.setattr(_deviance, "DENSE_LIMIT", 0)
    block = fit_mixed(formula, TABLE)
    assert type(dense._dev.factorisation).__name__ == "Dense"
    assert type(block._dev.factorisation).__name__ == "BlockSchur"
    for other in (dense, block):
        assert abs(other.llf - default.llf) < 1e-7
        np.testing.assert_allclose(other.params, default.params, rtol=1e-6)


def test_prediction_unseen_language_gets_zero_effect_and_full_variance():
    m = fit_mixed("score ~ x + z + (1 | mm(source, target)) + (1 | task)", TABLE)
    new = pd.DataFrame({"task": ["task1"] * 4, "source": ["l01", "l01", "new", "new"],
                        "target": ["l02", "zzz", "zzz", "new"], "x": 0.0, "z": 0.0})
    pi = m.prediction_interval(new)
    fixed = m.params["Intercept"]
    blup = m.random_effects[MM]["(Intercept)"]
    task = m.random_effects["task"]["(Intercept)"]["task1"]
    np.testing.assert_allclose(pi["prediction"], [fixed + blup["l01"] + blup["l02"] + task,
                                                  fixed + blup["l01"] + task, fixed + task,
                                                  fixed + task], rtol=1e-12)
    var_language = m.variance_components[MM]
    condvar = m.random_effects_se[MM]["(Intercept)"] ** 2
    task_condvar = m.random_effects_se["task"]["(Intercept)"]["task1"] ** 2
    fixed_var = float(m.cov_params().loc["Intercept", "Intercept"])
    expected = fixed_var + task_condvar + np.array([
        condvar["l01"] + condvar["l02"], condvar["l01"] + var_language, 2 * var_language,
        4 * var_language])  # (new, new) loads twice on one unseen level
    np.testing.assert_allclose(pi["se_mean"] ** 2, expected, rtol=1e-9)


def test_formula_errors():
    with pytest.raises(ConfigError, match="grouping factor"):
        fit_mixed("score ~ mm(source, target) + (1 | task)", TABLE)
    with pytest.raises(ConfigError, match="two or more column names"):
        fit_mixed("score ~ x + (1 | mm(source))", TABLE)
    with pytest.raises(ConfigError, match="plain column names"):
        fit_mixed("score ~ x + (1 | mm(source, log(target)))", TABLE)
    with pytest.raises(ConfigError, match="names a column twice"):
        fit_mixed("score ~ x + (1 | mm(source, source))", TABLE)
    with pytest.raises(ConfigError, match="cannot be nested"):
        fit_mixed("score ~ x + (1 | task/mm(source, target))", TABLE)
    with pytest.raises(ConfigError, match="multi-membership"):
        fit_mixed("score ~ x + (1 | mm(source, target))", TABLE, method="statsmodels")


def test_recovers_planted_language_variance():
    """40 tables of 30 languages (435 pairs) with sd_language 2 (variance 4) and residual sd 1:
    the REML variance estimates average to the truth within their Monte Carlo error, the fixed
    effects are unbiased, and their Wald intervals cover at about the nominal rate; the crossed
    (1|source) + (1|target) model of the same tables, with one variance more, has a far lower
    REML likelihood (it cannot see that a language is one effect in both columns)."""
    sim = UnorderedSimulator([f"l{i:02d}" for i in range(30)], {"x": 1.5}, intercept=20.0,
                             sd_language=2.0, sd_residual=1.0)
    estimates, slopes, covered, crossed = [], [], [], []
    for child in np.random.SeedSequence(2026).spawn(40):
        data = sim.draw(np.random.default_rng(child))
        m = fit_mixed("score ~ x + (1 | mm(source, target))", data, warn=False)
        estimates.append(m.variance_components[[MM, "Residual"]].to_numpy())
        slopes.append(m.params["x"])
        ci = m.conf_int().loc["x"]
        covered.append(ci["lower"] <= 1.5 <= ci["upper"])
        if len(crossed) < 5:
            c = fit_mixed("score ~ x + (1 | source) + (1 | target)", data, warn=False)
            crossed.append(m.llf - c.llf)
    estimates = np.array(estimates)
    mean, se = estimates.mean(axis=0), estimates.std(axis=0, ddof=1) / math.sqrt(len(estimates))
    assert abs(mean[0] - 4.0) < 3 * se[0] + 0.05, (mean, se)
    assert abs(mean[1] - 1.0) < 3 * se[1] + 0.01, (mean, se)
    assert abs(np.mean(slopes) - 1.5) < 3 * np.std(slopes, ddof=1) / math.sqrt(len(slopes))
    assert np.mean(covered) >= 0.85
    assert min(crossed) > 10, crossed


def test_simulator_pairs_are_unordered_and_sorted():
    sim = UnorderedSimulator(["c", "a", "b", "d"], {"x": 1.0}, n_tasks=2, n_seeds=2, sd_task=1.0)
    data = sim.draw(0)
    assert len(data) == 6 * 2 * 2
    assert (data["source"] < data["target"]).all()
    assert not data.duplicated(["task", "source", "target", "seed"]).any()
    with pytest.raises(Exception, match="3 or more distinct"):
        UnorderedSimulator(["a", "a", "b"], {"x": 1.0})


def test_portable_model_predicts_as_the_fit(tmp_path):
    from xltstats.models.persist import PortableModel, model_spec

    m = fit_mixed("score ~ x + z + (1 | mm(source, target)) + (1 | task)", TABLE)
    spec = json.loads(json.dumps(model_spec(m)))  # through JSON, as model.json
    portable = PortableModel(spec, name="mixed")
    assert {"source", "target", "task", "x", "z"} <= set(portable.required_columns)
    new = pd.DataFrame({"task": ["task1", "task2", "task3", "task1"], "source": ["l01", "l03", "new", "l05"],
                        "target": ["l02", "zzz", "zzz", "l05"], "x": [0.5, -1.0, 0.0, 0.2],
                        "z": [0.1, 0.0, 2.0, -0.3]})
    ours, theirs = m.prediction_interval(new), portable.prediction_interval(new)
    np.testing.assert_allclose(theirs["prediction"], ours["prediction"], rtol=1e-10)
    np.testing.assert_allclose(theirs["se_mean"], ours["se_mean"], rtol=1e-8)
