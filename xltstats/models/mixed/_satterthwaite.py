"""Satterthwaite denominator degrees of freedom for the fixed effects of a REML fit, as lmerTest
computes them (Kuznetsova, Brockhoff & Christensen 2017, "lmerTest Package: Tests in Linear Mixed
Effects Models", J. Stat. Softw. 82(13), section 3.2).

The variance parameters are ``tau = (theta, sigma)``, lmerTest's parametrisation.  For a contrast
``c`` of the fixed effects,

    df = 2 (c' V(tau) c)^2 / (g' A g),   g_i = c' (dV/dtau_i) c,

with ``V(tau) = sigma^2 (R_X' R_X)^{-1}(theta)`` the covariance of ``beta`` (lme4's ``vcov``) and
``A = 2 H^{-1}`` the asymptotic covariance of ``tau``, ``H`` the Hessian of the REML criterion
(``-2`` times the restricted log-likelihood, not profiled over ``sigma``)

    d(theta, sigma) = log|L_theta|^2 + log|R_X|^2 + (n - p) log(2 pi sigma^2) + r^2(theta) / sigma^2.

As in lmerTest, ``H^{-1}`` is the Moore-Penrose inverse over the eigenvalues of ``H`` above
:data:`EIGEN_TOL` (a variance at the boundary leaves a flat or negative direction, which is
dropped; the table :func:`satterthwaite` returns says so in ``attrs["note"]``, printed by
``summary()``).

Derivatives: ``dV/dsigma = 2 V / sigma`` is analytic; ``dV/dtheta`` and ``H`` are central
differences with one Richardson extrapolation (steps ``h`` and ``h/2``, error ``O(h^4)``), with
``h = STEP * max(|tau_i|, 0.1)``.  ``STEP = 1e-2`` (numDeriv, which lmerTest uses, starts at
``0.1 |x|``): the truncation error of the extrapolated difference is ``O(h^4)``, about ``1e-8``
relative, while the rounding error of a second difference grows as ``1 / h^2`` and is larger than
machine precision suggests (the criterion comes from a Cholesky factorisation whose last digits
differ between numpy/scipy builds).  Measured on the golden case ``sim_interaction_group`` (lmerTest df
19.39696): steps ``1e-2, 3e-3, 1e-3, 3e-4, 1e-4`` gave 19.39697, 19.3976, 19.422, 19.67, 20.37;
``1e-3`` had passed on an earlier numpy/scipy build and stopped passing on another.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from xltstats.errors import InputError
from xltstats.models.mixed._linalg import cho_solve

#: Relative step of the finite differences (see the module docstring).
STEP = 1e-2
#: Eigenvalues of the Hessian at or below this are left out of its inverse (lmerTest's ``tol``).
EIGEN_TOL = 1e-8


def _reml_criterion(dev, tau):
    """``-2`` restricted log-likelihood at ``tau = (theta, sigma)`` (sigma not profiled)."""
    theta, sigma = tau[:-1], tau[-1]
    pls = dev.solve_pls(theta)
    if pls is None or not sigma > 0:
        return np.inf
    s2 = sigma * sigma
    return (pls["logdet_L"] + pls["logdet_RX"] + (dev.n - dev.p) * math.log(2 * math.pi * s2)
            + pls["r2"] / s2)


def _unscaled_cov(dev, theta):
    """``(R_X' R_X)^{-1}`` at ``theta`` (``V / sigma^2``)."""
    pls = dev.solve_pls(np.asarray(theta, dtype=float))
    if pls is None:
        raise InputError("the mixed model's system is not positive definite near the optimum; "
                         "Satterthwaite degrees of freedom cannot be computed")
    return cho_solve(pls["cfx"], np.eye(dev.p))


def _steps(tau):
    return STEP * np.maximum(np.abs(tau), 0.1)


def _hessian(f, x):
    """Central-difference Hessian of ``f`` at ``x`` with one Richardson step."""
    k = len(x)
    base = np.asarray(x, dtype=float)
    f0 = f(base)

    def at(h):
        H = np.empty((k, k))
        for i in range(k):
            ei = np.zeros(k)
            ei[i] = h[i]
            H[i, i] = (f(base + ei) - 2 * f0 + f(base - ei)) / (h[i] * h[i])
            for j in range(i):
                ej = np.zeros(k)
                ej[j] = h[j]
                H[i, j] = H[j, i] = (f(base + ei + ej) - f(base + ei - ej) - f(base - ei + ej)
                                     + f(base - ei - ej)) / (4 * h[i] * h[j])
        return H

    h = _steps(base)
    H1, H2 = at(h), at(h / 2)
    return (4 * H2 - H1) / 3


def _cov_jacobian(dev, tau):
    """``dV/dtau_i`` for each variance parameter (a list of ``p x p`` matrices)."""
    theta, sigma = np.asarray(tau[:-1], dtype=float), float(tau[-1])
    s2 = sigma * sigma
    h = _steps(tau)[:-1]
    out = []
    for i in range(len(theta)):
        def diff(step):
            e = np.zeros(len(theta))
            e[i] = step
            return (_unscaled_cov(dev, theta + e) - _unscaled_cov(dev, theta - e)) / (2 * step)
        out.append(s2 * (4 * diff(h[i] / 2) - diff(h[i])) / 3)
    out.append(2 * sigma * _unscaled_cov(dev, theta))
    return out


class SatterthwaiteParts:
    """What every Satterthwaite test of one fit needs: ``V``, ``dV/dtau`` and ``A``."""

    def __init__(self, results):
        if not results.reml:
            raise InputError("Satterthwaite degrees of freedom are computed for REML fits; "
                             "refit with reml=True")
        if results.method != "fast":
            raise InputError("Satterthwaite degrees of freedom need the fast path's deviance "
                             f"(this fit used method={results.method!r})")
        dev = results._dev
        self.tau = np.append(results.theta, results.sigma)
        self.vcov = results.cov_params().to_numpy()
        self.jacobian = _cov_jacobian(dev, self.tau)
        H = _hessian(lambda t: _reml_criterion(dev, t), self.tau)
        H = (H + H.T) / 2
        values, vectors = np.linalg.eigh(H)
        keep = values > EIGEN_TOL
        self.dropped_eigenvalues = values[~keep]
        self.hessian = H
        self.A = 2 * (vectors[:, keep] / values[keep]) @ vectors[:, keep].T
        self.names = list(results.params.index)

    def df(self, contrast) -> float:
        c = np.asarray(contrast, dtype=float)
        var = float(c @ self.vcov @ c)
        g = np.array([c @ J @ c for J in self.jacobian])
        denom = float(g @ self.A @ g)
        if not denom > 0:
            return math.inf  # V does not depend on the variance parameters: the z test is exact
        return 2 * var * var / denom


def satterthwaite(results, parts: SatterthwaiteParts | None = None) -> pd.DataFrame:
    """lmerTest's ``summary(m)$coefficients``: per fixed effect the estimate, standard error,
    Satterthwaite df, t value and two-sided ``Pr(>|t|)`` (columns ``estimate, std_error, df,
    statistic, p_value``)."""
    parts = parts or SatterthwaiteParts(results)
    p = len(parts.names)
    df = np.array([parts.df(np.eye(p)[i]) for i in range(p)])
    t = results.tvalues.to_numpy()
    pv = 2 * stats.t.sf(np.abs(t), df)
    out = pd.DataFrame({"estimate": results.params.to_numpy(), "std_error": results.bse.to_numpy(),
                        "df": df, "statistic": t, "p_value": pv},
                       index=pd.Index(parts.names, name="term"))
    if len(parts.dropped_eigenvalues):
        values = " ".join(f"{v:.1e}" for v in parts.dropped_eigenvalues)
        out.attrs["note"] = (f"the REML Hessian in (theta, sigma) has {len(parts.dropped_eigenvalues)} "
                             f"eigenvalue(s) at or below {EIGEN_TOL:g} ({values}), left out of its "
                             "inverse as lmerTest does: the fit may sit on a boundary or not have converged")
    return out
