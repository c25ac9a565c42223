"""Kenward-Roger inference for the fixed effects of a REML fit, as pbkrtest computes it
(Kenward & Roger 1997, "Small sample inference for fixed effects from restricted maximum
likelihood", Biometrics 53(3); Halekoh & Hojsgaard 2014, "A Kenward-Roger approximation and
parametric bootstrap methods for tests in linear mixed models - the R package pbkrtest",
J. Stat. Softw. 59(9), section 3).

pbkrtest's parametrisation: the marginal covariance of ``y`` is linear in the covariance
parameters ``gamma``,

    Sigma = sum_r gamma_r G_r,

with, per random term, one ``gamma`` for each entry ``(i, j), i >= j`` of the term's covariance
matrix (lme4's ``VarCorr``; the lower triangle column by column) and ``G_r = Z_t (I_L x E_ij) Z_t'``
(``E_ij`` ones at ``(i, j)`` and ``(j, i)``), then ``gamma = sigma^2`` with ``G = I``.  With
``Phi = (X' Sigma^{-1} X)^{-1}`` (lme4's ``vcov``), ``P_r = -X' Sigma^{-1} G_r Sigma^{-1} X``,
``Q_rs = X' Sigma^{-1} G_r Sigma^{-1} G_s Sigma^{-1} X`` and ``W = 2 I_E^{-1}`` the asymptotic
covariance of ``gamma`` from the expected REML information

    (I_E)_rs = tr(Sigma^{-1} G_r Sigma^{-1} G_s) - 2 tr(Phi Q_rs) + tr(Phi P_r Phi P_s)

(a generalised inverse where its smallest absolute eigenvalue is at most 1e-10), the adjusted
covariance is ``Phi_A = Phi + 2 Phi (sum_rs W_rs (Q_rs - P_r Phi P_s)) Phi`` (pbkrtest's
``vcovAdj``; the second derivatives of ``Sigma`` vanish in this parametrisation).  The denominator
df and the F scaling of a contrast ``L`` follow pbkrtest's ``.KR_adjust`` / ``Lb_ddf``.

No ``n x n`` matrix is formed: with ``Sigma = sigma^2 (I + Z Lambda Lambda' Z')`` every trace and
product above is written through Woodbury's identity in the random-effect dimension ``q``
(``Sigma^{-1} = sigma^{-2} (I - Z K Z')``, ``K = Lambda A^{-1} Lambda'``, ``A = Lambda' Z'Z Lambda +
I``; ``tr(Sigma^{-2}) = sigma^{-4} (n - q + ||A^{-1}||_F^2)``).  The cost is a few dense ``q x q``
matrices, so ``q`` above :data:`KR_MAX_Q` is refused with a message (pbkrtest itself forms the
dense ``n x n`` ``Sigma^{-1}`` and ``n x n`` products for every parameter).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from xltstats.errors import InputError
from xltstats.models.mixed._design import lower_triangle_colwise

#: Above this random-effect dimension (columns of Z) Kenward-Roger is refused: it needs about
#: eight dense q x q matrices (q = 4000: 128 MB each), whatever the number of rows.
KR_MAX_Q = 4000
#: pbkrtest inverts the information matrix with a generalised inverse below this eigenvalue.
KR_EIGEN_TOL = 1e-10


def _parameter_patterns(design):
    """Per covariance parameter (pbkrtest's order) the sparse ``q x q`` ``I_L x E_ij`` of its term,
    the columns of that term (outside them the pattern is zero) and the parameter's name."""
    q = design.q
    out, columns, names = [], [], []
    for t, term in enumerate(design.terms):
        k, L = term.n_columns, term.n_levels
        base = design.offsets[t] + np.arange(L) * k
        for i, j in zip(*lower_triangle_colwise(k)):
            rows = np.concatenate([base + i, base + j]) if i != j else base + i
            cols = np.concatenate([base + j, base + i]) if i != j else base + i
            out.append(sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(q, q)))
            columns.append(np.arange(design.offsets[t], design.offsets[t] + k * L))
            names.append((term.group, term.column_names[i], term.column_names[j]))
    return out, columns, names


class KenwardRogerParts:
    """What every Kenward-Roger test of one REML fit needs: ``Phi``, ``P_r``, ``W`` and ``Phi_A``."""

    def __init__(self, results):
        d = results._design
        n, p, q = d.n, d.p, d.q
        if q > KR_MAX_Q:
            raise InputError(f"Kenward-Roger inference is limited to {KR_MAX_Q} random-effect "
                             f"columns (it forms dense q x q matrices); this model has q = {q} "
                             "(the levels of its random terms times their columns): use "
                             "mixed.ddf: satterthwaite")
        self.refitted = not results.reml
        if self.refitted:  # as pbkrtest's vcovAdj: an ML fit is refitted with REML
            results = results.refit(reml=True)
        if results.method != "fast":
            raise InputError("Kenward-Roger inference needs the fast path's factorisation "
                             f"(this fit used method={results.method!r})")
        s2 = results.scale
        X = d.X
        Z = d.Z.tocsr()
        Lam = d.lambda_matrix(results.theta)
        ZtZ = (d.Z.T @ d.Z).toarray()
        ZtX = np.asarray(d.Z.T @ X)
        Ainv = results._solve(np.eye(q))
        K = np.asarray(Lam @ results._solve(Lam.T.toarray()))     # Lambda A^{-1} Lambda'
        K = (K + K.T) / 2
        ImR_t = np.eye(q) - ZtZ @ K                                # (I - K Z'Z)'
        M = ImR_t @ ZtZ / s2                                       # Z' Sigma^{-1} Z
        M = (M + M.T) / 2
        N = ImR_t @ ZtZ @ ImR_t.T / (s2 * s2)                      # Z' Sigma^{-2} Z
        U = ImR_t @ ZtX / s2                                       # Z' Sigma^{-1} X
        T = (X - Z @ (K @ ZtX)) / s2                               # Sigma^{-1} X
        Y = ImR_t @ U / s2                                         # Z' Sigma^{-2} X
        TtT = T.T @ T                                              # X' Sigma^{-2} X
        X3X = (TtT - U.T @ K @ U) / s2                             # X' Sigma^{-3} X
        trace_S2 = (n - q + float(np.sum(Ainv * Ainv))) / (s2 * s2)

        patterns, support, self.parameter_names = _parameter_patterns(d)
        self.parameter_names.append(("Residual", "", ""))
        m = len(patterns) + 1
        # E_r M is zero outside the rows of r's term: only those rows are kept
        EM = [E[idx] @ M for E, idx in zip(patterns, support)]
        EU = [E @ U for E in patterns]
        P = [-U.T @ EUr for EUr in EU] + [-TtT]
        Q = {}
        Kt = np.empty((m, m))
        for r in range(m - 1):
            for s in range(r, m - 1):
                Q[r, s] = EU[r].T @ M @ EU[s]
                Kt[r, s] = Kt[s, r] = float(np.sum(EM[r][:, support[s]] * EM[s][:, support[r]].T))
            Q[r, m - 1] = EU[r].T @ Y
            Kt[r, m - 1] = Kt[m - 1, r] = float(patterns[r].multiply(N).sum())
        Q[m - 1, m - 1] = X3X
        Kt[m - 1, m - 1] = trace_S2
        Phi = results.cov_params().to_numpy()
        IE2 = np.empty((m, m))
        for r in range(m):
            for s in range(r, m):
                IE2[r, s] = IE2[s, r] = (Kt[r, s] - 2 * float(np.sum(Phi * Q[r, s]))
                                         + float(np.sum((Phi @ P[r]) * (P[s] @ Phi))))
        self.information = IE2 / 2
        self.condition = float(np.min(np.abs(np.linalg.eigvalsh(IE2))))
        Wm = 2 * (np.linalg.inv(IE2) if self.condition > KR_EIGEN_TOL else np.linalg.pinv(IE2))
        Wm = (Wm + Wm.T) / 2
        UU = np.zeros((p, p))
        for r in range(m):
            for s in range(r + 1, m):
                UU += Wm[r, s] * (Q[r, s] - P[r] @ Phi @ P[s])
        UU = UU + UU.T
        for r in range(m):
            UU += Wm[r, r] * (Q[r, r] - P[r] @ Phi @ P[r])
        self.vcov = Phi
        self.vcov_adj = Phi + 2 * Phi @ UU @ Phi
        self.P, self.W = P, Wm
        self.names = list(results.params.index)
        self.beta = results.params.to_numpy()

    def _a1_a2(self, L):
        """pbkrtest's ``A1, A2`` of the contrast matrix ``L`` (rows: contrasts)."""
        Phi = self.vcov
        Theta = L.T @ np.linalg.solve(L @ Phi @ L.T, L)
        u = [Theta @ Phi @ Pr @ Phi for Pr in self.P]
        A1 = A2 = 0.0
        m = len(u)
        for i in range(m):
            for j in range(i, m):
                e = 1.0 if i == j else 2.0
                A1 += e * self.W[i, j] * float(np.trace(u[i])) * float(np.trace(u[j]))
                A2 += e * self.W[i, j] * float(np.sum(u[i] * u[j].T))
        return A1, A2

    def ddf_and_scaling(self, contrast) -> tuple[float, float, int]:
        """``(denominator df, F scaling, numerator df)`` of the contrast matrix ``L``, as pbkrtest's
        ``.KR_adjust`` (the df alone is its ``Lb_ddf``)."""
        L = np.atleast_2d(np.asarray(contrast, dtype=float))
        q = int(np.linalg.matrix_rank(L))
        A1, A2 = self._a1_a2(L)
        B = (A1 + 6 * A2) / (2 * q)
        g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
        c1 = g / (3 * q + 2 * (1 - g))
        c2 = (q - g) / (3 * q + 2 * (1 - g))
        c3 = (q + 2 - g) / (3 * q + 2 * (1 - g))
        V0, V1, V2 = 1 + c1 * B, 1 - c2 * B, 1 - c3 * B
        V0 = 0.0 if abs(V0) < 1e-10 else V0
        x = 1 - A2 / q
        ratio = 1.0 if abs(x) < 1e-14 and abs(V1) < 1e-14 else x / V1
        rho = ratio * ratio * V0 / (q * V2)
        ddf = 4 + (q + 2) / (q * rho - 1)
        scaling = 1.0 if abs(ddf - 2) < 1e-2 else ddf * (1 - A2 / q) / (ddf - 2)
        return float(ddf), float(scaling), q

    def df(self, contrast) -> float:
        return self.ddf_and_scaling(contrast)[0]

    def f_test(self, contrast, rhs=None) -> dict:
        """KR F test of ``L beta = rhs`` (default 0), as pbkrtest's ``KRmodcomp``: ``ndf``, ``ddf``,
        ``F_scaling``, ``F`` (scaled), ``p_value``, ``F_unscaled``."""
        L = np.atleast_2d(np.asarray(contrast, dtype=float))
        diff = L @ self.beta - (0.0 if rhs is None else np.asarray(rhs, dtype=float))
        ddf, scaling, q = self.ddf_and_scaling(L)
        wald = float(diff @ np.linalg.solve(L @ self.vcov_adj @ L.T, diff))
        F_u = wald / q
        F = scaling * F_u
        return {"ndf": q, "ddf": ddf, "F_scaling": scaling, "F": F,
                "p_value": float(stats.f.sf(F, q, ddf)), "F_unscaled": F_u}


def kenward_roger(parts: KenwardRogerParts) -> pd.DataFrame:
    """lmerTest's ``summary(m, ddf = "Kenward-Roger")$coefficients`` from the parts of a fit: per
    fixed effect the estimate, the KR standard error ``sqrt(diag(Phi_A))``, the KR df, t value and
    two-sided ``Pr(>|t|)`` (columns ``estimate, std_error, df, statistic, p_value``)."""
    p = len(parts.names)
    df = np.array([parts.df(np.eye(p)[i]) for i in range(p)])
    se = np.sqrt(np.diag(parts.vcov_adj))
    t = parts.beta / se
    out = pd.DataFrame({"estimate": parts.beta, "std_error": se, "df": df, "statistic": t,
                        "p_value": 2 * stats.t.sf(np.abs(t), df)},
                       index=pd.Index(parts.names, name="term"))
    notes = []
    if parts.refitted:
        notes.append("on the REML refit of this ML fit, as pbkrtest (the estimates are the REML fit's)")
    if parts.condition <= KR_EIGEN_TOL:
        notes.append(f"the information matrix of the covariance parameters is near singular (smallest "
                     f"absolute eigenvalue {parts.condition:.1e}); its generalised inverse is used, as "
                     "pbkrtest does: the fit may sit on a boundary")
    if not np.all(np.isfinite(df)):
        notes.append("some Kenward-Roger df are not finite (pbkrtest's formula breaks down)")
    if notes:
        out.attrs["note"] = "; ".join(notes)
    return out
