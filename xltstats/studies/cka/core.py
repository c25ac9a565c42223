"""Centered kernel alignment (CKA) between two representations of the same n items, in numpy.

Definitions (Kornblith et al. 2019; Gretton et al. 2005; Song et al. 2012):

* Gram matrices: linear ``K = X Xᵀ``; RBF ``K_ij = exp(-D_ij / (2 σ²))`` with ``D_ij = |x_i - x_j|²``.
  The bandwidth rule is named, because conventions differ (SPEC §6.7):

  - ``"muller"`` (Muller et al. 2021, ``hidden_similarity/cka.py``): ``σ² = median(D_ij : D_ij ≠ 0)``,
    computed separately for each matrix;
  - ``"kornblith"`` (Kornblith et al. 2019, ``gram_rbf(x, threshold)``):
    ``σ² = threshold² · median(D)`` over all n² entries, the zero diagonal included.

* Biased HSIC: ``HSIC(K, L) = tr(K H L H) / (n - 1)²`` with ``H = I - 11ᵀ/n``;
  ``CKA = HSIC(K, L) / sqrt(HSIC(K, K) · HSIC(L, L))``.  For linear kernels this equals the feature-space
  form ``|Yᶜᵀ Xᶜ|²_F / (|Xᶜᵀ Xᶜ|_F |Yᶜᵀ Yᶜ|_F)`` on column-centred X, Y.
* Debiased (unbiased) HSIC of Song et al. (2012), with ``K̃``, ``L̃`` the Gram matrices with zeroed diagonals:
  ``HSIC_u = [tr(K̃ L̃) + 1ᵀK̃1 · 1ᵀL̃1 / ((n-1)(n-2)) - 2/(n-2) · 1ᵀK̃L̃1] / (n (n-3))``;
  debiased CKA is ``HSIC_u(K, L) / sqrt(HSIC_u(K, K) HSIC_u(L, L))`` (needs n ≥ 4; it can be
  slightly negative, and is undefined (NaN) when a self-HSIC is not positive).

Biased CKA depends on n when n is not much larger than the dimension (two independent
768-dimensional Gaussian matrices: ≈0.97 at n=25, 0.66 at n=400), so every result here carries
``n_sentences``; debiased CKA is ≈0 on independent data at any n.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import InputError

KERNELS = ("linear", "rbf")
BANDWIDTHS = ("muller", "kornblith")


def _matrix(X, name: str) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise InputError(f"{name} must be a 2-d array (items x features), got shape {X.shape}")
    if not np.isfinite(X).all():
        raise InputError(f"{name} has non-finite values")
    return X


def _pair(X, Y) -> tuple[np.ndarray, np.ndarray]:
    X, Y = _matrix(X, "X"), _matrix(Y, "Y")
    if X.shape[0] != Y.shape[0]:
        raise InputError(f"CKA needs the same items in both representations: X has {X.shape[0]} rows, "
                         f"Y has {Y.shape[0]}")
    if X.shape[0] < 2:
        raise InputError(f"CKA needs at least 2 items, got {X.shape[0]}")
    return X, Y


def squared_distances(X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    sq = np.einsum("ij,ij->i", X, X)
    D = sq[:, None] + sq[None, :] - 2.0 * (X @ X.T)
    np.maximum(D, 0.0, out=D)
    np.fill_diagonal(D, 0.0)
    return D


def gram_linear(X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    return X @ X.T


def rbf_sigma2(D: np.ndarray, bandwidth: str = "muller", threshold: float = 1.0) -> float:
    """The RBF variance σ² from a squared-distance matrix by the named rule (module docstring)."""
    if bandwidth == "muller":
        nonzero = D[D != 0]
        if nonzero.size == 0:
            raise InputError("RBF bandwidth (muller): all items are identical (no non-zero distance)")
        return float(np.median(nonzero))
    if bandwidth == "kornblith":
        if not threshold > 0:
            raise InputError(f"RBF threshold must be positive, got {threshold}")
        med = float(np.median(D))
        if med == 0:
            raise InputError("RBF bandwidth (kornblith): the median squared distance is 0 "
                             "(more than half the item pairs are identical)")
        return threshold ** 2 * med
    raise InputError(f"unknown RBF bandwidth rule {bandwidth!r}; known: {', '.join(BANDWIDTHS)}")


def gram_rbf_from_distances(D: np.ndarray, bandwidth: str = "muller", threshold: float = 1.0) -> np.ndarray:
    return np.exp(-D / (2.0 * rbf_sigma2(D, bandwidth, threshold)))


def gram_rbf(X, bandwidth: str = "muller", threshold: float = 1.0) -> np.ndarray:
    return gram_rbf_from_distances(squared_distances(X), bandwidth, threshold)


def center_gram(K: np.ndarray) -> np.ndarray:
    """``H K H`` (double centring)."""
    K = np.asarray(K, dtype=np.float64)
    row = K.mean(axis=0)
    return K - row[None, :] - K.mean(axis=1)[:, None] + row.mean()


def hsic_biased(K: np.ndarray, L: np.ndarray) -> float:
    n = K.shape[0]
    return float(np.sum(center_gram(K) * center_gram(L)) / (n - 1) ** 2)


def hsic_unbiased(K: np.ndarray, L: np.ndarray) -> float:
    """Song et al. (2012) unbiased HSIC estimator (needs n >= 4)."""
    n = K.shape[0]
    if n < 4:
        raise InputError(f"debiased CKA needs at least 4 items, got {n}")
    Kt = np.array(K, dtype=np.float64)
    Lt = np.array(L, dtype=np.float64)
    np.fill_diagonal(Kt, 0.0)
    np.fill_diagonal(Lt, 0.0)
    term1 = float(np.sum(Kt * Lt))  # tr(K̃ L̃) for symmetric matrices
    term2 = float(Kt.sum() * Lt.sum()) / ((n - 1) * (n - 2))
    term3 = float(Kt.sum(axis=0) @ Lt.sum(axis=1)) * 2.0 / (n - 2)
    return (term1 + term2 - term3) / (n * (n - 3))


def cka_from_grams(K: np.ndarray, L: np.ndarray, debiased: bool = False) -> float:
    """CKA of two Gram matrices over the same items (NaN when a self-similarity is not positive)."""
    if debiased:
        kl, kk, ll = hsic_unbiased(K, L), hsic_unbiased(K, K), hsic_unbiased(L, L)
    else:  # centre once; the (n-1)^2 factors cancel
        Kc, Lc = center_gram(K), center_gram(L)
        kl, kk, ll = float(np.sum(Kc * Lc)), float(np.sum(Kc * Kc)), float(np.sum(Lc * Lc))
    if not (kk > 0 and ll > 0):
        return float("nan")
    return float(kl / np.sqrt(kk * ll))


def _center_batch(K: np.ndarray) -> np.ndarray:
    col = K.mean(axis=1, keepdims=True)
    row = K.mean(axis=2, keepdims=True)
    return K - col - row + K.mean(axis=(1, 2), keepdims=True)


def _hsic_u_batch(K: np.ndarray, L: np.ndarray) -> np.ndarray:
    """Song et al.'s unbiased HSIC for stacks (B, n, n) whose diagonals are already zero."""
    n = K.shape[1]
    term1 = np.einsum("bij,bij->b", K, L)
    term2 = K.sum(axis=(1, 2)) * L.sum(axis=(1, 2)) / ((n - 1) * (n - 2))
    term3 = np.einsum("bi,bi->b", K.sum(axis=1), L.sum(axis=2)) * 2.0 / (n - 2)
    return (term1 + term2 - term3) / (n * (n - 3))


def cka_from_gram_batch(K: np.ndarray, L: np.ndarray, debiased: bool = False) -> np.ndarray:
    """:func:`cka_from_grams` for stacks of Gram matrices (B, n, n); NaN where undefined."""
    if debiased:
        K, L = K.copy(), L.copy()
        i = np.arange(K.shape[1])
        K[:, i, i] = 0.0
        L[:, i, i] = 0.0
        kl, kk, ll = _hsic_u_batch(K, L), _hsic_u_batch(K, K), _hsic_u_batch(L, L)
    else:
        Kc, Lc = _center_batch(K), _center_batch(L)
        kl = np.einsum("bij,bij->b", Kc, Lc)
        kk = np.einsum("bij,bij->b", Kc, Kc)
        ll = np.einsum("bij,bij->b", Lc, Lc)
    ok = (kk > 0) & (ll > 0)
    out = np.full(K.shape[0], np.nan)
    out[ok] = kl[ok] / np.sqrt(kk[ok] * ll[ok])
    return out


def feature_space_linear_cka(X, Y, debiased: bool = False) -> float:
    """Linear CKA computed from features (O(n d²) instead of O(n² d)); equals the Gram form."""
    X, Y = _pair(X, Y)
    if debiased:
        return cka_from_grams(gram_linear(X), gram_linear(Y), debiased=True)
    X = X - X.mean(axis=0)
    Y = Y - Y.mean(axis=0)
    xy = np.linalg.norm(Y.T @ X) ** 2
    xx = np.linalg.norm(X.T @ X)
    yy = np.linalg.norm(Y.T @ Y)
    if not (xx > 0 and yy > 0):
        return float("nan")
    return float(xy / (xx * yy))


@dataclass(frozen=True)
class Kernel:
    """A kernel choice, recorded with every CKA value."""

    kind: str = "linear"  # linear | rbf
    bandwidth: str | None = None  # rbf: muller | kornblith
    threshold: float = 1.0  # rbf kornblith: σ = threshold · sqrt(median D)
    debiased: bool = False

    def __post_init__(self):
        if self.kind not in KERNELS:
            raise InputError(f"unknown CKA kernel {self.kind!r}; known: {', '.join(KERNELS)}")
        if self.kind == "rbf":
            if self.bandwidth is None:
                object.__setattr__(self, "bandwidth", "muller")
            if self.bandwidth not in BANDWIDTHS:
                raise InputError(f"unknown RBF bandwidth rule {self.bandwidth!r}; known: {', '.join(BANDWIDTHS)}")
        elif self.bandwidth is not None:
            raise InputError("a bandwidth is only meaningful for the rbf kernel")

    @property
    def label(self) -> str:
        if self.kind == "linear":
            return "linear"
        return f"rbf-{self.bandwidth}" + (f"-{self.threshold:g}" if self.bandwidth == "kornblith" else "")

    def base(self, X) -> np.ndarray:
        """What a sub-sample's Gram matrix is computed from: X Xᵀ (linear) or D (rbf)."""
        return gram_linear(X) if self.kind == "linear" else squared_distances(X)

    def gram(self, base: np.ndarray) -> np.ndarray:
        if self.kind == "linear":
            return base
        return gram_rbf_from_distances(base, self.bandwidth, self.threshold)

    def gram_batch(self, bases: np.ndarray) -> np.ndarray:
        """Gram matrices of a stack (B, n, n) of bases; NaN matrices where a bandwidth is undefined."""
        if self.kind == "linear":
            return bases
        B = bases.shape[0]
        flat = bases.reshape(B, -1)
        if self.bandwidth == "muller":  # median of the non-zero entries; distances are >= 0
            ordered = np.sort(flat, axis=1)
            zeros = (ordered == 0).sum(axis=1)
            m = flat.shape[1] - zeros
            lo = zeros + np.maximum(m - 1, 0) // 2
            hi = zeros + np.maximum(m, 1) // 2
            lo, hi = np.minimum(lo, flat.shape[1] - 1), np.minimum(hi, flat.shape[1] - 1)
            take = np.take_along_axis
            sigma2 = 0.5 * (take(ordered, lo[:, None], 1)[:, 0] + take(ordered, hi[:, None], 1)[:, 0])
            sigma2 = np.where(m > 0, sigma2, np.nan)
        else:
            sigma2 = self.threshold ** 2 * np.median(flat, axis=1)
        sigma2 = np.where(sigma2 > 0, sigma2, np.nan)
        return np.exp(-bases / (2.0 * sigma2[:, None, None]))


def cka(X, Y, kernel: str = "linear", *, bandwidth: str | None = None, threshold: float = 1.0,
        debiased: bool = False) -> float:
    """CKA between representations ``X`` (n x d1) and ``Y`` (n x d2) of the same n items."""
    X, Y = _pair(X, Y)
    k = Kernel(kernel, bandwidth, threshold, debiased)
    return cka_from_grams(k.gram(k.base(X)), k.gram(k.base(Y)), debiased)


def _subset(base: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return base[np.ix_(idx, idx)]


def cka_batches(X, Y, n_batches: int = 4, *, kernel: Kernel | None = None) -> dict:
    """CKA on ``n_batches`` disjoint consecutive blocks of the items (not overlapping windows).

    Items beyond ``n_batches · floor(n / n_batches)`` are left out (the count is returned).
    Returns mean, sd (ddof=1), the per-batch values, batch size and the number of items used.
    """
    X, Y = _pair(X, Y)
    kernel = kernel or Kernel()
    n = X.shape[0]
    if not isinstance(n_batches, (int, np.integer)) or n_batches < 1:
        raise InputError(f"n_batches must be a positive integer, got {n_batches!r}")
    size = n // n_batches
    minimum = 4 if kernel.debiased else 2
    if size < minimum:
        raise InputError(f"{n} items cannot make {n_batches} disjoint batches of at least {minimum}")
    values = []
    for b in range(n_batches):
        block = slice(b * size, (b + 1) * size)
        values.append(cka_from_grams(kernel.gram(kernel.base(X[block])), kernel.gram(kernel.base(Y[block])),
                                     kernel.debiased))
    values = np.asarray(values)
    return {"cka_mean": float(values.mean()),
            "cka_sd": float(values.std(ddof=1)) if n_batches > 1 else float("nan"),
            "values": values.tolist(), "batch_size": size, "n_batches": int(n_batches),
            "n_used": size * n_batches, "n_left_out": n - size * n_batches}


def cka_bootstrap(X, Y, *, kernel: Kernel | None = None, n_boot: int = 1000, alpha: float = 0.05,
                  seed: int = 0, method: str = "basic") -> dict:
    """CKA with a bootstrap interval from resampling the n parallel items with replacement
    (``method``: ``basic`` (default) or ``percentile``, see :func:`interval`).

    The Gram (linear) or squared-distance (RBF) matrices are computed once; each resample takes
    the sub-matrix of its items, so one resample costs O(n²), not O(n² d).  RBF bandwidths are
    recomputed on each resample (as they would be on a new sample).
    """
    X, Y = _pair(X, Y)
    kernel = kernel or Kernel()
    n = X.shape[0]
    if kernel.debiased and n < 4:
        raise InputError(f"debiased CKA needs at least 4 items, got {n}")
    bx, by = kernel.base(X), kernel.base(Y)
    estimate = cka_from_grams(kernel.gram(bx), kernel.gram(by), kernel.debiased)
    draws = bootstrap_draws(kernel, bx, by, n_boot, np.random.default_rng(seed))
    low, high, used = interval(estimate, draws, alpha, method)
    return {"cka": estimate, "ci_low": low, "ci_high": high, "n_boot": used, "ci_method": method,
            "n_sentences": n, "kernel": kernel.label, "debiased": kernel.debiased}


def bootstrap_draws(kernel: Kernel, bx: np.ndarray, by: np.ndarray, n_boot: int, rng,
                    chunk_entries: int = 8_000_000) -> np.ndarray:
    """CKA on ``n_boot`` resamples (with replacement) of the items, from precomputed bases.

    Each resample takes the sub-matrix of its items (O(n²)); resamples are processed in stacks
    of at most ``chunk_entries`` matrix entries.  Degenerate resamples give NaN.
    """
    n = bx.shape[0]
    idx = np.sort(rng.integers(0, n, size=(n_boot, n)), axis=1)
    step = max(1, chunk_entries // (n * n))
    out = np.empty(n_boot)
    for start in range(0, n_boot, step):
        sub = idx[start:start + step]
        rows, cols = sub[:, :, None], sub[:, None, :]
        out[start:start + step] = cka_from_gram_batch(kernel.gram_batch(bx[rows, cols]),
                                                      kernel.gram_batch(by[rows, cols]), kernel.debiased)
    return out


def interval(estimate: float, draws: np.ndarray, alpha: float = 0.05, method: str = "basic"):
    """(low, high, number of finite draws).  ``percentile``: the draws' quantiles; ``basic``:
    ``2·estimate − quantiles``, which corrects the upward shift of biased CKA on resamples (a
    resample repeats items, and repeated items raise biased CKA the way a smaller n does)."""
    ok = draws[np.isfinite(draws)]
    if ok.size == 0 or not np.isfinite(estimate):
        return float("nan"), float("nan"), int(ok.size)
    q_low, q_high = np.quantile(ok, [alpha / 2, 1 - alpha / 2])
    if method == "percentile":
        return float(q_low), float(q_high), int(ok.size)
    if method == "basic":
        return float(2 * estimate - q_high), float(2 * estimate - q_low), int(ok.size)
    raise InputError(f"unknown interval method {method!r}; use basic or percentile")
