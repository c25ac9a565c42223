"""Profile-likelihood intervals for the fixed effects (``MixedResults.conf_int(method="profile")``).

Against lme4's ``confint(m, parm = "beta_", method = "profile")`` on REML fits
(tests/golden/lme4_profile_fixed.json, written by benchmarks/lmertest_reference.R on the shipped
lme4_data_sim_*.csv tables and on the xpos table rebuilt from the mirror; xpos cases skip without
it): both ends within 1e-3 relative (measured: 8.5e-4 on the singular fit, below 1e-6 elsewhere).
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from xltstats.errors import InputError
from xltstats.models import fit_mixed
from test_mixed_golden import GOLDEN, _fixed_name, _table

GOLD = json.loads((GOLDEN / "lme4_profile_fixed.json").read_text())


@pytest.mark.parametrize("case", sorted(GOLD["cases"]))
def test_profile_fixed_matches_lme4(case):
    spec = GOLD["cases"][case]
    res = fit_mixed(spec["formula"], _table(spec["table"]), warn=False)
    ours = res.conf_int(method="profile")
    assert list(ours.index) == [_fixed_name(t) for t in spec["term"]]
    for i, term in enumerate(ours.index):
        for end in ("lower", "upper"):
            got, want = ours.loc[term, end], spec[end][i]
            assert math.isclose(got, want, rel_tol=1e-3), f"{case} {term} {end}: {got} lme4 {want}"
    # the profile interval contains the ML estimate and is near the Wald one
    wald = res.conf_int()
    assert np.all(ours["lower"] < res.refit(reml=False).params)
    assert np.all(ours["upper"] > res.refit(reml=False).params)
    assert np.allclose(ours.to_numpy(), wald.to_numpy(), rtol=0.5, atol=2 * res.bse.max())


def test_conf_int_method_is_checked():
    spec = GOLD["cases"]["sim_slopes"]
    res = fit_mixed(spec["formula"], _table(spec["table"]), warn=False)
    with pytest.raises(InputError, match="'Wald' or 'profile'"):
        res.conf_int(method="boot")


def test_coef_mixed_has_the_profile_intervals():
    """tables/coef_mixed: ``conf_low_profile``/``conf_high_profile`` are the profile intervals of
    the fixed effects (missing for the variance components), beside the Wald ``conf_low``/``conf_high``."""
    from xltstats.pipeline.run import mixed_coefficients

    spec = GOLD["cases"]["sim_three_factor"]
    res = fit_mixed(spec["formula"], _table(spec["table"]), warn=False)
    table, _why = mixed_coefficients(res)
    fixed = table[table["effect"] == "fixed"].set_index("term")
    profile = res.conf_int(method="profile")
    np.testing.assert_allclose(fixed["conf_low_profile"], profile["lower"], rtol=0)
    np.testing.assert_allclose(fixed["conf_high_profile"], profile["upper"], rtol=0)
    np.testing.assert_allclose(fixed["conf_low_profile"], spec["lower"], rtol=1e-3)
    assert table.loc[table["effect"] != "fixed", ["conf_low_profile", "conf_high_profile"]].isna().all().all()
    assert "profile_note" not in table.attrs
