"""The metric vocabulary: what a score means, built in (:data:`METRICS`, :data:`METRIC_ALIASES`) or
declared in the fit config, and the detection of each built-in metric's scale (0-1 or 0-100) in a
results table (see :mod:`xltstats.results`, *Scores and scales*).

Built-in metrics (:data:`METRICS`) are bounded and higher is better; each may come
on its native scale or the other common one (accuracy 0-1 or 0-100, see :mod:`xltstats.results`).
A fit config declares others under ``metrics:``::

    metrics:
      gh_distance: {range: [0, null], higher_is_better: false, label: "Gromov-Hausdorff distance"}

``range`` is ``[low, high]`` with ``null`` for an unbounded side (default ``[null, null]``),
``higher_is_better`` must be given, ``label`` (default: the name) is what the report writes on
axes and captions.  A declared name that is a built-in metric or one of its aliases is refused
unless its entry says ``override: true``; it then replaces the built-in one (its range only, no
second scale).  Names are compared lower-cased, as the ``metric`` column is.

One place decides what follows from that, for every consumer:

* :func:`metric_options` makes results validation (:func:`xltstats.results.validate_results`)
  accept the declared metrics within the block, with the declared range as the range check;
* :class:`ScoreScale` is the range, direction and label of one fit's scores
  (:meth:`ScoreScale.of` a validated table), recorded in ``model.json`` (``score``) and
  ``manifest.json`` (``score``);
* :meth:`ScoreScale.clip` clips predictions and interval bounds to the range: cross-validation
  predictions, ``predictions.csv``, ``python -m xltstats.predict``, the report's recommendations
  and the planner's predictions.  Clipping a point prediction to a range that holds every
  observed score can only bring it closer to the observation (a projection onto an interval), and
  clipping an interval keeps exactly the in-range values it covered, so coverage is unchanged.
"""
from __future__ import annotations

import contextlib
import contextvars
import math
from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from xltstats.errors import ConfigError, InputError

from ._report import _first, _plain

__all__ = ["METRICS", "METRIC_ALIASES", "Metric", "ScoreScale", "metric_options", "declared_metrics",
           "declared_from_config", "lookup", "DECLARE_HINT"]

#: Metric name -> (low, high) on its native scale.
METRICS: dict[str, tuple[float, float]] = {
    "accuracy": (0.0, 1.0),
    "f1": (0.0, 1.0),
    "macro_f1": (0.0, 1.0),
    "em": (0.0, 1.0),
    "las": (0.0, 1.0),
    "uas": (0.0, 1.0),
    "ndcg": (0.0, 1.0),
    "mrr": (0.0, 1.0),
    "bleu": (0.0, 100.0),
    "chrf": (0.0, 100.0),
    "spbleu": (0.0, 100.0),
}
#: Other spellings accepted in the ``metric`` column (compared lower-cased).
METRIC_ALIASES = {
    "acc": "accuracy",
    "exact_match": "em",
    "f1_macro": "macro_f1",
    "macro-f1": "macro_f1",
    "sp_bleu": "spbleu",
    "sacrebleu": "bleu",
    "chrf2": "chrf",
    "ndcg@k": "ndcg",
}

_UNIT, _PERCENT = "0-1", "0-100"



@dataclass(frozen=True)
class Metric:
    """A metric: its range (None: unbounded side), direction and label."""

    name: str
    low: float | None
    high: float | None
    higher_is_better: bool = True
    label: str | None = None
    declared: bool = False

    @property
    def display(self) -> str:
        return self.label or self.name

    def range_text(self) -> str:
        return f"[{_bound(self.low, '-inf')}, {_bound(self.high, 'inf')}]"


def _bound(value, infinite: str) -> str:
    return infinite if value is None else f"{value:g}"


_DECLARED: contextvars.ContextVar[dict] = contextvars.ContextVar("xltstats_declared_metrics", default={})


@contextlib.contextmanager
def metric_options(declared: Mapping[str, Metric] | None):
    """Within the block, results validation also knows the ``declared`` metrics (name -> :class:`Metric`)."""
    token = _DECLARED.set(dict(declared or {}))
    try:
        yield
    finally:
        _DECLARED.reset(token)


def declared_metrics() -> dict[str, Metric]:
    """The metrics :func:`metric_options` declares in this context (empty outside one)."""
    return _DECLARED.get()


def declared_from_config(metrics: Mapping | None) -> dict[str, Metric]:
    """The :class:`Metric` of each entry of a (validated) ``FitConfig.metrics``."""
    out = {}
    for name, entry in (metrics or {}).items():
        low, high = entry["range"]
        out[name] = Metric(name, low, high, entry["higher_is_better"], entry.get("label"), declared=True)
    return out


def lookup(name: str, declared: Mapping[str, Metric] | None = None) -> Metric | None:
    """The metric ``name`` (declared ones first), on its native scale; None when unknown."""
    declared = declared_metrics() if declared is None else declared
    if name in declared:
        return declared[name]
    if name in METRICS:
        low, high = METRICS[name]
        return Metric(name, low, high, True, None)
    return None


#: A declaration hint for error messages about an unknown metric.
DECLARE_HINT = ("to use another metric, declare it in the fit config: "
                "metrics: {NAME: {range: [low, high], higher_is_better: true/false, label: ...}} "
                "(null for an unbounded side)")


# ---------------------------------------------------------------------- one fit's scores

@dataclass(frozen=True)
class ScoreScale:
    """The range, direction and label of the scores of one fit (several metrics: the smallest range
    holding all of theirs; they must agree on the direction)."""

    metrics: tuple[str, ...]
    low: float | None
    high: float | None
    higher_is_better: bool = True
    label: str = "score"

    @classmethod
    def of(cls, table: pd.DataFrame, declared: Mapping[str, Metric] | None = None, *, source: str = "the data"
           ) -> "ScoreScale":
        """The scale of a validated results table's scores: a declared metric's range; a built-in
        metric's native range on the scale the table has it on (``attrs["score_scales"]`` from
        validation, else 0-1 when every score of the metric is at most 1)."""
        declared = declared_metrics() if declared is None else declared
        if "metric" not in table.columns:
            return cls((), None, None)
        scales = table.attrs.get("score_scales") or {}
        metrics = [m for m in pd.unique(table["metric"].astype(str))]
        specs = []
        for name in metrics:
            spec = lookup(name, declared)
            if spec is None:
                raise InputError(f"unknown metric {name!r}; {DECLARE_HINT}", column="metric")
            if not spec.declared:
                scores = pd.to_numeric(table.loc[table["metric"] == name, "score"], errors="coerce")
                unit = scales.get(name, "0-1" if not (scores > 1).any() else "0-100") == "0-1"
                factor = 1.0 if (spec.high <= 1.0) == unit else _factor(name)
                spec = Metric(name, spec.low * factor, spec.high * factor, True, None)
            specs.append(spec)
        directions = {s.higher_is_better for s in specs}
        if len(directions) > 1:
            worse = sorted(s.name for s in specs if not s.higher_is_better)
            better = sorted(s.name for s in specs if s.higher_is_better)
            raise ConfigError(f"{source} pools metrics of opposite directions (lower is better: {', '.join(worse)}; "
                              f"higher is better: {', '.join(better)}); fit them apart, e.g. with "
                              f"'subset: {{metric: {worse[0]}}}' in the fit config")
        low = None if any(s.low is None for s in specs) else min(s.low for s in specs)
        high = None if any(s.high is None for s in specs) else max(s.high for s in specs)
        label = "/".join(s.display for s in specs) if specs else "score"
        return cls(tuple(metrics), low, high, bool(specs[0].higher_is_better) if specs else True, label)

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict:
        return {"metrics": list(self.metrics), "low": self.low, "high": self.high,
                "higher_is_better": self.higher_is_better, "label": self.label}

    @classmethod
    def from_dict(cls, value, *, file=None, key: str = "score") -> "ScoreScale | None":
        """The scale a ``model.json``/``manifest.json`` records (None when it records none)."""
        if value is None:
            return None

        def fail(message):
            raise InputError(f"key '{key}': {message}", file=file)

        if not isinstance(value, dict):
            fail(f"expected an object with metrics, low, high, higher_is_better and label, got {type(value).__name__}")
        for bound in ("low", "high"):
            v = value.get(bound)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
                fail(f"'{bound}' must be a finite number or null, got {v!r}")
        if value.get("low") is not None and value.get("high") is not None and value["low"] >= value["high"]:
            fail(f"'low' ({value['low']}) must be below 'high' ({value['high']})")
        if not isinstance(value.get("higher_is_better", True), bool):
            fail(f"'higher_is_better' must be true or false, got {value.get('higher_is_better')!r}")
        metrics = value.get("metrics") or []
        label = value.get("label", "score")
        if not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics) or not isinstance(label, str):
            fail("'metrics' must be a list of names and 'label' a string")
        return cls(tuple(metrics), value.get("low"), value.get("high"), value.get("higher_is_better", True), label)

    # ------------------------------------------------------------------ use
    @property
    def bounded(self) -> bool:
        return self.low is not None or self.high is not None

    def range_text(self) -> str:
        return f"[{_bound(self.low, '-inf')}, {_bound(self.high, 'inf')}]"

    def clip_values(self, values) -> np.ndarray:
        """``values`` clipped to the range (NaN stays NaN)."""
        values = np.asarray(values, dtype=float)
        if not self.bounded:
            return values
        return np.clip(values, -np.inf if self.low is None else self.low, np.inf if self.high is None else self.high)

    def clip(self, frame: pd.DataFrame, columns: Iterable[str]) -> tuple[pd.DataFrame, int]:
        """A copy of ``frame`` with ``columns`` (those it has) clipped to the range, and how many
        values changed."""
        columns = [c for c in columns if c in frame.columns]
        if not self.bounded or not columns:
            return frame, 0
        out = frame.copy()
        changed = 0
        for column in columns:
            before = out[column].to_numpy(dtype=float)
            after = self.clip_values(before)
            moved = np.isfinite(before) & (after != before)
            if moved.any():
                changed += int(moved.sum())
                out[column] = after
        return out, changed

    def clip_note(self, what: str, changed: int, total: int) -> str:
        return (f"{what} clipped to the range {self.range_text()} of {self.label}: {changed:,} of {total:,} "
                "values were past it")


# ---------------------------------------------------------------------- scale detection (built-in metrics)


def _check_scales(out: pd.DataFrame, fail, rescale: bool) -> None:
    declared = declared_metrics()
    scores = out["score"].to_numpy()
    metric = out["metric"]
    metric_codes, metric_names = pd.factorize(metric)
    if any(name in declared for name in metric_names):  # their declared range; no second scale
        _check_declared(out, declared, fail)
        mask = ~metric.isin(list(declared)).to_numpy()
        rest = out[mask]
        rest.attrs = {}
        if mask.any():
            _check_scales(rest, _Subset(fail, np.flatnonzero(mask)), rescale)
        scales = {**rest.attrs.get("score_scales", {}),
                  **{name: declared[name].range_text() for name in metric_names if name in declared}}
        out.attrs["score_scales"] = {name: scales[name] for name in pd.unique(metric)}
        if rescale:
            if "score_original" not in out.columns:
                out["score_original"] = out["score"]
            out.loc[mask, "score"] = rest["score"].to_numpy()
            out.attrs["rescaled"] = rest.attrs.get("rescaled", {})
        return
    bounds = np.array([_accepted_range(name) for name in metric_names], dtype=float)
    low, high = bounds[metric_codes, 0], bounds[metric_codes, 1]
    outside = (scores < low) | (scores > high)
    if outside.any():
        position = _first(outside)
        name = metric.iloc[position]
        fail(f"score {scores[position]:g} is outside the range of metric {name!r} "
             f"({_range_text(name)})", position, "score")
    grouped = out.groupby(["metric", "task", "model"], sort=False)["score"]
    group_max = grouped.transform("max")
    _check_lone_percent(out, scores, grouped, fail)
    is_unit = (group_max <= 1.0).to_numpy()
    scales: dict[str, str] = {}
    converted: dict[str, int] = {}
    for name in pd.unique(metric):
        in_metric = (metric == name).to_numpy()
        native_unit = METRICS[name][1] <= 1.0
        unit_rows = in_metric & is_unit
        percent_rows = in_metric & ~is_unit
        if unit_rows.any() and percent_rows.any() and not rescale:
            first_unit, first_percent = _first(unit_rows), _first(percent_rows)
            position = max(first_unit, first_percent)
            other = min(first_unit, first_percent)
            other_row = fail.row(other)
            where = lambda i: f"model {out['model'].iloc[i]!r}, task {out['task'].iloc[i]!r}"
            fail(f"metric {name!r} mixes 0-1 and 0-100 scales: scores for {where(first_unit)} "
                 f"are all <= 1 while {where(first_percent)} has {scores[first_percent]:g}; "
                 f"this row is on the {_UNIT if position == first_unit else _PERCENT} scale, "
                 f"row {other_row} on the {_PERCENT if position == first_unit else _UNIT} "
                 f"scale (convert one, or rescale=True)", position, "score")
        if rescale:
            to_convert = percent_rows if native_unit else unit_rows
            scales[name] = _UNIT if native_unit else _PERCENT
            if to_convert.any():
                converted[name] = int(to_convert.sum())
        else:
            scales[name] = _UNIT if unit_rows.any() else _PERCENT
    if rescale:
        if "score_original" not in out.columns:
            out["score_original"] = out["score"]
        factor = np.ones(len(out))
        native_unit = np.array([METRICS[name][1] <= 1.0 for name in metric_names])[metric_codes]
        factor[native_unit & ~is_unit] = 0.01
        factor[~native_unit & is_unit] = 100.0
        out["score"] = out["score"] * factor
        out.attrs["rescaled"] = converted
    out.attrs["score_scales"] = scales


class _Subset:
    """A reporter for a subset of a table's rows (positions into the subset -> the table's)."""

    def __init__(self, fail, positions: np.ndarray):
        self.fail, self.positions = fail, positions

    def row(self, position: int) -> int:
        return self.fail.row(int(self.positions[position]))

    def __call__(self, message: str, position: int, column: str):
        self.fail(message, int(self.positions[position]), column)


def _check_declared(out: pd.DataFrame, declared: dict, fail) -> None:
    """Scores of declared metrics within their declared range."""
    scores = out["score"].to_numpy()
    for name in pd.unique(out["metric"]):
        spec = declared.get(name)
        if spec is None:
            continue
        rows = (out["metric"] == name).to_numpy()
        low = -np.inf if spec.low is None else spec.low
        high = np.inf if spec.high is None else spec.high
        outside = rows & ((scores < low) | (scores > high))
        if outside.any():
            position = _first(outside)
            fail(f"score {_plain(scores[position])} is outside the range {spec.range_text()} declared for metric "
                 f"{name!r} in the fit config (metrics.{name}.range)", position, "score")


def _check_lone_percent(out: pd.DataFrame, scores: np.ndarray, grouped, fail) -> None:
    """A proportion metric's group (metric, task, model) whose scores are all within 0-1 except a
    few above 1 (one accuracy of 55, or 1.0000001, among 0.4-0.9) is an error naming the row: the
    whole group would otherwise be read as 0-100 and divided by 100 on rescaling."""
    above = pd.Series(scores > 1.0, index=out.index)
    n_above = above.groupby([out["metric"], out["task"], out["model"]], sort=False).transform("sum").to_numpy()
    n = grouped.transform("count").to_numpy()  # scored rows (rows to predict have no score)
    native_unit = out["metric"].map(lambda name: METRICS[name][1] <= 1.0).to_numpy(dtype=bool)
    lone = (native_unit & (scores > 1.0) & (n_above <= np.maximum(1, 0.05 * n))
            & (n - n_above >= np.maximum(2, 2 * n_above)))
    if lone.any():
        position = _first(lone)
        name, task, model = (out[c].iloc[position] for c in ("metric", "task", "model"))
        others = int(n[position] - n_above[position])
        fail(f"score {_plain(scores[position])} is above 1 while the other {others} scores of metric "
             f"{name!r}, task {task!r}, model {model!r} are all within 0-1: one score on the 0-100 "
             "scale (or a rounding error) in a 0-1 group; fix this row", position, "score")


def _factor(name: str) -> float:
    """Factor from a metric's native scale to its other common scale."""
    return 100.0 if METRICS[name][1] <= 1.0 else 0.01


def _accepted_range(name: str) -> tuple[float, float]:
    """Scores a metric may take on either of its two scales."""
    low, high = METRICS[name]
    factor = _factor(name)
    return min(low, low * factor), max(high, high * factor)


def _range_text(name: str) -> str:
    low, high = METRICS[name]
    other = (low * _factor(name), high * _factor(name))
    return f"{low:g}-{high:g}, or {other[0]:g}-{other[1]:g} on the other scale"
