"""Kenward-Roger inference for the fixed effects (xltstats.models.mixed._kenward_roger).

Against pbkrtest (tests/golden/pbkrtest_kenward_roger.json, written by
benchmarks/pbkrtest_reference.R on the same cases as the Satterthwaite golden; xpos cases skip
without the mirror): the adjusted covariance ``vcovAdj`` within 1e-4 relative, the per-coefficient
KR df within 1e-2 relative, the KR F tests (ddf, scaling, F).  And against a balanced split-plot,
where Kenward-Roger reproduces the classical ANOVA df and F test exactly.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from xltstats.errors import ConfigError, InputError
from xltstats.models import fit_mixed
from xltstats.models.mixed import _kenward_roger
from test_mixed_golden import GOLDEN, _fixed_name, _table

GOLD = json.loads((GOLDEN / "pbkrtest_kenward_roger.json").read_text())


def _matrix(values, p):
    return np.asarray(values, dtype=float).reshape(p, p)


@pytest.mark.parametrize("case", sorted(GOLD["cases"]))
def test_kenward_roger_matches_pbkrtest(case):
    spec = GOLD["cases"][case]
    res = fit_mixed(spec["formula"], _table(spec["table"]), warn=False)
    ours = res.kenward_roger()
    p = len(spec["term"])
    assert list(ours.index) == [_fixed_name(t) for t in spec["term"]]
    want = _matrix(spec["vcov_adj"], p)
    got = res.cov_params_kenward_roger().to_numpy()
    scale = np.max(np.abs(want))
    assert np.max(np.abs(got - want)) <= 1e-4 * scale, f"{case}: Phi_A {got} pbkrtest {want}"
    # the adjustment itself (Phi_A - Phi), not only Phi_A, agrees
    adj_want, adj_got = want - _matrix(spec["vcov"], p), got - res.cov_params().to_numpy()
    assert np.max(np.abs(adj_got - adj_want)) <= 1e-2 * np.max(np.abs(adj_want)) + 1e-12 * scale
    for i, term in enumerate(ours.index):
        assert math.isclose(ours.loc[term, "df"], spec["df"][i], rel_tol=1e-2), \
            f"{case} {term}: df {ours.loc[term, 'df']} pbkrtest {spec['df'][i]}"
        assert math.isclose(ours.loc[term, "std_error"], spec["se"][i], rel_tol=1e-4)
        assert math.isclose(ours.loc[term, "statistic"], spec["t"][i], rel_tol=1e-3)
        assert abs(ours.loc[term, "p_value"] - spec["p"][i]) < 1e-8
    for name, test in spec["tests"].items():
        L = np.asarray(test["L"], dtype=float).reshape(-1, p)
        got = res.kenward_roger_test(L)
        assert got["ndf"] == test["ndf"]
        assert math.isclose(got["ddf"], test["ddf"], rel_tol=1e-2), f"{case} {name}: {got} {test}"
        assert math.isclose(got["F_scaling"], test["F_scaling"], rel_tol=1e-3), f"{case} {name}"
        assert math.isclose(got["F"], test["F"], rel_tol=1e-3), f"{case} {name}: {got} {test}"


def _split_plot(a=3, r=4, b=4, seed=11):
    """A balanced split-plot: ``a`` whole-plot treatments with ``r`` whole plots each, ``b``
    subplot treatments within every whole plot; whole-plot SD 2, residual SD 1."""
    rng = np.random.default_rng(seed)
    rows = []
    plot_effect = rng.normal(0, 2, a * r)
    for i in range(a):
        for j in range(r):
            plot = i * r + j
            for k in range(b):
                rows.append({"plot": f"p{plot:02d}", "A": i, "B": k,
                             "y": 10 + 0.5 * i + 0.3 * k + plot_effect[plot] + rng.normal()})
    data = pd.DataFrame(rows)
    for i in range(1, a):
        data[f"a{i}"] = (data["A"] == i).astype(float)
    for k in range(1, b):
        data[f"b{k}"] = (data["B"] == k).astype(float)
    return data


def test_balanced_split_plot_has_the_classical_anova_df_and_f_test():
    a, r, b = 3, 4, 4
    data = _split_plot(a, r, b)
    res = fit_mixed("y ~ a1 + a2 + b1 + b2 + b3 + (1|plot)", data, warn=False)
    assert not res.singular
    kr = res.kenward_roger()
    whole, sub = a * (r - 1), a * r * b - a * r - (b - 1)     # 9 and 33 error df
    for term in ("a1", "a2"):
        assert kr.loc[term, "df"] == pytest.approx(whole, rel=1e-6)
    for term in ("b1", "b2", "b3"):
        assert kr.loc[term, "df"] == pytest.approx(sub, rel=1e-6)
    # the 2-df test of A is the classical whole-plot F test: MS_A / MS(whole-plot error)
    plot_means = data.groupby("plot")["y"].mean()
    plot_a = data.groupby("plot")["A"].first()
    a_means = plot_means.groupby(plot_a).mean()
    ss_a = r * b * float(((a_means - plot_means.mean()) ** 2).sum())
    ss_wp = b * float(((plot_means - plot_a.map(a_means)) ** 2).sum())
    f_classical = (ss_a / (a - 1)) / (ss_wp / whole)
    L = np.zeros((2, res.params.size))
    L[0, 1] = L[1, 2] = 1
    test = res.kenward_roger_test(L)
    assert test["ndf"] == 2 and test["ddf"] == pytest.approx(whole, rel=1e-6)
    assert test["F_scaling"] == pytest.approx(1.0, rel=1e-6)
    assert test["F"] == pytest.approx(f_classical, rel=1e-6)
    assert test["p_value"] == pytest.approx(stats.f.sf(f_classical, 2, whole), rel=1e-5)


def test_a_model_above_the_size_limit_is_refused_with_a_clear_message(monkeypatch):
    data = _split_plot()
    res = fit_mixed("y ~ a1 + a2 + (1|plot)", data, warn=False)
    monkeypatch.setattr(_kenward_roger, "KR_MAX_Q", res._design.q - 1)
    with pytest.raises(InputError, match=r"limited to 11 random-effect columns.*q = 12.*mixed.ddf: satterthwaite"):
        res.kenward_roger()


def test_an_ml_fit_is_refitted_with_reml_as_pbkrtest_does():
    data = _split_plot()
    reml = fit_mixed("y ~ a1 + a2 + b1 + (1|plot)", data, warn=False)
    ml = fit_mixed("y ~ a1 + a2 + b1 + (1|plot)", data, reml=False, warn=False)
    from_ml, from_reml = ml.kenward_roger(), reml.kenward_roger()
    np.testing.assert_allclose(from_ml.to_numpy(), from_reml.to_numpy(), rtol=1e-5)
    assert "REML refit" in from_ml.attrs["note"] and "note" not in from_reml.attrs


def test_coef_mixed_carries_the_kenward_roger_df_and_standard_errors():
    from xltstats.pipeline.config import MixedConfig
    from xltstats.pipeline.run import mixed_coefficients

    data = _split_plot().drop(index=[0, 5, 17, 30])  # unbalanced: Phi_A differs from Phi
    res = fit_mixed("y ~ a1 + a2 + b1 + (1|plot)", data, warn=False)
    table, why = mixed_coefficients(res, "kenward-roger")
    assert why == ""
    fixed = table[table["effect"] == "fixed"].set_index("term")
    kr = res.kenward_roger()
    for column in ("std_error", "statistic", "df", "p_value"):
        np.testing.assert_allclose(fixed[column], kr[column], rtol=0)
    assert np.all(fixed["std_error"] > res.bse * (1 + 1e-6))   # Phi_A, not lme4's vcov
    default, _ = mixed_coefficients(res)
    np.testing.assert_allclose(default.loc[default["effect"] == "fixed", "df"], res.satterthwaite()["df"], rtol=0)
    assert MixedConfig().ddf == "satterthwaite"
    with pytest.raises(ConfigError, match="mixed.ddf"):
        MixedConfig(ddf="kenward_roger")
