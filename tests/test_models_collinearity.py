"""Collinearity: VIF > 10 flagged, the most correlated pair named, the feature to drop chosen by the rule."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xltstats.models.collinearity import collinearity_notes, collinearity_table, vif_values
from xltstats.models.ols import fit_ols


def simulated(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """b is a plus a little noise (r ~ 0.99), c a plus more noise, d independent."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    frame = pd.DataFrame({"a": a, "b": a + 0.1 * rng.normal(size=n), "c": a + 0.6 * rng.normal(size=n),
                          "d": rng.normal(size=n)})
    frame["score"] = 1.0 * frame["a"] + 0.5 * frame["d"] + rng.normal(size=n)
    return frame


def test_vif_is_one_over_one_minus_r2_of_each_feature_on_the_others():
    frame = simulated()
    features = ["a", "b", "c", "d"]
    for j, name in enumerate(features):
        others = frame[[f for f in features if f != name]].to_numpy()
        design = np.column_stack([np.ones(len(frame)), others])
        fitted = design @ np.linalg.lstsq(design, frame[name].to_numpy(), rcond=None)[0]
        r2 = 1 - np.sum((frame[name] - fitted) ** 2) / np.sum((frame[name] - frame[name].mean()) ** 2)
        assert vif_values(frame[features].to_numpy())[j] == pytest.approx(1 / (1 - r2), rel=1e-9)


def test_collinear_features_are_flagged_and_the_pair_and_the_one_to_drop_named():
    frame = simulated()
    features = ["a", "b", "c", "d"]
    table = collinearity_table(frame, features)
    flagged = dict(zip(table["feature"], table["collinear"]))
    assert flagged["a"] and flagged["b"] and not flagged["d"]
    row = table.set_index("feature").loc["b"]
    assert row["most_correlated_with"] == "a"
    assert row["max_abs_r"] == pytest.approx(np.corrcoef(frame["a"], frame["b"])[0, 1], rel=1e-12)
    [note] = collinearity_notes(table, frame, features)
    assert note.startswith("collinear features (VIF > 10): ")
    assert "the most correlated pair is" in note and " a " in note and " b " in note
    # dropping a leaves b, c, d: b and c stay correlated (VIF ~1.4 each) -- the same as dropping b;
    # the rule takes the lower of the two remaining maxima, whichever it is
    left = {f: vif_values(frame[[g for g in features if g != f]].to_numpy()).max() for f in ("a", "b")}
    drop = min(left, key=left.get)
    assert f"leave {drop} out of 'features'" in note
    assert f"the highest VIF left is then {left[drop]:.3g}" in note
    assert collinearity_notes(collinearity_table(frame, ["c", "d"]), frame, ["c", "d"]) == []


def test_a_sign_flip_against_the_marginal_correlation_is_said():
    frame = simulated()
    features = ["a", "b", "d"]
    ols = fit_ols(frame, response="score", features=features, cov_type="nonrobust")
    table = ols.vif()
    coefficients = ols.params
    # a and b both correlate positively with the score; with r ~ 0.99 their OLS split is noise
    expected = {f: bool(np.sign(coefficients[f]) != np.sign(np.corrcoef(frame[f], frame["score"])[0, 1]))
                for f in features}
    assert dict(zip(table["feature"], table["sign_flip"])) == expected
    forced = collinearity_table(frame, features, response="score",
                                coefficients=pd.Series({"a": 2.0, "b": -1.0, "d": 0.5}))
    assert forced["sign_flip"].tolist() == [False, True, False]
    assert "the OLS coefficient of b has the opposite sign of its correlation with the score" in \
        collinearity_notes(forced, frame, features)[0]
