"""Linear mixed-effects models with crossed random effects, fitted as lme4 fits them.

The fast path follows Bates, Maechler, Bolker & Walker (2015), "Fitting Linear Mixed-Effects
Models Using lme4", J. Stat. Softw. 67(1), sections 3.1-3.6:

* random effects ``b = Lambda_theta u`` with spherical ``u ~ N(0, sigma^2 I)``, where the relative
  covariance factor ``Lambda_theta`` is block diagonal, one lower-triangular ``k x k`` template
  ``T`` per random term repeated over that term's levels;
* for given ``theta`` the penalised least-squares problem is solved through the Cholesky factor of
  ``A = Lambda' Z'Z Lambda + I``, which gives ``beta``, the penalised residual sum of squares
  ``r^2`` and ``log|L|^2``;
* ``sigma`` and ``beta`` are profiled out, leaving a deviance (ML) or REML criterion in ``theta``
  only, minimised under ``theta_diag >= 0``.

Everything the deviance needs is formed once from the sufficient statistics ``Z'Z, Z'X, X'X,
Z'y, X'y, y'y``, so one evaluation costs nothing that grows with the number of rows.  When the
random-effect dimension is small ``A`` is factored densely (LAPACK ``potrf``); when it
is large the term with the most levels (whose block of ``A`` is block diagonal) is eliminated with
a Schur complement so that only the remaining terms are factored densely.

Variance components are reported as variances (``sigma^2 T T'``), not standard deviations.
``llf`` is lme4's ``logLik``: minus half the REML criterion for REML fits, minus half the deviance
for ML fits, including the ``2 pi`` constants.
"""
from __future__ import annotations

import contextlib
import math
import threading
import warnings as _warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.linalg as sla
import scipy.optimize as sopt
import scipy.sparse as sp
from scipy import stats

from xltstats.errors import ConfigError, InputError
from xltstats.models.formula import (ParsedFormula, build_random_terms, parse_formula,
                                     referenced_columns)

#: Below this random-effect dimension A is factored densely in full.
DENSE_LIMIT = 1500
#: lme4's default tolerance for isSingular(): a diagonal theta below it is "at the boundary".
SINGULAR_TOL = 1e-4
#: lme4's check.conv.grad tolerance on the Hessian-scaled gradient.
GRADIENT_TOL = 2e-3


_dpotrf, _dpotrs = sla.lapack.get_lapack_funcs(("potrf", "potrs"), dtype=np.float64)


def _cho_factor(A):
    """Lower Cholesky factor via LAPACK directly (scipy.linalg's wrapper costs more than the
    factorisation of the small matrices used here); raises LinAlgError if not positive definite."""
    c, info = _dpotrf(A, lower=1, clean=0, overwrite_a=0)
    if info != 0:
        raise np.linalg.LinAlgError("matrix is not positive definite")
    return c


def _cho_solve(c, B):
    x, info = _dpotrs(c, B, lower=1)
    if info != 0:  # pragma: no cover - only on invalid arguments
        raise np.linalg.LinAlgError(f"potrs failed with info={info}")
    return x


class MixedModelWarning(UserWarning):
    """A mixed-model fit finished with a problem worth a look (singular, not converged, ...)."""


# --------------------------------------------------------------------------------------------
# Design
# --------------------------------------------------------------------------------------------

@dataclass
class _Design:
    """Model matrices and the fixed structure of Lambda_theta (independent of theta)."""

    X: np.ndarray
    y: np.ndarray
    fixed_names: list
    terms: list                 # RandomTerm
    Z: sp.csc_matrix            # n x q
    offsets: list               # first Z column of each term
    theta_slices: list          # slice of theta belonging to each term
    theta_lower: np.ndarray     # lower bounds (0 for diagonal elements, -inf otherwise)
    lambda_rows: np.ndarray     # sparsity pattern of Lambda: rows, cols, index into theta
    lambda_cols: np.ndarray
    lambda_theta_index: np.ndarray
    x_design_info: object
    term_design_infos: list

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def p(self) -> int:
        return self.X.shape[1]

    @property
    def q(self) -> int:
        return self.Z.shape[1]

    @property
    def n_theta(self) -> int:
        return len(self.theta_lower)

    def lambda_matrix(self, theta: np.ndarray) -> sp.csr_matrix:
        return sp.csr_matrix((theta[self.lambda_theta_index], (self.lambda_rows, self.lambda_cols)),
                             shape=(self.q, self.q))

    def theta_template(self, theta: np.ndarray, term_index: int) -> np.ndarray:
        """The lower-triangular ``T`` of one term (lme4 stores it column by column)."""
        k = self.terms[term_index].n_columns
        T = np.zeros((k, k))
        values = theta[self.theta_slices[term_index]]
        rows, cols = _lower_triangle_colwise(k)
        T[rows, cols] = values
        return T


def _lower_triangle_colwise(k: int):
    rows, cols = [], []
    for j in range(k):
        for i in range(j, k):
            rows.append(i)
            cols.append(j)
    return np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64)


def _build_design(X, y, fixed_names, terms, x_design_info, term_design_infos) -> _Design:
    n = len(y)
    offsets, theta_slices, lower = [], [], []
    z_rows, z_cols, z_vals = [], [], []
    l_rows, l_cols, l_idx = [], [], []
    offset = 0
    theta_pos = 0
    for term in terms:
        k, levels = term.n_columns, term.n_levels
        offsets.append(offset)
        r, c = _lower_triangle_colwise(k)
        theta_slices.append(slice(theta_pos, theta_pos + len(r)))
        lower.extend(0.0 if i == j else -np.inf for i, j in zip(r, c))
        for j in range(k):
            z_rows.append(np.arange(n))
            z_cols.append(offset + term.codes * k + j)
            z_vals.append(term.matrix[:, j])
        base = offset + np.arange(levels) * k
        for t, (i, j) in enumerate(zip(r, c)):
            l_rows.append(base + i)
            l_cols.append(base + j)
            l_idx.append(np.full(levels, theta_pos + t))
        offset += k * levels
        theta_pos += len(r)
    Z = sp.csc_matrix((np.concatenate(z_vals), (np.concatenate(z_rows), np.concatenate(z_cols))),
                      shape=(n, offset))
    Z.eliminate_zeros()
    return _Design(X=X, y=y, fixed_names=fixed_names, terms=terms, Z=Z, offsets=offsets,
                   theta_slices=theta_slices, theta_lower=np.array(lower),
                   lambda_rows=np.concatenate(l_rows), lambda_cols=np.concatenate(l_cols),
                   lambda_theta_index=np.concatenate(l_idx).astype(np.int64),
                   x_design_info=x_design_info, term_design_infos=term_design_infos)


# --------------------------------------------------------------------------------------------
# Profiled deviance
# --------------------------------------------------------------------------------------------

class _ProfiledDeviance:
    """The profiled deviance / REML criterion of lme4 as a function of theta.

    Holds only the sufficient statistics; ``y`` can be swapped (``set_response``) for the
    parametric bootstrap without recomputing anything that depends on ``Z`` and ``X`` alone.
    """

    def __init__(self, design: _Design, reml: bool):
        self.design = design
        self.reml = reml
        self.n, self.p, self.q = design.n, design.p, design.q
        Z, X = design.Z, design.X
        ZtZ = (Z.T @ Z).tocsc()
        self.ZtX = np.asarray(Z.T @ X)
        self.XtX = X.T @ X
        self.all_intercepts = all(t.n_columns == 1 for t in design.terms)
        self.schur = None
        self.diag_schur = None
        if self.all_intercepts and len(design.terms) >= 2 and self.q - max(
                t.n_levels for t in design.terms) <= 6000:
            self._setup_diag_schur(ZtZ)
        elif self.q <= DENSE_LIMIT:
            self.ZtZ = ZtZ.toarray()
        else:
            self._setup_schur(ZtZ)
        self.set_response(design.y)

    def set_response(self, y: np.ndarray) -> None:
        Z, X = self.design.Z, self.design.X
        self.y = y
        self.Zty = np.asarray(Z.T @ y).ravel()
        self.Xty = X.T @ y
        self.yty = float(y @ y)
        self.ZtXy = np.column_stack([self.ZtX, self.Zty])

    # -- random intercepts only: Lambda is diagonal; eliminate the factor with most levels ----
    def _setup_diag_schur(self, ZtZ: sp.csc_matrix) -> None:
        d = self.design
        big = int(np.argmax([t.n_levels for t in d.terms]))
        start, stop = d.offsets[big], d.offsets[big] + d.terms[big].n_levels
        rest = np.concatenate([np.arange(0, start), np.arange(stop, self.q)]).astype(np.int64)
        bigi = np.arange(start, stop)
        ZtZ = ZtZ.tocsr()
        order = np.argsort(d.lambda_rows)
        self.diag_schur = dict(
            rest=rest, bigi=bigi,
            theta_rest=d.lambda_theta_index[order][rest],   # theta index of each rest column
            theta_big=int(d.lambda_theta_index[order][start]),
            ZtZ_rr=ZtZ[rest][:, rest].toarray(),
            ZtZ_rb=ZtZ[rest][:, bigi].toarray(),
            ZtZ_bb=np.asarray(ZtZ[bigi][:, bigi].diagonal()).ravel())

    def _factor_diag_schur(self, theta):
        s = self.diag_schur
        lam_r = theta[s["theta_rest"]]
        lam_b = theta[s["theta_big"]]
        a_bb = lam_b * lam_b * s["ZtZ_bb"] + 1.0               # diagonal block, > 0
        A_rb = (lam_r[:, None] * s["ZtZ_rb"]) * lam_b
        A_rb_scaled = A_rb / a_bb
        S = s["ZtZ_rr"] * np.outer(lam_r, lam_r) - A_rb_scaled @ A_rb.T
        S[np.diag_indices_from(S)] += 1.0
        try:
            cf = _cho_factor(S)
        except np.linalg.LinAlgError:
            return None
        logdet = float(np.sum(np.log(a_bb))) + 2.0 * float(np.sum(np.log(np.diag(cf))))
        rest, bigi = s["rest"], s["bigi"]
        lam = np.empty(self.q)
        lam[rest] = lam_r
        lam[bigi] = lam_b

        def solve(B):
            B = np.asarray(B, dtype=float)
            vec = B.ndim == 1
            if vec:
                B = B[:, None]
            Br, Bb = B[rest], B[bigi]
            xr = _cho_solve(cf, Br - A_rb_scaled @ Bb)
            xb = (Bb - A_rb.T @ xr) / a_bb[:, None]
            out = np.empty_like(B)
            out[rest] = xr
            out[bigi] = xb
            return out[:, 0] if vec else out

        def lam_t(M):
            return lam[:, None] * M if M.ndim == 2 else lam * M

        return logdet, solve, lam_t

    # -- Schur complement over the term with the most levels ---------------------------------
    def _setup_schur(self, ZtZ: sp.csc_matrix) -> None:
        d = self.design
        sizes = [t.n_columns * t.n_levels for t in d.terms]
        big = int(np.argmax(sizes))
        k_big = d.terms[big].n_columns
        start = d.offsets[big]
        stop = start + sizes[big]
        rest = np.concatenate([np.arange(0, start), np.arange(stop, self.q)]).astype(np.int64)
        bigi = np.arange(start, stop)
        if len(rest) > 6000:
            raise ConfigError(
                f"the random effects have {self.q} columns, {len(rest)} of them outside the largest "
                "term; models this large are not supported by the dense/Schur solver")
        self.schur = dict(big=big, k=k_big, rest=rest, bigi=bigi, n_levels=d.terms[big].n_levels)
        ZtZ = ZtZ.tocsr()
        self.ZtZ_rr = ZtZ[rest][:, rest].toarray()
        self.ZtZ_rb = ZtZ[rest][:, bigi].toarray()
        blocks = ZtZ[bigi][:, bigi].toarray() if sizes[big] <= 4000 else None
        if blocks is None:
            coo = ZtZ[bigi][:, bigi].tocoo()
            L = d.terms[big].n_levels
            bb = np.zeros((L, k_big, k_big))
            lev_r, lev_c = coo.row // k_big, coo.col // k_big
            keep = lev_r == lev_c
            np.add.at(bb, (lev_r[keep], coo.row[keep] % k_big, coo.col[keep] % k_big), coo.data[keep])
            self.ZtZ_bb = bb
        else:
            L = d.terms[big].n_levels
            self.ZtZ_bb = np.stack([blocks[i * k_big:(i + 1) * k_big, i * k_big:(i + 1) * k_big]
                                    for i in range(L)])
        block = np.arange(k_big)
        lev = np.arange(d.terms[big].n_levels)[:, None, None] * k_big
        self.schur["block_pattern"] = (
            (lev + block[None, :, None] + 0 * block[None, None, :]).ravel(),
            (lev + 0 * block[None, :, None] + block[None, None, :]).ravel())

    # -- evaluation ---------------------------------------------------------------------------
    def factor(self, theta: np.ndarray):
        """Return (logdet A, solve) where solve(B) = A^{-1} B, and Lambda; None if not PD."""
        d = self.design
        if self.diag_schur is not None:
            return self._factor_diag_schur(theta)
        if self.schur is None:
            if self.all_intercepts:
                lam = theta[d.lambda_theta_index[np.argsort(d.lambda_rows)]]
                A = self.ZtZ * np.outer(lam, lam)
                Lam = None
                lam_diag = lam
            else:
                Lam = d.lambda_matrix(theta)
                B = np.asarray(Lam.T @ self.ZtZ)
                A = np.asarray(Lam.T @ B.T).T
                lam_diag = None
            A[np.diag_indices_from(A)] += 1.0
            try:
                cf = _cho_factor(A)
            except np.linalg.LinAlgError:
                return None
            logdet = 2.0 * float(np.sum(np.log(np.diag(cf))))

            def solve(B):
                return _cho_solve(cf, B)

            def lam_t(M):
                return lam_diag[:, None] * M if Lam is None else np.asarray(Lam.T @ M)

            return logdet, solve, lam_t
        return self._factor_schur(theta)

    def _factor_schur(self, theta):
        d = self.design
        s = self.schur
        k, L = s["k"], s["n_levels"]
        rest, bigi = s["rest"], s["bigi"]
        nr = len(rest)
        Lam = d.lambda_matrix(theta)
        Lam_rr = Lam[rest][:, rest]
        T = d.theta_template(theta, s["big"])
        # A_bb: one k x k block T' B_l T + I per level of the big term
        Abb = np.matmul(T.T, np.matmul(self.ZtZ_bb, T)) + np.eye(k)
        try:
            Cbb = np.linalg.cholesky(Abb)
        except np.linalg.LinAlgError:
            return None
        logdet_bb = 2.0 * float(np.sum(np.log(np.diagonal(Cbb, axis1=1, axis2=2))))
        block_rows, block_cols = s["block_pattern"]
        Abb_inv = sp.csr_matrix((np.linalg.inv(Abb).ravel(), (block_rows, block_cols)),
                                shape=(L * k, L * k))
        Lam_bb = sp.csr_matrix((np.tile(T.ravel(), L), (block_rows, block_cols)),
                               shape=(L * k, L * k))
        if nr:
            Arr = np.asarray(Lam_rr.T @ np.asarray(Lam_rr.T @ self.ZtZ_rr).T).T
            Arr[np.diag_indices_from(Arr)] += 1.0
            # A_rb = Lam_r' ZtZ_rb Lam_b, and A_rb A_bb^{-1}, as sparse-times-dense products
            Arb = np.asarray(Lam_bb.T @ np.asarray(Lam_rr.T @ self.ZtZ_rb).T).T
            ArbAinv = np.asarray(Abb_inv.T @ Arb.T).T
            S = Arr - ArbAinv @ Arb.T
            try:
                cf = _cho_factor(S)
            except np.linalg.LinAlgError:
                return None
            logdet = logdet_bb + 2.0 * float(np.sum(np.log(np.diag(cf))))
        else:  # a single random term: A is block diagonal
            cf, logdet, Arb, ArbAinv = None, logdet_bb, None, None

        def solve(B):
            B = np.asarray(B, dtype=float)
            vec = B.ndim == 1
            if vec:
                B = B[:, None]
            Br, Bb = B[rest], B[bigi]
            if nr:
                xr = _cho_solve(cf, Br - ArbAinv @ Bb)
                xb = np.asarray(Abb_inv @ (Bb - Arb.T @ xr))
            else:
                xr = Br
                xb = np.asarray(Abb_inv @ Bb)
            out = np.empty_like(B)
            out[rest] = xr
            out[bigi] = xb
            return out[:, 0] if vec else out

        def lam_t(M):
            return np.asarray(Lam.T @ M)

        return logdet, solve, lam_t

    def solve_pls(self, theta: np.ndarray):
        """Solve the penalised least squares problem; returns a dict or None if not PD."""
        fac = self.factor(theta)
        if fac is None:
            return None
        logdet_L, solve, lam_t = fac
        p = self.p
        W = lam_t(self.ZtXy)                      # Lambda' [Z'X, Z'y]
        sol = solve(W)
        M = W.T @ sol
        RXtRX = self.XtX - M[:p, :p]
        rhs = self.Xty - M[:p, p]
        try:
            cfx = _cho_factor(RXtRX)
        except np.linalg.LinAlgError:
            return None
        beta = _cho_solve(cfx, rhs)
        logdet_RX = 2.0 * float(np.sum(np.log(np.diag(cfx))))
        r2 = self.yty - M[p, p] - float(rhs @ beta)
        return dict(logdet_L=logdet_L, logdet_RX=logdet_RX, beta=beta, r2=r2, W=W, sol=sol,
                    solve=solve, lam_t=lam_t, RXtRX=RXtRX, cfx=cfx)

    def deviance_from(self, pls) -> float:
        n, p = self.n, self.p
        r2 = pls["r2"]
        if not r2 > 0:
            return np.inf
        if self.reml:
            nmp = n - p
            return (pls["logdet_L"] + pls["logdet_RX"]
                    + nmp * (1.0 + math.log(2.0 * math.pi * r2 / nmp)))
        return pls["logdet_L"] + n * (1.0 + math.log(2.0 * math.pi * r2 / n))

    def __call__(self, theta: np.ndarray) -> float:
        pls = self.solve_pls(np.asarray(theta, dtype=float))
        if pls is None:
            return np.inf
        return self.deviance_from(pls)


# --------------------------------------------------------------------------------------------
# Optimisation
# --------------------------------------------------------------------------------------------

def _numerical_grad_hess(f, x, lower, h=1e-4):
    """Central-difference gradient and Hessian; one-sided where a bound is close."""
    m = len(x)
    g = np.zeros(m)
    H = np.zeros((m, m))
    f0 = f(x)
    steps = np.where(x - lower < h, h, h)
    forward_only = (x - lower) < h
    fp, fm = np.zeros(m), np.zeros(m)
    for i in range(m):
        e = np.zeros(m)
        e[i] = steps[i]
        fp[i] = f(x + e)
        if forward_only[i]:
            fm[i] = f0
            fpp = f(x + 2 * e)
            g[i] = (-3 * f0 + 4 * fp[i] - fpp) / (2 * steps[i])
            H[i, i] = (fpp - 2 * fp[i] + f0) / steps[i] ** 2
        else:
            fm[i] = f(x - e)
            g[i] = (fp[i] - fm[i]) / (2 * steps[i])
            H[i, i] = (fp[i] - 2 * f0 + fm[i]) / steps[i] ** 2
    for i in range(m):
        for j in range(i + 1, m):
            ei = np.zeros(m)
            ej = np.zeros(m)
            ei[i], ej[j] = steps[i], steps[j]
            if forward_only[i] or forward_only[j]:
                fij = f(x + ei + ej)
                H[i, j] = H[j, i] = (fij - fp[i] - fp[j] + f0) / (steps[i] * steps[j])
            else:
                fpp = f(x + ei + ej)
                fpm = f(x + ei - ej)
                fmp = f(x - ei + ej)
                fmm = f(x - ei - ej)
                H[i, j] = H[j, i] = (fpp - fpm - fmp + fmm) / (4 * steps[i] * steps[j])
    return g, H


def _newton_polish(f, x, fx, lower, iterations=6):
    """Newton steps on the interior coordinates with central-difference derivatives.

    Finite-difference gradients inside L-BFGS-B are too noisy to pin down a flat optimum to
    lme4's precision; a few Newton steps with well-spaced central differences do.  Returns the
    polished point, its criterion, and the Hessian-scaled gradient there (lme4's convergence
    check, ``solve(H, g)``).
    """
    scaled = np.zeros(0)
    for _ in range(iterations):
        interior = ~((lower == 0) & (x < SINGULAR_TOL))
        if not interior.any():
            return x, fx, np.zeros(0)

        def f_interior(z, base=x.copy(), mask=interior):
            full = base.copy()
            full[mask] = z
            return f(full)

        z0 = x[interior]
        h = 1e-4 * max(1.0, float(np.max(np.abs(z0))))
        g, H = _numerical_grad_hess(f_interior, z0, lower[interior], h=h)
        try:
            if np.any(np.linalg.eigvalsh(H) <= 0):
                raise np.linalg.LinAlgError
            step = np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            return x, fx, g
        scaled = step
        if not np.all(np.isfinite(step)) or np.max(np.abs(step)) < 1e-7:
            break
        for shrink in (1.0, 0.5, 0.25, 0.1):
            z_new = np.maximum(z0 - shrink * step, lower[interior])
            f_new = f_interior(z_new)
            if f_new < fx:
                x = x.copy()
                x[interior] = z_new
                fx = f_new
                break
        else:
            break
    return x, fx, scaled


def _optimise(dev: _ProfiledDeviance, theta0: np.ndarray, maxiter: int, restart: bool = True):
    """Minimise the profiled criterion over theta (diagonal elements >= 0).

    Bounded L-BFGS-B, a Newton polish, then a restart from a perturbed point: if the restart ends
    noticeably lower, the first optimum was not the minimum and the restart's is kept (with a
    note).  Convergence means: the optimiser stopped on its tolerance (not the iteration limit),
    and lme4's check passes (max |Hessian-scaled gradient| below 0.002 at interior coordinates).
    Returns theta, criterion, messages, converged flag, number of criterion evaluations.
    """
    lower = dev.design.theta_lower
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
    messages = []
    evals = [0]

    def f(th):
        evals[0] += 1
        return dev(th)

    opts = dict(maxiter=maxiter, ftol=1e-12, gtol=1e-6, maxls=30)
    res = sopt.minimize(f, theta0, method="L-BFGS-B", bounds=bounds, options=opts)
    best_x, best_f = np.maximum(res.x, lower), float(res.fun)
    converged = True
    if res.nit >= maxiter:
        converged = False
        messages.append(f"the optimiser stopped at its limit of {maxiter} iterations "
                        f"({res.message}); the fit has not converged")
    if not np.isfinite(best_f):
        converged = False
        messages.append("the criterion is not finite at the optimum found")
    if not converged:
        return best_x, best_f, messages, False, evals[0]
    best_x, best_f, scaled = _newton_polish(f, best_x, best_f, lower)
    if not restart:
        return best_x, best_f, messages, True, evals[0]
    start = np.where(lower == 0, best_x * 1.3 + 0.1, best_x + 0.1)
    res2 = sopt.minimize(f, start, method="L-BFGS-B", bounds=bounds, options=opts)
    x2, f2 = np.maximum(res2.x, lower), float(res2.fun)
    if f2 < best_f - 1e-6:
        x2, f2, scaled2 = _newton_polish(f, x2, f2, lower)
        if f2 < best_f - 1e-4:
            messages.append(
                f"a restart from a perturbed point found a lower criterion ({f2:.6f} < "
                f"{best_f:.6f}); kept the restart's optimum")
        if f2 < best_f:
            best_x, best_f, scaled = x2, f2, scaled2
    grad_ok = True
    if len(scaled) and np.max(np.abs(scaled)) > GRADIENT_TOL:
        grad_ok = False
        messages.append(
            f"the model failed to converge: max|Hessian-scaled gradient| = "
            f"{np.max(np.abs(scaled)):.3g} > {GRADIENT_TOL}")
    return best_x, best_f, messages, converged and grad_ok, evals[0]


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------

class MixedResults:
    """A fitted linear mixed model (statsmodels-style attributes, lme4-style numbers).

    Attributes
    ----------
    params, bse : Series
        Fixed effects (patsy names; intercept first) and their standard errors
        ``sigma^2 (R_X' R_X)^{-1}`` as in lme4's ``vcov``.
    variance_components : Series
        Variances (not standard deviations) indexed by grouping factor as written in the
        formula (``source``, ``target``, ``task``) and ``Residual``.  For a term with several
        columns the slope variances are named ``group:column`` (e.g. ``source:x``) and the
        intercept keeps the plain group name; covariances are in :attr:`varcorr`.
    varcorr : DataFrame
        lme4's ``VarCorr`` as a table: group, the two column names, variance/covariance, and
        standard deviation/correlation.
    llf, aic, bic, deviance : float
        lme4's ``logLik``, ``AIC``, ``BIC`` (REML values for REML fits, as lme4 reports them).
    theta : ndarray
        The relative covariance parameters (lme4's ``getME(m, "theta")``).
    """

    def __init__(self, *, formula, parsed, data, design, dev, theta, criterion, reml, method,
                 converged, warnings_, n_dropped, n_evaluations, fit_seconds=None):
        self.formula = formula
        self.parsed: ParsedFormula = parsed
        self.data = data
        self.reml = reml
        self.method = method
        self._design: _Design = design
        self._dev = dev
        self.theta = np.asarray(theta, dtype=float)
        self.criterion = float(criterion)
        self.converged = bool(converged)
        self.warnings = list(warnings_)
        self.n_dropped = int(n_dropped)
        self.n_evaluations = n_evaluations
        self.nobs = design.n
        self.fit_seconds = fit_seconds
        self._compute()

    # ---- core numbers -----------------------------------------------------------------------
    def _compute(self):
        d, dev = self._design, self._dev
        pls = dev.solve_pls(self.theta)
        if pls is None:
            raise InputError("the fitted model's system is not positive definite")
        n, p = d.n, d.p
        r2 = pls["r2"]
        self.scale = r2 / (n - p) if self.reml else r2 / n
        self.sigma = math.sqrt(self.scale)
        beta = pls["beta"]
        self.params = pd.Series(beta, index=d.fixed_names, name="estimate")
        RXtRX_inv = _cho_solve(pls["cfx"], np.eye(p))
        self.cov_params_ = pd.DataFrame(self.scale * RXtRX_inv, index=d.fixed_names,
                                        columns=d.fixed_names)
        self.bse = pd.Series(np.sqrt(np.diag(self.cov_params_.to_numpy())), index=d.fixed_names,
                             name="std_error")
        self.tvalues = self.params / self.bse
        self.deviance_value = dev.deviance_from(pls)
        self.llf = -0.5 * self.deviance_value
        self.df_modelwc = p + d.n_theta + 1
        self.aic = -2 * self.llf + 2 * self.df_modelwc
        self.bic = -2 * self.llf + math.log(n) * self.df_modelwc
        # conditional modes: u = A^{-1} (W_y - W_x beta); b = Lambda u
        W = pls["W"]
        u = pls["solve"](W[:, p] - W[:, :p] @ beta)
        Lam = d.lambda_matrix(self.theta)
        self._b = np.asarray(Lam @ u).ravel()
        self._u = u
        self._solve = pls["solve"]
        self.fixed_fitted = d.X @ beta
        self.fittedvalues = pd.Series(self.fixed_fitted + d.Z @ self._b, index=self.data.index,
                                      name="fitted")
        self.resid = pd.Series(d.y - self.fittedvalues.to_numpy(), index=self.data.index,
                               name="resid")
        self._build_varcorr()
        lower = d.theta_lower
        self.singular = bool(np.any((lower == 0) & (self.theta < SINGULAR_TOL)))
        if self.singular and not any("singular" in w for w in self.warnings):
            at_zero = [self._theta_label(i) for i in range(d.n_theta)
                       if lower[i] == 0 and self.theta[i] < SINGULAR_TOL]
            self.warnings.append("boundary (singular) fit: variance at or near zero for "
                                 + ", ".join(at_zero))

    def _theta_label(self, i):
        d = self._design
        for t, sl in enumerate(d.theta_slices):
            if sl.start <= i < sl.stop:
                term = d.terms[t]
                r, c = _lower_triangle_colwise(term.n_columns)
                j = i - sl.start
                name = self._component_name(t, r[j]) if r[j] == c[j] else \
                    f"cov({term.group}: {term.column_names[r[j]]}, {term.column_names[c[j]]})"
                return name
        return str(i)

    def _component_name(self, term_index, column):
        term = self._design.terms[term_index]
        cname = term.column_names[column]
        base = term.group
        if cname == "(Intercept)":
            name = base
        else:
            name = f"{base}:{cname}"
        # a second intercept term on the same factor, e.g. (1|g) + (1|g): lme4 calls it g.1
        earlier = []
        for t_i in range(term_index):
            for col in range(self._design.terms[t_i].n_columns):
                earlier.append(self._component_name(t_i, col))
        k = 1
        unique = name
        while unique in earlier:
            unique = f"{name}.{k}"
            k += 1
        return unique

    def _build_varcorr(self):
        d = self._design
        rows = []
        vc_index, vc_values = [], []
        self._term_cov = []
        for t, term in enumerate(d.terms):
            T = d.theta_template(self.theta, t)
            cov = self.scale * T @ T.T
            self._term_cov.append(cov)
            sds = np.sqrt(np.diag(cov))
            for i, cname in enumerate(term.column_names):
                name = self._component_name(t, i)
                vc_index.append(name)
                vc_values.append(cov[i, i])
                rows.append(dict(group=term.group, component=name, term1=cname, term2=None,
                                 variance=cov[i, i], sd_or_corr=sds[i]))
            for j in range(term.n_columns):
                for i in range(j + 1, term.n_columns):
                    corr = cov[i, j] / (sds[i] * sds[j]) if sds[i] * sds[j] > 0 else np.nan
                    rows.append(dict(group=term.group, component=f"cov({term.group})",
                                     term1=term.column_names[j], term2=term.column_names[i],
                                     variance=cov[i, j], sd_or_corr=corr))
        rows.append(dict(group="Residual", component="Residual", term1=None, term2=None,
                         variance=self.scale, sd_or_corr=self.sigma))
        vc_index.append("Residual")
        vc_values.append(self.scale)
        self.variance_components = pd.Series(vc_values, index=vc_index, name="variance")
        self.varcorr = pd.DataFrame(rows)

    # ---- inference ---------------------------------------------------------------------------
    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Wald intervals for the fixed effects (normal quantiles, as lme4's confint(method="Wald"))."""
        z = stats.norm.ppf(1 - alpha / 2)
        return pd.DataFrame({"lower": self.params - z * self.bse, "upper": self.params + z * self.bse})

    def cov_params(self) -> pd.DataFrame:
        return self.cov_params_

    @property
    def pvalues(self) -> pd.Series:
        """Two-sided p-values from the normal approximation to the t statistics (no df correction)."""
        return pd.Series(2 * stats.norm.sf(np.abs(self.tvalues)), index=self.params.index,
                         name="p_value")

    def variance_components_ci(self, alpha: float = 0.05, method: str | None = None,
                               n_boot: int | None = None, seed: int = 0) -> pd.DataFrame:
        """Confidence intervals for the variance components (variances; columns lower, upper).

        ``method`` defaults to ``"profile"``, or to ``"bootstrap"`` when ``n_boot`` is given
        (``n_boot`` defaults to 200 for the bootstrap).

        ``method="profile"`` (default): profile-likelihood intervals as lme4's
        ``confint(method = "profile")``: for each standard deviation ``s`` the ML deviance
        (lme4 profiles the ML deviance for REML fits too, and so does this) is minimised over
        all other parameters with ``s`` held fixed, and the interval is where that profile stays
        within the chi-square(1) quantile of the optimum; the lower end is 0 when the profile at
        0 stays within it.  The ``variance`` column is the fit's own (REML or ML) estimate.  The
        interval for a variance is the square of the one for its standard deviation.
        Covariances of correlated slopes are not profiled (their rows are left out).

        ``method="bootstrap"``: ``n_boot`` responses are simulated from the fitted model (fixed effects ``X beta`` plus
        random effects drawn from the estimated covariance plus residual noise), the model is
        refitted to each with the same design (warm-started at the estimate), and the
        ``alpha/2`` and ``1 - alpha/2`` quantiles of each variance are reported, as lme4's
        ``confint(method = "boot", type = "perc")`` does for standard deviations (the interval
        for a variance is the square of the one for its standard deviation).
        """
        if method is None:
            method = "profile" if n_boot is None else "bootstrap"
        if n_boot is None:
            n_boot = 200
        if method == "profile":
            # lme4 profiles the ML deviance, also for REML fits; so do we, for the same intervals
            ml = self.refit(reml=False)
            with _single_threaded_blas():
                out = ml._profile_ci(alpha)
            out["variance"] = self.variance_components.reindex(out.index).to_numpy()
            return out
        if method != "bootstrap":
            raise ConfigError(f"method must be 'profile' or 'bootstrap', got {method!r}")
        rng = np.random.default_rng(seed)
        d = self._design
        boot_dev = _ProfiledDeviance(d, self.reml)
        Lam = d.lambda_matrix(self.theta)
        draws = []
        n_failed = 0
        with _single_threaded_blas():
            draws, n_failed = self._bootstrap_draws(boot_dev, Lam, rng, n_boot)
        draws = np.array(draws)
        lo = np.quantile(draws, alpha / 2, axis=0)
        hi = np.quantile(draws, 1 - alpha / 2, axis=0)
        out = pd.DataFrame({"variance": self.variance_components.to_numpy(), "lower": lo, "upper": hi},
                           index=self.variance_components.index)
        out.attrs.update(method="parametric bootstrap, percentile", n_boot=n_boot,
                         n_failed=n_failed, seed=seed, alpha=alpha)
        return out

    # -- profile likelihood ---------------------------------------------------------------------
    def _full_criterion(self, theta, log_sigma):
        """-2 log-likelihood (ML) or REML criterion at (theta, sigma), sigma not profiled out."""
        pls = self._dev.solve_pls(theta)
        if pls is None or not np.isfinite(log_sigma):
            return np.inf
        d = self._design
        s2 = math.exp(2.0 * log_sigma)
        dof = d.n - d.p if self.reml else d.n
        value = pls["logdet_L"] + dof * math.log(2.0 * math.pi * s2) + pls["r2"] / s2
        if self.reml:
            value += pls["logdet_RX"]
        return value

    def _profile_value(self, index, sd):
        """Minimum of the criterion with the standard deviation of component ``index`` fixed.

        ``index`` is a diagonal position in theta (sd = sigma * theta[index]) or None for the
        residual standard deviation.  Returns the minimum over the other parameters.
        """
        d = self._design
        lower = d.theta_lower
        free = np.ones(d.n_theta, dtype=bool)
        if index is not None:
            free[index] = False

        def unpack(z):
            theta = self.theta.copy()
            theta[free] = z[:-1] if index is not None else z
            if index is None:
                return theta, math.log(sd)
            log_sigma = z[-1]
            theta[index] = sd / math.exp(log_sigma)
            return theta, log_sigma

        def objective(z):
            theta, log_sigma = unpack(z)
            return self._full_criterion(theta, log_sigma)

        z0 = self.theta[free]
        bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower[free]]
        if index is not None:
            z0 = np.append(z0, math.log(self.sigma))
            bounds.append((None, None))
        if len(z0) == 0:
            return objective(z0)
        res = sopt.minimize(objective, z0, method="L-BFGS-B", bounds=bounds,
                            options=dict(maxiter=500, ftol=1e-12, gtol=1e-7))
        return float(res.fun)

    def _profile_ci(self, alpha):
        d = self._design
        target = self.deviance_value + stats.chi2.ppf(1 - alpha, 1)
        rows, index = [], []
        components = []
        for t, term in enumerate(d.terms):
            r, c = _lower_triangle_colwise(term.n_columns)
            for j, (i_r, i_c) in enumerate(zip(r, c)):
                if i_r == i_c:
                    components.append((self._component_name(t, i_r), d.theta_slices[t].start + j))
        components.append(("Residual", None))
        for name, theta_index in components:
            estimate = self.sigma if theta_index is None else self.sigma * self.theta[theta_index]

            def excess(sd, theta_index=theta_index):
                return self._profile_value(theta_index, sd) - target

            # lower end
            if theta_index is not None and (estimate <= 1e-8 or excess(1e-10 * max(self.sigma, 1)) <= 0):
                low = 0.0
            else:
                a = estimate * 0.5
                while excess(a) < 0 and a > 1e-8 * self.sigma:
                    a *= 0.5
                low = sopt.brentq(excess, a, estimate, xtol=1e-10 * max(estimate, 1e-12), rtol=1e-10) \
                    if excess(a) > 0 else 0.0
            # upper end
            b = max(estimate, 1e-3 * self.sigma) * 1.5
            for _ in range(60):
                if excess(b) > 0:
                    break
                b *= 2.0
            start = max(estimate, 1e-12)
            high = sopt.brentq(excess, start, b, xtol=1e-10 * b, rtol=1e-10)
            index.append(name)
            rows.append((estimate ** 2, low ** 2, high ** 2))
        out = pd.DataFrame(rows, columns=["variance", "lower", "upper"], index=index)
        out.attrs.update(method="profile likelihood", alpha=alpha,
                         criterion="REML" if self.reml else "ML")
        return out

    def _bootstrap_draws(self, boot_dev, Lam, rng, n_boot):
        d = self._design
        draws, n_failed = [], 0
        for _ in range(n_boot):
            u = rng.standard_normal(d.q)
            y_star = self.fixed_fitted + self.sigma * (d.Z @ (Lam @ u)) \
                + self.sigma * rng.standard_normal(d.n)
            boot_dev.set_response(y_star)
            theta, crit, _msgs, ok, _ = _optimise(boot_dev, self.theta.copy(), maxiter=1000,
                                                   restart=False)
            if not np.isfinite(crit):
                n_failed += 1
                continue
            pls = boot_dev.solve_pls(theta)
            r2 = pls["r2"]
            scale = r2 / (d.n - d.p) if self.reml else r2 / d.n
            values = []
            for t, term in enumerate(d.terms):
                T = d.theta_template(theta, t)
                values.extend(np.diag(scale * T @ T.T))
            values.append(scale)
            draws.append(values)
        return draws, n_failed

    # ---- R2 (Nakagawa & Schielzeth 2013; Johnson 2014 for random slopes) ---------------------
    def _variance_parts(self):
        var_fixed = float(np.var(self.fixed_fitted, ddof=1)) if self.nobs > 1 else 0.0
        var_random = 0.0
        for t, term in enumerate(self._design.terms):
            cov = self._term_cov[t]
            # mean over rows of z_i' Sigma z_i (Johnson 2014); equals the variance for intercepts
            var_random += float(np.mean(np.einsum("ij,jk,ik->i", term.matrix, cov, term.matrix)))
        return var_fixed, var_random, self.scale

    @property
    def r2_marginal(self) -> float:
        """Variance explained by the fixed effects: var(X beta) / (var(X beta) + sum var_re + sigma^2)."""
        vf, vr, ve = self._variance_parts()
        return vf / (vf + vr + ve)

    @property
    def r2_conditional(self) -> float:
        """Variance explained by fixed plus random effects: (var(X beta) + sum var_re) / total."""
        vf, vr, ve = self._variance_parts()
        return (vf + vr) / (vf + vr + ve)

    # ---- random effects ------------------------------------------------------------------------
    @property
    def random_effects(self) -> dict:
        """BLUPs (conditional modes) per term: {component group: DataFrame levels x columns}."""
        d = self._design
        out = {}
        for t, term in enumerate(d.terms):
            k = term.n_columns
            block = self._b[d.offsets[t]: d.offsets[t] + k * term.n_levels].reshape(term.n_levels, k)
            key = term.group
            i = 1
            while key in out:
                key = f"{term.group}.{i}"
                i += 1
            out[key] = pd.DataFrame(block, index=pd.Index(term.levels, name=term.group),
                                    columns=term.column_names)
        return out

    @property
    def random_effects_se(self) -> dict:
        """Conditional standard deviations of the BLUPs (square roots of the diagonal of lme4's
        ``condVar``), laid out like :attr:`random_effects`; None for a term too large to form."""
        out = {}
        for (key, frame), block in zip(self.random_effects.items(), self._conditional_cov_blocks()):
            if block is None:
                out[key] = None
                continue
            se = np.sqrt(np.diagonal(block, axis1=1, axis2=2))
            out[key] = pd.DataFrame(se, index=frame.index, columns=frame.columns)
        return out

    def _conditional_cov_blocks(self):
        """Per-term, per-level conditional covariance of b given y (lme4's condVar)."""
        if getattr(self, "_condvar", None) is not None:
            return self._condvar
        d = self._design
        Lam = d.lambda_matrix(self.theta)
        blocks = []
        for t, term in enumerate(d.terms):
            k, L = term.n_columns, term.n_levels
            cols = np.arange(d.offsets[t], d.offsets[t] + k * L)
            if d.q * len(cols) > 25_000_000:
                # too large to form densely: intervals then use the full variance component
                blocks.append(None)
                continue
            LamT = Lam.T.tocsc()[:, cols].toarray()     # Lambda' restricted to the term's columns
            solved = self._solve(LamT)
            # only the k x k diagonal blocks (one per level) of Lambda A^{-1} Lambda' are needed
            blocks.append(self.scale * np.einsum("qli,qlj->lij", LamT.reshape(d.q, L, k),
                                                 solved.reshape(d.q, L, k), optimize=True))
        self._condvar = blocks
        return blocks

    # ---- prediction ----------------------------------------------------------------------------
    def _new_design(self, newdata: pd.DataFrame):
        import patsy

        d = self._design
        try:
            (X,) = patsy.build_design_matrices([d.x_design_info], newdata, return_type="matrix",
                                               NA_action="raise")
        except patsy.PatsyError as exc:
            raise InputError(f"cannot build the fixed-effects matrix for new data: {exc}") from None
        term_rows = []
        for t, term in enumerate(d.terms):
            (Zt,) = patsy.build_design_matrices([d.term_design_infos[t]], newdata,
                                                return_type="matrix", NA_action="raise")
            cols = [g.strip() for g in term.group.split(":")]
            for c in cols:
                if c not in newdata.columns:
                    raise InputError(f"new data lacks the grouping column {c!r}", column=c)
            labels = newdata[cols[0]].astype(str)
            for c in cols[1:]:
                labels = labels + ":" + newdata[c].astype(str)
            lookup = {lev: i for i, lev in enumerate(term.levels)}
            codes = np.array([lookup.get(v, -1) for v in labels.to_numpy()], dtype=np.int64)
            term_rows.append((np.asarray(Zt, dtype=float), codes))
        return np.asarray(X, dtype=float), term_rows

    def predict(self, newdata: pd.DataFrame | None = None, include_random: bool = True) -> pd.Series:
        """Predictions ``X beta (+ Z b)``; levels not seen in fitting get a random effect of 0."""
        if newdata is None:
            return self.fittedvalues.copy() if include_random else pd.Series(
                self.fixed_fitted, index=self.data.index, name="predicted")
        X, term_rows = self._new_design(newdata)
        pred = X @ self.params.to_numpy()
        if include_random:
            for t, (Zt, codes) in enumerate(term_rows):
                blups = self.random_effects_array(t)
                seen = codes >= 0
                pred[seen] += np.einsum("ij,ij->i", Zt[seen], blups[codes[seen]])
        return pd.Series(pred, index=newdata.index, name="predicted")

    def random_effects_array(self, t):
        d = self._design
        term = d.terms[t]
        k = term.n_columns
        return self._b[d.offsets[t]: d.offsets[t] + k * term.n_levels].reshape(term.n_levels, k)

    def prediction_interval(self, newdata: pd.DataFrame, alpha: float = 0.05,
                            include_random: bool = True) -> pd.DataFrame:
        """Approximate intervals for new observations.

        The variance of a new observation is ``x' V_beta x + sigma^2`` plus, per random term,
        the conditional variance of the BLUP ``z' condVar z`` for a level seen in fitting (when
        ``include_random``) or the full ``z' Sigma z`` for an unseen level (or when
        ``include_random`` is False, or when the random-effect dimension is too large to form the
        conditional covariance densely: more than 25 million entries).  The covariance between the estimates of ``beta`` and the
        BLUPs, and the uncertainty in the variance components, are ignored; normal quantiles.
        """
        X, term_rows = self._new_design(newdata)
        pred = self.predict(newdata, include_random=include_random).to_numpy()
        V = self.cov_params_.to_numpy()
        var = np.einsum("ij,jk,ik->i", X, V, X) + self.scale
        condvar = self._conditional_cov_blocks() if include_random else None
        for t, (Zt, codes) in enumerate(term_rows):
            cov = self._term_cov[t]
            full = np.einsum("ij,jk,ik->i", Zt, cov, Zt)
            if include_random and condvar[t] is not None:
                seen = codes >= 0
                cv = condvar[t][np.where(seen, codes, 0)]
                cond = np.einsum("ij,ijk,ik->i", Zt, cv, Zt)
                var += np.where(seen, cond, full)
            else:
                var += full
        z = stats.norm.ppf(1 - alpha / 2)
        sd = np.sqrt(var)
        return pd.DataFrame({"prediction": pred, "lower": pred - z * sd, "upper": pred + z * sd,
                             "se": sd}, index=newdata.index)

    # ---- refitting -----------------------------------------------------------------------------
    def refit(self, reml: bool) -> "MixedResults":
        """The same model refitted with REML (``reml=True``) or ML on the same rows."""
        if reml == self.reml:
            return self
        return _fit_design(self.formula, self.parsed, self.data, self._design, reml=reml,
                           method="fast", n_dropped=self.n_dropped, theta0=self.theta, maxiter=2000)

    # ---- presentation --------------------------------------------------------------------------
    def table(self, alpha: float = 0.05) -> pd.DataFrame:
        """Tidy table: one row per fixed effect, then one per variance component."""
        ci = self.conf_int(alpha)
        fixed = pd.DataFrame({
            "effect": "fixed", "group": "", "term": self.params.index,
            "estimate": self.params.to_numpy(), "std_error": self.bse.to_numpy(),
            "statistic": self.tvalues.to_numpy(), "conf_low": ci["lower"].to_numpy(),
            "conf_high": ci["upper"].to_numpy()})
        vc = self.varcorr
        ran = pd.DataFrame({
            "effect": "ran_pars", "group": vc["group"].to_numpy(),
            "term": [("var__" + str(a)) if b is None or (isinstance(b, float) and np.isnan(b))
                     else f"cov__{a}.{b}" for a, b in zip(vc["term1"].fillna("Observation"),
                                                           vc["term2"])],
            "estimate": vc["variance"].to_numpy(), "std_error": np.nan, "statistic": np.nan,
            "conf_low": np.nan, "conf_high": np.nan})
        return pd.concat([fixed, ran], ignore_index=True)

    def summary(self) -> str:
        """A text summary laid out like lme4's ``summary(merMod)``."""
        crit = "REML" if self.reml else "maximum likelihood"
        lines = [f"Linear mixed model fit by {crit} (xltstats, {self.method} path)",
                 f"Formula: {self.formula}"]
        if self.n_dropped:
            lines.append(f"Rows dropped for missing values: {self.n_dropped}")
        lines.append("")
        if self.reml:
            lines.append(f"REML criterion at convergence: {self.deviance_value:.1f}")
        else:
            lines.append(f"{'AIC':>10} {'BIC':>10} {'logLik':>10} {'deviance':>10}")
            lines.append(f"{self.aic:>10.1f} {self.bic:>10.1f} {self.llf:>10.1f} "
                         f"{self.deviance_value:>10.1f}")
        lines.append("")
        sres = self.resid.to_numpy() / self.sigma
        q = np.quantile(sres, [0, .25, .5, .75, 1])
        lines.append("Scaled residuals:")
        lines.append("     Min       1Q   Median       3Q      Max ")
        lines.append(" ".join(f"{v:8.4f}" for v in q))
        lines.append("")
        lines.append("Random effects:")
        lines.append(f" {'Groups':<10} {'Name':<14} {'Variance':>10} {'Std.Dev.':>9} Corr")
        vc = self.varcorr
        for _, r in vc.iterrows():
            if r["term2"] is not None and not (isinstance(r["term2"], float)):
                continue
            group = r["group"]
            name = r["term1"] if isinstance(r["term1"], str) else ""
            lines.append(f" {group:<10} {name:<14} {r['variance']:>10.4g} {r['sd_or_corr']:>9.4g}")
        corr = vc[vc["term2"].notna()]
        for _, r in corr.iterrows():
            lines.append(f"   corr({r['term1']}, {r['term2']}) in {r['group']}: {r['sd_or_corr']:.3f}")
        groups = "; ".join(f"{t.group}, {t.n_levels}" for t in self._design.terms)
        lines.append(f"Number of obs: {self.nobs}, groups:  {groups}")
        lines.append(f"R2 (Nakagawa): marginal {self.r2_marginal:.4f}, conditional {self.r2_conditional:.4f}")
        lines.append("")
        lines.append("Fixed effects:")
        width = max(12, max(len(s) for s in self.params.index) + 1)
        lines.append(f"{'':<{width}} {'Estimate':>10} {'Std. Error':>10} {'t value':>8}")
        for name in self.params.index:
            lines.append(f"{name:<{width}} {self.params[name]:>10.4g} {self.bse[name]:>10.4g} "
                         f"{self.tvalues[name]:>8.3f}")
        if self.warnings:
            lines.append("")
            lines.extend(self.warnings)
        lines.append(f"converged: {self.converged}; singular: {self.singular}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"<MixedResults {self.formula!r} n={self.nobs} {'REML' if self.reml else 'ML'} "
                f"llf={self.llf:.3f}>")


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------

def _prepare(formula: str, data: pd.DataFrame):
    import patsy

    if not isinstance(data, pd.DataFrame):
        raise InputError(f"fit_mixed needs a pandas DataFrame, got {type(data).__name__}")
    parsed = parse_formula(formula)
    used = referenced_columns(formula, data)
    if parsed.response not in data.columns:
        raise InputError(f"the response {parsed.response!r} is not a column of the data",
                         column=parsed.response)
    frame = data[used].copy()
    mask = frame.isna().any(axis=1).to_numpy()
    n_dropped = int(mask.sum())
    frame = frame.loc[~mask]
    if len(frame) == 0:
        raise InputError("no rows left after dropping rows with missing values in "
                         f"{used}")
    for col in used:
        if frame[col].dtype == object or pd.api.types.is_string_dtype(frame[col]):
            if col == parsed.response:
                raise InputError(f"the response {col!r} must be numeric", column=col)
    try:
        y_df, X_df = patsy.dmatrices(parsed.fixed_formula, frame, return_type="dataframe",
                                     NA_action="raise")
    except patsy.PatsyError as exc:
        raise ConfigError(f"cannot build the fixed-effects part {parsed.fixed_formula!r}: {exc}") from None
    if y_df.shape[1] != 1:
        raise InputError(f"the response {parsed.response!r} must be a single numeric column",
                         column=parsed.response)
    X = X_df.to_numpy(dtype=float)
    if X.shape[1] and np.linalg.matrix_rank(X) < X.shape[1]:
        raise ConfigError(f"the fixed-effects design of {formula!r} is rank deficient (columns "
                          f"{list(X_df.columns)}); drop a collinear covariate")
    terms = build_random_terms(parsed, frame)
    term_infos = []
    for expr, _group in parsed.random:
        term_infos.append(patsy.dmatrix(expr, frame.iloc[:1], return_type="matrix").design_info)
    design = _build_design(X, y_df.to_numpy(dtype=float).ravel(), list(X_df.columns), terms,
                           X_df.design_info, term_infos)
    for t in terms:
        if t.n_levels >= design.n:
            raise InputError(f"the grouping factor {t.group!r} has {t.n_levels} levels for "
                             f"{design.n} rows: every row is its own level", column=t.group)
    return parsed, frame, design, n_dropped


_BLAS_LOCK = threading.Lock()
_BLAS_STATE = {"depth": 0, "limiter": None}


@contextlib.contextmanager
def _single_threaded_blas():
    """One BLAS thread while optimising: the matrices are small, and threaded BLAS on small
    matrices is several times slower (much more so on a loaded machine).

    The limit is process-wide, so nested or concurrent fits (cross-validation folds run in
    threads) share one reference-counted limit: the first fit to enter sets it and the last to
    leave restores the original setting.  Without the count, a fit finishing in one thread would
    restore the limit it saw on entry -- possibly another fit's "1" -- and leave BLAS
    single-threaded for the rest of the process.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        yield
        return
    with _BLAS_LOCK:
        if _BLAS_STATE["depth"] == 0:
            _BLAS_STATE["limiter"] = threadpool_limits(limits=1, user_api="blas")
        _BLAS_STATE["depth"] += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _BLAS_STATE["depth"] -= 1
            if _BLAS_STATE["depth"] == 0:
                _BLAS_STATE["limiter"].restore_original_limits()
                _BLAS_STATE["limiter"] = None


def _fit_design(formula, parsed, frame, design, *, reml, method, n_dropped, theta0=None,
                maxiter=2000, extra_warnings=()):
    import time

    start = time.perf_counter()
    dev = _ProfiledDeviance(design, reml)
    if theta0 is None:
        theta0 = np.where(design.theta_lower == 0, 1.0, 0.0)
    with _single_threaded_blas():
        theta, crit, messages, converged, n_eval = _optimise(dev, np.asarray(theta0, float), maxiter)
        res = MixedResults(formula=formula, parsed=parsed, data=frame, design=design, dev=dev,
                           theta=theta, criterion=crit, reml=reml, method=method,
                           converged=converged, warnings_=[*extra_warnings, *messages],
                           n_dropped=n_dropped, n_evaluations=n_eval,
                           fit_seconds=time.perf_counter() - start)
    return res


def fit_mixed(formula: str, data: pd.DataFrame, reml: bool = True, *, method: str = "fast",
              maxiter: int = 2000, warn: bool = True) -> MixedResults:
    """Fit a linear mixed model written in lme4 syntax.

    Parameters
    ----------
    formula
        e.g. ``"score ~ syntactic_distance + lexical_overlap + (1|source) + (1|target)"``.
        Any number of crossed grouping factors; random slopes ``(1 + x | g)`` (correlated),
        ``(0 + x | g)``, ``(x || g)`` (uncorrelated).
    data
        A DataFrame holding every column the formula uses.  Rows with a missing value in any
        used column are dropped; their number is ``result.n_dropped``.
    reml
        REML (default, as lme4) or maximum likelihood.
    method
        ``"fast"``: lme4's profiled deviance (see the module docstring).  ``"statsmodels"``:
        statsmodels' MixedLM as an independent reference; its optimum is checked against the
        fast path's and a warning is issued when the fast path finds a better likelihood.
    maxiter
        Iteration limit of the optimiser; a fit that hits it is reported as not converged.
    warn
        Issue :class:`MixedModelWarning` for the problems in ``result.warnings``.
    """
    if method not in ("fast", "statsmodels"):
        raise ConfigError(f"method must be 'fast' or 'statsmodels', got {method!r}")
    parsed, frame, design, n_dropped = _prepare(formula, data)
    extra = []
    if n_dropped:
        extra.append(f"dropped {n_dropped} rows with missing values in the formula's columns")
    if method == "fast":
        res = _fit_design(formula, parsed, frame, design, reml=reml, method="fast",
                          n_dropped=n_dropped, maxiter=maxiter, extra_warnings=extra)
    else:
        from xltstats.models.mixed_reference import fit_statsmodels

        res = fit_statsmodels(formula, parsed, frame, design, reml=reml, n_dropped=n_dropped,
                              extra_warnings=extra)
    if warn:
        for message in res.warnings:
            if not message.startswith("dropped "):
                _warnings.warn(message, MixedModelWarning, stacklevel=2)
    return res


def compare_mixed(m0: MixedResults, m1: MixedResults, *, refit: bool | None = None) -> pd.DataFrame:
    """Likelihood-ratio test between two nested mixed models fitted to the same rows.

    When the fixed effects differ, REML likelihoods are not comparable, so REML fits are refitted
    with ML (with a :class:`MixedModelWarning`), as lme4's ``anova()`` does.  Models with the same
    fixed effects are compared on the criterion they were fitted with (lme4 would refit with ML
    unless ``refit = FALSE``; pass ``refit=True`` to do the same).  For a variance component tested
    at zero the chi-square p-value is conservative (the null is on the boundary).

    Returns a DataFrame like lme4's anova table: npar, AIC, BIC, logLik, deviance, Chisq, Df,
    Pr(>Chisq); the smaller model first.
    """
    if m0.nobs != m1.nobs:
        raise InputError(f"models were fitted to different numbers of rows ({m0.nobs} and {m1.nobs})")
    if not np.array_equal(m0._design.y, m1._design.y):
        raise InputError("models were fitted to different responses or rows (a likelihood-ratio test "
                         "needs both fitted to the same data)")
    small, large = sorted([m0, m1], key=lambda m: m.df_modelwc)
    fixed_nested = set(small.params.index) <= set(large.params.index)
    random_nested = set(small.variance_components.index) <= set(large.variance_components.index)
    if not (fixed_nested and random_nested):
        _warnings.warn(f"{small.formula!r} does not look nested in {large.formula!r} (its fixed effects "
                       "or variance components are not a subset of the larger model's); the chi-square "
                       "test assumes nested models", MixedModelWarning, stacklevel=2)
    same_fixed = list(m0.params.index) == list(m1.params.index)
    if refit is None:
        refit = not same_fixed or m0.reml != m1.reml
    if refit and (m0.reml or m1.reml):
        if not same_fixed:
            _warnings.warn("refitting REML models with ML to compare models with different fixed "
                           "effects", MixedModelWarning, stacklevel=2)
        m0, m1 = m0.refit(reml=False), m1.refit(reml=False)
    models = sorted([m0, m1], key=lambda m: m.df_modelwc)
    rows = []
    for m in models:
        rows.append({"npar": m.df_modelwc, "AIC": m.aic, "BIC": m.bic, "logLik": m.llf,
                     "deviance": -2 * m.llf})
    table = pd.DataFrame(rows, index=[m.formula for m in models])
    chisq = 2 * (models[1].llf - models[0].llf)
    df = models[1].df_modelwc - models[0].df_modelwc
    table["Chisq"] = [np.nan, max(chisq, 0.0)]
    table["Df"] = [np.nan, df]
    table["Pr(>Chisq)"] = [np.nan, stats.chi2.sf(max(chisq, 0.0), df) if df > 0 else np.nan]
    table.attrs["criterion"] = "REML" if models[0].reml else "ML"
    return table


def compare_feature_groups(result: MixedResults, groups: dict, *, alpha: float = 0.05) -> pd.DataFrame:
    """Drop each feature group from the fixed effects of a fitted mixed model and test the drop.

    For every group (name -> list of fixed-effect columns as written in the formula) the model is
    refitted without those columns, keeping the random part, on the same rows.  Both models are
    fitted by ML (REML likelihoods of models with different fixed effects are not comparable;
    this is the refit lme4's ``anova()`` does), and the table reports the likelihood-ratio
    statistic ``2 (llf_full - llf_reduced)`` with its chi-square p-value on as many df as fixed
    effects dropped, the change in AIC, and the drop in marginal R² (Nakagawa, of the ML fits).
    Groups none of whose columns are in the model are listed with ``status = "not_in_model"``.
    The mixed-model counterpart of :meth:`xltstats.models.OLSResults.group_comparison`.
    """
    from xltstats.models.formula import _split_top_level_plus

    parsed = result.parsed
    full = result.refit(reml=False)
    terms = [t.strip() for t in _split_top_level_plus(parsed.fixed_rhs)]
    plain = [t[1:].strip() if t.startswith("+") else t for t in terms]
    random_part = " + ".join(f"({expr} | {group})" for expr, group in parsed.random)
    rows = []
    for name, columns in groups.items():
        columns = [columns] if isinstance(columns, str) else list(columns)
        dropped = [c for c in columns if c in plain]
        row = {"group": name, "features": " ".join(columns), "n_dropped": len(dropped)}
        if not dropped:
            rows.append({**row, "status": "not_in_model"})
            continue
        kept = [t for t, p in zip(terms, plain) if p not in dropped]
        rhs = " ".join(kept).strip()
        rhs = rhs[1:].strip() if rhs.startswith("+") else rhs
        if not rhs or all(t.startswith("-") for t in kept):
            rhs = ("1 " + rhs).strip()
        formula = f"{parsed.response} ~ {rhs} + {random_part}"
        reduced = fit_mixed(formula, result.data, reml=False, warn=False)
        chisq = max(2 * (full.llf - reduced.llf), 0.0)
        df = full.df_modelwc - reduced.df_modelwc
        status = "ok" if full.converged and reduced.converged else "not_converged"
        rows.append({**row, "formula_reduced": formula, "loglik_full": full.llf,
                     "loglik_reduced": reduced.llf, "chisq": chisq, "df": df,
                     "p_value": float(stats.chi2.sf(chisq, df)) if df > 0 else np.nan,
                     "aic_change": reduced.aic - full.aic,
                     "r2_marginal_full": full.r2_marginal, "r2_marginal_reduced": reduced.r2_marginal,
                     "r2_marginal_drop": full.r2_marginal - reduced.r2_marginal,
                     "significant": bool(df > 0 and stats.chi2.sf(chisq, df) < alpha), "status": status})
    return pd.DataFrame(rows)
