"""Pair features for multi-source training runs.

A multi-source run (``source == "mul"``, ``source_languages = {"eng": 1000, "deu": 500}``) has several
sources per target. :func:`aggregate_multisource` turns the per-pair features of each (source, target)
into one row per run so that multi-source runs can be modelled with the same features as single-source
runs. For each pair feature ``f``:

* ``f``: the mean over the sources weighted by their number of training examples (weights = count /
  total). Sources whose feature is missing are left out of that feature's mean and the remaining weights
  are renormalised; ``f`` is missing only when it is missing for every source. Keeping the plain name
  means a model fitted on single-source rows applies unchanged (for one source the mean is the feature).
* ``f_min`` and ``f_max``: over the sources with a known value. For distances the ``_min`` column is the
  nearest source; for similarities (``lexical_overlap``) the ``_max`` column is.

and per run: ``n_sources`` (sources with a positive count), ``total_source_examples`` and
``source_entropy`` (Shannon entropy, in nats, of the count weights; 0 for a single source).
Sources with a count of 0 do not count. Single-source rows are treated as ``{source: n_source_examples}``
(weight 1 when the count is unknown).
"""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from xltstats.errors import InputError

__all__ = ["aggregate_multisource", "parse_source_languages"]


def parse_source_languages(value, *, row=None, column="source_languages") -> dict[str, float]:
    """Parse a ``source_languages`` cell (JSON text or dict) into {language: positive count}."""
    if isinstance(value, dict):
        parsed = value
    else:
        try:
            parsed = json.loads(value)
        except (TypeError, ValueError) as exc:
            raise InputError(f"not a JSON object of language -> count: {value!r} ({exc})", row=row, column=column) from None
    if not isinstance(parsed, dict):
        raise InputError(f"expected a JSON object of language -> count, got {value!r}", row=row, column=column)
    out = {}
    for lang, count in parsed.items():
        try:
            count = float(count)
        except (TypeError, ValueError):
            raise InputError(f"count for {lang!r} is not a number: {count!r}", row=row, column=column) from None
        if count < 0 or not math.isfinite(count):
            raise InputError(f"count for {lang!r} must be a non-negative number, got {count}", row=row, column=column)
        if count > 0:
            out[str(lang)] = count
    return out


def aggregate_multisource(results: pd.DataFrame, pair_features: pd.DataFrame, features=None,
                          source: str = "source", target: str = "target",
                          source_languages: str = "source_languages",
                          n_source: str = "n_source_examples") -> pd.DataFrame:
    """Return ``results`` with count-weighted pair features (see the module docstring).

    ``pair_features`` has ``source``, ``target`` and one column per feature; ``features`` picks the
    feature columns (default: every numeric column other than source/target).
    """
    for col in (source, target):
        if col not in results.columns:
            raise InputError(f"results lack column {col!r}", column=col)
        if col not in pair_features.columns:
            raise InputError(f"pair features lack column {col!r}", column=col)
    if features is None:
        features = [c for c in pair_features.columns if c not in (source, target)
                    and pd.api.types.is_numeric_dtype(pair_features[c])]
    missing = [f for f in features if f not in pair_features.columns]
    if missing:
        raise InputError(f"pair features lack column(s) {missing}", column=missing[0])
    clash = [f for f in features if f in results.columns]
    if clash:
        raise InputError(f"results already have feature column(s) {clash}; drop them first", column=clash[0])
    table = pair_features.drop_duplicates([source, target]).set_index([source, target])[features].astype(float)
    lookup = {key: row for key, row in zip(table.index, table.to_numpy())}
    n_feat = len(features)
    mean = np.full((len(results), n_feat), np.nan)
    low = np.full_like(mean, np.nan)
    high = np.full_like(mean, np.nan)
    n_sources = np.zeros(len(results), dtype=int)
    totals = np.full(len(results), np.nan)
    entropy = np.full(len(results), np.nan)
    has_multi = source_languages in results.columns
    for i in range(len(results)):
        row = results.iloc[i]
        cell = row[source_languages] if has_multi else None
        if has_multi and cell is not None and not (isinstance(cell, float) and math.isnan(cell)) and cell is not pd.NA:
            counts = parse_source_languages(cell, row=i + 1, column=source_languages)
        else:
            count = row[n_source] if n_source in results.columns else None
            count = float(count) if count is not None and not pd.isna(count) and float(count) > 0 else 1.0
            counts = {str(row[source]): count}
        if not counts:
            continue
        langs = list(counts)
        weights = np.array([counts[lang] for lang in langs], float)
        n_sources[i] = len(langs)
        totals[i] = weights.sum()
        share = weights / weights.sum()
        entropy[i] = float(-(share * np.log(share)).sum()) + 0.0
        tgt = str(row[target])
        values = np.vstack([lookup.get((lang, tgt), np.full(n_feat, np.nan)) for lang in langs])
        known = ~np.isnan(values)
        w = np.where(known, weights[:, None], 0.0)
        wsum = w.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean[i] = np.where(wsum > 0, np.nansum(values * w, axis=0) / wsum, np.nan)
        any_known = known.any(axis=0)
        if any_known.any():
            low[i, any_known] = np.nanmin(values[:, any_known], axis=0)
            high[i, any_known] = np.nanmax(values[:, any_known], axis=0)
    out = results.copy()
    for j, f in enumerate(features):
        out[f] = mean[:, j]
        out[f"{f}_min"] = low[:, j]
        out[f"{f}_max"] = high[:, j]
    out["n_sources"] = n_sources
    out["total_source_examples"] = totals
    out["source_entropy"] = entropy
    return out
