"""The metric vocabulary (:data:`METRICS`, :data:`METRIC_ALIASES`) and the detection of each
metric's scale (0-1 or 0-100) in a results table.  See :mod:`xltstats.results`, *Scores and scales*.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ._report import _first, _plain

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


def _check_scales(out: pd.DataFrame, fail, rescale: bool) -> None:
    scores = out["score"].to_numpy()
    metric = out["metric"]
    metric_codes, metric_names = pd.factorize(metric)
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
