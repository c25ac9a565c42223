"""statsmodels' MixedLM as an independent reference for :func:`xltstats.models.fit_mixed`
(``method="statsmodels"``), with its own entry point :func:`fit_statsmodels`.

Crossed random effects are expressed the way statsmodels allows them: one group holding every
row and one variance component per random term (``vc_formula={"source": "0 + C(source)"}``).
Correlated random slopes can only be fitted when they are the model's single random term (then
statsmodels' ``groups``/``re_formula`` is used).

statsmodels' optimiser chain can report convergence at a point that is not the optimum, so the
fast path is fitted too and the result is marked not converged, with a warning, when the fast
path's likelihood is better.  The result is built once and is consistent: its ``theta`` is
statsmodels' variance parameters, its ``params`` and ``cov_params()`` statsmodels' fixed effects
and their covariance (so ``bse == sqrt(diag(cov_params()))``), and fitted values, BLUPs and
predictions follow from those fixed effects; ``llf`` is lme4's log-likelihood at statsmodels'
variance parameters (statsmodels' own value is ``statsmodels_llf``).
"""
from __future__ import annotations

import time
import warnings

import numpy as np

from xltstats.errors import ConfigError
from xltstats.models.mixed._deviance import ProfiledDeviance
from xltstats.models.mixed._design import lower_triangle_colwise
from xltstats.models.mixed._results import MixedResults, fit_design

#: A fast-path criterion lower by more than this (on the -2 log-likelihood scale) means
#: statsmodels stopped at a worse optimum.
LLF_TOLERANCE = 1e-3


class StatsmodelsMixedResults(MixedResults):
    """A :class:`MixedResults` whose variance parameters and fixed effects are statsmodels'.

    Adds ``statsmodels_result`` (statsmodels' own results object), ``statsmodels_llf`` (its
    log-likelihood) and ``fast_llf`` (the fast path's, for the same model and rows).
    """

    def __init__(self, *, statsmodels_result, fast_llf, **kwargs):
        self.statsmodels_result = statsmodels_result
        self.statsmodels_llf = float(statsmodels_result.llf)
        self.fast_llf = float(fast_llf)
        super().__init__(**kwargs)


def statsmodels_model(parsed, frame, design, reml):
    import statsmodels.formula.api as smf

    frame = frame.copy()
    terms = design.terms
    if any(t.is_multi_membership for t in terms):
        raise ConfigError("statsmodels' MixedLM cannot express a multi-membership factor "
                          f"({next(t.group for t in terms if t.is_multi_membership)}); use method='fast'")
    group_columns = {}
    for t, term in enumerate(terms):
        cols = [g.strip() for g in term.group.split(":")]
        if len(cols) > 1:
            name = f"_group{t}"
            frame[name] = frame[cols].astype(str).agg(":".join, axis=1)
            group_columns[t] = name
        else:
            group_columns[t] = cols[0]
    if all(term.n_columns == 1 for term in terms):
        frame["_all_rows"] = 1
        vc = {}
        for t, term in enumerate(terms):
            g = group_columns[t]
            name = term.column_names[0]
            expr = f"0 + C({g})" if name == "(Intercept)" else f"0 + C({g}):{term.expr.split('+')[-1].strip()}"
            vc[f"vc{t:03d}"] = expr
        model = smf.mixedlm(parsed.fixed_formula, frame, groups="_all_rows", re_formula="0",
                            vc_formula=vc)
        return model, "vc"
    if len(terms) == 1:
        model = smf.mixedlm(parsed.fixed_formula, frame, groups=group_columns[0],
                            re_formula=terms[0].expr)
        return model, "re"
    raise ConfigError(
        "method='statsmodels' cannot fit correlated random slopes together with other random "
        "terms (statsmodels has crossed effects only as independent variance components); use "
        "method='fast' or write the slope as (1 | g) + (0 + x | g)")



def _theta_from(sm, kind):
    """lme4's theta (relative Cholesky factors) from statsmodels' variance parameters."""
    scale = float(sm.scale)
    if kind == "vc":
        return np.sqrt(np.maximum(np.asarray(sm.vcomp, dtype=float), 0.0) / scale)
    cov = np.asarray(sm.cov_re, dtype=float) / scale
    try:
        T = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        w, v = np.linalg.eigh(cov)
        T = np.linalg.cholesky(v @ np.diag(np.maximum(w, 1e-12)) @ v.T)
    r, c = lower_triangle_colwise(T.shape[0])
    return T[r, c]


def fit_statsmodels(formula, parsed, frame, design, *, reml, n_dropped,
                    extra_warnings=()) -> StatsmodelsMixedResults:
    """Fit a prepared model (see :func:`~xltstats.models.mixed._design.prepare`) with statsmodels'
    MixedLM and check its optimum against the fast path's."""
    start = time.perf_counter()
    model, kind = statsmodels_model(parsed, frame, design, reml)
    messages = list(extra_warnings)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sm = model.fit(reml=reml)
    sm_seconds = time.perf_counter() - start
    messages.extend(f"statsmodels: {w.message}" for w in caught)
    theta = _theta_from(sm, kind)
    k_fe = len(design.fixed_names)
    fe_params = np.asarray(sm.fe_params, dtype=float)
    fe_cov = np.asarray(sm.cov_params(), dtype=float)[:k_fe, :k_fe]
    dev = ProfiledDeviance(design, reml)
    crit = dev(theta)
    llf = -0.5 * crit
    fast = fit_design(formula, parsed, frame, design, reml=reml, method="fast", n_dropped=n_dropped)
    converged = bool(getattr(sm, "converged", True))
    if fast.llf > llf + LLF_TOLERANCE / 2:
        converged = False
        messages.append(
            f"statsmodels stopped at a worse optimum: log-likelihood {llf:.6f} against "
            f"{fast.llf:.6f} from the fast (lme4) path; prefer method='fast'")
    return StatsmodelsMixedResults(
        statsmodels_result=sm, fast_llf=fast.llf,
        formula=formula, parsed=parsed, data=frame, design=design, dev=dev, theta=theta,
        criterion=crit, reml=reml, method="statsmodels", converged=converged,
        warnings_=messages, n_dropped=n_dropped, n_evaluations=None, fit_seconds=sm_seconds,
        fixed_effects=(fe_params, fe_cov))
