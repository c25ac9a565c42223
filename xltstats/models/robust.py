"""Cluster-robust covariances of OLS coefficients: one-way, two-way (Cameron, Gelbach & Miller
2011) and dyadic (pairs of languages).  The choices are documented in :mod:`xltstats.models.ols`,
whose :func:`~xltstats.models.ols.fit_ols` uses them (``cov_type="cluster2"`` / ``"dyadic"``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["cluster2_covariance", "dyadic_covariance"]


def _sandwich(x: np.ndarray, scores_by_cluster: np.ndarray, bread: np.ndarray) -> np.ndarray:
    meat = scores_by_cluster.T @ scores_by_cluster
    return bread @ meat @ bread


def _group_sums(values: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Row sums of ``values`` per group code ``0..n_groups-1`` (zero rows for empty groups),
    through one stable sort and ``reduceat`` rather than ``np.add.at`` (which took seconds at 500k rows)."""
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    out = np.zeros((n_groups, *values.shape[1:]))
    if len(order):
        out[sorted_codes[starts]] = np.add.reduceat(values[order], starts, axis=0)
    return out


def _one_way_cluster(x, resid, bread, labels, rows=None, small_sample=True) -> tuple[np.ndarray, int]:
    """One-way cluster sandwich; ``rows`` (default: each row once) lets a row count in several
    clusters (its index repeated with each cluster's label)."""
    codes, uniques = pd.factorize(pd.Series(labels), sort=True)
    n_clusters = len(uniques)
    scores = x * resid[:, None]
    scores = _group_sums(scores if rows is None else scores[rows], codes, n_clusters)
    n, p = x.shape
    factor = n_clusters / (n_clusters - 1) * (n - 1) / (n - p) if n_clusters > 1 else np.nan
    return (factor if small_sample else 1.0) * _sandwich(x, scores, bread), n_clusters


def _clip_psd(cov: np.ndarray) -> tuple[np.ndarray, bool]:
    cov = (cov + cov.T) / 2
    eigval, eigvec = np.linalg.eigh(cov)
    fixed = bool((eigval < -1e-12 * max(1.0, abs(eigval).max())).any())
    if fixed:
        cov = (eigvec * np.clip(eigval, 0, None)) @ eigvec.T
    return cov, fixed


def dyadic_covariance(x: np.ndarray, resid: np.ndarray, source, target, *,
                      small_sample: bool = True) -> tuple[np.ndarray, dict]:
    """Dyadic cluster-robust covariance for unordered pairs (see the module docstring): the
    covariance and a dict with the numbers of language and pair clusters and ``psd_fixed``.
    Without ``small_sample`` the meat is exactly ``sum over row pairs (i, j) that share a language
    of s_i s_j'`` (``s_i = x_i e_i``)."""
    x = np.asarray(x, float)
    resid = np.asarray(resid, float)
    bread = np.linalg.inv(x.T @ x)
    source = pd.Series(np.asarray(source)).astype(str).to_numpy()
    target = pd.Series(np.asarray(target)).astype(str).to_numpy()
    distinct = np.flatnonzero(source != target)
    rows = np.concatenate([np.arange(len(source)), distinct])
    v_language, g_language = _one_way_cluster(x, resid, bread, np.concatenate([source, target[distinct]]), rows,
                                              small_sample)
    cov = v_language
    g_pair = 0
    if len(distinct):
        pair = pd.Series(source[distinct]) + "\x1f" + pd.Series(target[distinct])
        v_pair, g_pair = _one_way_cluster(x, resid, bread, pair, distinct, small_sample)
        cov = v_language - v_pair
    cov, fixed = _clip_psd(cov)
    return cov, {"n_language_clusters": g_language, "n_pair_clusters": g_pair, "psd_fixed": fixed}


def cluster2_covariance(x: np.ndarray, resid: np.ndarray, source, target) -> tuple[np.ndarray, dict]:
    """Cameron-Gelbach-Miller two-way cluster-robust covariance of OLS coefficients.

    Returns the covariance and a dict with the cluster counts and whether negative eigenvalues had to
    be clipped.
    """
    x = np.asarray(x, float)
    resid = np.asarray(resid, float)
    bread = np.linalg.inv(x.T @ x)
    source = pd.Series(np.asarray(source)).astype(str)
    target = pd.Series(np.asarray(target)).astype(str)
    v_source, g_source = _one_way_cluster(x, resid, bread, source)
    v_target, g_target = _one_way_cluster(x, resid, bread, target)
    v_both, g_both = _one_way_cluster(x, resid, bread, source + "\x1f" + target)
    cov, fixed = _clip_psd(v_source + v_target - v_both)
    return cov, {"n_source_clusters": g_source, "n_target_clusters": g_target,
                 "n_pair_clusters": g_both, "psd_fixed": fixed}
