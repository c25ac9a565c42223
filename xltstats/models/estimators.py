"""Estimators of out-of-sample transfer scores (used by :mod:`xltstats.models.validation`).

Every estimator follows one small protocol: ``fit(train) -> fitted estimator`` (a new object; the
estimator itself is not changed) and ``predict_interval(data, alpha) -> DataFrame`` with columns
``prediction``, ``lower``, ``upper`` (NaN where a row cannot be predicted, e.g. a missing feature).

Estimators:

* :class:`OLSEstimator`: :func:`xltstats.models.fit_ols`; intervals are OLS prediction intervals.
* :class:`MixedEstimator`: :func:`xltstats.models.fit_mixed` with crossed random effects; a language not
  seen in training gets a random effect of 0 and its full variance in the interval.
* :class:`MeanBaseline`: the mean score of the row's target in training; when the target was held out
  (leave-one-target-out) the mean of its source; when both are unseen the global mean. The interval is
  ``± z * SD``, with the SD of training scores around the same kind of mean (within-target SD,
  within-source SD or overall SD), so it is honest about which fallback was used.  With
  ``symmetric=True`` (unordered pairs) a language's mean is over the pairs it is in, on either
  side; a pair gets the mean of its two languages' means, of the one seen in training, or the
  global mean, with the SD of the training residuals of that same rule.
* :class:`GradientBoostingEstimator`: LightGBM regression trees on the same features (the predictor used
  by LITMUS and ProxyLM), fitted deterministically (``deterministic=True``, ``num_threads=1``, fixed
  seed). Intervals: ``"conformal"`` (default) — ``prediction ± q`` with q the
  ``ceil((m + 1)(1 - alpha)) / m`` empirical quantile of m absolute calibration residuals, which are
  out-of-fold residuals from one of two designs (``calibration``):

  - ``"outer"`` (what :func:`cross_validate` uses with the default ``calibration="auto"``): the
    residuals of the outer cross-validation itself. Each fold fits one booster; the interval of a
    held-out fold is calibrated on the held-out residuals of all *other* folds (cross-conformal,
    as Vovk's cross-conformal predictors and CV+), so a fold's own observations never calibrate its
    interval, and the residuals come from predicting unseen languages exactly as the fold does.
  - ``"inner"`` (what a stand-alone ``fit`` uses with ``"auto"``): a grouped K-fold (K =
    ``calibration_folds``, 3) inside the training data (grouped by ``calibration_group``; ``"auto"``
    groups by target, and inside :func:`cross_validate` follows the scheme: target, source, or single
    rows for ``"random"``); each fit costs K + 1 boosters.

  On the seven registry datasets the outer design needs a quarter of the boosters; its coverage and
  widths against the inner design are in ``benchmarks/fit.py``'s notes and the README.
  Or ``"quantile"`` — two extra LightGBM models with the quantile loss at ``alpha/2`` and ``1 - alpha/2``.

  Rows with the same feature values (repeated seeds, tasks or training sizes of one language pair)
  are merged before boosting into one row with their mean score and their count as weight, with
  ``min_child_samples`` applied to the summed weights (``min_sum_hessian_in_leaf``): for the squared
  loss the gradient and hessian sums, hence every split gain and leaf value, are those of the
  unmerged rows, so the trees are the same model up to LightGBM's histogram binning (bin edges
  come from the distinct values either way, but their counts differ). Tables without repeated
  feature rows are fitted exactly as before (``merge_duplicates``, on by default when at most half
  the rows are distinct).
"""
from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
from scipy import stats

from xltstats.errors import InputError

__all__ = ["OLSEstimator", "MixedEstimator", "MeanBaseline", "GradientBoostingEstimator", "conformal_quantile"]


def _interval_frame(pred, lower, upper, index) -> pd.DataFrame:
    return pd.DataFrame({"prediction": np.asarray(pred, float), "lower": np.asarray(lower, float),
                         "upper": np.asarray(upper, float)}, index=index)


def _levels(data: pd.DataFrame, columns) -> dict[str, list[str]]:
    """The training levels of each categorical column (sorted; missing values are no level)."""
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise InputError(f"missing categorical column(s) {missing}", column=missing[0])
    return {c: sorted(data[c].dropna().astype(str).unique()) for c in columns}


def _indicators(data: pd.DataFrame, levels: dict[str, list[str]], drop_first: bool) -> pd.DataFrame:
    """0/1 columns ``column=level`` for the training ``levels`` (the first level left out when
    ``drop_first``, as OLS's reference level); a row whose level was not seen in training has
    missing indicators, so its prediction is missing rather than that of the reference level."""
    out = {}
    for column, values in levels.items():
        cells = data[column].astype(str).where(data[column].notna())
        seen = cells.isin(values)
        for level in values[1:] if drop_first else values:
            out[f"{column}={level}"] = (cells == level).astype(float).where(seen)
    return pd.DataFrame(out, index=data.index)


class OLSEstimator:
    """OLS on standardised features (see :func:`xltstats.models.ols.fit_ols`); ``categorical``
    columns (``model``, ``task``) enter as indicators of their training levels (the first is the
    reference), so OLS sees what the mixed model has as random intercepts."""

    def __init__(self, features, response: str = "score", cov_type: str = "HC3", categorical=()):
        self.features = list(features)
        self.response = response
        self.cov_type = cov_type
        self.categorical = list(categorical)
        self.result_ = None

    def fit(self, data: pd.DataFrame) -> "OLSEstimator":
        from xltstats.models.ols import fit_ols

        fitted = copy.copy(self)
        fitted.levels_ = _levels(data, self.categorical)
        indicators = _indicators(data, fitted.levels_, drop_first=True)
        fitted.result_ = fit_ols(pd.concat([data, indicators], axis=1) if len(indicators.columns) else data,
                                 response=self.response, features=self.features + list(indicators.columns),
                                 cov_type=self.cov_type)
        return fitted

    def predict_interval(self, data: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
        indicators = _indicators(data, getattr(self, "levels_", {}), drop_first=True)
        if len(indicators.columns):
            data = pd.concat([data, indicators], axis=1)
        pi = self.result_.prediction_interval(data, alpha)
        return _interval_frame(pi["prediction"], pi["lower"], pi["upper"], data.index)


class MixedEstimator:
    """Crossed mixed model, e.g. ``score ~ x1 + x2 + (1|source) + (1|target)``."""

    def __init__(self, formula: str, reml: bool = True, maxiter: int = 2000):
        self.formula = formula
        self.reml = reml
        self.maxiter = maxiter
        self.result_ = None

    def fit(self, data: pd.DataFrame) -> "MixedEstimator":
        from xltstats.models.mixed import fit_mixed

        fitted = copy.copy(self)
        # warn=False rather than catch_warnings, which is not thread-safe (folds run in threads);
        # the fit's problems stay in result_.warnings
        fitted.result_ = fit_mixed(self.formula, data, reml=self.reml, maxiter=self.maxiter, warn=False)
        return fitted

    def predict_interval(self, data: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
        from xltstats.models.formula import parse_formula, referenced_columns

        response = parse_formula(self.formula).response
        probe = data if response in data.columns else data.assign(**{response: 0.0})
        cols = [c for c in referenced_columns(self.formula, probe) if c != response]
        complete = data[cols].notna().all(axis=1).to_numpy()
        out = _interval_frame(np.full(len(data), np.nan), np.full(len(data), np.nan), np.full(len(data), np.nan),
                              data.index)
        if complete.any():
            pi = self.result_.prediction_interval(data.loc[complete], alpha)
            out.loc[complete, "prediction"] = pi["prediction"].to_numpy()
            out.loc[complete, "lower"] = pi["lower"].to_numpy()
            out.loc[complete, "upper"] = pi["upper"].to_numpy()
        return out


class MeanBaseline:
    """Mean per target, falling back to mean per source, then the global mean (see module docstring)."""

    def __init__(self, response: str = "score", source: str = "source", target: str = "target",
                 symmetric: bool = False):
        self.response, self.source, self.target = response, source, target
        self.symmetric = symmetric

    def fit(self, data: pd.DataFrame) -> "MeanBaseline":
        fitted = copy.copy(self)
        y = pd.to_numeric(data[self.response], errors="coerce")
        frame = pd.DataFrame({"y": y, "s": data[self.source].astype(str), "t": data[self.target].astype(str)}).dropna()
        if self.symmetric:
            return fitted._fit_symmetric(frame)
        fitted.target_mean_ = frame.groupby("t")["y"].mean().to_dict()
        fitted.source_mean_ = frame.groupby("s")["y"].mean().to_dict()
        fitted.global_mean_ = float(frame["y"].mean())

        def pooled_sd(key):
            dev = frame["y"] - frame.groupby(key)["y"].transform("mean")
            dof = len(frame) - frame[key].nunique()
            return float(np.sqrt((dev ** 2).sum() / dof)) if dof > 0 else float(frame["y"].std(ddof=1))

        fitted.sd_ = {"target": pooled_sd("t"), "source": pooled_sd("s"), "global": float(frame["y"].std(ddof=1))}
        return fitted

    def _fit_symmetric(self, frame: pd.DataFrame) -> "MeanBaseline":
        both = pd.concat([frame[["s", "y"]].rename(columns={"s": "language"}),
                          frame[["t", "y"]].rename(columns={"t": "language"})])
        self.language_mean_ = both.groupby("language")["y"].mean().to_dict()
        self.global_mean_ = float(frame["y"].mean())
        means = frame["s"].map(self.language_mean_), frame["t"].map(self.language_mean_)
        rules = {"both": (means[0] + means[1]) / 2, "one": means[0], "global": self.global_mean_}
        # a rule's SD is that of its training residuals (the "one" rule with the source's mean)
        self.sd_ = {k: float(np.sqrt(np.mean((frame["y"] - v) ** 2))) for k, v in rules.items()}
        return self

    def _predict_symmetric(self, data: pd.DataFrame, z: float):
        pred, half = [], []
        for s, t in zip(data[self.source].astype(str), data[self.target].astype(str)):
            seen = [self.language_mean_[v] for v in (s, t) if v in self.language_mean_]
            rule = "both" if len(seen) == 2 else "one" if seen else "global"
            pred.append(float(np.mean(seen)) if seen else self.global_mean_)
            half.append(z * self.sd_[rule])
        return np.array(pred), np.array(half)

    def predict_interval(self, data: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
        z = stats.norm.ppf(1 - alpha / 2)
        if self.symmetric:
            pred, half = self._predict_symmetric(data, z)
            return _interval_frame(pred, pred - half, pred + half, data.index)
        pred, half = [], []
        for s, t in zip(data[self.source].astype(str), data[self.target].astype(str)):
            if t in self.target_mean_:
                pred.append(self.target_mean_[t]); half.append(z * self.sd_["target"])
            elif s in self.source_mean_:
                pred.append(self.source_mean_[s]); half.append(z * self.sd_["source"])
            else:
                pred.append(self.global_mean_); half.append(z * self.sd_["global"])
        pred, half = np.array(pred), np.array(half)
        return _interval_frame(pred, pred - half, pred + half, data.index)


class TreeSettings:
    """What the tree estimators share (:class:`GradientBoostingEstimator`, the hybrid of
    :mod:`xltstats.models.hybrid`): the columns, LightGBM's size parameters, the seed and alpha."""

    def __init__(self, features, response: str, n_estimators: int, learning_rate: float, num_leaves: int,
                 min_child_samples: int, seed: int, alpha: float):
        self.features = list(features)
        self.response = response
        self.params = dict(n_estimators=n_estimators, learning_rate=learning_rate, num_leaves=num_leaves,
                           min_child_samples=min_child_samples)
        self.seed = seed
        self.alpha = alpha


def distinct_rows(x: np.ndarray) -> tuple[np.ndarray, int, np.ndarray]:
    """The rows of ``x`` with equal values (NaN equal to NaN), numbered in sorted order: each row's
    group, the number of groups and each group's first row."""
    groups = pd.DataFrame(x).groupby(list(range(x.shape[1])), dropna=False, sort=True).ngroup().to_numpy()
    return groups, int(groups.max()) + 1, np.unique(groups, return_index=True)[1]


class GradientBoostingEstimator(TreeSettings):
    """LightGBM regression trees with conformal or quantile intervals (see the module docstring)."""

    def __init__(self, features, response: str = "score", interval: str = "conformal", n_estimators: int = 300,
                 learning_rate: float = 0.05, num_leaves: int = 15, min_child_samples: int = 10, seed: int = 0,
                 calibration_folds: int = 3, calibration_group: str | None = "auto", alpha: float = 0.05,
                 calibration: str = "auto", merge_duplicates: bool | str = "auto", categorical=()):
        if interval not in ("conformal", "quantile"):
            raise InputError(f"interval must be 'conformal' or 'quantile', not {interval!r}")
        if calibration not in ("auto", "inner", "outer"):
            raise InputError(f"calibration must be 'auto', 'inner' or 'outer', not {calibration!r}")
        super().__init__(features, response, n_estimators, learning_rate, num_leaves, min_child_samples, seed, alpha)
        self.categorical = list(categorical)  # indicators of the training levels (see OLSEstimator)
        self.interval = interval
        self.calibration_folds = calibration_folds
        self.calibration_group = calibration_group
        self.calibration = calibration
        self.merge_duplicates = merge_duplicates

    def _model(self, merged: bool = False, **extra):
        import lightgbm

        params = dict(self.params)
        if merged:
            # a merged row stands for `weight` rows: the leaf-size rule counts weights (the squared
            # loss has hessian 1 per row, so the hessian sum of a leaf is its number of rows)
            params["min_child_samples"] = 1
            extra.setdefault("min_child_weight", self.params["min_child_samples"] - 0.5)
            # LightGBM merges histogram bins holding fewer than 3 rows; a merged row is >= 2 rows
            extra.setdefault("min_data_in_bin", 1)
        return lightgbm.LGBMRegressor(**params, random_state=self.seed, deterministic=True, num_threads=1,
                                      force_row_wise=True, verbose=-1, **extra)

    def _boost(self, x, y, **extra):
        """One booster on (x, y); rows with equal features merged when that is worth it (see the module docstring)."""
        merge = self.merge_duplicates
        if merge and not extra.get("objective") and len(y) > 1:  # quantile losses have no sufficient statistics
            groups, n_groups, first = distinct_rows(x)
            if merge is True or n_groups * 2 <= len(y):
                counts = np.bincount(groups, minlength=n_groups).astype(float)
                means = np.bincount(groups, weights=y, minlength=n_groups) / counts
                return self._model(merged=True, **extra).fit(x[first], means, sample_weight=counts)
        return self._model(**extra).fit(x, y)

    def _predict(self, model, x):
        """``model.predict(x)``; with many repeated feature rows each distinct row is predicted once
        (a booster's prediction is a function of the features alone, so the values are the same)."""
        if self.merge_duplicates and len(x) > 1:
            groups, n_groups, first = distinct_rows(x)
            if n_groups * 2 <= len(x):
                return model.predict(x[first])[groups]
        return model.predict(x)

    def _x(self, data):
        """The feature matrix, the categorical columns' indicators last, and the rows whose levels
        were all seen in training."""
        missing = [c for c in self.features if c not in data.columns]
        if missing:
            raise InputError(f"missing column(s) {missing}", column=missing[0])
        x = data[self.features].apply(pd.to_numeric, errors="coerce").to_numpy(float)
        indicators = _indicators(data, getattr(self, "levels_", {}), drop_first=False).to_numpy(float)
        seen = ~np.isnan(indicators).any(axis=1)
        return np.hstack([x, np.nan_to_num(indicators)]), seen

    def _xy(self, data):
        if self.response not in data.columns:
            raise InputError(f"missing column(s) {[self.response]}", column=self.response)
        x, _ = self._x(data)
        y = pd.to_numeric(data[self.response], errors="coerce").to_numpy(float)
        keep = ~np.isnan(y)
        return x[keep], y[keep], keep

    def fit(self, data: pd.DataFrame) -> "GradientBoostingEstimator":
        """The booster, calibrated unless ``calibration="outer"`` (then :func:`cross_validate` sets the
        interval from the other folds' residuals, and :meth:`predict_interval` alone gives NaN bounds)."""
        fitted = copy.copy(self)
        fitted.levels_ = _levels(data, self.categorical)
        x, y, keep = fitted._xy(data)
        fitted.model_ = self._boost(x, y)
        if self.interval == "quantile":
            fitted.low_ = self._boost(x, y, objective="quantile", alpha=self.alpha / 2)
            fitted.high_ = self._boost(x, y, objective="quantile", alpha=1 - self.alpha / 2)
            return fitted
        if self.calibration == "outer":
            fitted.calibration_residuals_ = np.array([])
            fitted.conformal_q_ = float("nan")
            return fitted
        group = "target" if self.calibration_group == "auto" else self.calibration_group
        if group and group in data.columns:
            labels = data.loc[keep, group].astype(str).to_numpy()
        else:
            labels = np.arange(len(y)).astype(str)
        uniques = np.unique(labels)
        rng = np.random.default_rng(self.seed)
        fold_of = dict(zip(rng.permutation(uniques), np.arange(len(uniques)) % max(2, min(self.calibration_folds,
                                                                                            len(uniques)))))
        folds = np.array([fold_of[v] for v in labels])
        residuals = np.full(len(y), np.nan)
        for f in np.unique(folds):
            test = folds == f
            if test.all():
                continue
            model = self._boost(x[~test], y[~test])
            residuals[test] = np.abs(y[test] - self._predict(model, x[test]))
        residuals = np.sort(residuals[~np.isnan(residuals)])
        fitted.conformal_q_ = conformal_quantile(residuals, self.alpha)
        fitted.calibration_residuals_ = residuals
        return fitted

    def predict_interval(self, data: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
        x, seen = self._x(data)
        pred = np.where(seen, self._predict(self.model_, x), np.nan)
        if self.interval == "quantile":
            if not math.isclose(alpha, self.alpha):
                raise InputError(f"quantile intervals were fitted for alpha={self.alpha}, not {alpha}")
            return _interval_frame(pred, np.minimum(self.low_.predict(x), pred), np.maximum(self.high_.predict(x), pred),
                                   data.index)
        q = conformal_quantile(self.calibration_residuals_, alpha)
        return _interval_frame(pred, pred - q, pred + q, data.index)


def conformal_quantile(residuals, alpha: float) -> float:
    """The ``ceil((m + 1)(1 - alpha))``-th smallest of m absolute residuals (the largest when that
    exceeds m); NaN without residuals."""
    residuals = np.sort(np.asarray(residuals, float))
    m = len(residuals)
    if not m:
        return float("nan")
    return float(residuals[min(m, math.ceil((m + 1) * (1 - alpha))) - 1])
