"""Satterthwaite df of the fixed effects of REML fits (xltstats.models.mixed._satterthwaite).

Against lmerTest's ``summary(m)$coefficients`` (tests/golden/lmertest_satterthwaite.json, written
by benchmarks/lmertest_reference.R on the shipped lme4_data_sim_*.csv tables and on the xpos table
rebuilt from the mirror; xpos cases skip without it): df within 1e-2 relative, p-values within
1e-8 absolute and 1e-3 relative on the log scale.  And against simulated designs whose exact df is known.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from xltstats.errors import InputError
from xltstats.models import fit_mixed
from test_mixed_golden import GOLDEN, _fixed_name, _table

GOLD = json.loads((GOLDEN / "lmertest_satterthwaite.json").read_text())


@pytest.mark.parametrize("case", sorted(GOLD["cases"]))
def test_satterthwaite_matches_lmertest(case):
    spec = GOLD["cases"][case]
    res = fit_mixed(spec["formula"], _table(spec["table"]), warn=False)
    ours = res.satterthwaite()
    assert list(ours.index) == [_fixed_name(t) for t in spec["term"]]
    for i, term in enumerate(ours.index):
        df, p = ours.loc[term, "df"], ours.loc[term, "p_value"]
        assert math.isclose(df, spec["df"][i], rel_tol=1e-2), f"{case} {term}: df {df} lmerTest {spec['df'][i]}"
        # p-values near 1e-50 magnify the 1e-4 differences in df and the 1e-5 differences in t
        # between the two optima (a 3e-4 df difference moves p = 1e-50 by 2.5%): they are compared
        # on the log scale (1e-3 relative) and absolutely (1e-8)
        assert abs(p - spec["p"][i]) < 1e-8, f"{case} {term}: p {p} lmerTest {spec['p'][i]}"
        assert math.isclose(math.log(p), math.log(spec["p"][i]), rel_tol=1e-3), f"{case} {term}: p {p} lmerTest {spec['p'][i]}"
        assert math.isclose(ours.loc[term, "statistic"], spec["t"][i], rel_tol=1e-3)


def _one_way(n_groups=12, per_group=8, seed=3):
    """Balanced one-way random-intercept design; x takes the same values in every group."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), per_group)
    x = np.tile(np.linspace(-1, 1, per_group), n_groups)
    y = 5 + 0.7 * x + rng.normal(0, 2, n_groups)[g] + rng.normal(0, 1, g.size)
    return pd.DataFrame({"g": [f"g{v:02d}" for v in g], "x": x, "y": y})


def test_balanced_one_way_design_has_classical_df():
    data = _one_way()
    res = fit_mixed("y ~ x + (1|g)", data, warn=False)
    assert not res.singular
    satt = res.satterthwaite()
    # intercept: a between-group contrast, df = groups - 1; x: within groups, df = N - groups - 1
    assert satt.loc["Intercept", "df"] == pytest.approx(12 - 1, rel=1e-4)
    assert satt.loc["x", "df"] == pytest.approx(96 - 12 - 1, rel=1e-4)
    assert satt.loc["x", "p_value"] == pytest.approx(
        2 * stats.t.sf(abs(res.tvalues["x"]), 96 - 12 - 1), rel=1e-3)


def test_summary_prints_df_and_ml_fit_says_why_not():
    data = _one_way()
    res = fit_mixed("y ~ x + (1|g)", data, warn=False)
    text = str(res.summary())
    assert "Pr(>|t|)" in text and "Satterthwaite" in text
    ml = fit_mixed("y ~ x + (1|g)", data, reml=False, warn=False)
    with pytest.raises(InputError, match="REML"):
        ml.satterthwaite()
    assert "Satterthwaite df not computed: an ML fit" in str(ml.summary())
    # the tidy table and the normal-approximation p-values are unchanged by the method
    assert "df" not in res.table().columns


def test_dropped_hessian_eigenvalues_are_said(monkeypatch):
    from xltstats.models.mixed import _satterthwaite
    monkeypatch.setattr(_satterthwaite, "EIGEN_TOL", 100.0)   # drops the smallest eigenvalue(s)
    res = fit_mixed("y ~ x + (1|g)", _one_way(), warn=False)
    satt = res.satterthwaite()
    assert "eigenvalue(s) at or below 100" in satt.attrs["note"]
    assert "Satterthwaite df: the REML Hessian" in str(res.summary())
