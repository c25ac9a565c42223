"""R² from moment matrices (one or a batched stack) and general dominance (the Shapley value of R²
over feature groups), used by :class:`~xltstats.models.ols.OLSResults` (``dominance``,
``group_comparison``, ``compare_groups``); see :mod:`xltstats.models.ols`.
"""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

__all__ = ["general_dominance"]


def _r2_from_moments(moments: np.ndarray, columns: list[int]) -> float:
    """R² of y on an intercept plus the given feature columns, from the weighted moment matrix.

    ``moments`` is ``Z'WZ`` for ``Z = [1, x_1..x_k, y]``; the intercept is index 0 and y is the last.
    """
    idx = [0, *[c + 1 for c in columns]]
    n = moments[0, 0]
    y_sum = moments[0, -1]
    tss = moments[-1, -1] - y_sum ** 2 / n
    xtx = moments[np.ix_(idx, idx)]
    xty = moments[idx, -1]
    beta = np.linalg.lstsq(xtx, xty, rcond=None)[0]
    rss = moments[-1, -1] - beta @ xty
    return float(1.0 - rss / tss) if tss > 0 else float("nan")


def _r2_batch(moments: np.ndarray, columns: list[int]) -> np.ndarray:
    """:func:`_r2_from_moments` for a stack of moment matrices ``(B, q, q)`` at once.

    One batched LU solve for the whole stack; a stack holding a singular draw falls back to
    :func:`_r2_from_moments` (least squares) draw by draw, so that draw gets what it got alone
    (NaN where even that fails)."""
    idx = np.array([0, *[c + 1 for c in columns]])
    n = moments[:, 0, 0]
    yy = moments[:, -1, -1]
    tss = yy - moments[:, 0, -1] ** 2 / n
    xtx = moments[:, idx][:, :, idx]
    xty = moments[:, idx, -1]
    try:
        beta = np.linalg.solve(xtx, xty[..., None])[..., 0]
    except np.linalg.LinAlgError:
        out = np.empty(len(moments))
        for i, m in enumerate(moments):
            try:
                out[i] = _r2_from_moments(m, columns)
            except np.linalg.LinAlgError:
                out[i] = np.nan
        return out
    rss = yy - np.einsum("bi,bi->b", beta, xty)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(tss > 0, 1.0 - rss / tss, np.nan)


def _shapley(r2_of_subset: dict[frozenset, float], groups: list[str], group: str) -> float:
    """General dominance of one group (mean over sizes of the mean gain over subsets of that size)."""
    others = [h for h in groups if h != group]
    total = 0.0
    for k in range(len(groups)):
        subsets = list(itertools.combinations(others, k))
        total += sum(r2_of_subset[frozenset(s) | {group}] - r2_of_subset[frozenset(s)] for s in subsets) / len(subsets)
    return total / len(groups)


def general_dominance(r2_of_subset: dict[frozenset, float], groups: list[str]) -> pd.DataFrame:
    """General dominance (Shapley value) of each group from R² of every subset of groups.

    Returns one row per group: ``general_dominance``, its ``share`` of the full R², and the
    conditional dominance at each subset size (``conditional_k``: average gain when added to subsets of
    size k of the other groups).
    """
    m = len(groups)
    rows = []
    for g in groups:
        others = [h for h in groups if h != g]
        conditional = []
        for k in range(m):
            gains = [r2_of_subset[frozenset(s) | {g}] - r2_of_subset[frozenset(s)]
                     for s in itertools.combinations(others, k)]
            conditional.append(float(np.mean(gains)))
        rows.append({"group": g, "general_dominance": float(np.mean(conditional)),
                     **{f"conditional_{k}": conditional[k] for k in range(m)}})
    table = pd.DataFrame(rows)
    full = r2_of_subset[frozenset(groups)]
    table.insert(2, "share", table["general_dominance"] / full if full else np.nan)
    table.insert(3, "rank", table["general_dominance"].rank(ascending=False, method="min").astype(int))
    return table
