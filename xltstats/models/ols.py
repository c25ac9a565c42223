"""Ordinary least squares on standardised pair features, with robust standard errors.

:func:`fit_ols` answers "which language-pair features explain transfer scores, and does one group of
features (syntax, morphology, phonology, lexical, data) explain more than another?".

Choices, documented here once:

* Rows with a missing response or feature are dropped (listwise); ``nobs`` and ``n_dropped`` say how many.
* ``standardise=True`` centres each feature on its mean and divides by its sample SD (ddof=1) in the
  fitted rows, so coefficients are "score change per SD of the feature". Means/SDs are kept and used
  again by :meth:`OLSResults.predict`. A feature with zero SD is an error (it is collinear with the intercept).
* ``cov_type``:
  - ``"nonrobust"``: classical ``s^2 (X'X)^-1``; t tests on ``n - p`` df.
  - ``"HC3"``: MacKinnon-White HC3 sandwich ``(X'X)^-1 X' diag(e_i^2/(1-h_i)^2) X (X'X)^-1``; normal (z)
    tests, as statsmodels does for robust covariances.
  - ``"cluster2"``: two-way clustering by ``source`` and ``target`` (Cameron, Gelbach & Miller 2011):
    ``V = V_source + V_target - V_source∩target``, each one-way cluster sandwich with the small-sample
    factor ``G/(G-1) * (n-1)/(n-p)`` (G = its number of clusters). If the sum is not positive
    semi-definite its negative eigenvalues are set to zero (CGM's suggested fix; ``psd_fixed`` says so).
    t tests on ``min(G_source, G_target) - 1`` df.
  - ``"dyadic"``: clustered by language, whichever column holds it, for unordered pairs (dyadic
    data: Fafchamps & Gubert 2007; Aronow, Samii & Assenova 2015; Cameron & Miller 2014): any two
    rows that share a language may be correlated.  ``V = V_language - V_pair``: ``V_language`` sums
    the scores of every row into both its languages' clusters (once where the two are the same
    language), which counts two rows of the same pair twice, and ``V_pair`` (pairs of two different
    languages) takes that out; each with the factor ``G/(G-1) * (n-1)/(n-p)``, negative
    eigenvalues clipped as for cluster2; t tests on ``G_language - 1`` df.
  Cluster-robust errors need many clusters: with few, the sandwich is biased downwards and Wald tests
  over-reject even on ``G - 1`` df (Cameron & Miller 2015, section VI, who call anything below 20-50
  clusters "few").  ``fit_ols`` therefore falls back to HC3 when there are fewer than ``min_clusters``
  (default 10) sources or targets (languages for ``dyadic``), and says so in ``notes``: 10 is a floor
  below which each variance rests on fewer than ten cluster sums, not a guarantee above it; one
  cluster (a single source language) cannot be clustered at all.
* Feature groups: every feature belongs to at most one group; features in no group form the group
  ``"other"``. :meth:`OLSResults.group_comparison` drops one group at a time (nested OLS on the same rows):
  R² drop, the classical nested F test and a Wald test of the group's coefficients with the fitted
  covariance (robust when the fit is). :meth:`OLSResults.dominance` is general dominance (= the Shapley
  value of R² over groups): for each group the average over subset sizes of the average R² gain of adding
  it to subsets of the other groups, computed exactly over all ``2^m`` subsets (``m <= 12``); the values
  sum to the full R². :meth:`OLSResults.compare_groups` tests whether two groups differ, with a paired
  cluster bootstrap (resampling whole target or source languages) of the difference in their general
  dominance (or R² drop): percentile CI and a two-sided bootstrap p-value ``2 min(#(d* <= 0) + 1, #(d* >= 0) + 1) / (B + 1)``
  (capped at 1).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from xltstats.errors import ConfigError, InputError
from xltstats.models.dominance import _r2_batch, _r2_from_moments, _shapley, general_dominance
from xltstats.models.formula import parse_ols_formula
from xltstats.models.robust import cluster2_covariance, dyadic_covariance
from xltstats.models.summary import Summary

__all__ = ["fit_ols", "OLSResults", "cluster2_covariance", "dyadic_covariance", "general_dominance"]

INTERCEPT = "Intercept"
COV_TYPES = ("HC3", "cluster2", "dyadic", "nonrobust")
#: Fewest clusters (sources and targets each) two-way clustering is used with (Cameron & Miller 2015).
MIN_CLUSTERS = 10


def _prepare(data: pd.DataFrame, response: str, features: list[str], extra: list[str]) -> tuple[pd.DataFrame, int]:
    if not isinstance(data, pd.DataFrame):
        raise InputError(f"expected a DataFrame, got {type(data).__name__}")
    missing = [c for c in [response, *features, *extra] if c not in data.columns]
    if missing:
        raise InputError(f"missing column(s) {missing}; available: {sorted(map(str, data.columns))}",
                         column=missing[0])
    numeric = {}
    for col in [response, *features]:
        values = pd.to_numeric(data[col], errors="coerce")
        bad = values.isna() & data[col].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0]) + 1
            raise InputError(f"value {data[col].iloc[row - 1]!r} is not a number", row=row, column=col)
        numeric[col] = values.astype(float)
    frame = pd.DataFrame(numeric, index=data.index)
    for col in extra:
        frame[col] = data[col]
    keep = frame[[response, *features]].notna().all(axis=1)
    return frame.loc[keep].reset_index(drop=True), int((~keep).sum())


def _design(frame: pd.DataFrame, features: list[str], means: pd.Series, sds: pd.Series) -> np.ndarray:
    z = (frame[features].to_numpy(float) - means[features].to_numpy()) / sds[features].to_numpy()
    return np.column_stack([np.ones(len(frame)), z])


@dataclass(frozen=True)
class OLSResults:
    """Results of :func:`fit_ols` (statsmodels-style attributes; nothing is printed unasked).

    The same names as :class:`~xltstats.models.MixedResults` and
    :class:`~xltstats.models.PortableModel`: ``params``, ``bse``, ``tvalues``, ``pvalues``,
    ``cov_params()``, ``conf_int()`` (``lower``/``upper``), ``scale`` (residual variance),
    ``df_inference`` (None: normal quantiles), ``nobs``, ``formula``, ``predict()`` (a Series named
    ``prediction``), ``prediction_interval()`` (``prediction``, ``se_mean``, ``se_prediction``,
    ``lower``, ``upper``), ``table()`` (the tidy table: ``term``, ``estimate``, ``std_error``,
    ``statistic``, ``p_value``, ``conf_low``, ``conf_high``) and ``summary()``.  Built once; frozen.
    """

    response: str
    features: list[str]
    params: pd.Series
    cov: pd.DataFrame
    cov_type: str
    nobs: int
    n_dropped: int
    df_resid: int
    df_inference: float | None  # None = normal (z) tests
    scale: float                # residual variance (statsmodels' name)
    rsquared: float
    rsquared_adj: float
    standardise: bool
    means: pd.Series
    sds: pd.Series
    groups: dict[str, list[str]]
    cluster_info: dict = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # what the fit did differently from what was asked, and why
    _frame: pd.DataFrame | None = field(default=None, repr=False)
    _fitted: np.ndarray | None = field(default=None, repr=False)

    # -- coefficient table -------------------------------------------------------------------------
    @property
    def formula(self) -> str:
        """The fitted model as a formula, ``response ~ feature + ...``."""
        return f"{self.response} ~ " + " + ".join(self.features)

    @property
    def bse(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self.cov.to_numpy())), index=self.params.index, name="bse")

    @property
    def tvalues(self) -> pd.Series:
        return (self.params / self.bse).rename("tvalues")

    @property
    def pvalues(self) -> pd.Series:
        t = self.tvalues.abs()
        if self.df_inference is None:
            p = 2 * stats.norm.sf(t)
        else:
            p = 2 * stats.t.sf(t, self.df_inference)
        return pd.Series(p, index=self.params.index, name="pvalues")

    def _crit(self, alpha: float) -> float:
        if self.df_inference is None:
            return float(stats.norm.ppf(1 - alpha / 2))
        return float(stats.t.ppf(1 - alpha / 2, self.df_inference))

    def cov_params(self) -> pd.DataFrame:
        return self.cov.copy()

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        crit = self._crit(alpha)
        return pd.DataFrame({"lower": self.params - crit * self.bse, "upper": self.params + crit * self.bse})

    @property
    def resid(self) -> pd.Series:
        return pd.Series(self._frame[self.response].to_numpy() - self._fitted, name="resid")

    @property
    def fittedvalues(self) -> pd.Series:
        return pd.Series(self._fitted, name="fitted")

    def table(self, alpha: float = 0.05) -> pd.DataFrame:
        """Tidy coefficient table: term, estimate, std_error, statistic, p_value, conf_low, conf_high."""
        ci = self.conf_int(alpha)
        return pd.DataFrame({
            "term": list(self.params.index), "estimate": self.params.to_numpy(), "std_error": self.bse.to_numpy(),
            "statistic": self.tvalues.to_numpy(), "p_value": self.pvalues.to_numpy(),
            "conf_low": ci["lower"].to_numpy(), "conf_high": ci["upper"].to_numpy()})

    def summary(self) -> Summary:
        """A :class:`~xltstats.models.summary.Summary`: text when printed, HTML in Jupyter,
        ``.as_latex()`` for a paper."""
        title = (f"OLS of {self.response} on {len(self.features)} "
                 f"{'standardised ' if self.standardise else ''}features")
        covariance = self.cov_type + (f" ({self.cluster_info})" if self.cluster_info else "")
        table = self.table()
        text = (f"{title}\n"
                f"n = {self.nobs} (dropped {self.n_dropped} rows with missing values), "
                f"R² = {self.rsquared:.4f}, adj. R² = {self.rsquared_adj:.4f}, "
                f"residual SD = {math.sqrt(self.scale):.4g}\ncovariance: {covariance}\n"
                + table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        facts = [("formula", self.formula), ("observations", self.nobs),
                 ("rows dropped (missing values)", self.n_dropped), ("R²", self.rsquared),
                 ("adjusted R²", self.rsquared_adj), ("residual SD", math.sqrt(self.scale)),
                 ("covariance", covariance),
                 ("tests", "normal (z)" if self.df_inference is None else f"t on {self.df_inference} df")]
        return Summary(title=title, facts=facts, tables=[("Coefficients", table)], text=text)

    def __str__(self) -> str:
        return str(self.summary())

    # -- diagnostics -------------------------------------------------------------------------------
    def vif(self) -> pd.DataFrame:
        """Variance inflation factors ``1 / (1 - R²_j)`` (regressing each feature on the others), each
        feature's largest ``|r|`` with another one, whether it is collinear (VIF > 10) and whether its
        coefficient's sign is opposite to its correlation with the response
        (:func:`xltstats.models.collinearity.collinearity_table`)."""
        from .collinearity import collinearity_table

        return collinearity_table(self._frame, self.features, response=self.response, coefficients=self.params)

    def collinearity_notes(self) -> list[str]:
        """A note naming the collinear features (VIF > 10), the most correlated pair and the feature to
        leave out; empty when none is collinear (:func:`xltstats.models.collinearity.collinearity_notes`)."""
        from .collinearity import collinearity_notes

        return collinearity_notes(self.vif(), self._frame, self.features)

    # -- feature groups ----------------------------------------------------------------------------
    def _moments(self, weights: np.ndarray | None = None) -> np.ndarray:
        z = np.column_stack([np.ones(self.nobs), self._frame[self.features].to_numpy(float),
                             self._frame[self.response].to_numpy(float)])
        if weights is None:
            return z.T @ z
        return (z * weights[:, None]).T @ z

    def _group_columns(self) -> dict[str, list[int]]:
        return {g: [self.features.index(c) for c in cols] for g, cols in self.groups.items()}

    def _subset_r2(self, moments: np.ndarray) -> dict[frozenset, float]:
        names = list(self.groups)
        if len(names) > 12:
            raise InputError(f"dominance over {len(names)} groups needs 2^{len(names)} fits; use at most 12 groups")
        cols = self._group_columns()
        out = {}
        for k in range(len(names) + 1):
            for subset in itertools.combinations(names, k):
                chosen = sorted(c for g in subset for c in cols[g])
                out[frozenset(subset)] = _r2_from_moments(moments, chosen) if chosen else 0.0
        return out

    def dominance(self) -> pd.DataFrame:
        """General dominance (Shapley decomposition) of R² over the feature groups."""
        self._need_groups()
        return general_dominance(self._subset_r2(self._moments()), list(self.groups))

    def _need_groups(self):
        if not self.groups:
            raise InputError("no feature groups were given to fit_ols(groups=...)")

    def group_comparison(self) -> pd.DataFrame:
        """For each group: R² drop when it is removed, nested F test, and robust Wald test."""
        self._need_groups()
        moments = self._moments()
        cols = self._group_columns()
        all_cols = list(range(len(self.features)))
        full_r2 = _r2_from_moments(moments, all_cols)
        tss = moments[-1, -1] - moments[0, -1] ** 2 / moments[0, 0]
        rss_full = (1 - full_r2) * tss
        dominance = self.dominance().set_index("group")["general_dominance"]
        cov = self.cov.to_numpy()
        rows = []
        for g, group_cols in cols.items():
            reduced = [c for c in all_cols if c not in group_cols]
            r2_reduced = _r2_from_moments(moments, reduced) if reduced else 0.0
            q = len(group_cols)
            f_stat = ((full_r2 - r2_reduced) * tss / q) / (rss_full / self.df_resid)
            b = self.params.to_numpy()[[c + 1 for c in group_cols]]
            v = cov[np.ix_([c + 1 for c in group_cols], [c + 1 for c in group_cols])]
            wald = float(b @ np.linalg.pinv(v) @ b)
            if self.df_inference is None:
                wald_p = float(stats.chi2.sf(wald, q))
            else:
                wald_p = float(stats.f.sf(wald / q, q, self.df_inference))
            rows.append({"group": g, "n_features": q, "features": " ".join(self.groups[g]),
                         "r2_full": full_r2, "r2_without": r2_reduced, "r2_drop": full_r2 - r2_reduced,
                         "f_statistic": f_stat, "f_df1": q, "f_df2": self.df_resid,
                         "f_p_value": float(stats.f.sf(f_stat, q, self.df_resid)),
                         "wald_statistic": wald, "wald_p_value": wald_p,
                         "general_dominance": float(dominance[g])})
        return pd.DataFrame(rows)

    def compare_groups(self, group_a, group_b: str | None = None, *, statistic: str = "dominance",
                       cluster: str | None = "target", n_boot: int = 1000, alpha: float = 0.05, seed: int = 0):
        """Paired cluster bootstrap of ``contribution(a) - contribution(b)``.

        ``statistic`` is ``"dominance"`` (general dominance) or ``"r2_drop"``; ``cluster`` names the column
        whose values are resampled as whole units (``"target"``, ``"source"``, or ``None`` for rows).
        Returns a dict: estimate, bootstrap SE, percentile CI, two-sided p-value, number of draws.
        Given a list of ``(a, b)`` pairs instead of two names, returns a DataFrame with one row per pair
        (each pair with the same ``seed``, so the draws are shared and the rows comparable).
        """
        pairs = list(group_a) if group_b is None and isinstance(group_a, (list, tuple)) else [(group_a, group_b)]
        self._need_groups()
        for g in {g for pair in pairs for g in pair}:
            if g not in self.groups:
                raise InputError(f"unknown feature group {g!r}; groups: {sorted(self.groups)}")
        if statistic not in ("dominance", "r2_drop"):
            raise InputError(f"statistic must be 'dominance' or 'r2_drop', not {statistic!r}")
        if cluster is None:
            labels = np.arange(self.nobs)
        else:
            if cluster not in self._frame.columns:
                raise InputError(f"cluster column {cluster!r} was not in the fitted data", column=cluster)
            labels = pd.factorize(self._frame[cluster].astype(str), sort=True)[0]
        n_clusters = labels.max() + 1
        z = np.column_stack([np.ones(self.nobs), self._frame[self.features].to_numpy(float),
                             self._frame[self.response].to_numpy(float)])
        # per-cluster moment matrices: a bootstrap sample's moments are a count-weighted sum of these
        order = np.argsort(labels, kind="stable")
        bounds = np.searchsorted(labels[order], np.arange(n_clusters + 1))
        per_cluster = np.stack([z[order[a:b]].T @ z[order[a:b]] for a, b in zip(bounds[:-1], bounds[1:])])
        names = list(self.groups)
        cols = self._group_columns()
        all_cols = list(range(len(self.features)))

        def contrasts(moments, skip_singular=True):
            """The contrast of every pair on one set of moments (NaN for a singular bootstrap draw).

            The subset R² behind the dominance statistic are computed once per draw for all pairs."""
            out = np.full(len(pairs), np.nan)
            if statistic == "dominance":
                try:
                    r2 = self._subset_r2(moments)
                except np.linalg.LinAlgError:
                    if not skip_singular:
                        raise
                    return out
                for i, (a, b) in enumerate(pairs):
                    out[i] = _shapley(r2, names, a) - _shapley(r2, names, b)
                return out
            drop = {}  # R² drop of each group, once per draw
            try:
                full = _r2_from_moments(moments, all_cols)
            except np.linalg.LinAlgError:
                if not skip_singular:
                    raise
                return out
            for i, (a, b) in enumerate(pairs):
                try:
                    for g in (a, b):
                        if g not in drop:
                            reduced = [c for c in all_cols if c not in cols[g]]
                            drop[g] = full - (_r2_from_moments(moments, reduced) if reduced else 0.0)
                except np.linalg.LinAlgError:
                    if not skip_singular:
                        raise
                    continue
                out[i] = drop[a] - drop[b]
            return out

        estimates = contrasts(per_cluster.sum(axis=0), skip_singular=False)
        rng = np.random.default_rng(seed)
        counts = np.empty((n_boot, n_clusters))
        for k in range(n_boot):  # the same draws, in the same order, as one draw at a time
            counts[k] = np.bincount(rng.integers(0, n_clusters, n_clusters), minlength=n_clusters)
        # every draw's moments at once; each subset's R² for all draws in one batched solve
        stack = np.tensordot(counts, per_cluster, axes=1)
        all_draws = np.full((n_boot, len(pairs)), np.nan)
        if n_boot:
            if statistic == "dominance":
                if len(names) > 12:
                    raise InputError(f"dominance over {len(names)} groups needs 2^{len(names)} fits; use at most 12 groups")
                r2 = {}
                for k in range(len(names) + 1):
                    for subset in itertools.combinations(names, k):
                        chosen = sorted(c for g in subset for c in cols[g])
                        r2[frozenset(subset)] = _r2_batch(stack, chosen) if chosen else np.zeros(n_boot)
                for i, (a, b) in enumerate(pairs):
                    all_draws[:, i] = _shapley(r2, names, a) - _shapley(r2, names, b)
            else:
                full = _r2_batch(stack, all_cols)
                drop = {}
                for g in {g for pair in pairs for g in pair}:
                    reduced = [c for c in all_cols if c not in cols[g]]
                    drop[g] = full - (_r2_batch(stack, reduced) if reduced else 0.0)
                for i, (a, b) in enumerate(pairs):
                    all_draws[:, i] = drop[a] - drop[b]
        rows = []
        for (a, b), estimate, draws in zip(pairs, estimates, all_draws.T):
            draws = draws[np.isfinite(draws)]
            n = len(draws)
            # add-one form: a p-value from B draws is never reported below 2/(B+1)
            p = min(1.0, 2 * min(((draws <= 0).sum() + 1) / (n + 1), ((draws >= 0).sum() + 1) / (n + 1))) if n else float("nan")
            rows.append({"group_a": a, "group_b": b, "statistic": statistic, "cluster": cluster,
                         "estimate": estimate, "bootstrap_se": float(draws.std(ddof=1)) if n > 1 else float("nan"),
                         "conf_low": float(np.quantile(draws, alpha / 2)), "conf_high": float(np.quantile(draws, 1 - alpha / 2)),
                         "p_value": float(p), "n_boot": int(n), "n_clusters": int(n_clusters)})
        return pd.DataFrame(rows) if len(pairs) > 1 or group_b is None else rows[0]

    # -- prediction --------------------------------------------------------------------------------
    def _new_design(self, newdata: pd.DataFrame) -> np.ndarray:
        frame, _ = _prepare_new(newdata, self.features)
        return _design(frame, self.features, self.means, self.sds)

    def predict(self, newdata: pd.DataFrame | None = None) -> pd.Series:
        """Predicted mean score for new rows (NaN where a feature is missing)."""
        if newdata is None:
            return self.fittedvalues
        x = self._new_design(newdata)
        return pd.Series(x @ self.params.to_numpy(), index=newdata.index, name="prediction")

    def prediction_interval(self, newdata: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
        """Prediction, SE of the mean, SE of a new observation and the ``1 - alpha`` prediction interval.

        ``se_mean = sqrt(x' V x)``, ``se_prediction = sqrt(x' V x + scale)`` with V the fitted
        (possibly robust) covariance.
        """
        x = self._new_design(newdata)
        mean = x @ self.params.to_numpy()
        se_mean = np.sqrt(np.einsum("ij,jk,ik->i", x, self.cov.to_numpy(), x))
        se_pred = np.sqrt(se_mean ** 2 + self.scale)
        crit = self._crit(alpha)
        return pd.DataFrame({"prediction": mean, "se_mean": se_mean, "se_prediction": se_pred,
                             "lower": mean - crit * se_pred, "upper": mean + crit * se_pred}, index=newdata.index)

    def to_spec(self) -> dict:
        """A JSON-able description sufficient for prediction (see :mod:`xltstats.models.persist`)."""
        return {"kind": "ols", "response": self.response, "features": list(self.features),
                "formula": f"{self.response} ~ " + " + ".join(self.features),
                "standardise": self.standardise,
                "means": {k: float(v) for k, v in self.means.items()},
                "sds": {k: float(v) for k, v in self.sds.items()},
                "terms": list(self.params.index), "coefficients": [float(v) for v in self.params],
                "covariance": self.cov.to_numpy().tolist(), "residual_variance": float(self.scale),
                "cov_type": self.cov_type, "df_inference": self.df_inference, "nobs": self.nobs,
                "groups": self.groups, "random_effects": {}, "variance_components": {}}


def _prepare_new(newdata: pd.DataFrame, features: list[str]) -> tuple[pd.DataFrame, int]:
    missing = [c for c in features if c not in newdata.columns]
    if missing:
        raise InputError(f"new data lacks feature column(s) {missing}", column=missing[0])
    out = {}
    for col in features:
        values = pd.to_numeric(newdata[col], errors="coerce")
        bad = values.isna() & newdata[col].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0]) + 1
            raise InputError(f"value {newdata[col].iloc[row - 1]!r} is not a number", row=row, column=col)
        out[col] = values.astype(float).to_numpy()
    return pd.DataFrame(out), 0


def _normalise_groups(groups, features) -> dict[str, list[str]]:
    if groups is None:
        return {}
    if not isinstance(groups, dict):
        raise InputError("groups must be a dict: group name -> list of feature columns")
    seen = {}
    out = {}
    for name, cols in groups.items():
        cols = [cols] if isinstance(cols, str) else list(cols)
        cols = [c for c in cols if c in features]
        for c in cols:
            if c in seen:
                raise InputError(f"feature {c!r} is in two groups ({seen[c]!r} and {name!r})", column=c)
            seen[c] = name
        if cols:
            out[str(name)] = cols
    rest = [f for f in features if f not in seen]
    if rest:
        if "other" in out:
            raise InputError("features outside every group go to group 'other', which is already taken")
        out["other"] = rest
    return out


def fit_ols(data: pd.DataFrame | str, response: str = "score", features=None, groups: dict | None = None,
            cov_type: str = "HC3", standardise: bool = True, source: str = "source",
            target: str = "target", *, formula: str | None = None, min_clusters: int = MIN_CLUSTERS) -> OLSResults:
    """Fit ``response ~ features`` by OLS; see the module docstring for every choice made.

    The model is given either as ``response`` and ``features`` or as a formula,
    ``fit_ols(data, formula="score ~ syntactic_distance + word_overlap")`` or, as statsmodels'
    ``ols(formula, data)``, ``fit_ols("score ~ syntactic_distance + word_overlap", data)``
    (plain numeric columns only: each is standardised, so transforms and interactions are
    computed in the data first).
    ``groups`` maps a group name (e.g. ``"syntax"``) to its feature columns; groups may name columns
    that are not among ``features`` (they are ignored), so one dict can serve several fits.
    ``source``/``target`` name the clustering columns used by ``cov_type="cluster2"`` and by
    :meth:`OLSResults.compare_groups`; with fewer than ``min_clusters`` distinct sources or targets
    (languages for ``dyadic``) clustering falls back to HC3 (``notes`` says so; see the module docstring).
    """
    if isinstance(data, str):
        if formula is not None or not isinstance(response, pd.DataFrame):
            raise ConfigError("fit_ols(formula, data): give the formula once, then the DataFrame")
        formula, data, response = data, response, "score"
    if formula is not None:
        if features is not None or response != "score":
            raise ConfigError("fit_ols takes either a formula or response= and features=, not both")
        response, features = parse_ols_formula(formula)
        for column in (response, *features):
            if column not in data.columns:
                raise InputError(f"fit_ols formula {formula!r} uses unknown column {column!r}", column=column)
    if cov_type not in COV_TYPES:
        raise InputError(f"cov_type must be one of {COV_TYPES}, not {cov_type!r}")
    if features is None or len(features) == 0:
        raise InputError("fit_ols needs at least one feature column")
    features = list(dict.fromkeys(features))
    extra = [c for c in (source, target) if c in data.columns and c not in features and c != response]
    if cov_type in ("cluster2", "dyadic"):
        for c in (source, target):
            if c not in data.columns:
                raise InputError(f"cov_type={cov_type!r} needs column {c!r}", column=c)
    frame, n_dropped = _prepare(data, response, features, extra)
    n, p = len(frame), len(features) + 1
    if n <= p:
        raise InputError(f"only {n} complete rows for {p} coefficients (dropped {n_dropped} rows with missing values)")
    if standardise:
        means = frame[features].mean()
        sds = frame[features].std(ddof=1)
        constant = [c for c in features if not sds[c] > 0]
        if constant:
            raise InputError(f"feature {constant[0]!r} is constant in the fitted rows", column=constant[0])
    else:
        means = pd.Series(0.0, index=features)
        sds = pd.Series(1.0, index=features)
    x = _design(frame, features, means, sds)
    y = frame[response].to_numpy(float)
    if not np.ptp(y) > 0:
        raise InputError(f"every {response!r} of the {n} fitted rows is {float(y[0]):g}: there is no "
                         "variation for the features to explain", column=response)
    if np.linalg.matrix_rank(x) < p:
        raise InputError("features are perfectly collinear; drop one of them (see vif())")
    xtx_inv = np.linalg.inv(x.T @ x)
    beta = xtx_inv @ x.T @ y
    fitted = x @ beta
    resid = y - fitted
    df_resid = n - p
    sigma2 = float(resid @ resid / df_resid)
    tss = float(((y - y.mean()) ** 2).sum())
    r2 = 1 - float(resid @ resid) / tss
    cluster_info = {}
    notes = []
    if cov_type in ("cluster2", "dyadic"):
        if cov_type == "cluster2":
            counts = {c: int(frame[c].astype(str).nunique()) for c in (source, target)}
        else:
            counts = {"language": len(set(frame[source].astype(str)) | set(frame[target].astype(str)))}
        few = {c: g for c, g in counts.items() if g < min_clusters}
        if few:
            asked, cov_type = cov_type, "HC3"
            told = " and ".join(f"{g} {c} cluster{'s' if g != 1 else ''}" for c, g in few.items())
            what = "two-way clustered" if asked == "cluster2" else "language-clustered"
            notes.append(f"{what} errors (cov_type {asked}) need at least {min_clusters} clusters "
                         f"per dimension and the {n} rows have {told}: too few for cluster-robust "
                         "inference (Cameron & Miller 2015), so HC3 errors and normal tests are used instead")
    if cov_type == "nonrobust":
        cov = sigma2 * xtx_inv
        df_inf = df_resid
    elif cov_type == "HC3":
        h = np.einsum("ij,jk,ik->i", x, xtx_inv, x)
        omega = resid ** 2 / (1 - h) ** 2
        cov = xtx_inv @ (x.T * omega) @ x @ xtx_inv
        df_inf = None
    elif cov_type == "dyadic":
        cov, cluster_info = dyadic_covariance(x, resid, frame[source], frame[target])
        df_inf = cluster_info["n_language_clusters"] - 1
    else:
        cov, cluster_info = cluster2_covariance(x, resid, frame[source], frame[target])
        df_inf = min(cluster_info["n_source_clusters"], cluster_info["n_target_clusters"]) - 1
    terms = [INTERCEPT, *features]
    return OLSResults(
        response=response, features=features, params=pd.Series(beta, index=terms, name="params"),
        cov=pd.DataFrame(cov, index=terms, columns=terms), cov_type=cov_type, nobs=n, n_dropped=n_dropped,
        df_resid=df_resid, df_inference=df_inf, scale=sigma2, rsquared=r2,
        rsquared_adj=1 - (1 - r2) * (n - 1) / df_resid, standardise=standardise, means=means, sds=sds,
        groups=_normalise_groups(groups, features), cluster_info=cluster_info, notes=tuple(notes), _frame=frame,
        _fitted=fitted)
