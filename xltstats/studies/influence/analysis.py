"""Transfer-language influence and negative interference (Faisal & Anastasopoulos).

Input: a results table with a ``condition`` column, as written by the runner's adapter studies or
by :func:`~xltstats.studies.influence.loaders.read_neg_inf`:

* baseline rows (``method=baseline``: the model with the task adapter, no transfer language),
* transfer rows: ``method=mlm`` with ``mlm_steps=k`` (k steps of continued MLM on the source
  language, one row per run in ``seed``), or ``method=adapter`` with ``compose=stack`` (the source
  language's adapter stacked under the task adapter); sets of two or three adapters have
  ``source = "mul"`` and ``compose`` in ``fuse | outavg | paramavg``.

The influence of a row is its score minus the baseline score of the same (model, task, target,
task seed), recomputed from the baseline rows of the table; a table without baseline rows uses its
``baseline_score`` column.

Functions: :func:`influence_rows`, :func:`influence_matrix` (per-cell mean, run-to-run SD, one-sample
t-test against 0, Holm across the cells of a level), :func:`categories` (receivers and donors with
bootstrap intervals, :data:`CATEGORY_RULE`), :func:`influence_model` (crossed mixed model on pair
features), :func:`interference` (sets against the best single member).
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from ...errors import InputError
from .._common import condition_columns, holm

LEVEL_COLUMNS = ["model", "task", "method", "level"]
CATEGORY_RULE = (
    "For each target (receiver), the influences of all transfer languages on it are summarised by "
    "their median (of the per-language mean over runs). A bootstrap interval ({level:.0%}) resamples "
    "transfer languages and, within each, runs. The margin is delta = max({delta_min:g} score "
    "points, 2 x the pooled run-to-run SD). A target is interference-prone when the whole interval "
    "is below -delta, beneficiary when it is above +delta, neutral otherwise. Donors are "
    "categorised the same way over the targets they influence.")


def _task_seed(df: pd.DataFrame) -> pd.Series:
    if "task_seed" in df.columns:
        return df["task_seed"].where(df["task_seed"].notna(), df["seed"])
    return pd.Series(np.ones(len(df), dtype=int), index=df.index)


def influence_rows(results: pd.DataFrame) -> pd.DataFrame:
    """Single-language transfer rows with ``influence`` and a ``level`` (``k=10`` or ``stack``)."""
    df = condition_columns(results)
    if "method" not in df.columns:
        raise InputError("the table has no 'method' (in 'condition' or as a column): it is not an "
                         "influence study table", column="condition")
    df = df.copy()
    df["task_seed"] = _task_seed(df)
    base = df[df["method"] == "baseline"]
    transfer = df[df["method"].isin(["mlm", "adapter"]) & (df["source"] != "mul")].copy()
    if transfer.empty:
        raise InputError("no transfer rows (method=mlm or method=adapter with one language)",
                         column="condition")
    if not base.empty:
        keys = ["model", "task", "target", "task_seed"]
        if "treebank" in df.columns:
            keys.append("treebank")
        means = base.groupby(keys, dropna=False)["score"].mean().rename("baseline_from_table")
        transfer = transfer.join(means, on=keys)
        transfer["baseline_score"] = transfer["baseline_from_table"]
        transfer = transfer.drop(columns="baseline_from_table")
    elif "baseline_score" not in transfer.columns:
        raise InputError("no baseline rows (method=baseline) and no 'baseline_score' column",
                         column="condition")
    transfer["influence"] = transfer["score"] - pd.to_numeric(transfer["baseline_score"])
    transfer["mlm_steps"] = pd.to_numeric(transfer["mlm_steps"], errors="coerce") \
        if "mlm_steps" in transfer.columns else np.nan
    compose = transfer["compose"] if "compose" in transfer.columns else pd.Series(None, index=transfer.index)
    transfer["level"] = [f"k={int(k)}" if m == "mlm" and pd.notna(k) else
                         (c if isinstance(c, str) and c else "stack")
                         for m, k, c in zip(transfer["method"], transfer["mlm_steps"], compose)]
    missing = transfer["influence"].isna()
    transfer.attrs["n_without_baseline"] = int(missing.sum())
    return transfer[~missing].reset_index(drop=True)


def influence_matrix(rows: pd.DataFrame, *, alpha: float = 0.05) -> pd.DataFrame:
    """Per (model, task, method, level, source, target): mean influence, run-to-run SD, runs,
    one-sample t-test against 0 and its Holm-adjusted p-value within the level."""
    from scipy import stats

    cells = []
    for key, group in rows.groupby(LEVEL_COLUMNS + ["source", "target"], sort=True, dropna=False):
        values = group["influence"].to_numpy(dtype=float)
        n = len(values)
        mean = float(values.mean())
        sd = float(values.std(ddof=1)) if n > 1 else np.nan
        if n > 1 and sd > 0:
            t = mean / (sd / math.sqrt(n))
            p = float(2 * stats.t.sf(abs(t), n - 1))
        elif n > 1 and sd == 0:
            t, p = (np.inf if mean != 0 else 0.0), (0.0 if mean != 0 else 1.0)
        else:
            t, p = np.nan, np.nan
        cells.append(dict(zip(LEVEL_COLUMNS + ["source", "target"], key),
                          mean_influence=mean, sd_runs=sd, n_runs=n, t=t, p_value=p,
                          baseline_score=float(group["baseline_score"].mean()),
                          mean_score=float(group["score"].mean())))
    out = pd.DataFrame(cells)
    out["p_holm"] = np.nan
    for _, index in out.groupby(LEVEL_COLUMNS, dropna=False).groups.items():
        out.loc[index, "p_holm"] = holm(out.loc[index, "p_value"].to_numpy())
    out["significant"] = out["p_holm"] < alpha
    out["note"] = np.where(out["n_runs"] < 2, "one run: no test", "")
    return out


def _scale_point(rows: pd.DataFrame) -> float:
    """One score point on the table's scale (0.01 for 0-1 scores, 1 for 0-100)."""
    return 0.01 if float(rows["score"].abs().max()) <= 1.0 else 1.0


def categories(rows: pd.DataFrame, *, delta_points: float = 1.0, level: float = 0.95,
               n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Receiver (per target) and donor (per source) categories with bootstrap intervals.

    The rule is :data:`CATEGORY_RULE` (also in the ``rule`` column of the result).
    """
    rng = np.random.default_rng(seed)
    point = _scale_point(rows)
    out = []
    for key, group in rows.groupby(LEVEL_COLUMNS, sort=True, dropna=False):
        cell_var = group.groupby(["source", "target"])["influence"].var(ddof=1).dropna()
        pooled_sd = float(np.sqrt(cell_var.mean())) if len(cell_var) else np.nan
        delta = max(delta_points * point, 2 * pooled_sd if np.isfinite(pooled_sd) else 0.0)
        for role, unit, other in (("receiver", "target", "source"), ("donor", "source", "target")):
            for name, sub in group.groupby(unit, sort=True):
                runs = [g["influence"].to_numpy(float) for _, g in sub.groupby(other, sort=True)]
                means = np.array([r.mean() for r in runs])
                estimate = float(np.median(means))
                draws = np.empty(n_boot)
                for b in range(n_boot):
                    pick = rng.integers(0, len(runs), len(runs))
                    draws[b] = np.median([runs[i][rng.integers(0, len(runs[i]), len(runs[i]))].mean()
                                          for i in pick])
                low, high = np.quantile(draws, [(1 - level) / 2, 1 - (1 - level) / 2])
                category = ("interference-prone" if role == "receiver" else "harmful") if high < -delta \
                    else ("beneficiary" if role == "receiver" else "helpful") if low > delta else "neutral"
                out.append(dict(zip(LEVEL_COLUMNS, key), role=role, language=name,
                                median_influence=estimate, ci_low=float(low), ci_high=float(high),
                                delta=delta, n_partners=len(runs),
                                share_positive=float((means > 0).mean()), category=category))
    frame = pd.DataFrame(out)
    frame.attrs["rule"] = CATEGORY_RULE.format(level=level, delta_min=delta_points)
    return frame


def pair_features(rows: pd.DataFrame, features, *, pretraining: str | None = None,
                  on_unknown: str = "nan") -> pd.DataFrame:
    """Pair features for the (source, target) pairs of ``rows``: columns already in ``rows`` are
    used as given, the others built with :func:`xltstats.features.build_pair_features`;
    ``source_in_pretraining`` / ``target_in_pretraining`` from the pre-training table of
    ``pretraining`` (``xlm-r`` or ``mt5``; mBERT has none in xltstats)."""
    pairs = rows[["source", "target"]].drop_duplicates().reset_index(drop=True)
    have = [f for f in features if f in rows.columns]
    out = pairs.merge(rows.groupby(["source", "target"])[have].first().reset_index(), how="left") \
        if have else pairs
    need = [f for f in features if f not in have and f not in ("source_in_pretraining",
                                                                "target_in_pretraining")]
    if need:
        from ...features import build_pair_features

        built = build_pair_features(list(pairs.itertuples(index=False, name=None)), features=need,
                                    model=pretraining or "xlm-r", on_unknown=on_unknown)
        out = out.merge(built[["source", "target"] + need], on=["source", "target"], how="left")
    for side in ("source", "target"):
        column = f"{side}_in_pretraining"
        if column in features and column not in have:
            if pretraining is None:
                raise InputError(f"{column} needs a pre-training table: give pretraining='xlm-r' or "
                                 "'mt5' (mBERT's Wikipedia languages are not tabulated in xltstats), "
                                 f"or a {column} column in the table", column=column)
            from ...features.data_sizes import in_pretraining

            out[column] = in_pretraining(out[side].tolist(), pretraining)
    return out


def influence_model(rows: pd.DataFrame, features, *, pretraining: str | None = None,
                    by_level: bool = True, alpha: float = 0.05) -> tuple[pd.DataFrame, list[str]]:
    """``influence ~ features [+ log(mlm_steps)] + (1|source) + (1|target)`` on per-cell means, per
    (model, task, method) (pooling the k levels of method mlm with log k as a covariate).

    Returns (table of fixed effects and variance components, notes). Constant feature columns are
    dropped with a note; ``target_in_pretraining``'s coefficient is the seen-vs-unseen contrast
    (seen minus unseen; the ``contrast`` rows give unseen minus seen with its interval).
    """
    from ...models import fit_mixed

    cells = rows.groupby(LEVEL_COLUMNS + ["source", "target"], dropna=False).agg(
        influence=("influence", "mean"), mlm_steps=("mlm_steps", "first")).reset_index()
    feats = pair_features(rows, list(features), pretraining=pretraining)
    cells = cells.merge(feats, on=["source", "target"], how="left")
    tables, notes = [], []
    for key, group in cells.groupby(["model", "task", "method"], sort=True):
        group = group.copy()
        used = []
        for f in features:
            values = pd.to_numeric(group[f], errors="coerce")
            if values.notna().sum() < 3 or values.nunique(dropna=True) < 2:
                notes.append(f"{'/'.join(map(str, key))}: {f} dropped (constant or missing)")
                continue
            group[f] = values
            used.append(f)
        if key[2] == "mlm" and pd.to_numeric(group["mlm_steps"], errors="coerce").nunique() > 1:
            group["log_mlm_steps"] = np.log(pd.to_numeric(group["mlm_steps"]))
            used.append("log_mlm_steps")
        formula = "influence ~ " + (" + ".join(used) if used else "1") + " + (1|source) + (1|target)"
        complete = group.dropna(subset=used + ["influence"])
        if complete["source"].nunique() < 3 or complete["target"].nunique() < 3:
            notes.append(f"{'/'.join(map(str, key))}: fewer than 3 sources or targets; no mixed model")
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit = fit_mixed(formula, complete)
        notes += [f"{'/'.join(map(str, key))}: {w.message}" for w in caught]
        table = fit.table(alpha)
        table.insert(0, "formula", formula)
        for position, (name, value) in enumerate(zip(("model", "task", "method"), key)):
            table.insert(position, name, value)
        table["p_value"] = [float(fit.pvalues.get(t, np.nan)) if e == "fixed" else np.nan
                            for e, t in zip(table["effect"], table["term"])]
        table["n_cells"] = int(fit.nobs)
        if "target_in_pretraining" in used:
            row = table[(table["effect"] == "fixed") & (table["term"] == "target_in_pretraining")].iloc[0]
            contrast = row.copy()
            contrast["effect"] = "contrast"
            contrast["term"] = "unseen_minus_seen_target"
            contrast["estimate"] = -row["estimate"]
            contrast["conf_low"], contrast["conf_high"] = -row["conf_high"], -row["conf_low"]
            contrast["statistic"] = -row["statistic"]
            table = pd.concat([table, contrast.to_frame().T], ignore_index=True)
        tables.append(table)
    return (pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()), notes


def interference(results: pd.DataFrame) -> pd.DataFrame:
    """Sets of two or three language adapters against their members.

    Per (model, task, compose, set, target): score of the set, the best single member's stacked
    score, ``delta_vs_best`` (the set minus the best member; negative = interference) and
    ``delta_vs_baseline``.
    """
    df = condition_columns(results)
    if "method" not in df.columns:
        return pd.DataFrame()
    df = df.copy()
    df["task_seed"] = _task_seed(df)
    sets = df[(df["method"] == "adapter") & (df["source"] == "mul")]
    if sets.empty or "source_languages" not in sets.columns:
        return pd.DataFrame()
    singles = df[(df["method"] == "adapter") & (df["source"] != "mul")]
    single = singles.groupby(["model", "task", "task_seed", "source", "target"])["score"].mean()
    base = df[df["method"] == "baseline"].groupby(["model", "task", "task_seed", "target"])["score"].mean()
    out = []
    from ...results import parse_source_languages  # the one parser (a neg_inf set's counts are 0)

    for label, r in zip(sets.index, sets.itertuples(index=False)):
        row = int(label) + 1 if isinstance(label, (int, np.integer)) else None
        members = list(parse_source_languages(r.source_languages, row=row))
        scores = [single.get((r.model, r.task, r.task_seed, m, r.target), np.nan) for m in members]
        best = np.nanmax(scores) if np.isfinite(scores).any() else np.nan
        b = base.get((r.model, r.task, r.task_seed, r.target), np.nan)
        out.append({"model": r.model, "task": r.task, "compose": getattr(r, "compose", None),
                    "set": "+".join(members), "n_languages": len(members), "target": r.target,
                    "task_seed": r.task_seed, "score": r.score, "best_member_score": best,
                    "delta_vs_best": r.score - best, "baseline_score": b,
                    "delta_vs_baseline": r.score - b})
    return pd.DataFrame(out)


def adapter_similarity(folders: dict) -> pd.DataFrame:
    """1 - cosine and L2 distance between the flattened weights of language adapters (neg_inf's
    ``scripts/test.py``), for every ordered pair: a pair feature (``adapter_cosine_distance``).

    ``folders``: language -> adapter folder (runner checkpoints or AdapterHub checkpoints).
    Imports torch.
    """
    from ...experiments.adapters import read_adapter, weight_similarity

    states = {lang: read_adapter(path) for lang, path in sorted(folders.items())}
    rows = []
    for a in states:
        for b in states:
            if a == b:
                continue
            sim = weight_similarity(states[a], states[b])
            rows.append({"source": a, "target": b, "adapter_cosine_distance": sim["cosine_distance"],
                         "adapter_l2_distance": sim["l2_distance"]})
    return pd.DataFrame(rows)
