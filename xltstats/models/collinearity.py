"""Collinearity of the OLS features: which features are flagged, which pair is to blame, which to drop.

The rule, documented once:

* A feature is **collinear** when its variance inflation factor exceeds :data:`VIF_THRESHOLD` (10):
  ``1 - R²_j < 0.1``, i.e. the other features explain over 90 % of its variance, so its standard
  error is more than ``sqrt(10) ≈ 3.2`` times what it would be with uncorrelated features
  (the usual rule of thumb; Kutner, Nachtsheim & Neter 2004, §10.5; O'Brien 2007 on its limits).
* For every feature the table gives its largest absolute Pearson correlation with another feature
  (``max_abs_r``) and that feature (``most_correlated_with``), in the rows the model was fitted on.
* ``sign_flip``: the OLS coefficient has the opposite sign of the feature's own correlation with the
  response -- what collinearity typically does to a coefficient (it then means "holding the
  correlated feature fixed", which the data hardly ever do).
* Which to drop: of the collinear pair with the highest ``|r|``, the feature whose removal leaves
  the lower largest VIF among the remaining features (ties: the one with the higher VIF); the note
  gives both numbers, so the choice can be checked.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

VIF_THRESHOLD = 10.0

__all__ = ["VIF_THRESHOLD", "vif_values", "collinearity_table", "collinearity_notes"]


def vif_values(x: np.ndarray) -> np.ndarray:
    """VIF of each column of ``x`` (rows = observations): ``C_jj (C^-1)_jj`` of the centred cross
    products ``C``, computed as ``1 / (1 - R²_j)`` from a least-squares fit on the other columns."""
    x = np.asarray(x, float)
    k = x.shape[1]
    if k == 1:
        return np.ones(1)
    xc = x - x.mean(axis=0)
    cross = xc.T @ xc
    out = np.empty(k)
    for j in range(k):
        others = [i for i in range(k) if i != j]
        beta = np.linalg.lstsq(cross[np.ix_(others, others)], cross[others, j], rcond=None)[0]
        rss = cross[j, j] - beta @ cross[others, j]
        r2 = 1 - rss / cross[j, j]
        out[j] = 1 / (1 - r2) if r2 < 1 else np.inf
    return out


def collinearity_table(frame: pd.DataFrame, features: list[str], *, response: str | None = None,
                       coefficients: pd.Series | None = None, threshold: float = VIF_THRESHOLD) -> pd.DataFrame:
    """One row per feature: ``vif``, ``max_abs_r``, ``most_correlated_with``, ``collinear``
    (VIF > ``threshold``) and, given the response and the coefficients, ``sign_flip``."""
    x = frame[features].to_numpy(float)
    vif = vif_values(x)
    rows = []
    if len(features) > 1:
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.corrcoef(x, rowvar=False)
        np.fill_diagonal(r, 0.0)
        absolute = np.nan_to_num(np.abs(r), nan=0.0)
    for j, name in enumerate(features):
        row = {"feature": name, "vif": float(vif[j])}
        if len(features) > 1:
            partner = int(np.argmax(absolute[j]))
            row["max_abs_r"] = float(absolute[j, partner])
            row["most_correlated_with"] = features[partner]
        else:
            row["max_abs_r"], row["most_correlated_with"] = np.nan, ""
        row["collinear"] = bool(vif[j] > threshold)
        if response is not None and coefficients is not None and name in coefficients.index:
            y = frame[response].to_numpy(float)
            marginal = np.corrcoef(x[:, j], y)[0, 1] if np.std(x[:, j]) > 0 and np.std(y) > 0 else np.nan
            estimate = float(coefficients[name])
            row["sign_flip"] = bool(np.isfinite(marginal) and marginal * estimate < 0)
        rows.append(row)
    return pd.DataFrame(rows)


def _vif_text(value: float) -> str:
    return "∞" if not np.isfinite(value) else f"{value:.3g}"


def collinearity_notes(table: pd.DataFrame, frame: pd.DataFrame, features: list[str], *,
                       threshold: float = VIF_THRESHOLD) -> list[str]:
    """A note naming the collinear features, the pair with the highest ``|r|`` and the feature to
    leave out (see the module's rule); no note when no VIF exceeds ``threshold``."""
    flagged = table[table["collinear"]]
    if flagged.empty:
        return []
    listed = ", ".join(f"{row.feature} (VIF {_vif_text(row.vif)})"
                       for row in flagged.sort_values("vif", ascending=False, kind="stable").itertuples())
    top = flagged.sort_values(["max_abs_r", "vif"], ascending=False, kind="stable").iloc[0]
    a, b = str(top["feature"]), str(top["most_correlated_with"])
    x = frame[features]

    def left_max(dropped: str) -> float:
        rest = [f for f in features if f != dropped]
        return float(vif_values(x[rest].to_numpy(float)).max()) if rest else 1.0

    vif = dict(zip(table["feature"], table["vif"]))
    without = {a: left_max(a), b: left_max(b)}
    drop, keep = sorted([a, b], key=lambda f: (without[f], -vif[f], f))
    flips = [str(f) for f in table.loc[table.get("sign_flip", pd.Series(False, index=table.index)).astype(bool)
                                       & table["collinear"], "feature"]]
    flip_text = (f"; the OLS coefficient of {', '.join(flips)} has the opposite sign of its correlation "
                 "with the score" if flips else "")
    return [f"collinear features (VIF > {threshold:g}): {listed}; the most correlated pair is {a} and {b} "
            f"(r = {_signed_r(x[a], x[b]):+.2f} in the {len(x):,} rows the models use), whose coefficients "
            f"the data cannot tell apart{flip_text}: leave {drop} out of 'features' (the highest VIF left is "
            f"then {_vif_text(without[drop])}; without {keep} instead it would be {_vif_text(without[keep])})"]


def _signed_r(a: pd.Series, b: pd.Series) -> float:
    return float(np.corrcoef(a.to_numpy(float), b.to_numpy(float))[0, 1])
