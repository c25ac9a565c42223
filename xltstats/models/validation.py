"""Out-of-sample prediction of transfer scores and cross-validation against baselines.

The estimators (OLS, the crossed mixed model, the mean baseline, LightGBM trees with conformal
intervals) live in :mod:`xltstats.models.estimators` and are re-exported here; model choice by
inner cross-validation and stacking in :mod:`xltstats.models.selection`.

:func:`cross_validate` evaluates several estimators on the same splits and reports RMSE, MAE, R²
(``1 - SSE/SST`` with SST around the mean of all held-out observations, pooled over folds) and the
coverage and mean width of the ``1 - alpha`` intervals, computed per estimator on the rows it could
predict (``n_predicted``).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from xltstats.errors import InputError
from xltstats.models.estimators import (GradientBoostingEstimator, MeanBaseline, MixedEstimator,  # noqa: F401
                                        OLSEstimator, _interval_frame, conformal_quantile)
from xltstats.models.summary import Summary

__all__ = ["OLSEstimator", "MixedEstimator", "MeanBaseline", "GradientBoostingEstimator", "cross_validate",
           "CVResults", "make_splits", "group_splits", "training_mask", "SCHEMES", "GROUP_SCHEME",
           "default_estimators"]

SCHEMES = ("leave-one-target-out", "leave-one-source-out", "random", "leave-one-language-out")
#: Held-out values of a column given as ``group=`` (not a configuration scheme).
GROUP_SCHEME = "leave-one-group-out"
#: The columns of held-out predictions clipped to the score's range.
CLIPPED_COLUMNS = ("prediction", "lower", "upper", "conformal_lower", "conformal_upper")


def _outer_conformal(frame: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Bounds of an outer-calibrated estimator's fold frames: each fold's ``prediction ± q`` with q
    from the absolute held-out residuals of the other folds (see the module docstring)."""
    from xltstats.models.selection import add_conformal

    bounds = add_conformal(frame, alpha)
    return frame.assign(lower=bounds["conformal_lower"].to_numpy(), upper=bounds["conformal_upper"].to_numpy())


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
                max_folds: int | None = None, group: str | None = None) -> list[tuple[str, np.ndarray]]:
    """List of (held-out label, boolean test mask) pairs for the scheme, in a fixed order.

    ``max_folds`` bounds the number of folds of the leave-one-language-out schemes: with more
    languages than that, the languages are held out in ``max_folds`` groups (see :func:`group_splits`).
    ``scheme="leave-one-group-out"`` holds out the values of column ``group`` the same way (e.g.
    SumEval's ``config_id``: whole training configurations, as its test release has new ones).
    """
    if scheme == GROUP_SCHEME:
        if not group or group not in data.columns:
            raise InputError(f"scheme {GROUP_SCHEME!r} needs a grouping column (group=), not {group!r}",
                             column=group)
        return group_splits(data[group].to_numpy(), max_folds, seed)
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


class FoldModels:
    """The estimators one outer fold fitted, and what they were fitted on: ``train_keys`` holds the
    ``model``/``task``/``source``/``target`` columns (those the data has) and the response of the
    training rows, in order; ``estimators`` maps a name to ``(estimator as configured, fitted estimator)``."""

    def __init__(self, test_targets: frozenset, train_keys: pd.DataFrame, estimators: dict):
        self.test_targets = test_targets
        self.train_keys = train_keys
        self.estimators = estimators


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
    #: per outer fold, the inner cross-validation's choice (``select=True``; see :mod:`xltstats.models.selection`)
    choices: list = field(default_factory=list)
    #: with ``keep_models=True``: per outer fold, a :class:`FoldModels` (the fitted estimators, for reuse)
    fold_models: list = field(default_factory=list)
    #: predictions and interval bounds clipped to the score's range (``scale=`` of cross_validate)
    clipped: int = 0

    @staticmethod
    def _metrics(frame: pd.DataFrame, sst_mean: float) -> dict:
        ok = frame["prediction"].notna()
        f = frame[ok]
        err = f["observed"] - f["prediction"]
        sst = ((f["observed"] - sst_mean) ** 2).sum()
        out = {"n": int(len(frame)), "n_predicted": int(ok.sum()),
               "rmse": float(np.sqrt((err ** 2).mean())) if len(f) else np.nan,
               "mae": float(err.abs().mean()) if len(f) else np.nan,
               "r2": float(1 - (err ** 2).sum() / sst) if sst > 0 else np.nan}
        for prefix, (low, high) in (("", ("lower", "upper")), ("conformal_", ("conformal_lower", "conformal_upper"))):
            if low not in f.columns:
                continue
            known = f[low].notna() & f[high].notna()
            covered = (f["observed"] >= f[low]) & (f["observed"] <= f[high])
            out[f"{prefix}coverage"] = float(covered[known].mean()) if known.any() else np.nan
            out[f"{prefix}mean_interval_width" if not prefix else "conformal_width"] = (
                float((f[high] - f[low])[known].mean()) if known.any() else np.nan)
        return out

    def metrics(self) -> pd.DataFrame:
        """RMSE, MAE, R², interval coverage and width per estimator (all folds pooled): the
        estimator's own intervals (``coverage``, ``mean_interval_width``; missing where it has none,
        as ``stacked``) and the cross-conformal ones every estimator gets (``conformal_coverage``,
        ``conformal_width``).  With ``select=True`` the rows ``chosen`` and ``stacked`` follow and
        ``selected`` marks the estimator of :meth:`selection`."""
        mean = float(self.predictions.drop_duplicates("row")["observed"].mean())
        rows = [{"estimator": name, "scheme": self.scheme, **self._metrics(g, mean)}
                for name, g in self.predictions.groupby("estimator", sort=False)]
        table = pd.DataFrame(rows)
        if self.choices and len(table):
            from xltstats.models.selection import selection_table

            use = selection_table(table, self.predictions, self.choices, self.scheme)["estimator"].iat[0]
            table["selected"] = table["estimator"] == use
        return table

    def selection(self) -> pd.DataFrame:
        """The estimator a prediction for this scheme should use, the nested ``chosen`` RMSE, the
        picks and the stacking weights (one row; see :func:`xltstats.models.selection.selection_table`)."""
        from xltstats.models.selection import selection_table

        if not self.choices:
            raise InputError("no model choice: cross_validate was run without select=True")
        mean = float(self.predictions.drop_duplicates("row")["observed"].mean())
        rows = [{"estimator": name, "scheme": self.scheme, **self._metrics(g, mean)}
                for name, g in self.predictions.groupby("estimator", sort=False)]
        return selection_table(pd.DataFrame(rows), self.predictions, self.choices, self.scheme)

    def choice_folds(self) -> pd.DataFrame:
        """Per outer fold: the inner-CV choice, each estimator's inner RMSE and stacking weight."""
        rows = []
        for c in self.choices:
            row = {"scheme": self.scheme, "fold": c["fold"], "chosen": c["chosen"], "n_inner_folds": c["n_inner_folds"],
                   "n_inner_rows": c["n_rows"]}
            row.update({f"inner_rmse_{n}": v for n, v in c["rmse"].items()})
            row.update({f"weight_{n}": v for n, v in c["weights"].items()})
            rows.append(row)
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
        if self.choices:
            sel = self.selection().iloc[0]
            lines.append(f"model choice by inner cross-validation on each training part: {sel['picks'] or 'none'} "
                         f"(folds chosen); held-out RMSE of that choice {sel['chosen_rmse']:.4g}, of stacking "
                         f"{sel['stacked_rmse']:.4g}, of the best single estimator ({sel['best_single']}) "
                         f"{sel['best_single_rmse']:.4g}; predictions use {sel['estimator']} ({sel['rule']})")
            tables.append(("Model choice", self.selection()))
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
                       symmetric: bool = False, *, tree_features=None, categorical=(), hybrid: bool = True) -> dict:
    """OLS, the crossed mixed model (when a formula is given), the mean baseline, LightGBM trees and,
    with a formula that has random intercepts, the hybrid of trees and random intercepts
    (:class:`~xltstats.models.hybrid.HybridEstimator`; ``symmetric``: the mean baseline of unordered pairs, see :class:`MeanBaseline`).

    ``tree_features``: the trees' columns (default ``features``; a fit gives them the multi-source and
    few-shot columns too, :func:`xltstats.pipeline.design.multisource_features`).  ``categorical``:
    grouping columns the mixed model has as random effects (``model``, ``task``), given to OLS and
    the trees as indicators so that every estimator sees the same information.  ``hybrid``: include
    the hybrid (a fit includes it only with ``cv.hybrid: true``, for its cost)."""
    categorical = list(categorical)
    out = {"ols": OLSEstimator(features, response=response, categorical=categorical)}
    if mixed_formula:
        out["mixed"] = MixedEstimator(mixed_formula)
    out["mean"] = MeanBaseline(response=response, symmetric=symmetric)
    out["gbt"] = GradientBoostingEstimator(list(tree_features or features), response=response, seed=seed,
                                           categorical=categorical)
    if mixed_formula and hybrid:
        from xltstats.models.hybrid import HybridEstimator, random_intercepts

        random = random_intercepts(mixed_formula)
        if random:  # the trees and the mixed model's random intercepts together (xltstats.models.hybrid)
            out["hybrid"] = HybridEstimator(list(tree_features or features), random=random, response=response,
                                            seed=seed)
    return out


def cross_validate(data: pd.DataFrame, estimators: dict | None = None, scheme: str = "leave-one-target-out",
                   k: int = 5, seed: int = 0, alpha: float = 0.05, response: str = "score", source: str = "source",
                   target: str = "target", baseline: str | None = None, features=None,
                   mixed_formula: str | None = None, max_folds: int | None = None,
                   n_jobs: int = 1, progress=None, *, tree_features=None, categorical=(), group: str | None = None,
                   select: bool = False, inner_folds: int = 3, race_margin: float = 0.5,
                   hybrid: bool = True, keep_models: bool = False, scale=None) -> CVResults:
    """Evaluate ``estimators`` (name -> estimator) on the same held-out splits.

    Without ``estimators``, :func:`default_estimators` is used with ``features`` and ``mixed_formula``
    (and the hybrid unless ``hybrid=False``).

    ``baseline`` names the estimator the others are compared with in :meth:`CVResults.summary`
    (default: the first :class:`GradientBoostingEstimator`, if any). ``max_folds`` holds languages
    out in that many groups when a leave-one-language-out scheme has more (see :func:`make_splits`).
    ``n_jobs`` folds run at once in threads; the result is the same for any value. A fit that fails on one fold
    (e.g. too few rows) leaves that fold's predictions missing for that estimator and is listed in
    ``failures``; a mixed-model fit that did not converge keeps its predictions and is listed in
    ``not_converged`` (both appear in the summary). ``progress``: called with each fold's label when
    the fold is done (from the worker thread; e.g. :meth:`xltstats.progress.Progress.counter`).
    ``tree_features`` and ``categorical`` go to :func:`default_estimators`; ``group`` is the column of
    ``scheme="leave-one-group-out"``.  ``keep_models``: keep every fold's fitted estimators
    (:attr:`CVResults.fold_models`; the ranking reuses those of the held-out target folds).

    ``select=True``: in every outer fold, inner cross-validation on the training part alone (the
    same scheme, ``inner_folds`` folds, raced with ``race_margin``) chooses an estimator and fits stacking weights; the rows
    ``chosen`` and ``stacked`` hold their outer predictions (see :mod:`xltstats.models.selection`).
    Every estimator also gets cross-conformal bounds (``conformal_lower`` / ``conformal_upper``).

    ``scale`` (a :class:`~xltstats.results.metrics.ScoreScale`): the held-out predictions and every interval
    bound are clipped to its range, after the conformal bounds are computed from the unclipped
    residuals (``CVResults.clipped`` counts the values changed).
    """
    if estimators is None and features:
        estimators = default_estimators(features, mixed_formula, response, seed, tree_features=tree_features,
                                        categorical=categorical, hybrid=hybrid)
    if not estimators:
        raise InputError("cross_validate needs estimators, or features for the default ones")
    if response not in data.columns:
        raise InputError(f"missing response column {response!r}", column=response)
    data = data.reset_index(drop=True)
    observed = pd.to_numeric(data[response], errors="coerce").to_numpy(float)
    data = data[~np.isnan(observed)].reset_index(drop=True)
    observed = observed[~np.isnan(observed)]
    splits = make_splits(data, scheme, k, seed, source, target, max_folds=max_folds, group=group)
    calibration = {"leave-one-target-out": target, "leave-one-source-out": source, "random": None,
                   "leave-one-language-out": None, GROUP_SCHEME: group}[scheme]
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
        elif getattr(est, "validation_group", None) == "auto":  # the hybrid's inner folds follow the scheme
            estimators[name] = copy.copy(est)
            estimators[name].validation_group = calibration
    frames, failures = [], []
    from xltstats.errors import XltstatsError

    def run_fold(label, test):
        train, held = data[training_mask(data, scheme, label, test, source, target)], data[test]
        if len(train) == 0:
            return [], [], [], None, None
        choice = None
        if select:
            from xltstats.models.selection import inner_choice

            try:  # the training part split again by the same scheme
                part = train.reset_index(drop=True)
                inner = [(lab, t, training_mask(part, scheme, lab, t, source, target))
                         for lab, t in make_splits(part, scheme, k=inner_folds, seed=seed, source=source,
                                                   target=target, max_folds=inner_folds, group=group)]
            except XltstatsError:
                inner = []
            choice = {"fold": label, **inner_choice(train, estimators, inner, alpha=alpha, response=response,
                                                    margin=race_margin)}
        fold_frames, fold_failures, fold_unconverged, kept = [], [], [], {}
        for name, estimator in estimators.items():
            try:
                fitted = estimator.fit(train)
                if keep_models:
                    kept[name] = (estimator, fitted)
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
        models = None
        if keep_models and target in held:
            keys = [c for c in ("model", "task", source, target, response) if c in train.columns]
            models = FoldModels(frozenset(held[target].astype(str)), train[keys].reset_index(drop=True), kept)
        return fold_frames, fold_failures, fold_unconverged, choice, models

    # Folds are independent; threads overlap the parts that release the GIL (LightGBM, BLAS).
    # Results are gathered in split order, so the output does not depend on n_jobs.
    if n_jobs and n_jobs > 1 and len(splits) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=n_jobs) as pool:
            results = list(pool.map(lambda split: run_fold(*split), splits))
    else:
        results = [run_fold(label, test) for label, test in splits]
    unconverged, choices = [], []
    fold_models = [models for *_, models in results if models is not None]
    for fold_frames, fold_failures, fold_unconverged, choice, _models in results:
        frames.extend(fold_frames)
        failures.extend(fold_failures)
        unconverged.extend(fold_unconverged)
        if choice is not None:
            choices.append(choice)
    if baseline is None:
        baseline = next((n for n, e in estimators.items() if isinstance(e, GradientBoostingEstimator)), None)
    elif baseline not in estimators:
        raise InputError(f"baseline {baseline!r} is not one of the estimators {list(estimators)}")
    if outer:
        if any(len(f) and f["estimator"].iat[0] in outer for f in frames):
            joined = pd.concat([f for f in frames if len(f) and f["estimator"].iat[0] in outer], ignore_index=True)
            by_name = {name: _outer_conformal(g, alpha) for name, g in joined.groupby("estimator", sort=False)}
            frames = [f for f in frames if not (len(f) and f["estimator"].iat[0] in outer)] + list(by_name.values())
    predictions = pd.concat(frames, ignore_index=True)
    order = {n: i for i, n in enumerate(estimators)}
    if choices:
        from xltstats.models.selection import CHOSEN, STACKED, choice_frames

        predictions = pd.concat([predictions, choice_frames(predictions, choices)], ignore_index=True)
        order.update({CHOSEN: len(order), STACKED: len(order) + 1})
    if len(splits) > 1:
        from xltstats.models.selection import add_conformal

        predictions = add_conformal(predictions, alpha)
    predictions = predictions.sort_values(["estimator", "row"], key=lambda s: s.map(order) if s.name == "estimator" else s,
                                          kind="stable").reset_index(drop=True)
    clipped = 0
    if scale is not None:
        predictions, clipped = scale.clip(predictions, CLIPPED_COLUMNS)
    return CVResults(scheme=scheme, alpha=alpha, predictions=predictions, baseline_name=baseline, failures=failures,
                     not_converged=unconverged, choices=choices, fold_models=fold_models, clipped=clipped)
