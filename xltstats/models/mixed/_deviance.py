"""Stage 2 of a mixed-model fit, lme4's ``mkLmerDevfun``: the profiled deviance (ML) or REML
criterion as a function of ``theta`` alone.

For given ``theta`` the penalised least-squares problem is solved through the Cholesky factor of
``A = Lambda' Z'Z Lambda + I`` (Bates et al. 2015, sections 3.1-3.6), which gives ``beta``, the
penalised residual sum of squares ``r^2`` and ``log|L|^2``; ``sigma`` and ``beta`` are profiled
out.  Everything is formed once from the sufficient statistics ``Z'Z, Z'X, X'X, Z'y, X'y, y'y``,
so one evaluation costs nothing that grows with the number of rows.

How ``A`` is factored is a strategy chosen once per design (:func:`choose_factorisation`):

* :class:`DiagonalSchur`: random intercepts only (``Lambda`` diagonal) on two or more factors; the
  factor with most levels has a diagonal block of ``A`` and is eliminated with a Schur complement;
* :class:`Dense`: a random-effect dimension up to :data:`DENSE_LIMIT`, ``A`` factored in full;
* :class:`BlockSchur`: larger models; the term with most columns x levels (whose block of ``A``
  is block diagonal, one ``k x k`` block per level) is eliminated with a Schur complement.

A multi-membership term (``mm(source, target)``) has a block of ``Z'Z`` that is neither diagonal
nor block diagonal (two levels meet in every row), so it is never the term eliminated: it stays
with the densely factored columns.

Each strategy's ``factor(theta)`` returns ``(log|A|, solve, lam_t)`` with ``solve(B) = A^{-1} B``
and ``lam_t(M) = Lambda' M``, or None when ``A`` is not positive definite.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from xltstats.errors import ConfigError
from xltstats.models.mixed._design import Design
from xltstats.models.mixed._linalg import cho_factor, cho_solve

#: Up to this random-effect dimension ``A`` is factored densely in full.
DENSE_LIMIT = 1500
#: Random intercepts use the diagonal Schur path when at most this many columns of ``Z`` lie
#: outside the factor with most levels (the Schur complement is dense of that size).
DIAGONAL_SCHUR_REST_LIMIT = 6000
#: The block Schur path refuses models with more columns than this outside its largest term.
BLOCK_SCHUR_REST_LIMIT = 6000
#: Up to this random-effect dimension the analytic gradient of the ML criterion is formed (it needs
#: ``A^{-1} Lambda' Z'Z``, a dense ``q x q`` solve); above it, callers use finite differences.
GRADIENT_DENSE_LIMIT = 2000
#: Up to this many columns the largest term's block of ``Z'Z`` is extracted densely; above it,
#: its level-diagonal blocks are gathered from the sparse matrix.
BLOCK_DENSE_EXTRACT_LIMIT = 4000


def _split_columns(q, start, stop):
    rest = np.concatenate([np.arange(0, start), np.arange(stop, q)]).astype(np.int64)
    return rest, np.arange(start, stop)


def _schur_solve(rest, bigi, solve_rest, solve_big):
    """``solve(B)`` for a Schur-complement factorisation over the columns ``rest`` | ``bigi``."""

    def solve(B):
        B = np.asarray(B, dtype=float)
        vec = B.ndim == 1
        if vec:
            B = B[:, None]
        xr = solve_rest(B[rest], B[bigi])
        xb = solve_big(B[bigi], xr)
        out = np.empty_like(B)
        out[rest] = xr
        out[bigi] = xb
        return out[:, 0] if vec else out

    return solve


class Dense:
    """``A`` formed and factored in full (random-effect dimension up to :data:`DENSE_LIMIT`)."""

    def __init__(self, design: Design, ZtZ: sp.csc_matrix, all_intercepts: bool):
        self.design = design
        self.all_intercepts = all_intercepts
        self.ZtZ = ZtZ.toarray()
        self.diagonal_order = np.argsort(design.lambda_rows) if all_intercepts else None

    def factor(self, theta):
        d = self.design
        if self.all_intercepts:
            lam = theta[d.lambda_theta_index[self.diagonal_order]]
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
            cf = cho_factor(A)
        except np.linalg.LinAlgError:
            return None
        logdet = 2.0 * float(np.sum(np.log(np.diag(cf))))

        def solve(B):
            return cho_solve(cf, B)

        def lam_t(M):
            return lam_diag[:, None] * M if Lam is None else np.asarray(Lam.T @ M)

        return logdet, solve, lam_t


class DiagonalSchur:
    """Random intercepts only: ``Lambda`` is diagonal; the factor with most levels is eliminated."""

    def __init__(self, design: Design, ZtZ: sp.csc_matrix):
        d = design
        big = _largest_plain_term(d, [t.n_levels for t in d.terms])
        start, stop = d.offsets[big], d.offsets[big] + d.terms[big].n_levels
        self.rest, self.bigi = _split_columns(d.q, start, stop)
        self.q = d.q
        ZtZ = ZtZ.tocsr()
        order = np.argsort(d.lambda_rows)
        self.theta_rest = d.lambda_theta_index[order][self.rest]   # theta index of each rest column
        self.theta_big = int(d.lambda_theta_index[order][start])
        self.ZtZ_rr = ZtZ[self.rest][:, self.rest].toarray()
        self.ZtZ_rb = ZtZ[self.rest][:, self.bigi].toarray()
        self.ZtZ_bb = np.asarray(ZtZ[self.bigi][:, self.bigi].diagonal()).ravel()

    def factor(self, theta):
        lam_r = theta[self.theta_rest]
        lam_b = theta[self.theta_big]
        a_bb = lam_b * lam_b * self.ZtZ_bb + 1.0               # diagonal block, > 0
        A_rb = (lam_r[:, None] * self.ZtZ_rb) * lam_b
        A_rb_scaled = A_rb / a_bb
        S = self.ZtZ_rr * np.outer(lam_r, lam_r) - A_rb_scaled @ A_rb.T
        S[np.diag_indices_from(S)] += 1.0
        try:
            cf = cho_factor(S)
        except np.linalg.LinAlgError:
            return None
        logdet = float(np.sum(np.log(a_bb))) + 2.0 * float(np.sum(np.log(np.diag(cf))))
        lam = np.empty(self.q)
        lam[self.rest] = lam_r
        lam[self.bigi] = lam_b
        solve = _schur_solve(
            self.rest, self.bigi,
            lambda Br, Bb: cho_solve(cf, Br - A_rb_scaled @ Bb),
            lambda Bb, xr: (Bb - A_rb.T @ xr) / a_bb[:, None])

        def lam_t(M):
            return lam[:, None] * M if M.ndim == 2 else lam * M

        return logdet, solve, lam_t


class BlockSchur:
    """The term with most columns x levels (block diagonal in ``A``) eliminated by a Schur
    complement; the remaining columns are factored densely."""

    def __init__(self, design: Design, ZtZ: sp.csc_matrix):
        d = design
        self.design = d
        sizes = [t.n_columns * t.n_levels for t in d.terms]
        big = _largest_plain_term(d, sizes)
        k = d.terms[big].n_columns
        L = d.terms[big].n_levels
        start = d.offsets[big]
        self.rest, self.bigi = _split_columns(d.q, start, start + sizes[big])
        if len(self.rest) > BLOCK_SCHUR_REST_LIMIT:
            raise ConfigError(
                f"the random effects have {d.q} columns, {len(self.rest)} of them outside the largest "
                "term; models this large are not supported by the dense/Schur solver")
        self.big, self.k, self.n_levels = big, k, L
        ZtZ = ZtZ.tocsr()
        self.ZtZ_rr = ZtZ[self.rest][:, self.rest].toarray()
        self.ZtZ_rb = ZtZ[self.rest][:, self.bigi].toarray()
        if sizes[big] <= BLOCK_DENSE_EXTRACT_LIMIT:
            blocks = ZtZ[self.bigi][:, self.bigi].toarray()
            self.ZtZ_bb = np.stack([blocks[i * k:(i + 1) * k, i * k:(i + 1) * k] for i in range(L)])
        else:
            coo = ZtZ[self.bigi][:, self.bigi].tocoo()
            bb = np.zeros((L, k, k))
            lev_r, lev_c = coo.row // k, coo.col // k
            keep = lev_r == lev_c
            np.add.at(bb, (lev_r[keep], coo.row[keep] % k, coo.col[keep] % k), coo.data[keep])
            self.ZtZ_bb = bb
        block = np.arange(k)
        lev = np.arange(L)[:, None, None] * k
        self.block_pattern = ((lev + block[None, :, None] + 0 * block[None, None, :]).ravel(),
                              (lev + 0 * block[None, :, None] + block[None, None, :]).ravel())

    def factor(self, theta):
        d = self.design
        k, L = self.k, self.n_levels
        rest = self.rest
        nr = len(rest)
        Lam = d.lambda_matrix(theta)
        Lam_rr = Lam[rest][:, rest]
        T = d.theta_template(theta, self.big)
        # A_bb: one k x k block T' B_l T + I per level of the big term
        Abb = np.matmul(T.T, np.matmul(self.ZtZ_bb, T)) + np.eye(k)
        try:
            Cbb = np.linalg.cholesky(Abb)
        except np.linalg.LinAlgError:
            return None
        logdet_bb = 2.0 * float(np.sum(np.log(np.diagonal(Cbb, axis1=1, axis2=2))))
        block_rows, block_cols = self.block_pattern
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
                cf = cho_factor(S)
            except np.linalg.LinAlgError:
                return None
            logdet = logdet_bb + 2.0 * float(np.sum(np.log(np.diag(cf))))
            solve = _schur_solve(rest, self.bigi,
                                 lambda Br, Bb: cho_solve(cf, Br - ArbAinv @ Bb),
                                 lambda Bb, xr: np.asarray(Abb_inv @ (Bb - Arb.T @ xr)))
        else:  # a single random term: A is block diagonal
            logdet = logdet_bb
            solve = _schur_solve(rest, self.bigi, lambda Br, Bb: Br,
                                 lambda Bb, xr: np.asarray(Abb_inv @ Bb))

        def lam_t(M):
            return np.asarray(Lam.T @ M)

        return logdet, solve, lam_t


def _largest_plain_term(design: Design, sizes) -> int:
    """The index of the largest term (by ``sizes``) that is not multi-membership."""
    plain = [i for i, t in enumerate(design.terms) if not t.is_multi_membership]
    return max(plain, key=lambda i: (sizes[i], -i))


def choose_factorisation(design: Design, ZtZ: sp.csc_matrix):
    """The cheapest strategy that can factor ``A`` for this design (see the module docstring)."""
    all_intercepts = all(t.n_columns == 1 for t in design.terms)
    plain = [t for t in design.terms if not t.is_multi_membership]
    if all_intercepts and len(design.terms) >= 2 and plain and design.q - max(
            t.n_levels for t in plain) <= DIAGONAL_SCHUR_REST_LIMIT:
        return DiagonalSchur(design, ZtZ)
    if design.q <= DENSE_LIMIT or (not plain and design.q <= BLOCK_SCHUR_REST_LIMIT):
        return Dense(design, ZtZ, all_intercepts)
    if not plain:
        raise ConfigError(f"the multi-membership random effects have {design.q} columns; models this "
                          f"large (more than {BLOCK_SCHUR_REST_LIMIT}) are not supported")
    return BlockSchur(design, ZtZ)


class ProfiledDeviance:
    """The profiled deviance / REML criterion of lme4 as a function of theta.

    Holds only the sufficient statistics; ``y`` can be swapped (``set_response``) for the
    parametric bootstrap without recomputing anything that depends on ``Z`` and ``X`` alone.
    """

    def __init__(self, design: Design, reml: bool):
        self.design = design
        self.reml = reml
        self.n, self.p, self.q = design.n, design.p, design.q
        Z, X = design.Z, design.X
        ZtZ = (Z.T @ Z).tocsc()
        self.ZtZ = ZtZ
        self._ZtZ_dense = None
        self.ZtX = np.asarray(Z.T @ X)
        self.XtX = X.T @ X
        self.factorisation = choose_factorisation(design, ZtZ)
        self.set_response(design.y)

    @property
    def schur(self) -> dict | None:
        """The block Schur strategy's state (None when another strategy factors ``A``)."""
        return vars(self.factorisation) if isinstance(self.factorisation, BlockSchur) else None

    def set_response(self, y: np.ndarray) -> None:
        Z, X = self.design.Z, self.design.X
        self.y = y
        self.Zty = np.asarray(Z.T @ y).ravel()
        self.Xty = X.T @ y
        self.yty = float(y @ y)
        self.ZtXy = np.column_stack([self.ZtX, self.Zty])

    def factor(self, theta: np.ndarray):
        """``(log|A|, solve, lam_t)`` at ``theta``, or None if ``A`` is not positive definite."""
        return self.factorisation.factor(theta)

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
        if p == 0:        # no fixed effect (a profile of the only one holds it fixed)
            cfx, beta, logdet_RX = None, np.zeros(0), 0.0
        else:
            try:
                cfx = cho_factor(RXtRX)
            except np.linalg.LinAlgError:
                return None
            beta = cho_solve(cfx, rhs)
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

    @property
    def has_gradient(self) -> bool:
        """Whether :meth:`gradient_parts` is available (random-effect dimension up to
        :data:`GRADIENT_DENSE_LIMIT`)."""
        return self.q <= GRADIENT_DENSE_LIMIT

    def gradient_parts(self, theta: np.ndarray, pls) -> tuple[np.ndarray, np.ndarray]:
        """Derivatives in ``theta`` of ``log|A|`` and of the penalised residual sum of squares
        ``r^2`` at the solution ``pls`` of :meth:`solve_pls` (``beta`` and ``u`` at their optimum).

        With ``A = Lambda' Z'Z Lambda + I`` and ``dLambda_i`` the indicator of the entries of
        ``Lambda`` that hold ``theta_i``:
        ``d log|A| / d theta_i = 2 tr(A^{-1} Lambda' Z'Z dLambda_i)``, and, ``beta`` and ``u``
        being optimal (envelope theorem), ``d r^2 / d theta_i = -2 (Z'r)' dLambda_i u`` with the
        residual ``r = y - X beta - Z Lambda u``, ``Z'r`` formed from the sufficient statistics.
        The ML deviance at fixed ``sigma``, ``log|A| + n log(2 pi sigma^2) + r^2 / sigma^2``, has
        gradient ``dlogdet + dr2 / sigma^2``.
        """
        d = self.design
        if self._ZtZ_dense is None:
            self._ZtZ_dense = self.ZtZ.toarray()
        ZtZ = self._ZtZ_dense
        p = self.p
        sol = pls["sol"]
        beta = pls["beta"]
        u = sol[:, p] - sol[:, :p] @ beta
        G = pls["solve"](pls["lam_t"](ZtZ))               # A^{-1} Lambda' Z'Z
        rows, cols, index = d.lambda_rows, d.lambda_cols, d.lambda_theta_index
        dlogdet = 2.0 * np.bincount(index, weights=G[cols, rows], minlength=d.n_theta)
        lam_u = np.bincount(rows, weights=theta[index] * u[cols], minlength=self.q)   # Lambda u
        Zr = self.Zty - self.ZtX @ beta - ZtZ @ lam_u
        dr2 = -2.0 * np.bincount(index, weights=Zr[rows] * u[cols], minlength=d.n_theta)
        return dlogdet, dr2

    def logdet_RX_gradient(self, theta: np.ndarray, pls) -> np.ndarray:
        """Derivative in ``theta`` of ``log|RX'RX|``, the term REML adds to the criterion.

        ``RX'RX = X'X - W' A^{-1} W`` with ``W = Lambda' Z'X``.  With ``S = A^{-1} W`` and
        ``Q = Z'X - Z'Z Lambda S``, ``d(W' A^{-1} W) = Q' dLambda_i S + (Q' dLambda_i S)'``, so
        ``d log|RX'RX| / d theta_i = -2 tr((RX'RX)^{-1} Q' dLambda_i S)``: for each entry (r, c) of
        ``Lambda`` holding ``theta_i``, ``-2 (S (RX'RX)^{-1})[c] . Q[r]``.
        """
        d = self.design
        p = self.p
        if p == 0:
            return np.zeros(d.n_theta)
        if self._ZtZ_dense is None:
            self._ZtZ_dense = self.ZtZ.toarray()
        S = pls["sol"][:, :p]
        Q = self.ZtX - self._ZtZ_dense @ (d.lambda_matrix(theta) @ S)
        T = cho_solve(pls["cfx"], S.T).T                  # S (RX'RX)^{-1}
        rows, cols, index = d.lambda_rows, d.lambda_cols, d.lambda_theta_index
        return -2.0 * np.bincount(index, weights=np.einsum("ij,ij->i", T[cols], Q[rows]), minlength=d.n_theta)

    def value_and_gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """The criterion (as :meth:`__call__`) and its analytic gradient in ``theta`` (ML or REML;
        needs :attr:`has_gradient`).  sigma profiled out: ``d/dtheta [dof log r^2] = dof dr2 / r^2``
        with ``dof`` n (ML) or n - p (REML), which adds ``d log|RX'RX|``.  Where the criterion is
        not finite the gradient is zero."""
        theta = np.asarray(theta, dtype=float)
        pls = self.solve_pls(theta)
        value = np.inf if pls is None else self.deviance_from(pls)
        if not np.isfinite(value):
            return np.inf, np.zeros(self.design.n_theta)
        dlogdet, dr2 = self.gradient_parts(theta, pls)
        dof = self.n - self.p if self.reml else self.n
        gradient = dlogdet + dof * dr2 / pls["r2"]
        if self.reml:
            gradient = gradient + self.logdet_RX_gradient(theta, pls)
        return value, gradient
