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

The stages are lme4's (``R/modular.R``), one module each:

``_design``      ``lFormula``: formula -> model matrices, the structure of ``Lambda_theta``;
                 :func:`update_formula` (lme4's ``update(f, . ~ . - x)``);
``_deviance``    ``mkLmerDevfun``: the profiled criterion in ``theta``, with the dense,
                 diagonal-Schur and block-Schur factorisations of ``A`` as strategies;
``_optimise``    ``optimizeLmer``: bounded L-BFGS-B, Newton polish, restart, lme4's checks;
``_results``     ``mkMerMod``: :class:`MixedResults`, built once;
``_inference``   profile / bootstrap intervals, likelihood-ratio tests, feature-group drops;
``_satterthwaite`` Satterthwaite df of the fixed effects of REML fits (lmerTest's method);
``_kenward_roger`` Kenward-Roger adjusted covariance, df and F tests of the fixed effects (pbkrtest);
``_statsmodels`` statsmodels' MixedLM as an independent reference (``method="statsmodels"``).

Variance components are reported as variances (``sigma^2 T T'``), not standard deviations.
``llf`` is lme4's ``logLik``: minus half the REML criterion for REML fits, minus half the deviance
for ML fits, including the ``2 pi`` constants.
"""
from __future__ import annotations

import warnings as _warnings

import pandas as pd

from xltstats.errors import ConfigError
from xltstats.models.mixed._design import prepare, update_formula
from xltstats.models.mixed._inference import compare_feature_groups, compare_mixed
from xltstats.models.mixed._optimise import _BLAS_STATE, MixedModelWarning  # noqa: F401
from xltstats.models.mixed._results import MixedResults, fit_design
from xltstats.models.mixed._statsmodels import StatsmodelsMixedResults, fit_statsmodels

__all__ = ["fit_mixed", "MixedResults", "StatsmodelsMixedResults", "compare_mixed",
           "compare_feature_groups", "update_formula", "MixedModelWarning"]


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
    parsed, frame, design, n_dropped = prepare(formula, data)
    extra = []
    if n_dropped:
        extra.append(f"dropped {n_dropped} rows with missing values in the formula's columns")
    if method == "fast":
        res = fit_design(formula, parsed, frame, design, reml=reml, method="fast",
                         n_dropped=n_dropped, maxiter=maxiter, extra_warnings=extra)
    else:
        res = fit_statsmodels(formula, parsed, frame, design, reml=reml, n_dropped=n_dropped,
                              extra_warnings=extra)
    if warn:
        for message in res.warnings:
            if not message.startswith("dropped "):
                _warnings.warn(message, MixedModelWarning, stacklevel=2)
    return res
