"""Stage 4 of a mixed-model fit, lme4's ``mkMerMod``: the fitted model's numbers, built once
from the design, the profiled deviance and the optimum ``theta`` (never changed afterwards).

Variance components are reported as variances (``sigma^2 T T'``), not standard deviations.
``llf`` is lme4's ``logLik``: minus half the REML criterion for REML fits, minus half the deviance
for ML fits, including the ``2 pi`` constants.
"""
from __future__ import annotations

import functools
import math
import time

import numpy as np
import pandas as pd
from scipy import stats

from xltstats.errors import InputError
from xltstats.models.formula import ParsedFormula
from xltstats.models.mixed._inference import variance_components_ci as _variance_components_ci
from xltstats.models.mixed._inference import fixed_effects_profile_ci as _fixed_effects_profile_ci
from xltstats.models.mixed._deviance import ProfiledDeviance
from xltstats.models.mixed._kenward_roger import KenwardRogerParts, kenward_roger as _kenward_roger_table
from xltstats.models.mixed._design import (Design, lower_triangle_colwise, member_labels, numeric_builder,
                                           prepare)
from xltstats.models.mixed._linalg import cho_solve
from xltstats.models.mixed._optimise import SINGULAR_TOL, optimise, single_threaded_blas
from xltstats.models.summary import Summary

#: Above this many entries (q x columns of a term) the BLUPs' conditional covariance is not formed.
CONDVAR_DENSE_LIMIT = 25_000_000


class MixedResults:
    """A fitted linear mixed model (statsmodels-style attributes, lme4-style numbers), built once
    and read-only afterwards.

    The vocabulary is :class:`~xltstats.models.OLSResults`' and
    :class:`~xltstats.models.PortableModel`'s: ``params``, ``bse``, ``tvalues``, ``pvalues``,
    ``cov_params()``, ``conf_int()``, ``scale``, ``df_inference``, ``nobs``, ``formula``,
    ``predict()``, ``prediction_interval()``, ``table()`` (the tidy table) and ``summary()``.

    Attributes
    ----------
    params, bse : Series
        Fixed effects (patsy names; intercept first) and their standard errors, the roots of the
        diagonal of ``cov_params()`` = ``sigma^2 (R_X' R_X)^{-1}`` as in lme4's ``vcov``.
    scale, sigma : float
        Residual variance and standard deviation.
    variance_components : Series
        Variances (not standard deviations) indexed by grouping factor as written in the
        formula (``source``, ``target``, ``task``) and ``Residual``.  For a term with several
        columns the slope variances are named ``group:column`` (e.g. ``source:x``) and the
        intercept keeps the plain group name; covariances are in :attr:`varcorr`.
    varcorr : DataFrame
        lme4's ``VarCorr`` as a table: group, the two column names, variance/covariance, and
        standard deviation/correlation.
    llf, aic, bic, deviance_value : float
        lme4's ``logLik``, ``AIC``, ``BIC`` and the criterion at the optimum (REML values for REML
        fits, as lme4 reports them).
    theta : ndarray
        The relative covariance parameters (lme4's ``getME(m, "theta")``).
    """

    def __init__(self, *, formula, parsed, data, design, dev, theta, criterion, reml, method,
                 converged, warnings_, n_dropped, n_evaluations, fit_seconds=None,
                 fixed_effects=None):
        """``fixed_effects``: optional ``(params, cov_params)`` estimated elsewhere (the statsmodels
        reference fit); by default they are lme4's, from the penalised least squares at ``theta``.
        Fitted values, BLUPs and standard errors all follow from the fixed effects used."""
        self.formula = formula
        self.parsed: ParsedFormula = parsed
        self.data = data
        self.reml = reml
        self.method = method
        self._design: Design = design
        self._dev = dev
        self.theta = np.asarray(theta, dtype=float)
        self.criterion = float(criterion)
        self.converged = bool(converged)
        self.warnings = list(warnings_)
        self.n_dropped = int(n_dropped)
        self.n_evaluations = n_evaluations
        self.nobs = design.n
        self.fit_seconds = fit_seconds
        self._compute(fixed_effects)
        object.__setattr__(self, "_built", True)

    def __setattr__(self, name, value):
        if getattr(self, "_built", False):
            raise AttributeError(f"a fitted {type(self).__name__} is read-only (built once); "
                                 f"cannot set {name!r}")
        object.__setattr__(self, name, value)

    # ---- core numbers -----------------------------------------------------------------------
    def _compute(self, fixed_effects):
        d, dev = self._design, self._dev
        pls = dev.solve_pls(self.theta)
        if pls is None:
            raise InputError("the fitted model's system is not positive definite")
        n, p = d.n, d.p
        r2 = pls["r2"]
        self.scale = r2 / (n - p) if self.reml else r2 / n
        self.sigma = math.sqrt(self.scale)
        if fixed_effects is None:
            beta = pls["beta"]
            cov = self.scale * cho_solve(pls["cfx"], np.eye(p))
        else:
            beta, cov = (np.asarray(v, dtype=float) for v in fixed_effects)
            if beta.shape != (p,) or cov.shape != (p, p):
                raise InputError(f"fixed effects of shape {beta.shape} / {cov.shape} for {p} terms")
        self.params = pd.Series(beta, index=d.fixed_names, name="params")
        self._cov_params = pd.DataFrame(cov, index=d.fixed_names, columns=d.fixed_names)
        self.bse = pd.Series(np.sqrt(np.diag(cov)), index=d.fixed_names, name="bse")
        self.tvalues = (self.params / self.bse).rename("tvalues")
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
                r, c = lower_triangle_colwise(term.n_columns)
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
    def conf_int(self, alpha: float = 0.05, method: str = "Wald") -> pd.DataFrame:
        """Intervals for the fixed effects (columns lower, upper): ``method="Wald"`` (default) with
        normal quantiles, as lme4's ``confint(method = "Wald")``; ``method="profile"``
        profile-likelihood intervals as lme4's ``confint(method = "profile")`` (see
        :func:`xltstats.models.mixed._inference.fixed_effects_profile_ci`)."""
        if method == "profile":
            return _fixed_effects_profile_ci(self, alpha)
        if method != "Wald":
            raise InputError(f"method must be 'Wald' or 'profile', got {method!r}")
        z = stats.norm.ppf(1 - alpha / 2)
        return pd.DataFrame({"lower": self.params - z * self.bse, "upper": self.params + z * self.bse})

    @property
    def df_inference(self) -> None:
        """Degrees of freedom of the t tests and intervals: None, normal quantiles (as lme4's
        Wald intervals; :meth:`satterthwaite` and :meth:`kenward_roger` give the corrected tests)."""
        return None

    @functools.cached_property
    def _satterthwaite(self):
        from xltstats.models.mixed._satterthwaite import satterthwaite
        return satterthwaite(self)

    def satterthwaite(self) -> pd.DataFrame:
        """Satterthwaite t tests of the fixed effects, as lmerTest's ``summary(m)$coefficients``
        (REML fits of the fast path): one row per fixed effect with ``estimate, std_error, df,
        statistic, p_value``; see :mod:`xltstats.models.mixed._satterthwaite`.  Computed on first
        use and kept.  :attr:`pvalues` and :meth:`table` stay the normal approximation."""
        return self._satterthwaite.copy()

    @functools.cached_property
    def _kenward_roger_parts(self):
        return KenwardRogerParts(self)

    def kenward_roger(self) -> pd.DataFrame:
        """Kenward-Roger t tests of the fixed effects, as pbkrtest (lmerTest's ``summary(m, ddf =
        "Kenward-Roger")``), columns as :meth:`satterthwaite`'s, ``std_error`` from
        :meth:`cov_params_kenward_roger`; an ML fit is refitted with REML first, as pbkrtest does."""
        return _kenward_roger_table(self._kenward_roger_parts)

    def cov_params_kenward_roger(self) -> pd.DataFrame:
        """Kenward & Roger's adjusted covariance ``Phi_A`` of the fixed effects (pbkrtest's ``vcovAdj``)."""
        return pd.DataFrame(self._kenward_roger_parts.vcov_adj, index=self.params.index, columns=self.params.index)

    def kenward_roger_test(self, contrast, rhs=None) -> dict:
        """Kenward-Roger F test of ``contrast @ beta = rhs`` (rows of ``contrast``: contrasts; default
        ``rhs`` 0), as pbkrtest's ``KRmodcomp``: ``ndf, ddf, F_scaling, F, p_value, F_unscaled``."""
        return self._kenward_roger_parts.f_test(contrast, rhs)

    def cov_params(self) -> pd.DataFrame:
        """Covariance of the fixed effects (lme4's ``vcov``)."""
        return self._cov_params.copy()

    @property
    def pvalues(self) -> pd.Series:
        """Two-sided p-values from the normal approximation to the t statistics (no df correction)."""
        return pd.Series(2 * stats.norm.sf(np.abs(self.tvalues)), index=self.params.index,
                         name="pvalues")

    def variance_components_ci(self, alpha: float = 0.05, method: str | None = None,
                               n_boot: int | None = None, seed: int = 0) -> pd.DataFrame:
        """Confidence intervals for the variance components (variances; columns lower, upper):
        ``method="profile"`` (default) as lme4's ``confint(method = "profile")``, or
        ``method="bootstrap"`` (the default when ``n_boot`` is given) as lme4's
        ``confint(method = "boot", type = "perc")``; see
        :func:`xltstats.models.mixed._inference.variance_components_ci`."""
        return _variance_components_ci(self, alpha=alpha, method=method, n_boot=n_boot,
                                                 seed=seed)

    # ---- R2 (Nakagawa & Schielzeth 2013; Johnson 2014 for random slopes) ---------------------
    def _variance_parts(self):
        var_fixed = float(np.var(self.fixed_fitted, ddof=1)) if self.nobs > 1 else 0.0
        var_random = 0.0
        for t, term in enumerate(self._design.terms):
            cov = self._term_cov[t]
            # mean over rows of z_i' Sigma z_i (Johnson 2014); equals the variance for intercepts;
            # a multi-membership row loads on each member's level (loading 2 for two members)
            var_random += float(np.mean(term.loading * np.einsum("ij,jk,ik->i", term.matrix, cov, term.matrix)))
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
        return self._condvar

    @functools.cached_property
    def _condvar(self):
        # formed on first use (it costs a solve with q right-hand sides), then kept
        d = self._design
        Lam = d.lambda_matrix(self.theta)
        blocks = []
        for t, term in enumerate(d.terms):
            k, L = term.n_columns, term.n_levels
            cols = np.arange(d.offsets[t], d.offsets[t] + k * L)
            if d.q * len(cols) > CONDVAR_DENSE_LIMIT:
                # too large to form densely: intervals then use the full variance component
                blocks.append(None)
                continue
            LamT = Lam.T.tocsc()[:, cols].toarray()     # Lambda' restricted to the term's columns
            solved = self._solve(LamT)
            # only the k x k diagonal blocks (one per level) of Lambda A^{-1} Lambda' are needed
            blocks.append(self.scale * np.einsum("qli,qlj->lij", LamT.reshape(d.q, L, k),
                                                 solved.reshape(d.q, L, k), optimize=True))
        return blocks

    # ---- prediction ----------------------------------------------------------------------------
    @functools.cached_property
    def _builders(self):
        """Builders of the prediction matrices (fixed effects, then each random term), made once
        per fit (see :func:`~xltstats.models.mixed._design.numeric_builder`; None: patsy builds it)."""
        d = self._design
        return numeric_builder(d.x_design_info), [numeric_builder(info) for info in d.term_design_infos]

    @staticmethod
    def _build(builder, design_info, newdata):
        import patsy

        X = builder(newdata) if builder is not None else None
        if X is None:
            (X,) = patsy.build_design_matrices([design_info], newdata, return_type="matrix",
                                               NA_action="raise")
        return np.asarray(X, dtype=float)

    def _new_design(self, newdata: pd.DataFrame):
        import patsy

        d = self._design
        x_builder, term_builders = self._builders
        try:
            X = self._build(x_builder, d.x_design_info, newdata)
        except patsy.PatsyError as exc:
            raise InputError(f"cannot build the fixed-effects matrix for new data: {exc}") from None
        term_rows = []
        for t, term in enumerate(d.terms):
            Zt = self._build(term_builders[t], d.term_design_infos[t], newdata)
            labels = np.column_stack([m.to_numpy() for m in member_labels(newdata, term.group)])
            codes = pd.Index(term.levels).get_indexer(labels.ravel()).reshape(labels.shape).astype(np.int64)
            # how many members of the row name the same level (2 for mm(source, target) on (a, a))
            shared = (labels[:, :, None] == labels[:, None, :]).sum(axis=2).astype(float)
            term_rows.append((Zt, codes, shared))  # rows x members
        return X, term_rows

    def predict(self, newdata: pd.DataFrame | None = None, include_random: bool = True) -> pd.Series:
        """Predictions ``X beta (+ Z b)``; levels not seen in fitting get a random effect of 0
        (for ``mm(source, target)``, each member's level that was not seen)."""
        if newdata is None:
            return (self.fittedvalues if include_random else pd.Series(
                self.fixed_fitted, index=self.data.index)).rename("prediction")
        pred = self._predict_design(*self._new_design(newdata), include_random)
        return pd.Series(pred, index=newdata.index, name="prediction")

    def _predict_design(self, X, term_rows, include_random):
        pred = X @ self.params.to_numpy()
        if include_random:
            for t, (Zt, members, _shared) in enumerate(term_rows):
                blups = self.random_effects_array(t)
                for codes in members.T:
                    seen = codes >= 0
                    pred[seen] += np.einsum("ij,ij->i", Zt[seen], blups[codes[seen]])
        return pred

    def random_effects_array(self, t):
        d = self._design
        term = d.terms[t]
        k = term.n_columns
        return self._b[d.offsets[t]: d.offsets[t] + k * term.n_levels].reshape(term.n_levels, k)

    def prediction_interval(self, newdata: pd.DataFrame, alpha: float = 0.05,
                            include_random: bool = True) -> pd.DataFrame:
        """Prediction, standard errors and approximate ``1 - alpha`` intervals for new observations:
        columns ``prediction``, ``se_mean`` (of the predicted mean, ``x'beta (+ z'b)``),
        ``se_prediction`` (of a new observation: ``se_mean`` and the residual variance), ``lower``
        and ``upper`` (normal quantiles), as :meth:`OLSResults.prediction_interval` and
        :meth:`PortableModel.prediction_interval`.

        The variance of a new observation is ``x' V_beta x + sigma^2`` plus, per random term,
        the conditional variance of the BLUP ``z' condVar z`` for a level seen in fitting (when
        ``include_random``) or the full ``z' Sigma z`` for an unseen level (or when
        ``include_random`` is False, or when the random-effect dimension is too large to form the
        conditional covariance densely: more than 25 million entries).  The covariance between the estimates of ``beta`` and the
        BLUPs, and the uncertainty in the variance components, are ignored; normal quantiles.
        A multi-membership term (``mm(source, target)``) adds one such part per member (the
        conditional covariance between the BLUPs of the two languages of a pair is ignored, as
        the portable model of :mod:`xltstats.models.persist` ignores it).
        """
        X, term_rows = self._new_design(newdata)
        pred = self._predict_design(X, term_rows, include_random)
        V = self._cov_params.to_numpy()
        fixed_var = np.einsum("ij,jk,ik->i", X, V, X)
        var = fixed_var + self.scale
        mean_var = fixed_var.copy()
        condvar = self._conditional_cov_blocks() if include_random else None
        for t, (Zt, members, shared) in enumerate(term_rows):
            cov = self._term_cov[t]
            full = np.einsum("ij,jk,ik->i", Zt, cov, Zt)
            for codes, weight in zip(members.T, shared.T):
                if include_random and condvar[t] is not None:
                    seen = codes >= 0
                    cv = condvar[t][np.where(seen, codes, 0)]
                    cond = np.einsum("ij,ijk,ik->i", Zt, cv, Zt)
                    part = np.where(seen, cond, full)
                else:
                    part = full
                var += weight * part  # a level named by w members of the row: w^2 in all
                mean_var += weight * part
        z = stats.norm.ppf(1 - alpha / 2)
        sd = np.sqrt(var)
        return pd.DataFrame({"prediction": pred, "se_mean": np.sqrt(mean_var), "se_prediction": sd,
                             "lower": pred - z * sd, "upper": pred + z * sd}, index=newdata.index)

    # ---- refitting -----------------------------------------------------------------------------
    def refit(self, reml: bool) -> "MixedResults":
        """The same model refitted with REML (``reml=True``) or ML on the same rows."""
        if reml == self.reml:
            return self
        return fit_design(self.formula, self.parsed, self.data, self._design, reml=reml,
                          method="fast", n_dropped=self.n_dropped, theta0=self.theta, maxiter=2000)

    def update(self, formula: str, *, reml: bool | None = None) -> "MixedResults":
        """lme4's ``update(model, formula)``: another formula fitted (fast path) to this model's rows
        (``formula`` may be built with :func:`~xltstats.models.mixed.update_formula`)."""
        parsed, frame, design, n_dropped = prepare(formula, self.data)
        extra = [f"dropped {n_dropped} rows with missing values in the formula's columns"] if n_dropped else []
        return fit_design(formula, parsed, frame, design, reml=self.reml if reml is None else reml,
                          method="fast", n_dropped=n_dropped, extra_warnings=extra)

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

    def summary(self) -> Summary:
        """The fit's :class:`~xltstats.models.summary.Summary`: printed, laid out like lme4's
        ``summary(merMod)``; in Jupyter an HTML table; ``.as_latex()`` for a paper."""
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
        satt = self._satterthwaite_or_reason()
        if isinstance(satt, str):
            lines.append(f"{'':<{width}} {'Estimate':>10} {'Std. Error':>10} {'t value':>8}")
            for name in self.params.index:
                lines.append(f"{name:<{width}} {self.params[name]:>10.4g} {self.bse[name]:>10.4g} "
                             f"{self.tvalues[name]:>8.3f}")
            lines.append(f"Satterthwaite df not computed: {satt}")
        else:
            lines.append(f"{'':<{width}} {'Estimate':>10} {'Std. Error':>10} {'df':>9} "
                         f"{'t value':>8} {'Pr(>|t|)':>10}")
            for name in self.params.index:
                lines.append(f"{name:<{width}} {self.params[name]:>10.4g} {self.bse[name]:>10.4g} "
                             f"{satt.loc[name, 'df']:>9.1f} {self.tvalues[name]:>8.3f} "
                             f"{satt.loc[name, 'p_value']:>10.3g}")
            lines.append("df and Pr(>|t|): Satterthwaite's method (as lmerTest)")
            if satt.attrs.get("note"):
                lines.append("Satterthwaite df: " + satt.attrs["note"])
        if self.warnings:
            lines.append("")
            lines.extend(self.warnings)
        lines.append(f"converged: {self.converged}; singular: {self.singular}")
        facts = [("formula", self.formula), ("criterion", "REML" if self.reml else "ML"),
                 ("path", self.method), ("observations", self.nobs),
                 *((f"levels of {t.group}", t.n_levels) for t in self._design.terms),
                 ("rows dropped (missing values)", self.n_dropped), ("log-likelihood", self.llf),
                 ("AIC", self.aic), ("BIC", self.bic), ("R2 marginal (Nakagawa)", self.r2_marginal),
                 ("R2 conditional (Nakagawa)", self.r2_conditional),
                 ("converged", self.converged), ("singular", self.singular)]
        fixed = self.table()
        fixed = fixed[fixed["effect"] == "fixed"].drop(columns=["effect", "group"])
        fixed.insert(4, "p_value", self.pvalues.to_numpy())
        return Summary(title=lines[0], facts=facts,
                       tables=[("Fixed effects", fixed.reset_index(drop=True)),
                               ("Random effects (variances; standard deviations or correlations)",
                                self.varcorr)],
                       notes=self.warnings, text="\n".join(lines))

    def _satterthwaite_or_reason(self):
        """The Satterthwaite table, or why it is not computed (ML fit, statsmodels path, failure)."""
        if not self.reml:
            return "an ML fit (lmerTest computes them for REML fits)"
        if self.method != "fast":
            return f"the {self.method} path has no REML deviance in (theta, sigma)"
        try:
            return self.satterthwaite()
        except InputError as exc:
            return str(exc)

    def __repr__(self) -> str:
        return (f"<MixedResults {self.formula!r} n={self.nobs} {'REML' if self.reml else 'ML'} "
                f"llf={self.llf:.3f}>")


def fit_design(formula, parsed, frame, design, *, reml, method, n_dropped, theta0=None,
               maxiter=2000, extra_warnings=()):
    """Profiled deviance, optimisation and results for a prepared design (lme4's
    ``mkLmerDevfun`` -> ``optimizeLmer`` -> ``mkMerMod``)."""
    start = time.perf_counter()
    dev = ProfiledDeviance(design, reml)
    if theta0 is None:
        theta0 = np.where(design.theta_lower == 0, 1.0, 0.0)
    with single_threaded_blas():
        theta, crit, messages, converged, n_eval = optimise(dev, np.asarray(theta0, float), maxiter)
        res = MixedResults(formula=formula, parsed=parsed, data=frame, design=design, dev=dev,
                           theta=theta, criterion=crit, reml=reml, method=method,
                           converged=converged, warnings_=[*extra_warnings, *messages],
                           n_dropped=n_dropped, n_evaluations=n_eval,
                           fit_seconds=time.perf_counter() - start)
    return res
