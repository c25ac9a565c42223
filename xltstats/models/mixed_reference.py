"""statsmodels MixedLM as an independent reference for :func:`xltstats.models.fit_mixed`.

Crossed random effects are expressed the way statsmodels allows them: one group holding every
row and one variance component per random term (``vc_formula={"source": "0 + C(source)"}``).
Correlated random slopes can only be fitted when they are the model's single random term (then
statsmodels' ``groups``/``re_formula`` is used).

statsmodels' optimiser chain can report convergence at a point that is not the optimum, so the
fast path is fitted too and a warning is issued when its likelihood is better.  The returned
:class:`~xltstats.models.mixed.MixedResults` carries statsmodels' variance parameters (as lme4's
``theta``) and fixed effects and standard errors; ``llf`` is lme4's log-likelihood evaluated at
statsmodels' variance parameters (statsmodels' own value is in ``statsmodels_llf``).
"""
from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd

from xltstats.errors import ConfigError

#: A fast-path criterion lower by more than this (on the -2 log-likelihood scale) means
#: statsmodels stopped at a worse optimum.
LLF_TOLERANCE = 1e-3


def _statsmodels_model(parsed, frame, design, reml):
    import statsmodels.formula.api as smf

    frame = frame.copy()
    terms = design.terms
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


def fit_statsmodels(formula, parsed, frame, design, *, reml, n_dropped, extra_warnings=()):
    from xltstats.models.mixed import MixedResults, _fit_design, _lower_triangle_colwise, _ProfiledDeviance

    start = time.perf_counter()
    model, kind = _statsmodels_model(parsed, frame, design, reml)
    messages = list(extra_warnings)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sm = model.fit(reml=reml)
    sm_seconds = time.perf_counter() - start
    for w in caught:
        messages.append(f"statsmodels: {w.message}")
    scale = float(sm.scale)
    if kind == "vc":
        vcomp = np.asarray(sm.vcomp, dtype=float)
        theta = np.sqrt(np.maximum(vcomp, 0.0) / scale)
    else:
        cov = np.asarray(sm.cov_re, dtype=float) / scale
        try:
            T = np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            w, v = np.linalg.eigh(cov)
            T = np.linalg.cholesky(v @ np.diag(np.maximum(w, 1e-12)) @ v.T)
        r, c = _lower_triangle_colwise(T.shape[0])
        theta = T[r, c]
    dev = _ProfiledDeviance(design, reml)
    crit = dev(theta)
    result = MixedResults(formula=formula, parsed=parsed, data=frame, design=design, dev=dev,
                          theta=theta, criterion=crit, reml=reml, method="statsmodels",
                          converged=bool(getattr(sm, "converged", True)), warnings_=messages,
                          n_dropped=n_dropped, n_evaluations=None, fit_seconds=sm_seconds)
    names = list(result.params.index)
    fe = pd.Series(np.asarray(sm.fe_params, dtype=float), index=names, name="estimate")
    bse = pd.Series(np.asarray(sm.bse_fe, dtype=float), index=names, name="std_error")
    result.params, result.bse, result.tvalues = fe, bse, fe / bse
    result.statsmodels_llf = float(sm.llf)
    result.statsmodels_result = sm
    fast = _fit_design(formula, parsed, frame, design, reml=reml, method="fast", n_dropped=n_dropped)
    result.fast_llf = fast.llf
    if fast.llf > result.llf + LLF_TOLERANCE / 2:
        result.converged = False
        result.warnings.append(
            f"statsmodels stopped at a worse optimum: log-likelihood {result.llf:.6f} against "
            f"{fast.llf:.6f} from the fast (lme4) path; prefer method='fast'")
    return result
