"""Annotation planning: which languages to annotate, and how many examples each, for a set of targets.

LITMUS (Srinivasan et al., 2021) answers this with a point prediction; here the plan comes with the
predicted gain and its interval.  Definitions, documented once:

* A **configuration** is the training data of one run: a mapping language -> number of examples.  The
  run trained on it is evaluated on every target; examples in a target's own language are its
  few-shot examples (``n_target_examples``), as in SumEval's multi-source tables.
* ``base`` is the data one has already (e.g. ``{"eng": 10000}``; default none); an **allocation**
  adds to it ``step`` examples at a time, in the ``candidates`` only, at most ``budget`` in all.
* The **objective** of a configuration is the mean over the targets of the predicted score.  The
  **gain** of an allocation is the objective of ``base + allocation`` minus the objective of
  ``base``.  The plan is the allocation on the grid (multiples of ``step`` summing to at most
  ``budget``) with the highest predicted objective; an allocation may leave budget unspent when more
  examples are predicted not to help.
* **Search**: exact enumeration of the grid when it has at most ``max_exact`` allocations
  (``search="auto"``, or ``"exact"``); otherwise greedy marginal gain (add one step where it raises
  the objective most, while one does) followed by exchanges (move one step between two candidates
  while that raises it).  Greedy is exact when the objective is a sum of concave functions of each
  language's count (few-shot curves: each target gains from its own examples with diminishing
  returns); for other predictors the exchange pass is a local search and ``search`` in the result
  says which was used.  Ties go to the allocation found first (candidates in the order given).
* **Direction and range** (:mod:`xltstats.results.metrics`): for a lower-is-better metric the plan is the
  allocation with the *lowest* predicted objective (a good gain is then negative), and the
  :class:`LinearPredictor`'s predicted scores are clipped to the metric's range (``model.json``'s
  ``score``).  The gain interval is that of the unclipped linear contrast; when a target's planned
  or base prediction was clipped the note says so.
* **Predictors** follow a small protocol (:class:`Predictor`): ``predict(targets, configurations)``
  gives the predicted score of each configuration on each target, and ``gain(targets, configuration,
  base, alpha)`` the mean gain with a ``1 - alpha`` interval and a sentence saying what the interval
  means.  Two come with the package:

  - :class:`LinearPredictor`: the fit's OLS or crossed mixed model (``model.json`` of a fit folder, or
    a :class:`~xltstats.pipeline.run.Fit`) with the configuration's features computed as
    ``python -m xltstats.predict`` computes them (multi-source rows ``source = "mul"`` with
    ``source_languages`` when the fit's data has such rows; count-weighted pair features).  The
    gain of target t is ``(x_t(new) - x_t(base))' beta``: the two predictions share the fitted
    coefficients, so the interval is that of the contrast, ``z * sqrt(d' V d)`` with
    ``d = mean_t (x_t(new) - x_t(base))`` and V the coefficients' covariance -- their correlation
    is used exactly, not ignored.  Random intercepts of the target (and of the source set, task and
    model) are the same on both sides and cancel with their uncertainty; a random slope whose column
    changes with the configuration adds ``(sd_new + sd_base)^2`` per target, a bound valid for any
    correlation.  It is a confidence interval for the expected gain under the model (estimation
    uncertainty of the coefficients); the run-to-run noise of actual fine-tuning is not in it.
  - :class:`FewShotPredictor`: the pooled few-shot curves of :func:`xltstats.models.fewshot.fit_fewshot`,
    ``score_t(n) = (a + u0_t) + (b + u1_t) log(1 + n)`` with the target's conditional modes
    (0 for a target the curves did not see); only a target's own examples move its score.  Gain
    ``mean_t (b + u1_t) (L_t(new) - L_t(base))``; its variance ``(mean_t dL_t)^2 var(b) + sum_t
    dL_t^2 c_t / T^2`` with ``c_t`` the conditional variance of the target's slope mode (the slope's
    full variance for an unseen target): the shared ``b`` is fully correlated across targets and
    between the two sides, the intercepts cancel, the modes of different targets are treated as
    independent, and the covariance between ``b`` and the modes is ignored (as
    :meth:`~xltstats.models.fewshot.FewShotResults.pooled_curves` does).  Normal quantiles.
"""
from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd
from scipy import stats

from xltstats.errors import InputError

__all__ = ["Predictor", "LinearPredictor", "FewShotPredictor", "AnnotationPlan", "plan_annotation",
           "grid_allocations"]


class Predictor(Protocol):
    """What the planner needs from a model (see the module docstring)."""

    def predict(self, targets: list[str], configurations: list[dict]) -> np.ndarray:
        """Predicted score, shape ``(len(configurations), len(targets))``; NaN where it cannot be predicted."""

    def gain(self, targets: list[str], configuration: dict, base: dict, alpha: float = 0.05) -> dict:
        """``{"gain", "lower", "upper", "interval"}``: the mean gain over ``targets`` of ``configuration``
        over ``base``, its ``1 - alpha`` interval and what that interval means."""


def _combined(base: dict, allocation: dict) -> dict:
    out = {lang: float(n) for lang, n in base.items() if n > 0}
    for lang, n in allocation.items():
        if n > 0:
            out[lang] = out.get(lang, 0.0) + float(n)
    return out


# ---------------------------------------------------------------------- linear models

class LinearPredictor:
    """A fit's OLS or mixed model as a :class:`Predictor` (see the module docstring).

    ``model``: a :class:`~xltstats.models.persist.PortableModel`; ``design``: a function from a table
    of configuration rows (``target``, ``source``, ``source_languages`` as JSON, ``n_source_examples``,
    ``n_target_examples`` and the ``context`` columns) to the same rows with the model's columns;
    ``multi_source``: configurations are ``source = "mul"`` rows (else a configuration of one
    language is a single-source row and several languages are refused).
    """

    interval = ("confidence interval for the expected gain under the model: the coefficients' estimation "
                "uncertainty, with the two predictions' shared coefficients (their correlation) used exactly; "
                "random intercepts cancel; run-to-run noise is not included")

    def __init__(self, model, design, context: dict | None = None, multi_source: bool = True, scale=None):
        self.model = model
        self.design = design
        self.context = dict(context or {})
        self.multi_source = multi_source
        self.scale = scale  # a ScoreScale: predictions clipped to its range, its direction followed
        self.higher_is_better = True if scale is None else bool(scale.higher_is_better)

    @classmethod
    def from_fit(cls, fit, which: str = "mixed", context: dict | None = None, mirror=None) -> "LinearPredictor":
        """From a :class:`~xltstats.pipeline.run.Fit` in memory."""
        from xltstats.models.persist import PortableModel, model_spec

        fitted = {"mixed": fit.mixed, "ols": fit.ols}.get(which)
        if fitted is None:
            raise InputError(f"model must be 'mixed' or 'ols' (one the fit has), not {which!r}")
        return cls._build(PortableModel(model_spec(fitted), name=which), fit.config, fit.data, context, mirror,
                          scale=getattr(fit, "scale", None))

    @classmethod
    def from_folder(cls, path, which: str | None = None, context: dict | None = None,
                    mirror=None) -> "LinearPredictor":
        """From a fit folder's ``model.json`` (``which``: mixed or ols; default the folder's default)."""
        from xltstats.models.persist import load_model
        from xltstats.pipeline import FitFolder

        from xltstats.models.nested import SavedModels

        folder = FitFolder(path)
        model = load_model(folder.path, which=which)
        return cls._build(model, folder.config, folder.results, context, mirror,
                          scale=SavedModels.load(folder.path).scale)

    @classmethod
    def _build(cls, model, config, reference, context, mirror, scale=None) -> "LinearPredictor":
        from xltstats.pipeline.design import prediction_table

        context = dict(context or {})
        for column in ("model", "task"):
            if column in context or reference is None or column not in reference.columns:
                continue
            values = sorted(reference[column].dropna().astype(str).unique())
            if len(values) == 1:
                context[column] = values[0]
            elif column in model.required_columns:
                raise InputError(f"the fit has several {column}s ({', '.join(values[:6])}); say which to plan for "
                                 f"(--{column})", column=column)
        multi = reference is not None and "source" in reference.columns and (reference["source"] == "mul").any()
        # the pair features the builder computes (not the covariates taken from the fit's dataset)
        covariates = set(config.covariates) | {"same_language"}
        built = [c for c in model.feature_columns if not (c in covariates and c not in config.features)]
        models = reference["model"].unique() if reference is not None and "model" in reference.columns else ["xlm-r"]
        cache: dict = {}

        def design(rows):
            from xltstats.pipeline.design import compute_pair_features, join_pair_features

            # every pair's features computed once, with all the pairs of the plan: a configuration's
            # prediction then does not depend on which others it is predicted with
            pairs = cache.get("pairs")
            needed = _pairs_of(rows)
            if pairs is None or not set(map(tuple, needed.to_numpy())) <= cache["known"]:
                wanted = pd.concat([needed, cache.get("wanted", needed.iloc[:0]), cache.get("probe", needed.iloc[:0])])
                wanted = wanted.drop_duplicates().sort_values(["source", "target"]).reset_index(drop=True)
                cache["pairs"] = pairs = compute_pair_features(wanted, built, config, models, mirror) if built \
                    else wanted
                cache["known"], cache["wanted"] = set(map(tuple, wanted.to_numpy())), wanted
            columns = [c for c in built if c in pairs.columns]
            joined = join_pair_features(rows, pairs, columns) if columns else rows
            return prediction_table(joined, model.feature_columns, config, reference=reference, mirror=mirror)

        predictor = cls(model, design, context, multi_source=bool(multi), scale=scale)
        predictor._cache = cache
        return predictor

    def prepare(self, targets, languages) -> None:
        """Compute, once, the pair features of every language in ``languages`` with every target
        (:func:`plan_annotation` calls this with the candidates and the base languages)."""
        cache = getattr(self, "_cache", None)
        if cache is not None:
            cache["probe"] = pd.DataFrame([(lang, t) for lang in sorted(set(languages)) for t in sorted(set(targets))],
                                          columns=["source", "target"])
            cache.pop("pairs", None)

    def rows(self, targets, configurations) -> pd.DataFrame:
        """One row per (configuration, target), configuration-major."""
        records = []
        for index, conf in enumerate(configurations):
            languages = {lang: float(n) for lang, n in sorted(conf.items()) if n > 0}
            total = float(sum(languages.values()))
            if self.multi_source:
                source, cell = "mul", json.dumps({k: int(v) if float(v).is_integer() else v
                                                  for k, v in languages.items()})
            elif len(languages) == 1:
                source, cell = next(iter(languages)), None
            else:
                raise InputError("this fit has no multi-source rows, so it cannot predict a configuration of "
                                 f"several languages ({', '.join(languages) or 'none'}); give one candidate or "
                                 "fit a multi-source table")
            for target in targets:
                records.append({**self.context, "source": source, "target": target, "source_languages": cell,
                                "n_source_examples": total, "n_target_examples": languages.get(target, 0.0),
                                "_configuration": index})
        return pd.DataFrame(records)

    def _table(self, targets, configurations) -> pd.DataFrame:
        rows = self.rows(targets, configurations)
        empty = rows["n_source_examples"].to_numpy() <= 0
        table = self.design(rows[~empty].reset_index(drop=True)) if (~empty).any() else rows.iloc[:0]
        return rows, table, empty

    def predict(self, targets, configurations, clip: bool = True) -> np.ndarray:
        """Predicted scores (clipped to the score's range unless ``clip=False``)."""
        rows, table, empty = self._table(targets, configurations)
        out = np.full(len(rows), np.nan)  # a run without training data is not predicted
        if len(table):
            out[~empty] = self._complete(table, self.model.predict(table).to_numpy())
        if clip and self.scale is not None:
            out = self.scale.clip_values(out)
        return out.reshape(len(configurations), len(targets))

    def _complete(self, table, values):
        lacking = table[self.model.feature_columns].isna().any(axis=1).to_numpy()
        return np.where(lacking, np.nan, values)

    def gain(self, targets, configuration, base, alpha: float = 0.05) -> dict:
        rows, table, empty = self._table(targets, [configuration, base])
        n = len(targets)
        if empty.any() or table[self.model.feature_columns].isna().any(axis=None):
            return {"gain": float("nan"), "lower": float("nan"), "upper": float("nan"), "interval": self.interval,
                    "note": "a configuration without training data or with missing features has no prediction"}
        new, old = table.iloc[:n].reset_index(drop=True), table.iloc[n:].reset_index(drop=True)
        if getattr(self.model, "response_scale", None) is not None:  # mixed.scale: logit: not a linear contrast
            diff = float((self.model.predict(new).to_numpy() - self.model.predict(old).to_numpy()).mean())
            return {"gain": diff, "lower": float("nan"), "upper": float("nan"), "interval": self.interval,
                    "note": "the mixed model is on the logit scale (mixed.scale: logit): the gain is the difference "
                            "of the back-transformed predictions, and its interval (that of a linear contrast) is "
                            "not computed; plan with --which ols for one"}
        x_new, x_old = self.model.fixed_design(new), self.model.fixed_design(old)
        diff = (self.model.predict(new).to_numpy() - self.model.predict(old).to_numpy()).mean()
        d = (x_new - x_old).mean(axis=0)
        var = float(d @ self.model.cov_params().to_numpy() @ d)
        note = ""
        if self.model.kind == "mixed":
            mean_new, var_new = self.model.random_parts(new)
            mean_old, var_old = self.model.random_parts(old)
            moved = ~np.isclose(mean_new, mean_old) | ~np.isclose(var_new, var_old)
            if moved.any():
                var += float(((np.sqrt(var_new) + np.sqrt(var_old))[moved] ** 2).sum()) / n ** 2
                note = "random slopes change with the configuration: their part of the interval is a bound"
        crit = stats.norm.ppf(1 - alpha / 2) if self.model.df_inference is None else \
            stats.t.ppf(1 - alpha / 2, self.model.df_inference)
        half = float(crit * math.sqrt(max(var, 0.0)))
        return {"gain": float(diff), "lower": float(diff - half), "upper": float(diff + half),
                "interval": self.interval, "note": note}


def _pairs_of(rows: pd.DataFrame) -> pd.DataFrame:
    """The (language, target) pairs whose features configuration rows need."""
    pairs = []
    for source, cell, target in zip(rows["source"], rows["source_languages"], rows["target"]):
        languages = json.loads(cell) if isinstance(cell, str) and cell else {source: 1}
        pairs += [(str(lang), str(target)) for lang in languages]
    return pd.DataFrame(sorted(set(pairs)), columns=["source", "target"])


# ---------------------------------------------------------------------- few-shot curves

class FewShotPredictor:
    """The pooled few-shot curves as a :class:`Predictor` (see the module docstring).

    ``curves``: :class:`~xltstats.models.fewshot.FewShotResults`; ``key``: which pooled curve (its
    ``pool_by`` values, e.g. ``("udpos",)``; default the only one).
    """

    interval = ("confidence interval for the expected gain under the pooled curves: the shared slope's "
                "uncertainty (fully correlated across targets and both sides) and each target's slope mode; "
                "intercepts cancel; run-to-run noise is not included")

    def __init__(self, curves, key=None):
        pooled = {k: p for k, p in curves.pooled.items() if "error" not in p}
        if not pooled:
            raise InputError("the few-shot fit has no pooled curve (too few targets or sizes)")
        if key is None:
            if len(pooled) > 1:
                raise InputError(f"several pooled few-shot curves ({', '.join(map(str, pooled))}); choose one with key=")
            key = next(iter(pooled))
        key = key if isinstance(key, tuple) else (key,)
        if key not in pooled:
            raise InputError(f"no pooled few-shot curve {key}; there are {', '.join(map(str, pooled))}")
        p = pooled[key]
        res = p["result"]
        self.a, self.b = p["a"], p["b"]
        self.var_b = float(p["cov"][1, 1])
        blups = res.random_effects["group"][["(Intercept)", "log1p_n"]]
        condvar = res._conditional_cov_blocks()[0]
        full = np.asarray(res._term_cov[0], float)
        self.modes = {str(level): blups.iloc[i].to_numpy(float) for i, level in enumerate(blups.index)}
        self.slope_var = {str(level): float((condvar[i] if condvar is not None else full)[1, 1])
                          for i, level in enumerate(blups.index)}
        self.unseen_slope_var = float(full[1, 1])

    def _curve(self, target):
        u = self.modes.get(str(target), np.zeros(2))
        return self.a + u[0], self.b + u[1], self.slope_var.get(str(target), self.unseen_slope_var)

    def predict(self, targets, configurations) -> np.ndarray:
        out = np.empty((len(configurations), len(targets)))
        for j, target in enumerate(targets):
            a, b, _ = self._curve(target)
            for i, conf in enumerate(configurations):
                out[i, j] = a + b * math.log1p(float(conf.get(target, 0.0)))
        return out

    def gain(self, targets, configuration, base, alpha: float = 0.05) -> dict:
        n = len(targets)
        d_log = np.array([math.log1p(float(configuration.get(t, 0.0))) - math.log1p(float(base.get(t, 0.0)))
                          for t in targets])
        curves = [self._curve(t) for t in targets]
        gain = float(np.mean([b * dl for (_, b, _), dl in zip(curves, d_log)]))
        var = float(d_log.mean() ** 2 * self.var_b + sum(dl ** 2 * c for (_, _, c), dl in zip(curves, d_log)) / n ** 2)
        half = float(stats.norm.ppf(1 - alpha / 2) * math.sqrt(var))
        return {"gain": gain, "lower": gain - half, "upper": gain + half, "interval": self.interval, "note": ""}


# ---------------------------------------------------------------------- search

def grid_allocations(n_candidates: int, units: int):
    """Every vector of ``n_candidates`` non-negative integers summing to at most ``units``, in lexicographic order."""
    for combo in itertools.product(range(units + 1), repeat=n_candidates):
        if sum(combo) <= units:
            yield combo


def _grid_size(n_candidates: int, units: int) -> int:
    return math.comb(units + n_candidates, n_candidates)


@dataclass
class AnnotationPlan:
    """The chosen allocation, its predicted objective and gain, and how it was found."""

    targets: list
    candidates: list
    budget: float
    step: float
    allocation: dict  # candidate -> examples to annotate (every candidate, 0 included)
    base: dict
    objective: float  # mean predicted score over the targets with base + allocation
    base_objective: float
    gain: float
    gain_lower: float
    gain_upper: float
    alpha: float
    search: str  # exact or greedy
    n_evaluated: int  # configurations predicted during the search
    interval: str = ""
    per_target: pd.DataFrame = field(default_factory=pd.DataFrame)
    note: str = ""
    higher_is_better: bool = True  # False: the plan minimised the mean predicted score

    def table(self) -> pd.DataFrame:
        """One row per candidate: examples to annotate and its share of the budget, with the plan's totals."""
        rows = [{"language": lang, "examples": float(self.allocation[lang]),
                 "share_of_budget": float(self.allocation[lang]) / self.budget if self.budget else float("nan"),
                 "is_target": lang in self.targets, "base_examples": float(self.base.get(lang, 0.0))}
                for lang in self.candidates]
        out = pd.DataFrame(rows)
        for key in ("budget", "step", "objective", "base_objective", "gain", "gain_lower", "gain_upper", "alpha",
                    "search", "n_evaluated"):
            out[key] = getattr(self, key)
        out["targets"] = " ".join(self.targets)
        return out

    def summary(self) -> str:
        chosen = ", ".join(f"{lang} {self.allocation[lang]:g}" for lang in self.candidates if self.allocation[lang] > 0)
        level = f"{1 - self.alpha:.0%}"
        return (f"annotation plan for {len(self.targets)} target(s), budget {self.budget:g} in steps of {self.step:g} "
                f"({self.search} search, {self.n_evaluated} configurations predicted)\n"
                f"annotate: {chosen or 'nothing (no allocation is predicted to help)'}\n"
                f"mean predicted score {self.base_objective:.4g} -> {self.objective:.4g}; gain {self.gain:.4g} "
                f"({level} interval {self.gain_lower:.4g} to {self.gain_upper:.4g})\n"
                f"interval: {self.interval}" + (f"\nnote: {self.note}" if self.note else "")
                + ("" if self.higher_is_better else "\nlower is better: the plan minimises the mean predicted score "
                   "(a negative gain is an improvement)"))


def _higher_is_better(predictor) -> bool:
    return bool(getattr(predictor, "higher_is_better", True))


def _objective(predictor, targets, base, candidates, allocations, step) -> np.ndarray:
    configurations = [_combined(base, {c: u * step for c, u in zip(candidates, alloc)}) for alloc in allocations]
    scores = np.asarray(predictor.predict(targets, configurations), float)
    if scores.shape != (len(configurations), len(targets)):
        raise InputError(f"the predictor returned shape {scores.shape}, not {(len(configurations), len(targets))}")
    with np.errstate(invalid="ignore"):
        mean = scores.mean(axis=1)
    if not _higher_is_better(predictor):  # a lower-is-better metric: the plan minimises the mean score
        mean = -mean
    return np.where(np.isnan(mean), -np.inf, mean)


def _exact(predictor, targets, base, candidates, units, step, chunk: int = 4096):
    best, best_value, count = None, -np.inf, 0
    grid = grid_allocations(len(candidates), units)
    while True:
        block = list(itertools.islice(grid, chunk))
        if not block:
            break
        values = _objective(predictor, targets, base, candidates, block, step)
        count += len(block)
        i = int(np.argmax(values))  # first maximum: ties go to the allocation found first
        if values[i] > best_value:
            best, best_value = block[i], float(values[i])
    return (best if best is not None else (0,) * len(candidates)), count


def _greedy(predictor, targets, base, candidates, units, step):
    n = len(candidates)

    def additions(current):
        return [] if sum(current) >= units else [tuple(current[k] + (k == i) for k in range(n)) for i in range(n)]

    def exchanges(current):  # one step from one candidate to another
        return [tuple(current[k] + (k == j) - (k == i) for k in range(n))
                for i in range(n) for j in range(n) if i != j and current[i] > 0]

    current = (0,) * n
    value = float(_objective(predictor, targets, base, candidates, [current], step)[0])
    count = 1
    for moves_of in (additions, exchanges):
        while True:  # take the best move while it raises the objective
            moves = moves_of(current)
            if not moves:
                break
            values = _objective(predictor, targets, base, candidates, moves, step)
            count += len(moves)
            i = int(np.argmax(values))
            if not values[i] > value + 1e-12:
                break
            current, value = moves[i], float(values[i])
    return current, count


def _as_predictor(predictor, which, context, mirror):
    if hasattr(predictor, "predict") and hasattr(predictor, "gain"):
        return predictor
    from pathlib import Path

    if isinstance(predictor, (str, Path)):
        return LinearPredictor.from_folder(predictor, which=which, context=context, mirror=mirror)
    if hasattr(predictor, "design") and hasattr(predictor, "mixed"):  # a Fit
        return LinearPredictor.from_fit(predictor, which=which or "mixed", context=context, mirror=mirror)
    raise InputError(f"cannot plan with {type(predictor).__name__}: give a fit folder, a Fit, or a predictor "
                     "with predict() and gain()")


def plan_annotation(predictor, targets, candidates, budget, step=None, *, base: dict | None = None,
                    alpha: float = 0.05, search: str = "auto", max_exact: int = 20000, which: str | None = None,
                    context: dict | None = None, mirror=None) -> AnnotationPlan:
    """Choose how many examples to annotate in each candidate language (see the module docstring).

    ``predictor``: a :class:`Predictor`, a :class:`~xltstats.pipeline.run.Fit` or a fit folder
    (:class:`LinearPredictor`; ``which`` model, ``context`` columns such as ``task`` and ``model``);
    ``budget``: examples in all; ``step``: the grid (default ``budget / 10``); ``base``: the data
    one has already (language -> examples).
    """
    targets = [str(t) for t in targets]
    candidates = [str(c) for c in candidates]
    if not targets:
        raise InputError("no target languages given")
    if not candidates:
        raise InputError("no candidate languages given")
    for name, values in (("targets", targets), ("candidates", candidates)):
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise InputError(f"{name} repeat {', '.join(repeated)}")
    if not isinstance(budget, (int, float)) or isinstance(budget, bool) or not math.isfinite(budget) or budget <= 0:
        raise InputError(f"budget must be a positive number of examples, not {budget!r}")
    step = budget / 10 if step is None else step
    if not isinstance(step, (int, float)) or isinstance(step, bool) or not math.isfinite(step) or step <= 0:
        raise InputError(f"step must be a positive number of examples, not {step!r}")
    if step > budget:
        raise InputError(f"step ({step:g}) is larger than the budget ({budget:g})")
    units = int(math.floor(budget / step + 1e-9))
    if search not in ("auto", "exact", "greedy"):
        raise InputError(f"search must be 'auto', 'exact' or 'greedy', not {search!r}")
    if not 0 < alpha < 1:
        raise InputError(f"alpha must be between 0 and 1, not {alpha!r}")
    base = {str(k): float(v) for k, v in (base or {}).items()}
    negative = [k for k, v in base.items() if not v >= 0]
    if negative:
        raise InputError(f"base examples must be >= 0 ({negative[0]}: {base[negative[0]]:g})")
    predictor = _as_predictor(predictor, which, context, mirror)
    if hasattr(predictor, "prepare"):
        predictor.prepare(targets, [*candidates, *base])
    size = _grid_size(len(candidates), units)
    used = "exact" if search == "exact" or (search == "auto" and size <= max_exact) else "greedy"
    if used == "exact":
        best, count = _exact(predictor, targets, base, candidates, units, step)
    else:
        best, count = _greedy(predictor, targets, base, candidates, units, step)
    allocation = {c: float(u * step) for c, u in zip(candidates, best)}
    planned = _combined(base, allocation)
    scores = np.asarray(predictor.predict(targets, [planned, base]), float)
    gain = predictor.gain(targets, planned, base, alpha)
    per_target = pd.DataFrame({"target": targets, "base_score": scores[1], "planned_score": scores[0],
                               "gain": scores[0] - scores[1]})
    note = gain.get("note", "")
    scale = getattr(predictor, "scale", None)
    if scale is not None and scale.bounded:
        raw = np.asarray(predictor.predict(targets, [planned, base], clip=False), float)
        moved = int((np.isfinite(raw) & (raw != scores)).sum())
        if moved:
            note = (note + "; " if note else "") + (
                f"{moved} of {scores.size} planned or base predictions were past the range {scale.range_text()} "
                f"of {scale.label} and are clipped to it; the gain interval is that of the unclipped linear contrast")
    if np.isnan(scores[1]).any():
        note = (note + "; " if note else "") + "the base configuration has no prediction (no training data?): " \
            "the gain is missing; give the data you have with base"
    return AnnotationPlan(targets=targets, candidates=candidates, budget=float(budget), step=float(step),
                          allocation=allocation, base=base, objective=float(np.mean(scores[0])),
                          base_objective=float(np.mean(scores[1])), gain=float(gain["gain"]),
                          gain_lower=float(gain["lower"]), gain_upper=float(gain["upper"]), alpha=alpha,
                          search=used, n_evaluated=count, interval=gain.get("interval", ""), per_target=per_target,
                          note=note, higher_is_better=_higher_is_better(predictor))
