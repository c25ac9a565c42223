"""xltstats' mixed models against golden values written by lme4 (benchmarks/lme4_reference.R).

Estimates must agree within 1e-3 relative and the log-likelihood must be no worse than lme4's.
The simulated tables are shipped beside the golden JSON; the xpos table is rebuilt from the
published-data mirror ($XLTSTATS_MIRROR), and those cases skip without it.
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from xltstats.models import MixedModelWarning, compare_mixed, fit_mixed

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden"
REL = 1e-3


def _bench():
    spec = importlib.util.spec_from_file_location("xlt_bench_mixed", REPO / "benchmarks" / "mixed.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _bench()


def _table(name):
    if name == "xpos":
        mirror = os.environ.get("XLTSTATS_MIRROR")
        if not mirror:
            pytest.skip("XLTSTATS_MIRROR is not set: the xpos table comes from the published-data mirror")
        path = Path(mirror)
        if not path.is_absolute():
            path = REPO / path
        if not (path / bench.XPOS_RESULTS).exists():
            pytest.skip(f"xpos results not found under the mirror {path}")
        return bench.xpos_table(path)
    return bench.load_golden_table(name)


def _close(ours, theirs, rel=REL, abs_=1e-6, what=""):
    assert math.isclose(ours, theirs, rel_tol=rel, abs_tol=abs_), f"{what}: ours {ours!r} lme4 {theirs!r}"


def _fixed_name(lme4_name):
    return "Intercept" if lme4_name == "(Intercept)" else lme4_name


def _component(grp, var1):
    grp = grp.split(".")[0] if grp.rsplit(".", 1)[-1].isdigit() else grp
    if grp == "Residual":
        return "Residual"
    return grp if var1 == "(Intercept)" else f"{grp}:{var1}"


CASES = sorted(p.stem[len("lme4_"):] for p in GOLDEN.glob("lme4_*.json")
               if p.stem not in ("lme4_anova", "lme4_timings", "lme4_profile", "lme4_r2",
                                 "lme4_profile_fixed"))


@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
@pytest.mark.parametrize("case", CASES)
def test_matches_lme4(case, reml):
    gold = json.loads((GOLDEN / f"lme4_{case}.json").read_text())
    ref = gold["REML" if reml else "ML"]
    data = _table(gold["table"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MixedModelWarning)
        m = fit_mixed(gold["formula"], data, reml=reml)
    assert m.nobs == ref["nobs"]
    # likelihood no worse than lme4's (tiny slack for floating point), and the same definition
    assert m.llf >= ref["logLik"] - 1e-6 * abs(ref["logLik"]) * 1e-3
    _close(m.llf, ref["logLik"], rel=1e-7, what="logLik")
    _close(m.aic, ref["AIC"], rel=1e-7, what="AIC")
    _close(m.bic, ref["BIC"], rel=1e-7, what="BIC")
    for name, value in ref["fixef"].items():
        _close(m.params[_fixed_name(name)], value, what=f"fixef {name}")
        _close(m.bse[_fixed_name(name)], ref["se"][name], what=f"se {name}")
    assert list(m.params.index)[0] == "Intercept"
    singular = ref["isSingular"]
    assert m.singular == singular
    for row in ref["varcorr"]:
        if row["var2"]:
            sub = m.varcorr[(m.varcorr["group"] == row["grp"]) & (m.varcorr["term1"] == row["var1"])
                            & (m.varcorr["term2"] == row["var2"])]
            assert len(sub) == 1, row
            _close(float(sub["variance"].iloc[0]), row["vcov"], abs_=1e-4, what=f"cov {row}")
            continue
        name = _component(row["grp"], row["var1"])
        # a variance at the boundary is ~0 in both; compare on the SD scale with an absolute floor
        if singular and row["vcov"] < 1e-6:
            assert m.variance_components[name] < 1e-6
        else:
            _close(m.variance_components[name], row["vcov"], what=f"variance {name}")
    _close(m.sigma, ref["sigma"], what="sigma")


def test_blups_match_lme4_ranef():
    gold = json.loads((GOLDEN / "lme4_sim_three_factor.json").read_text())
    ref = gold["REML"]
    m = fit_mixed(gold["formula"], _table(gold["table"]))
    blups = m.random_effects[ref["ranef_group"]]
    for level, value in ref["ranef"]["(Intercept)"].items():
        _close(blups.loc[level, "(Intercept)"], value, rel=2e-3, abs_=1e-4, what=f"BLUP {level}")


@pytest.mark.parametrize("case", ["sim_slopes", "sim_three_factor", "sim_interaction_group"])
def test_blup_conditional_variances_match_lme4_condvar(case):
    gold = json.loads((GOLDEN / f"lme4_{case}.json").read_text())
    ref = gold["REML"]
    m = fit_mixed(gold["formula"], _table(gold["table"]))
    blups = m.random_effects[ref["ranef_group"]]
    se = m.random_effects_se[ref["ranef_group"]]
    for j, column in enumerate(ref["ranef"]):
        levels = list(ref["ranef"][column])
        ours = se.loc[levels, column].to_numpy() ** 2
        theirs = np.asarray(ref["ranef_condvar_diag"][j], dtype=float)
        assert np.allclose(ours, theirs, rtol=1e-3), (column, ours[:3], theirs[:3])
        assert np.allclose(blups.loc[levels, column], list(ref["ranef"][column].values()),
                           rtol=2e-3, atol=1e-4)


@pytest.mark.parametrize("pair", ["three_factor_distance", "slopes_random_slope", "xpos_covariates"])
def test_likelihood_ratio_matches_lme4_anova(pair):
    gold = json.loads((GOLDEN / "lme4_anova.json").read_text())
    if pair not in gold:
        pytest.skip(f"{pair} not in the golden anova file")
    ref = gold[pair]
    data = _table(ref["table"])
    m0 = fit_mixed(ref["m0"], data)
    m1 = fit_mixed(ref["m1"], data)
    same_fixed = list(m0.params.index) == list(m1.params.index)
    if same_fixed:
        table = compare_mixed(m0, m1)          # same fixed effects: REML, like refit = FALSE
        expected = ref["no_refit"]
        assert table.attrs["criterion"] == "REML"
        table_ml = compare_mixed(m0, m1, refit=True)
        _close(table_ml["Chisq"].iloc[1], ref["Chisq"], rel=1e-4, what="Chisq (refit)")
    else:
        with pytest.warns(MixedModelWarning, match="ML"):
            table = compare_mixed(m0, m1)
        expected = ref
        assert table.attrs["criterion"] == "ML"
        assert list(table["npar"]) == ref["npar"]
    for ours, theirs in zip(table["logLik"], expected["logLik"]):
        _close(ours, theirs, rel=1e-7, what="logLik")
    _close(table["Chisq"].iloc[1], expected["Chisq"], rel=1e-4, what="Chisq")
    assert table["Df"].iloc[1] == expected["Df"]
    _close(table["Pr(>Chisq)"].iloc[1], expected["p_value"], rel=1e-2, abs_=1e-300, what="p")


@pytest.mark.slow
@pytest.mark.parametrize("key,seeds,tasks", [("xpos_54600", 8, 1), ("xpos_491400_tasks", 8, 9)])
def test_large_replicated_xpos_tables_match_lme4(key, seeds, tasks):
    """The 55k and 491k timing tables: same optimum as lme4 (values recorded with the timings)."""
    gold = json.loads((GOLDEN / "lme4_timings.json").read_text()).get(key)
    if gold is None or "logLik_REML" not in gold:
        pytest.skip(f"no lme4 estimates recorded for {key}")
    table = bench.replicate_xpos(_table("xpos"), n_seeds=seeds, n_tasks=tasks)
    m = fit_mixed(gold["formula"], table)
    assert m.nobs == gold["rows"]
    assert m.llf >= gold["logLik_REML"] - 1e-6
    _close(m.llf, gold["logLik_REML"], rel=1e-9, what="logLik")
    _close(m.params["Intercept"], gold["fixef"]["(Intercept)"], what="intercept")
    for name, value in gold["variances"].items():
        _close(m.variance_components[name], value, what=name)


@pytest.mark.parametrize("case", ["sim_three_factor", "sim_singular", "xpos_intercepts"])
def test_profile_intervals_match_lme4_confint(case):
    """Profile-likelihood intervals of the SDs against lme4's confint(method = "profile"), which
    interpolates its profile with splines: agreement to 1e-3 relative (2e-3 absolute at 0)."""
    gold = json.loads((GOLDEN / "lme4_profile.json").read_text())[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MixedModelWarning)
        m = fit_mixed(gold["formula"], _table(gold["table"]))
    ci = m.variance_components_ci(alpha=0.05)
    assert ci.attrs["method"] == "profile likelihood"
    for name, lo, hi in zip(gold["parameter"], gold["lower"], gold["upper"]):
        component = "Residual" if name == "sigma" else name.split("|")[1]
        _close(math.sqrt(ci.loc[component, "lower"]), lo, rel=1e-3, abs_=2e-3, what=f"{name} lower")
        _close(math.sqrt(ci.loc[component, "upper"]), hi, rel=1e-3, abs_=2e-3, what=f"{name} upper")
        assert ci.loc[component, "lower"] <= ci.loc[component, "variance"] <= ci.loc[component, "upper"] \
            or m.singular


@pytest.mark.parametrize("pair,groups", [("three_factor_distance", {"distance": ["distance"]}),
                                          ("xpos_covariates", {"language": ["same_language", "same_script"]})])
def test_feature_group_drop_matches_lme4_anova(pair, groups):
    """Dropping a group of fixed effects: the ML refit likelihood-ratio test equals lme4's anova()."""
    from xltstats.models import compare_feature_groups

    ref = json.loads((GOLDEN / "lme4_anova.json").read_text())[pair]
    data = _table(ref["table"])
    full = fit_mixed(ref["m1"], data)
    table = compare_feature_groups(full, {**groups, "absent": ["not_a_feature"]}).set_index("group")
    row = table.loc[next(iter(groups))]
    assert row["status"] == "ok" and row["df"] == ref["Df"]
    _close(row["loglik_full"], ref["logLik"][1], rel=1e-7, what="logLik full (ML)")
    _close(row["loglik_reduced"], ref["logLik"][0], rel=1e-7, what="logLik reduced (ML)")
    _close(row["chisq"], ref["Chisq"], rel=1e-4, what="Chisq")
    _close(row["p_value"], ref["p_value"], rel=1e-2, abs_=1e-300, what="p")
    assert row["r2_marginal_drop"] > 0 and row["aic_change"] > 0
    assert table.loc["absent", "status"] == "not_in_model"


@pytest.mark.parametrize("case", ["sim_three_factor", "sim_slopes", "xpos_covariates"])
def test_nakagawa_r2_matches_r2_from_lme4_estimates(case):
    """Marginal and conditional R2 against the same definition evaluated in R on lme4's fit
    (benchmarks/lme4_reference.R; Johnson's mean z' Sigma z for the random slope)."""
    gold = json.loads((GOLDEN / "lme4_r2.json").read_text())[case]
    m = fit_mixed(gold["formula"], _table(gold["table"]))
    vf, vr, ve = m._variance_parts()
    _close(vf, gold["var_fixed"], what="fixed-effect variance")
    _close(vr, gold["var_random"], what="random-effect variance")
    _close(ve, gold["var_residual"], what="residual variance")
    _close(m.r2_marginal, gold["r2_marginal"], what="marginal R2")
    _close(m.r2_conditional, gold["r2_conditional"], what="conditional R2")
