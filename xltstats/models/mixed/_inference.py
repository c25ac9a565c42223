"""Stage 5, inference on a fitted mixed model: profile-likelihood and parametric-bootstrap
intervals for the variance components (lme4's ``confint``), likelihood-ratio tests (lme4's
``anova``) and feature-group drops built with a formula update.

The functions take a fitted :class:`~xltstats.models.mixed.MixedResults` and use only its public
numbers, its design and profiled deviance, and its ``refit`` / ``update`` methods.
"""
from __future__ import annotations

import math
import warnings as _warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import scipy.optimize as sopt
from scipy import stats

from xltstats.errors import ConfigError, InputError
from xltstats.models.mixed._deviance import ProfiledDeviance
from xltstats.models.mixed._design import fixed_terms, lower_triangle_colwise, update_formula
from xltstats.models.mixed._optimise import MixedModelWarning, optimise, single_threaded_blas

#: Relative tolerance of the root search for the ends of a profile interval.  lme4 interpolates its
#: profile with splines (``confint(method = "profile")`` agrees with the exact roots to about 1e-4
#: relative; the golden tests allow 1e-3); 1e-8 is far below both and below anything the tables
#: print, and spares the root search the steps that 1e-10 took.
PROFILE_XTOL = 1e-8


def variance_components_ci(fit, alpha: float = 0.05, method: str | None = None,
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
        ml = fit.refit(reml=False)
        with single_threaded_blas():
            out = profile_intervals(ml, alpha)
        out["variance"] = fit.variance_components.reindex(out.index).to_numpy()
        return out
    if method != "bootstrap":
        raise ConfigError(f"method must be 'profile' or 'bootstrap', got {method!r}")
    rng = np.random.default_rng(seed)
    d = fit._design
    boot_dev = ProfiledDeviance(d, fit.reml)
    Lam = d.lambda_matrix(fit.theta)
    draws = []
    n_failed = 0
    with single_threaded_blas():
        draws, n_failed = _bootstrap_draws(fit, boot_dev, Lam, rng, n_boot)
    draws = np.array(draws)
    lo = np.quantile(draws, alpha / 2, axis=0)
    hi = np.quantile(draws, 1 - alpha / 2, axis=0)
    out = pd.DataFrame({"variance": fit.variance_components.to_numpy(), "lower": lo, "upper": hi},
                       index=fit.variance_components.index)
    out.attrs.update(method="parametric bootstrap, percentile", n_boot=n_boot,
                     n_failed=n_failed, seed=seed, alpha=alpha)
    return out

def _full_criterion(fit, theta, log_sigma, gradient=False):
    """-2 log-likelihood (ML) or REML criterion at (theta, sigma), sigma not profiled out.

    ``gradient=True`` (ML only, see :meth:`ProfiledDeviance.gradient_parts`) returns
    ``(value, d value / d theta, d value / d log sigma)``; where the criterion is not finite the
    derivatives are zero.
    """
    pls = fit._dev.solve_pls(theta)
    d = fit._design
    if pls is None or not np.isfinite(log_sigma):
        return (np.inf, np.zeros(d.n_theta), 0.0) if gradient else np.inf
    s2 = math.exp(2.0 * log_sigma)
    dof = d.n - d.p if fit.reml else d.n
    value = pls["logdet_L"] + dof * math.log(2.0 * math.pi * s2) + pls["r2"] / s2
    if fit.reml:
        value += pls["logdet_RX"]
    if not gradient:
        return value
    dlogdet, dr2 = fit._dev.gradient_parts(theta, pls)
    return value, dlogdet + dr2 / s2, 2.0 * dof - 2.0 * pls["r2"] / s2


def _profile_value(fit, index, sd, warm=None):
    """Minimum of the criterion with the standard deviation of component ``index`` fixed.

    ``index`` is a diagonal position in theta (sd = sigma * theta[index]) or None for the
    residual standard deviation.  Returns the minimum over the other parameters.  ``warm``: a dict
    that keeps the last minimiser of each component, the start of its next minimisation (the root
    search moves ``sd`` a little at a time, so the optimum moves little).

    The ML criterion is minimised with its analytic gradient (:func:`_full_criterion`); the REML
    one, or a random-effect dimension above the gradient's limit, with finite differences.
    """
    d = fit._design
    lower = d.theta_lower
    free = np.ones(d.n_theta, dtype=bool)
    if index is not None:
        free[index] = False

    def unpack(z):
        theta = fit.theta.copy()
        theta[free] = z[:-1] if index is not None else z
        if index is None:
            return theta, math.log(sd)
        log_sigma = z[-1]
        theta[index] = sd / math.exp(log_sigma)
        return theta, log_sigma

    def objective(z):
        theta, log_sigma = unpack(z)
        return _full_criterion(fit, theta, log_sigma)

    def objective_and_gradient(z):
        theta, log_sigma = unpack(z)
        value, g_theta, g_log_sigma = _full_criterion(fit, theta, log_sigma, gradient=True)
        if index is None:
            return value, g_theta
        # theta[index] = sd / sigma moves with log sigma: d theta[index] / d log sigma = -theta[index]
        return value, np.append(g_theta[free], g_log_sigma - g_theta[index] * theta[index])

    z0 = fit.theta[free]
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower[free]]
    if index is not None:
        z0 = np.append(z0, math.log(fit.sigma))
        bounds.append((None, None))
    if len(z0) == 0:
        return objective(z0)
    cold = z0
    if warm is not None and index in warm:
        z0 = warm[index]
    analytic = not fit.reml and fit._dev.has_gradient
    function = objective_and_gradient if analytic else objective
    options = dict(maxiter=500, ftol=1e-12, gtol=1e-7)
    res = sopt.minimize(function, z0, method="L-BFGS-B", jac=analytic, bounds=bounds, options=options)
    if z0 is not cold and not res.fun <= objective(cold):
        # the warm start led the optimiser astray (worse than the cold start's own value: seen
        # when the residual SD's search jumps back to the estimate); minimise from the cold start
        res = sopt.minimize(function, cold, method="L-BFGS-B", jac=analytic, bounds=bounds, options=options)
    if warm is not None and np.all(np.isfinite(res.x)):
        warm[index] = res.x
    return float(res.fun)

def profile_intervals(fit, alpha):
    d = fit._design
    target = fit.deviance_value + stats.chi2.ppf(1 - alpha, 1)
    rows, index = [], []
    components = []
    for t, term in enumerate(d.terms):
        r, c = lower_triangle_colwise(term.n_columns)
        for j, (i_r, i_c) in enumerate(zip(r, c)):
            if i_r == i_c:
                components.append((fit._component_name(t, i_r), d.theta_slices[t].start + j))
    components.append(("Residual", None))
    warm = {}
    for name, theta_index in components:
        estimate = fit.sigma if theta_index is None else fit.sigma * fit.theta[theta_index]

        def excess(sd, theta_index=theta_index):
            return _profile_value(fit, theta_index, sd, warm) - target

        # lower end
        if theta_index is not None and (estimate <= 1e-8 or excess(1e-10 * max(fit.sigma, 1)) <= 0):
            low = 0.0
        else:
            a = estimate * 0.5
            while excess(a) < 0 and a > 1e-8 * fit.sigma:
                a *= 0.5
            low = sopt.brentq(excess, a, estimate, xtol=PROFILE_XTOL * max(estimate, 1e-12),
                              rtol=PROFILE_XTOL) \
                if excess(a) > 0 else 0.0
        # upper end
        b = max(estimate, 1e-3 * fit.sigma) * 1.5
        for _ in range(60):
            if excess(b) > 0:
                break
            b *= 2.0
        start = max(estimate, 1e-12)
        high = sopt.brentq(excess, start, b, xtol=PROFILE_XTOL * b, rtol=PROFILE_XTOL)
        index.append(name)
        rows.append((estimate ** 2, low ** 2, high ** 2))
    out = pd.DataFrame(rows, columns=["variance", "lower", "upper"], index=index)
    out.attrs.update(method="profile likelihood", alpha=alpha,
                     criterion="REML" if fit.reml else "ML")
    return out

def _bootstrap_draws(fit, boot_dev, Lam, rng, n_boot):
    d = fit._design
    draws, n_failed = [], 0
    for _ in range(n_boot):
        u = rng.standard_normal(d.q)
        y_star = fit.fixed_fitted + fit.sigma * (d.Z @ (Lam @ u)) \
            + fit.sigma * rng.standard_normal(d.n)
        boot_dev.set_response(y_star)
        theta, crit, _msgs, ok, _ = optimise(boot_dev, fit.theta.copy(), maxiter=1000,
                                               restart=False)
        if not np.isfinite(crit):
            n_failed += 1
            continue
        pls = boot_dev.solve_pls(theta)
        r2 = pls["r2"]
        scale = r2 / (d.n - d.p) if fit.reml else r2 / d.n
        values = []
        for t, term in enumerate(d.terms):
            T = d.theta_template(theta, t)
            values.extend(np.diag(scale * T @ T.T))
        values.append(scale)
        draws.append(values)
    return draws, n_failed


def compare_mixed(m0, m1, *, refit: bool | None = None) -> pd.DataFrame:
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


def compare_feature_groups(result, groups: dict, *, alpha: float = 0.05) -> pd.DataFrame:
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
    parsed = result.parsed
    full = result.refit(reml=False)
    in_model = set(fixed_terms(parsed))
    rows = []
    for name, columns in groups.items():
        columns = [columns] if isinstance(columns, str) else list(columns)
        dropped = [c for c in columns if c in in_model]
        row = {"group": name, "features": " ".join(columns), "n_dropped": len(dropped)}
        if not dropped:
            rows.append({**row, "status": "not_in_model"})
            continue
        formula = update_formula(parsed, ". ~ . " + " ".join(f"- {c}" for c in dropped))
        reduced = result.update(formula, reml=False)
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


def fixed_effects_profile_ci(fit, alpha: float = 0.05) -> pd.DataFrame:
    """Profile-likelihood intervals for the fixed effects, as lme4's
    ``confint(m, parm = "beta_", method = "profile")``.

    lme4 profiles the ML deviance (a REML fit is refitted with ML first), and so does this: with
    ``beta_j`` held at ``b`` the remaining problem is an ordinary profiled LMM (response
    ``y - b x_j``, design ``X`` without column ``j``), whose ML deviance is minimised over theta
    (``sigma`` and the other ``beta`` profiled out analytically).  The interval is where the
    signed square root of the deviance increase crosses ``-/+ qnorm(1 - alpha/2)``, i.e. where the
    increase equals the chi-square(1) quantile (the exact roots, not lme4's spline interpolation,
    which agrees with them to about 1e-4 relative).  Returns a DataFrame indexed by the fixed
    effects with columns ``lower, upper``.
    """
    ml = fit.refit(reml=False)
    d = ml._design
    target = ml.deviance_value + stats.chi2.ppf(1 - alpha, 1)
    lower, upper = [], []
    with single_threaded_blas():
        for j in range(d.p):
            keep = np.arange(d.p) != j
            reduced = replace(d, X=np.ascontiguousarray(d.X[:, keep]),
                              fixed_names=[n for i, n in enumerate(d.fixed_names) if i != j])
            dev = ProfiledDeviance(reduced, reml=False)
            x_j = d.X[:, j]
            warm = [ml.theta.copy()]

            def excess(b, dev=dev, x_j=x_j, warm=warm):
                dev.set_response(d.y - b * x_j)
                theta, crit, _m, _ok, _e = optimise(dev, warm[0].copy(), maxiter=1000, restart=False)
                if np.all(np.isfinite(theta)):
                    warm[0] = theta
                return crit - target

            estimate = float(ml.params.iloc[j])
            step = float(ml.bse.iloc[j])
            ends = []
            for sign in (-1.0, 1.0):
                far = estimate + sign * 2.0 * step
                for _ in range(60):
                    if excess(far) > 0:
                        break
                    far = estimate + 2.0 * (far - estimate)
                else:
                    ends.append(np.nan)
                    continue
                warm[0] = ml.theta.copy()
                a, b = sorted((estimate, far))
                ends.append(sopt.brentq(excess, a, b, xtol=PROFILE_XTOL * max(abs(step), 1e-12),
                                        rtol=PROFILE_XTOL))
                warm[0] = ml.theta.copy()
            lower.append(ends[0])
            upper.append(ends[1])
    out = pd.DataFrame({"lower": lower, "upper": upper}, index=fit.params.index)
    out.attrs.update(method="profile likelihood (ML deviance, as lme4)", alpha=alpha)
    return out
