"""Grambank gaps filled by softImpute, the way URIEL+ fills its typological matrix (opt-in).

URIEL+ 1.3.2's default imputation (``URIELPlus.softimpute_imputation``, read from its source):
``imputation_interface(strategy="softimpute", hyperparameter_range=None)`` on the union over
sources of the typological matrix (languages x ``S_``/``P_``/``INV_``/``M_`` features, ``-1`` as
missing), fancyimpute's ``SoftImpute(max_iters=400, min_value=0, max_value=1,
shrinkage_value=None)`` (zero start; shrinkage ``None`` = the largest singular value of the
zero-filled matrix / 50; convergence when the change of the missing cells is < 1e-3 of their
norm), values rounded to 0/1.  Its quality test hides 20% of the observed cells (NumPy seed 0),
imputes and writes the accuracy of the rounded values on them; after imputation its
``confidence_score`` for a featural distance is that one accuracy, the same for every pair.  A
shrinkage grid chosen by held-out cells is URIEL+'s option (``hyperparameter_range``), not its
default.

Here (:func:`impute_grambank`, numpy only): the matrix is the languages URIEL's ``features.npz``
(shipped by ``urielplus``) or Grambank describes, with URIEL's ``S_``/``P_``/``INV_`` union and
Grambank's 196 ``S_``/``M_`` columns side by side (URIEL+ merges the two sources into one matrix;
a language Grambank lacks, German say, is then placed by its URIEL features alone).  The shrinkage
is chosen by held-out cells: 20% of the observed cells hidden (``numpy.random.default_rng(0)``),
each of :data:`SHRINKAGE_FRACTIONS` x the largest singular value tried (1/50 is URIEL+'s
default), the best accuracy on the hidden ``M_`` cells wins (ties: the larger shrinkage).  The
confidence of a filled value is the held-out accuracy of its feature at that shrinkage (URIEL+'s
single accuracy is per matrix, so it is kept as ``overall_accuracy`` in the parameters).

A language with fewer observed cells than :data:`MIN_OBSERVED` (30 of the 485 columns, 6%) is
left out of the fit and keeps no imputed values, with that reason: its completed row would be
mostly the zero start shrunk, not its own data (4,633 of URIEL's 7,970 rows are below it, nearly all
with a few inventory features only; every xpos language is above it).  The result is cached in
``cache_dir()/features`` (about 47 CPU-s to compute on one thread).
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from . import grambank

METHODS = ("none", "softimpute")
SHRINKAGE_FRACTIONS = (1 / 50, 1 / 20, 1 / 10, 1 / 5)
HOLDOUT_SHARE = 0.2
MAX_ITERS = 400
CONVERGENCE = 1e-3
MIN_OBSERVED = 30
SEED = 0


def soft_impute(X: np.ndarray, shrinkage: float, *, max_iters: int = MAX_ITERS,
                tol: float = CONVERGENCE) -> tuple[np.ndarray, int, int]:
    """Complete ``X`` (NaN = missing) by soft-thresholded SVD iterations (Mazumder, Hastie &
    Tibshirani 2010), as fancyimpute's ``SoftImpute`` does: zero start, each step the SVD of the
    filled matrix with singular values ``max(s - shrinkage, 0)``, clipped to [0, 1], written into
    the missing cells; stop when the missing cells change by less than ``tol`` of their norm.
    Returns (completed matrix, rank of the last reconstruction, iterations)."""
    missing = np.isnan(X)
    filled = np.where(missing, 0.0, X)
    rank, it = 0, 0
    for it in range(1, max_iters + 1):
        recon, rank = _svd_step(filled, shrinkage)
        old, new = filled[missing], recon[missing]
        old_norm = np.sqrt((old ** 2).sum())
        converged = old_norm > 0 and np.sqrt(((old - new) ** 2).sum()) / old_norm < tol
        filled[missing] = new
        if converged:
            break
    return filled, rank, it


def _svd_step(A: np.ndarray, shrinkage: float) -> tuple[np.ndarray, int]:
    """``U max(S - shrinkage, 0) V'`` of ``A`` clipped to [0, 1], and its rank.  Through the
    eigen-decomposition of the (columns x columns) Gram matrix, ``A V diag(max(s - l, 0) / s) V'``:
    the same reconstruction as the thin SVD (singular values below the shrinkage, where the Gram
    matrix loses precision, are set to zero either way), at a fifth of its cost on this matrix."""
    w, v = np.linalg.eigh(A.T @ A)
    s = np.sqrt(np.clip(w, 0.0, None))
    keep = s > shrinkage
    factor = (s[keep] - shrinkage) / s[keep]
    vk = v[:, keep]
    return np.clip((A @ vk * factor) @ vk.T, 0.0, 1.0), int(keep.sum())


def max_singular_value(X: np.ndarray) -> float:
    """The largest singular value of ``X`` with its missing cells as 0 (fancyimpute's reference)."""
    return float(np.linalg.svd(np.where(np.isnan(X), 0.0, X), compute_uv=False)[0])


def holdout_cells(X: np.ndarray, share: float = HOLDOUT_SHARE, seed: int = SEED) -> np.ndarray:
    """Indices (into the flattened matrix) of ``share`` of the observed cells, seeded."""
    observed = np.flatnonzero(~np.isnan(X))
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(observed, int(share * len(observed)), replace=False))


def choose_shrinkage(X: np.ndarray, score_columns: np.ndarray, *, fractions=SHRINKAGE_FRACTIONS,
                     seed: int = SEED) -> dict:
    """Held-out-cell validation of the shrinkage: per fraction of the largest singular value, the
    accuracy of the rounded imputed values on hidden observed cells of ``score_columns``; the
    best (ties: the larger shrinkage).  Also the per-column accuracy at the chosen value."""
    hidden = holdout_cells(X, seed=seed)
    rows, cols = np.unravel_index(hidden, X.shape)
    keep = np.isin(cols, score_columns)
    rows, cols, hidden = rows[keep], cols[keep], hidden[keep]
    masked = X.copy()
    masked.flat[hidden] = np.nan
    sigma = max_singular_value(masked)
    truth = X.flat[hidden]
    trials = []
    for fraction in fractions:
        completed, rank, iters = soft_impute(masked, sigma * fraction)
        hit = np.round(completed.flat[hidden]) == truth
        trials.append({"fraction": fraction, "accuracy": float(hit.mean()), "rank": rank,
                       "iterations": iters, "hit": hit})
    best = max(trials, key=lambda t: (round(t["accuracy"], 12), t["fraction"]))
    per_column = pd.Series(best["hit"]).groupby(cols).mean()
    return {"fraction": best["fraction"], "accuracy": best["accuracy"], "n_heldout": int(len(hidden)),
            "per_column": {int(c): float(a) for c, a in per_column.items()},
            "trials": [{k: v for k, v in t.items() if k != "hit"} for t in trials]}


@lru_cache(maxsize=1)
def typological_matrix() -> tuple[list[str], list[str], np.ndarray, dict[str, int]]:
    """(ISO codes, columns, values with NaN as missing, {left-out code: its observed cells}):
    URIEL's S_/P_/INV_ union over sources and Grambank's S_/M_ columns, for the languages with at
    least :data:`MIN_OBSERVED` observed cells (the others are left out of the fit)."""
    root = Path(str(resources.files("urielplus").joinpath("database")))
    with np.load(root / "features.npz") as npz:  # plain arrays: never allow_pickle (issue 16's audit)
        uriel = np.max(npz["data"], axis=-1).astype(np.float64)
        uriel_langs = [str(x) for x in npz["langs"]]
        uriel_cols = [f"URIEL_{f}" for f in npz["feats"]]
    uriel[uriel < 0] = np.nan
    table = pd.read_csv(grambank.urielplus_csv_dir() / "grambank_data.csv")
    gb_cols = [c for c in table.columns if c.startswith(("S_", "M_"))]
    gb = table[gb_cols].to_numpy(dtype=np.float64)
    gb = np.where(gb < 0, np.nan, (gb > 0).astype(np.float64))
    iso_to_row = grambank._grambank()[0]
    codes = sorted(set(uriel_langs) | set(iso_to_row))
    u_index = {c: i for i, c in enumerate(uriel_langs)}
    X = np.full((len(codes), len(uriel_cols) + len(gb_cols)), np.nan)
    for i, code in enumerate(codes):
        if code in u_index:
            X[i, :len(uriel_cols)] = uriel[u_index[code]]
        if code in iso_to_row:
            X[i, len(uriel_cols):] = gb[iso_to_row[code]]
    n_observed = (~np.isnan(X)).sum(axis=1)
    keep = n_observed >= MIN_OBSERVED
    too_little = {c: int(k) for c, k, ok in zip(codes, n_observed, keep) if not ok}
    return [c for c, k in zip(codes, keep) if k], uriel_cols + gb_cols, X[keep], too_little


def impute_grambank(method: str = "softimpute") -> dict:
    """:func:`compute_imputation`, read from / written to ``cache_dir()/features``."""
    import hashlib
    import json

    from .. import __version__
    from .._io import atomic_write_with
    from ..paths import cache_dir

    if method != "softimpute":
        raise ValueError(f"unknown imputation method {method!r}")

    codes, columns, X, _ = typological_matrix()
    h = hashlib.sha256(json.dumps([method, grambank.urielplus_version(), __version__, MIN_OBSERVED, SEED,
                                   list(SHRINKAGE_FRACTIONS), codes, columns]).encode())
    h.update(np.nan_to_num(X, nan=-1.0).tobytes())
    tag = f"{method}-{h.hexdigest()[:16]}"
    path = cache_dir() / "features" / f"grambank_{tag}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as f:
            codes = [str(c) for c in f["codes"]]
            return {"values": dict(zip(codes, f["values"])), "imputed": dict(zip(codes, f["imputed"])),
                    "confidence": dict(zip(codes, f["confidence"])),
                    "too_little": json.loads(str(f["too_little"])), "parameters": json.loads(str(f["parameters"]))}
    result = compute_imputation(method)
    codes = sorted(result["values"])

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez does not append ".npz" to it
            np.savez(f, codes=np.array(codes), values=np.array([result["values"][c] for c in codes]),
                     imputed=np.array([result["imputed"][c] for c in codes]),
                     confidence=np.array([result["confidence"][c] for c in codes]),
                     too_little=json.dumps(result["too_little"]), parameters=json.dumps(result["parameters"]))

    atomic_write_with(path, write)
    return result


@lru_cache(maxsize=2)
def compute_imputation(method: str = "softimpute") -> dict:
    """The completed morphological (``M_``) block for every language, with per-cell confidence.

    Returns ``{"values": {iso: (75,) 0/1}, "imputed": {iso: (75,) bool}, "confidence": {iso: (75,)
    float, NaN where observed}, "too_little": {iso: n observed}, "parameters": {...}}``.  The
    ``M_`` columns are in the order of :func:`xltstats.features.grambank._grambank`."""
    if method != "softimpute":
        raise ValueError(f"unknown imputation method {method!r}")
    codes, columns, X, too_little = typological_matrix()
    m_cols = np.array([j for j, c in enumerate(columns) if c.startswith("M_")])
    choice = choose_shrinkage(X, m_cols)
    sigma = max_singular_value(X)
    completed, rank, iters = soft_impute(X, sigma * choice["fraction"])
    completed = np.round(completed)
    confidence_of = np.array([choice["per_column"].get(int(j), np.nan) for j in m_cols])
    values, imputed, confidence = {}, {}, {}
    for i, code in enumerate(codes):
        gap = np.isnan(X[i, m_cols])
        values[code] = np.where(gap, completed[i, m_cols], X[i, m_cols])
        imputed[code] = gap
        confidence[code] = np.where(gap, confidence_of, np.nan)
    parameters = {
        "method": "softimpute", "reference": "URIEL+ 1.3.2 softimpute_imputation; Mazumder, Hastie & "
        "Tibshirani 2010", "matrix": f"{len(codes)} languages x {len(columns)} columns (URIEL S_/P_/INV_ "
        "union over sources + Grambank S_/M_)", "max_singular_value": sigma,
        "shrinkage_fraction": choice["fraction"], "shrinkage": sigma * choice["fraction"],
        "fractions_tried": list(SHRINKAGE_FRACTIONS), "heldout_share": HOLDOUT_SHARE, "seed": SEED,
        "max_iters": MAX_ITERS, "convergence": CONVERGENCE, "rank": rank, "iterations": iters,
        "overall_accuracy": choice["accuracy"], "n_heldout_m_cells": choice["n_heldout"],
        "trials": choice["trials"], "min_observed": MIN_OBSERVED,
        "confidence": "held-out accuracy of the filled value's Grambank feature at the chosen shrinkage"}
    return {"values": values, "imputed": imputed, "confidence": confidence, "too_little": too_little,
            "parameters": parameters}


IMPUTED_COLUMNS = ("morphological_distance_imputed", "morphological_distance_confidence")


def imputed_pair_features(left_codes, right_codes, method: str = "softimpute") -> dict[str, np.ndarray]:
    """``morphological_distance`` over the completed ``M_`` vectors (cosine, as
    :func:`grambank.morphological_pair_features`), the number of imputed features the pair used
    (``morphological_distance_imputed``) and their mean confidence.  NaN where a language has no
    completed row (not in URIEL nor Grambank, or fewer than :data:`MIN_OBSERVED` observations)."""
    imp = impute_grambank(method)
    n = len(left_codes)
    out = {"morphological_distance": np.full(n, np.nan), IMPUTED_COLUMNS[0]: np.full(n, np.nan),
           IMPUTED_COLUMNS[1]: np.full(n, np.nan)}
    for k, (a, b) in enumerate(zip(left_codes, right_codes)):
        a, b = grambank_code(a), grambank_code(b)
        if a not in imp["values"] or b not in imp["values"]:
            continue
        xa, xb = imp["values"][a], imp["values"][b]
        na, nb = np.sqrt(xa.sum()), np.sqrt(xb.sum())
        if na > 0 and nb > 0:
            d = 0.0 if a == b else float(np.round(np.clip(1.0 - xa @ xb / (na * nb), 0.0, 2.0), 12))
            out["morphological_distance"][k] = d
        used = imp["imputed"][a] | imp["imputed"][b]
        out[IMPUTED_COLUMNS[0]][k] = float(imp["imputed"][a].sum() + imp["imputed"][b].sum())
        if used.any():
            conf = np.concatenate([imp["confidence"][a][imp["imputed"][a]],
                                   imp["confidence"][b][imp["imputed"][b]]])
            out[IMPUTED_COLUMNS[1]][k] = float(np.nanmean(conf))
    return out


def grambank_code(code: str) -> str:
    """The ISO code under which the typological matrix holds a language (macrolanguage and variety
    stand-ins as :mod:`grambank` uses them, where the code itself has no row)."""
    codes = _matrix_codes()
    if code in codes:
        return code
    stand_in = grambank.MACROLANGUAGE_STAND_IN.get(code)
    return stand_in if stand_in in codes else code


@lru_cache(maxsize=1)
def _matrix_codes() -> frozenset[str]:
    """The codes of :func:`typological_matrix`, as a set built once (looked up twice per pair)."""
    return frozenset(typological_matrix()[0])
