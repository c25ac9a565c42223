"""Stage 3 of a mixed-model fit, lme4's ``optimizeLmer``: minimise the profiled criterion over
``theta`` under ``theta_diag >= 0``, with lme4's convergence checks.

Also the process-wide single-threaded BLAS limit every fit runs under.
"""
from __future__ import annotations

import contextlib
import threading

import numpy as np
import scipy.optimize as sopt

#: lme4's default tolerance for isSingular(): a diagonal theta below it is "at the boundary".
SINGULAR_TOL = 1e-4
#: lme4's check.conv.grad tolerance on the Hessian-scaled gradient.
GRADIENT_TOL = 2e-3


class MixedModelWarning(UserWarning):
    """A mixed-model fit finished with a problem worth a look (singular, not converged, ...)."""


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


def optimise(dev, theta0: np.ndarray, maxiter: int, restart: bool = True):
    """Minimise the profiled criterion over theta (diagonal elements >= 0).

    Bounded L-BFGS-B (with the criterion's analytic gradient where ``dev.has_gradient``), a Newton
    polish, then a restart from a perturbed point: if the restart ends
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

    # L-BFGS-B with the analytic gradient of the criterion where the deviance has one (one solve
    # per step instead of 1 + n_theta for forward differences), else finite differences
    analytic = bool(getattr(dev, "has_gradient", False))

    def f_and_gradient(th):
        evals[0] += 1
        return dev.value_and_gradient(th)

    objective = f_and_gradient if analytic else f
    opts = dict(maxiter=maxiter, ftol=1e-12, gtol=1e-6, maxls=30)
    res = sopt.minimize(objective, theta0, method="L-BFGS-B", jac=analytic, bounds=bounds, options=opts)
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
    res2 = sopt.minimize(objective, start, method="L-BFGS-B", jac=analytic, bounds=bounds, options=opts)
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



_BLAS_LOCK = threading.Lock()
_BLAS_STATE = {"depth": 0, "limiter": None}


@contextlib.contextmanager
def single_threaded_blas():
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
