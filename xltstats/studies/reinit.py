"""Drops after re-initialising encoder blocks before fine-tuning (Muller et al. 2021).

Input: a results table whose ``condition`` column holds ``reinit=<blocks>`` rows and their
baseline ``reinit=none`` (the runner writes both).  Each re-init row is paired with the baseline
row of the same model, task, source (set), target, few-shot size and seed:

* ``delta = score − score(reinit=none)``; ``zero_shot`` = target is not a source language
  (in-language rows: the target is the source, or one of the set's languages);
* :func:`drops`: per (model, task, condition, zero_shot) the mean delta with a bootstrap interval
  that resamples targets and seeds (both crossed factors of the design), and the
  ``relative_gap_change`` = mean zero-shot delta − mean in-language delta;
* :func:`reinit_model`: ``delta ~ C(block) * zero_shot + (1|target) + (1|seed)`` with the crossed mixed
  model (``(1|seed)`` is left out, with a note, when there is only one seed).
"""
from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd

from ..errors import InputError

MATCH = ("model", "task", "source", "target", "n_target_examples", "seed")


def paired_deltas(results: pd.DataFrame) -> pd.DataFrame:
    """One row per re-init row with ``delta``, ``block`` (the blocks, e.g. ``0-1``) and ``zero_shot``."""
    if "condition" not in results.columns:
        raise InputError("the table has no 'condition' column: no re-initialisation rows", column="condition")
    cond = results["condition"].fillna("").astype(str)
    re_rows = cond.str.match(r"^(.*;)?reinit=")
    if not re_rows.any():
        raise InputError("no row has a condition reinit=...", column="condition")
    df = results[re_rows].copy()
    df["block"] = df["condition"].str.extract(r"reinit=([^;]+)")[0]
    df["_other"] = df["condition"].str.replace(r"(^|;)reinit=[^;]+", "", regex=True).str.strip(";")
    keys = [c for c in MATCH if c in df.columns]
    if "source_languages" in df.columns:
        df["_sl"] = df["source_languages"].fillna("").astype(str)
        keys.append("_sl")
    keys.append("_other")
    base = df[df["block"] == "none"][keys + ["score"]].rename(columns={"score": "baseline"})
    if base.empty:
        raise InputError("no baseline rows (condition reinit=none) to compare with", column="condition")
    if base.duplicated(keys).any():
        raise InputError("several baseline rows for the same cell", column="condition")
    treated = df[df["block"] != "none"].merge(base, on=keys, how="left")
    lacking = treated["baseline"].isna()
    if lacking.any():
        r = treated[lacking].iloc[0]
        raise InputError(f"no reinit=none row for task {r['task']}, source {r['source']}, target {r['target']}, "
                         f"seed {r['seed']}", column="condition")
    treated["delta"] = treated["score"] - treated["baseline"]

    def members(row):
        sl = row.get("_sl", "")
        return set(json.loads(sl)) if sl else {row["source"]}

    treated["zero_shot"] = [int(t not in members(r)) for t, (_, r) in zip(treated["target"], treated.iterrows())]
    return treated.drop(columns=[c for c in ("_sl", "_other") if c in treated.columns])


def _block_order(block: str) -> str:
    """Sort key: numeric blocks in order (``0-1`` < ``2-3`` < ``10-11``), others after."""
    try:
        return "0" + "-".join(f"{int(x):04d}" for x in str(block).split("-"))
    except ValueError:
        return "1" + str(block)


def drops(results: pd.DataFrame, *, n_boot: int = 2000, alpha: float = 0.05, seed: int = 0) -> pd.DataFrame:
    d = paired_deltas(results)
    rng = np.random.default_rng(seed)
    rows = []
    for (model, task, block), g in d.groupby(["model", "task", "block"], sort=False):
        out = {"model": model, "task": task, "block": block}
        for zs, name in ((0, "in_language"), (1, "zero_shot")):
            h = g[g["zero_shot"] == zs]
            out[f"{name}_n"] = len(h)
            if h.empty:
                out.update({f"{name}_delta": np.nan, f"{name}_ci_low": np.nan, f"{name}_ci_high": np.nan})
                continue
            targets, seeds = np.array(sorted(h["target"].unique())), np.array(sorted(h["seed"].unique()))
            table = h.pivot_table(index="target", columns="seed", values="delta", aggfunc="mean").reindex(
                index=targets, columns=seeds).to_numpy()
            draws = []
            for _ in range(n_boot):
                ti = rng.integers(0, len(targets), len(targets))
                si = rng.integers(0, len(seeds), len(seeds))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    draws.append(np.nanmean(table[np.ix_(ti, si)]))
            draws = np.asarray(draws)
            draws = draws[np.isfinite(draws)]
            out[f"{name}_delta"] = float(h["delta"].mean())
            out[f"{name}_ci_low"], out[f"{name}_ci_high"] = (
                (float(np.quantile(draws, alpha / 2)), float(np.quantile(draws, 1 - alpha / 2)))
                if len(targets) > 1 or len(seeds) > 1 else (np.nan, np.nan))
            out[f"{name}_targets"], out[f"{name}_seeds"] = len(targets), len(seeds)
        out["relative_gap_change"] = out["zero_shot_delta"] - out["in_language_delta"]
        rows.append(out)
    table = pd.DataFrame(rows)
    if len(table):
        table = table.sort_values(["model", "task", "block"], key=lambda s: s.map(_block_order) if s.name == "block"
                                  else s, kind="mergesort").reset_index(drop=True)
    return table


def reinit_model(results: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """``delta ~ C(block) * zero_shot + (1|target) + (1|seed)`` per (model, task); (table, notes)."""
    from ..models import fit_mixed

    d = paired_deltas(results)
    frames, notes = [], []
    for (model, task), g in d.groupby(["model", "task"], sort=True):
        if g["zero_shot"].nunique() < 2:
            notes.append(f"{model}/{task}: needs both in-language and zero-shot rows")
            continue
        blocks = sorted(g["block"].unique(), key=_block_order)
        g = g.assign(block=pd.Categorical(g["block"], categories=blocks))
        random = " + (1|target)" + (" + (1|seed)" if g["seed"].nunique() > 1 else "")
        if g["seed"].nunique() < 2:
            notes.append(f"{model}/{task}: one seed, (1|seed) left out")
        fixed = "C(block) * zero_shot" if len(blocks) > 1 else "zero_shot"
        formula = f"delta ~ {fixed}{random}"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit = fit_mixed(formula, g)
        notes += [f"{model}/{task}: {w.message}" for w in caught]
        t = fit.table()
        t.insert(0, "formula", formula)
        t.insert(0, "task", task)
        t.insert(0, "model", model)
        frames.append(t)
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), sorted(set(notes))
