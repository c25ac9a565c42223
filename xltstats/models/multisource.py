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
    """A ``source_languages`` cell as {language: count} over the languages with examples.

    Parsed by :func:`xltstats.results.parse_source_languages` (the one parser); languages given 0
    examples carry no weight and are left out.
    """
    from xltstats.results import parse_source_languages as parse

    return {lang: float(count) for lang, count in parse(value, row=row, column=column).items() if count > 0}


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
    table = pair_features.drop_duplicates([source, target])[[source, target, *features]].copy()
    table[source] = table[source].astype(str)
    table[target] = table[target].astype(str)
    # long format: one row per (result row, source language, count); each distinct JSON parsed once
    parsed: dict = {}
    row_ids, langs, counts = [], [], []
    multi = results[source_languages] if source_languages in results.columns else pd.Series([None] * len(results))
    singles_n = results[n_source] if n_source in results.columns else pd.Series([None] * len(results))
    for i, (cell, src, n) in enumerate(zip(multi.to_numpy(), results[source].to_numpy(), singles_n.to_numpy())):
        if cell is not None and not (isinstance(cell, float) and math.isnan(cell)) and cell is not pd.NA:
            key = cell if isinstance(cell, str) else json.dumps(cell, sort_keys=True)
            if key not in parsed:
                parsed[key] = parse_source_languages(cell, row=i + 1, column=source_languages)
            items = parsed[key].items()
        else:
            count = float(n) if n is not None and not pd.isna(n) and float(n) > 0 else 1.0
            items = [(str(src), count)]
        for lang, count in items:
            row_ids.append(i)
            langs.append(lang)
            counts.append(count)
    long = pd.DataFrame({"_row": np.asarray(row_ids, dtype=np.int64), source: langs, "_w": np.asarray(counts, float)})
    long[target] = results[target].astype(str).to_numpy()[long["_row"].to_numpy()] if len(long) else []
    long = long.merge(table, on=[source, target], how="left", sort=False)
    n_rows = len(results)
    n_sources = np.bincount(long["_row"], minlength=n_rows).astype(int)
    totals = np.bincount(long["_row"], weights=long["_w"], minlength=n_rows)
    share = long["_w"] / totals[long["_row"]]
    entropy = np.bincount(long["_row"], weights=-(share * np.log(share)), minlength=n_rows) + 0.0
    totals = np.where(n_sources > 0, totals, np.nan)
    entropy = np.where(n_sources > 0, entropy, np.nan)
    n_feat = len(features)
    mean = np.full((n_rows, n_feat), np.nan)
    low = np.full_like(mean, np.nan)
    high = np.full_like(mean, np.nan)
    for j, f in enumerate(features):
        values = long[f].to_numpy(float)
        known = ~np.isnan(values)
        w = np.where(known, long["_w"].to_numpy(), 0.0)
        wsum = np.bincount(long["_row"], weights=w, minlength=n_rows)
        wval = np.bincount(long["_row"], weights=np.where(known, values, 0.0) * w, minlength=n_rows)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean[:, j] = np.where(wsum > 0, wval / wsum, np.nan)
        grouped = pd.Series(values).groupby(long["_row"].to_numpy())
        low[:, j] = grouped.min().reindex(range(n_rows)).to_numpy(float)
        high[:, j] = grouped.max().reindex(range(n_rows)).to_numpy(float)
    out = results.copy()
    for j, f in enumerate(features):
        out[f] = mean[:, j]
        out[f"{f}_min"] = low[:, j]
        out[f"{f}_max"] = high[:, j]
    out["n_sources"] = n_sources
    out["total_source_examples"] = totals
    out["source_entropy"] = entropy
    return out
