"""Out-of-sample prediction of transfer scores and cross-validation against baselines.

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

:func:`cross_validate` evaluates several estimators on the same splits and reports RMSE, MAE, R²
(``1 - SSE/SST`` with SST around the mean of all held-out observations, pooled over folds) and the
coverage and mean width of the ``1 - alpha`` intervals, computed per estimator on the rows it could
predict (``n_predicted``).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from xltstats.errors import InputError
from xltstats.models.summary import Summary

__all__ = ["OLSEstimator", "MixedEstimator", "MeanBaseline", "GradientBoostingEstimator", "cross_validate",
           "CVResults", "make_splits", "group_splits", "training_mask", "SCHEMES", "default_estimators"]

SCHEMES = ("leave-one-target-out", "leave-one-source-out", "random", "leave-one-language-out")


def _interval_frame(pred, lower, upper, index) -> pd.DataFrame:
    return pd.DataFrame({"prediction": np.asarray(pred, float), "lower": np.asarray(lower, float),
                         "upper": np.asarray(upper, float)}, index=index)


class OLSEstimator:
    """OLS on standardised features (see :func:`xltstats.models.ols.fit_ols`)."""

    def __init__(self, features, response: str = "score", cov_type: str = "HC3"):
        self.features = list(features)
        self.response = response
        self.cov_type = cov_type
        self.result_ = None

    def fit(self, data: pd.DataFrame) -> "OLSEstimator":
        from xltstats.models.ols import fit_ols

        fitted = copy.copy(self)
        fitted.result_ = fit_ols(data, response=self.response, features=self.features, cov_type=self.cov_type)
        return fitted

    def predict_interval(self, data: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
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


class GradientBoostingEstimator:
    """LightGBM regression trees with conformal or quantile intervals (see the module docstring)."""

    def __init__(self, features, response: str = "score", interval: str = "conformal", n_estimators: int = 300,
                 learning_rate: float = 0.05, num_leaves: int = 15, min_child_samples: int = 10, seed: int = 0,
                 calibration_folds: int = 3, calibration_group: str | None = "auto", alpha: float = 0.05,
                 calibration: str = "auto", merge_duplicates: bool | str = "auto"):
        if interval not in ("conformal", "quantile"):
            raise InputError(f"interval must be 'conformal' or 'quantile', not {interval!r}")
        if calibration not in ("auto", "inner", "outer"):
            raise InputError(f"calibration must be 'auto', 'inner' or 'outer', not {calibration!r}")
        self.features = list(features)
        self.response = response
        self.interval = interval
        self.params = dict(n_estimators=n_estimators, learning_rate=learning_rate, num_leaves=num_leaves,
                           min_child_samples=min_child_samples)
        self.seed = seed
        self.calibration_folds = calibration_folds
        self.calibration_group = calibration_group
        self.calibration = calibration
        self.merge_duplicates = merge_duplicates
        self.alpha = alpha

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
            groups = pd.DataFrame(x).groupby(list(range(x.shape[1])), dropna=False, sort=True).ngroup().to_numpy()
            n_groups = int(groups.max()) + 1
            if merge is True or n_groups * 2 <= len(y):
                counts = np.bincount(groups, minlength=n_groups).astype(float)
                means = np.bincount(groups, weights=y, minlength=n_groups) / counts
                first = np.unique(groups, return_index=True)[1]
                return self._model(merged=True, **extra).fit(x[first], means, sample_weight=counts)
        return self._model(**extra).fit(x, y)

    def _predict(self, model, x):
        """``model.predict(x)``; with many repeated feature rows each distinct row is predicted once
        (a booster's prediction is a function of the features alone, so the values are the same)."""
        if self.merge_duplicates and len(x) > 1:
            groups = pd.DataFrame(x).groupby(list(range(x.shape[1])), dropna=False, sort=True).ngroup().to_numpy()
            n_groups = int(groups.max()) + 1
            if n_groups * 2 <= len(x):
                first = np.unique(groups, return_index=True)[1]
                return model.predict(x[first])[groups]
        return model.predict(x)

    def _xy(self, data):
        missing = [c for c in [*self.features, self.response] if c not in data.columns]
        if missing:
            raise InputError(f"missing column(s) {missing}", column=missing[0])
        x = data[self.features].apply(pd.to_numeric, errors="coerce").to_numpy(float)
        y = pd.to_numeric(data[self.response], errors="coerce").to_numpy(float)
        keep = ~np.isnan(y)
        return x[keep], y[keep], keep

    def fit(self, data: pd.DataFrame) -> "GradientBoostingEstimator":
        """The booster, calibrated unless ``calibration="outer"`` (then :func:`cross_validate` sets the
        interval from the other folds' residuals, and :meth:`predict_interval` alone gives NaN bounds)."""
        fitted = copy.copy(self)
        x, y, keep = self._xy(data)
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
        missing = [c for c in self.features if c not in data.columns]
        if missing:
            raise InputError(f"missing column(s) {missing}", column=missing[0])
        x = data[self.features].apply(pd.to_numeric, errors="coerce").to_numpy(float)
        pred = self._predict(self.model_, x)
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


def _outer_conformal(frame: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Bounds of an outer-calibrated estimator's fold frames: each fold's ``prediction ± q`` with q
    from the absolute held-out residuals of the other folds (see the module docstring)."""
    resid = (frame["observed"] - frame["prediction"]).abs().to_numpy()
    ok = ~np.isnan(resid)
    folds = frame["fold"].to_numpy()
    lower = np.full(len(frame), np.nan)
    upper = np.full(len(frame), np.nan)
    for fold in pd.unique(folds):
        mine = folds == fold
        q = conformal_quantile(resid[ok & ~mine], alpha)
        lower[mine] = frame["prediction"].to_numpy()[mine] - q
        upper[mine] = frame["prediction"].to_numpy()[mine] + q
    return frame.assign(lower=lower, upper=upper)


def group_splits(labels, max_folds: int | None = None, seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """One (label, test mask) per distinct value of ``labels``, in sorted order.

    With ``max_folds`` and more distinct values than that, the values are dealt (after a seeded
    shuffle) into ``max_folds`` groups and each group is held out together, as scikit-learn's
    GroupKFold does: every value is still held out exactly once, and never seen in training when
    it is predicted. The fold label lists the held-out values joined by ``+``.
    """
    labels = np.asarray(labels).astype(str)
    values = sorted(set(labels))
    if not max_folds or len(values) <= max_folds:
        return [(value, labels == value) for value in values]
    if max_folds < 2:
        raise InputError(f"max_folds must be at least 2, not {max_folds}")
    shuffled = np.random.default_rng(seed).permutation(values)
    groups = [sorted(shuffled[g::max_folds]) for g in range(max_folds)]
    groups.sort()
    return [("+".join(group), np.isin(labels, group)) for group in groups]


def make_splits(data: pd.DataFrame, scheme: str = "leave-one-target-out", k: int = 5, seed: int = 0,
                source: str = "source", target: str = "target",
                max_folds: int | None = None) -> list[tuple[str, np.ndarray]]:
    """List of (held-out label, boolean test mask) pairs for the scheme, in a fixed order.

    ``max_folds`` bounds the number of folds of the leave-one-language-out schemes: with more
    languages than that, the languages are held out in ``max_folds`` groups (see :func:`group_splits`).
    """
    if scheme not in SCHEMES:
        raise InputError(f"scheme must be one of {SCHEMES}, not {scheme!r}")
    if scheme == "random":
        rng = np.random.default_rng(seed)
        fold = rng.permutation(np.arange(len(data)) % k)
        return [(f"fold{f + 1}", fold == f) for f in range(k)]
    if scheme == "leave-one-language-out":
        return _language_splits(data, source, target, max_folds, seed)
    column = target if scheme == "leave-one-target-out" else source
    if column not in data.columns:
        raise InputError(f"scheme {scheme!r} needs column {column!r}", column=column)
    return group_splits(data[column].to_numpy(), max_folds, seed)


def _language_splits(data, source, target, max_folds, seed):
    """Leave-one-language-out: the languages of either column dealt into folds (as
    :func:`group_splits`); a fold's training rows have none of its languages (see
    :func:`training_mask`), and each row is tested once, in the fold of the first of its two
    languages to be held out.  Folds left with no row to test are dropped."""
    for column in (source, target):
        if column not in data.columns:
            raise InputError(f"scheme 'leave-one-language-out' needs column {column!r}", column=column)
    src, tgt = data[source].astype(str).to_numpy(), data[target].astype(str).to_numpy()
    languages = np.array(sorted(set(src) | set(tgt)))
    groups = group_splits(languages, max_folds, seed)
    fold_of = {language: g for g, (_label, mask) in enumerate(groups) for language in languages[mask]}
    first = np.minimum([fold_of[v] for v in src], [fold_of[v] for v in tgt]) if len(src) else np.zeros(0, int)
    return [(label, first == g) for g, (label, _mask) in enumerate(groups) if (first == g).any()]


def training_mask(data: pd.DataFrame, scheme: str, label: str, test: np.ndarray, source: str = "source",
                  target: str = "target") -> np.ndarray:
    """The training rows of a split: the rows not tested, except for leave-one-language-out, whose
    training rows are those with neither language among the fold's held-out languages (its
    ``label``, ``+``-joined), so a held-out language is never seen in training."""
    if scheme != "leave-one-language-out":
        return ~test
    held = label.split("+")
    return ~(data[source].astype(str).isin(held) | data[target].astype(str).isin(held)).to_numpy()


@dataclass(frozen=True)
class CVResults:
    """Held-out predictions of every estimator on the same splits, with summary metrics."""

    scheme: str
    alpha: float
    predictions: pd.DataFrame
    baseline_name: str | None = None
    failures: list = field(default_factory=list)
    #: fits that finished but did not converge (their predictions are kept)
    not_converged: list = field(default_factory=list)

    @staticmethod
    def _metrics(frame: pd.DataFrame, sst_mean: float) -> dict:
        ok = frame["prediction"].notna()
        f = frame[ok]
        err = f["observed"] - f["prediction"]
        sst = ((f["observed"] - sst_mean) ** 2).sum()
        covered = (f["observed"] >= f["lower"]) & (f["observed"] <= f["upper"])
        return {"n": int(len(frame)), "n_predicted": int(ok.sum()),
                "rmse": float(np.sqrt((err ** 2).mean())) if len(f) else np.nan,
                "mae": float(err.abs().mean()) if len(f) else np.nan,
                "r2": float(1 - (err ** 2).sum() / sst) if sst > 0 else np.nan,
                "coverage": float(covered[f["lower"].notna()].mean()) if f["lower"].notna().any() else np.nan,
                "mean_interval_width": float((f["upper"] - f["lower"]).mean()) if len(f) else np.nan}

    def metrics(self) -> pd.DataFrame:
        """RMSE, MAE, R², interval coverage and width per estimator (all folds pooled)."""
        mean = float(self.predictions.drop_duplicates("row")["observed"].mean())
        rows = [{"estimator": name, "scheme": self.scheme, **self._metrics(g, mean)}
                for name, g in self.predictions.groupby("estimator", sort=False)]
        return pd.DataFrame(rows)

    table = metrics

    def per_fold(self) -> pd.DataFrame:
        """The same metrics per held-out fold (language) and estimator."""
        rows = []
        for (fold, name), g in self.predictions.groupby(["fold", "estimator"], sort=True):
            rows.append({"fold": fold, "estimator": name, **self._metrics(g, float(g["observed"].mean()))})
        return pd.DataFrame(rows)

    def comparison(self, baseline: str | None = None) -> pd.DataFrame:
        """Per estimator vs ``baseline`` (default: the gradient-boosting estimator): folds won on RMSE."""
        baseline = baseline or self.baseline_name
        if baseline is None:
            raise InputError("no baseline estimator to compare with")
        folds = self.per_fold().pivot(index="fold", columns="estimator", values="rmse")
        overall = self.metrics().set_index("estimator")
        rows = []
        for name in overall.index:
            if name == baseline:
                continue
            both = folds[[name, baseline]].dropna()
            better = both[name] < both[baseline]
            rows.append({"estimator": name, "baseline": baseline, "rmse": overall.loc[name, "rmse"],
                         "baseline_rmse": overall.loc[baseline, "rmse"],
                         "coverage": overall.loc[name, "coverage"], "baseline_coverage": overall.loc[baseline, "coverage"],
                         "folds_compared": int(len(both)), "folds_better": int(better.sum()),
                         "folds_better_list": " ".join(sorted(map(str, both.index[better]))),
                         "folds_worse_list": " ".join(sorted(map(str, both.index[~better])))})
        return pd.DataFrame(rows)

    def summary(self, max_listed: int = 3) -> Summary:
        """Plain-language summary: where each model beats the baseline and where not.

        Folds that hold several languages out are named by their first languages
        (``bho+glg+…(6)``) and at most ``max_listed`` folds, failures and non-converged fits are
        named per line; the full lists are in :meth:`comparison`, :attr:`failures` and
        :attr:`not_converged`.  Returns a :class:`~xltstats.models.summary.Summary` (text when
        printed, HTML in Jupyter, ``.as_latex()``).
        """
        metrics = self.metrics()
        title = f"cross-validation ({self.scheme}, {1 - self.alpha:.0%} intervals)"
        lines = [title, metrics.to_string(index=False, float_format=lambda v: f"{v:.4g}")]
        tables = [("Held-out metrics (all folds pooled)", metrics)]
        shortened = False
        if self.baseline_name is not None:
            comparison = self.comparison()
            for r in comparison.itertuples():
                better, n_better = _brief_list(r.folds_better_list.split(), max_listed)
                worse, n_worse = _brief_list(r.folds_worse_list.split(), max_listed)
                shortened |= n_better + n_worse > 0 or "…" in better + worse
                verdict = "beats" if r.rmse < r.baseline_rmse else "does not beat"
                lines.append(f"{r.estimator} {verdict} {r.baseline} overall (RMSE {r.rmse:.4g} vs {r.baseline_rmse:.4g}); "
                             f"lower RMSE on {r.folds_better} of {r.folds_compared} held-out folds"
                             + (f" ({better})" if better else "")
                             + (f"; not better on {r.folds_compared - r.folds_better} ({worse})" if worse else "")
                             + f"; interval coverage {r.coverage:.3f} vs {r.baseline_coverage:.3f}")
            tables.append((f"Against {self.baseline_name} (folds with lower RMSE)",
                           comparison.drop(columns=["folds_better_list", "folds_worse_list"])))
        for heading, items in (("fits that failed", self.failures),
                               ("fits that did not converge (predictions kept)", self.not_converged)):
            if items:
                listed = "; ".join(items[:max_listed])
                more = len(items) - max_listed
                lines.append(f"{heading} ({len(items)}): {listed}" + (f"; and {more} more" if more > 0 else ""))
                shortened |= more > 0
        if shortened:
            lines.append("(full lists: CVResults.comparison(), .failures and .not_converged; "
                         "in a fit folder, tables/cv_comparison.csv)")
        return Summary(title=title, facts=[("scheme", self.scheme), ("interval level", 1 - self.alpha),
                                           ("folds", int(self.predictions["fold"].nunique())),
                                           ("baseline", self.baseline_name or "none")],
                       tables=tables, notes=lines[2:], text="\n".join(lines))


def _brief_fold(label: str, n_languages: int = 2) -> str:
    """``"bho+glg+ita+kor"`` -> ``"bho+glg+…(4)"``: a fold of several languages by its first ones."""
    languages = label.split("+")
    if len(languages) <= n_languages + 1:
        return label
    return "+".join(languages[:n_languages]) + f"+…({len(languages)})"


def _brief_list(labels: list[str], max_listed: int) -> tuple[str, int]:
    """At most ``max_listed`` folds, each shortened; returns the text and how many were left out."""
    shown = ", ".join(_brief_fold(label) for label in labels[:max_listed])
    left = max(len(labels) - max_listed, 0)
    return (shown + (f" and {left} more" if left else ""), left)


def default_estimators(features, mixed_formula: str | None = None, response: str = "score", seed: int = 0,
                       symmetric: bool = False) -> dict:
    """OLS, the crossed mixed model (when a formula is given), the mean baseline and LightGBM trees
    (``symmetric``: the mean baseline of unordered pairs, see :class:`MeanBaseline`)."""
    out = {"ols": OLSEstimator(features, response=response)}
    if mixed_formula:
        out["mixed"] = MixedEstimator(mixed_formula)
    out["mean"] = MeanBaseline(response=response, symmetric=symmetric)
    out["gbt"] = GradientBoostingEstimator(features, response=response, seed=seed)
    return out


def cross_validate(data: pd.DataFrame, estimators: dict | None = None, scheme: str = "leave-one-target-out",
                   k: int = 5, seed: int = 0, alpha: float = 0.05, response: str = "score", source: str = "source",
                   target: str = "target", baseline: str | None = None, features=None,
                   mixed_formula: str | None = None, max_folds: int | None = None,
                   n_jobs: int = 1, progress=None) -> CVResults:
    """Evaluate ``estimators`` (name -> estimator) on the same held-out splits.

    Without ``estimators``, :func:`default_estimators` is used with ``features`` and ``mixed_formula``.

    ``baseline`` names the estimator the others are compared with in :meth:`CVResults.summary`
    (default: the first :class:`GradientBoostingEstimator`, if any). ``max_folds`` holds languages
    out in that many groups when a leave-one-language-out scheme has more (see :func:`make_splits`).
    ``n_jobs`` folds run at once in threads; the result is the same for any value. A fit that fails on one fold
    (e.g. too few rows) leaves that fold's predictions missing for that estimator and is listed in
    ``failures``; a mixed-model fit that did not converge keeps its predictions and is listed in
    ``not_converged`` (both appear in the summary). ``progress``: called with each fold's label when
    the fold is done (from the worker thread; e.g. :meth:`xltstats.progress.Progress.counter`).
    """
    if estimators is None and features:
        estimators = default_estimators(features, mixed_formula, response, seed)
    if not estimators:
        raise InputError("cross_validate needs estimators, or features for the default ones")
    if response not in data.columns:
        raise InputError(f"missing response column {response!r}", column=response)
    data = data.reset_index(drop=True)
    observed = pd.to_numeric(data[response], errors="coerce").to_numpy(float)
    data = data[~np.isnan(observed)].reset_index(drop=True)
    observed = observed[~np.isnan(observed)]
    splits = make_splits(data, scheme, k, seed, source, target, max_folds=max_folds)
    calibration = {"leave-one-target-out": target, "leave-one-source-out": source, "random": None,
                   "leave-one-language-out": None}[scheme]
    estimators = dict(estimators)
    outer = set()
    for name, est in estimators.items():
        if isinstance(est, GradientBoostingEstimator):
            est = copy.copy(est)
            if est.calibration_group == "auto":
                est.calibration_group = calibration
            if est.interval == "conformal" and est.calibration in ("auto", "outer") and len(splits) > 1:
                est.calibration = "outer"
                outer.add(name)
            elif est.calibration == "auto":
                est.calibration = "inner"
            estimators[name] = est
    frames, failures = [], []
    from xltstats.errors import XltstatsError

    def run_fold(label, test):
        train, held = data[training_mask(data, scheme, label, test, source, target)], data[test]
        if len(train) == 0:
            return [], [], []
        fold_frames, fold_failures, fold_unconverged = [], [], []
        for name, estimator in estimators.items():
            try:
                fitted = estimator.fit(train)
                result = getattr(fitted, "result_", None)
                if result is not None and not getattr(result, "converged", True):
                    fold_unconverged.append(f"{name} on {label}: " + "; ".join(result.warnings))
                pi = fitted.predict_interval(held, alpha)
            except (XltstatsError, np.linalg.LinAlgError, ValueError) as exc:
                fold_failures.append(f"{name} on {label}: {exc}")
                pi = _interval_frame(*(np.full(len(held), np.nan),) * 3, held.index)
            fold_frames.append(pd.DataFrame({"fold": label, "estimator": name, "row": held.index.to_numpy(),
                                             "source": held[source].astype(str).to_numpy() if source in held else "",
                                             "target": held[target].astype(str).to_numpy() if target in held else "",
                                             "observed": observed[test], "prediction": pi["prediction"].to_numpy(),
                                             "lower": pi["lower"].to_numpy(), "upper": pi["upper"].to_numpy()}))
        if progress is not None:
            progress(f"{scheme} {label}")
        return fold_frames, fold_failures, fold_unconverged

    # Folds are independent; threads overlap the parts that release the GIL (LightGBM, BLAS).
    # Results are gathered in split order, so the output does not depend on n_jobs.
    if n_jobs and n_jobs > 1 and len(splits) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=n_jobs) as pool:
            results = list(pool.map(lambda split: run_fold(*split), splits))
    else:
        results = [run_fold(label, test) for label, test in splits]
    unconverged = []
    for fold_frames, fold_failures, fold_unconverged in results:
        frames.extend(fold_frames)
        failures.extend(fold_failures)
        unconverged.extend(fold_unconverged)
    if baseline is None:
        baseline = next((n for n, e in estimators.items() if isinstance(e, GradientBoostingEstimator)), None)
    elif baseline not in estimators:
        raise InputError(f"baseline {baseline!r} is not one of the estimators {list(estimators)}")
    if outer:
        if any(len(f) and f["estimator"].iat[0] in outer for f in frames):
            joined = pd.concat([f for f in frames if len(f) and f["estimator"].iat[0] in outer], ignore_index=True)
            by_name = {name: _outer_conformal(g, alpha) for name, g in joined.groupby("estimator", sort=False)}
            frames = [f for f in frames if not (len(f) and f["estimator"].iat[0] in outer)] + list(by_name.values())
    predictions = pd.concat(frames, ignore_index=True).sort_values(["estimator", "row"], kind="stable")
    order = {n: i for i, n in enumerate(estimators)}
    predictions = predictions.sort_values(["estimator", "row"], key=lambda s: s.map(order) if s.name == "estimator" else s,
                                          kind="stable").reset_index(drop=True)
    return CVResults(scheme=scheme, alpha=alpha, predictions=predictions, baseline_name=baseline, failures=failures,
                     not_converged=unconverged)
