"""Which source sets transfer best, and do the heuristics find them? (Lim et al. 2024)

Works on any results table of multi-source runs (``source = "mul"`` + ``source_languages``; our
runner's, SumEval's, a user's): a *candidate* is one training configuration, identified by its
``source_languages`` object (single-source rows count as one-language sets), and its *set* is the
languages with a positive count.

* :func:`set_scores`: per group (model, task, ...) and candidate, the mean score over targets and
  seeds, its rank among the candidates of the same set size (1 = best), and a bootstrap interval of
  the rank (targets and seeds resampled with replacement, every candidate re-ranked in each draw).
  Only targets evaluated for every candidate of the pool count, so the means compare like with like;
  ``targets="zero-shot"`` further keeps only targets in none of the pool's sets.
* :func:`select`: per heuristic, the candidate(s) with the largest (for diversity also the
  smallest) heuristic value, their rank with the bootstrap interval, and the permutation p-value:
  the share of the pool's candidates that score at least as well as the chosen one (exact over the
  pool: the chance that a set drawn uniformly at random from the pool does as well; 1/N is the
  smallest possible).  Ties on the heuristic value are reported as one choice whose rank and
  p-value are the averages over the tied candidates (``n_tied``).
* :func:`set_size_model`: ``score ~ set_size + I(set_size ** 2) + (1|target) + (1|set)`` with the
  crossed mixed model (REML), the vertex ``-b1 / (2 b2)`` with a delta-method interval.
* :func:`diversity_model`: ``score ~ diversity_z + <distance> + <distance>_min [+ set_size] +
  (1|target) + (1|set)``: diversity of the set against its count-weighted mean (and nearest) URIEL
  distance to the target (:func:`xltstats.models.aggregate_multisource`).
"""
from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd

from ...errors import InputError
from .heuristics import DIVERSITY_KINDS, score_sets

GROUP_COLUMNS = ("model", "task")


def _candidates(results: pd.DataFrame) -> pd.DataFrame:
    """``candidate`` (JSON of positive counts) and ``set`` (language names joined by +) per row."""
    from ...models.multisource import parse_source_languages
    from .sets import set_name

    out = results.copy()
    cells = out["source_languages"] if "source_languages" in out.columns else pd.Series(None, index=out.index)
    cand, names, sizes = [], [], []
    cache: dict = {}
    for i, (cell, src, n) in enumerate(zip(cells.to_numpy(), out["source"].to_numpy(),
                                           out.get("n_source_examples", pd.Series(np.nan, index=out.index)).to_numpy())):
        if cell is None or (isinstance(cell, float) and math.isnan(cell)):
            if src == "mul":
                raise InputError("multi-source row without source_languages", row=i + 1, column="source_languages")
            counts = {str(src): float(n) if n == n and n is not None else 1.0}
        else:
            key = cell if isinstance(cell, str) else json.dumps(cell, sort_keys=True)
            if key not in cache:
                cache[key] = parse_source_languages(cell, row=i + 1)
            counts = cache[key]
        if not counts:
            raise InputError("source set is empty (every count is 0)", row=i + 1, column="source_languages")
        cand.append(json.dumps({k: int(v) if float(v).is_integer() else v for k, v in sorted(counts.items())}))
        names.append(set_name(counts))
        sizes.append(len(counts))
    out["candidate"], out["set"], out["set_size"] = cand, names, sizes
    return out


def _groups(df: pd.DataFrame, by) -> list[tuple[tuple, pd.DataFrame]]:
    by = [c for c in by if c in df.columns]
    if not by:
        return [((), df)]
    return [(k if isinstance(k, tuple) else (k,), g) for k, g in df.groupby(by, sort=True, dropna=False)]


def _pool_array(pool: pd.DataFrame, targets: str):
    """(candidates, targets, seeds) score array over the targets common to all candidates."""
    cands = sorted(pool["candidate"].unique())
    sets = {c: set(json.loads(c)) for c in cands}
    per = pool.groupby("candidate")["target"].agg(lambda t: set(t))
    common = set.intersection(*[per[c] for c in cands])
    if targets == "zero-shot":
        members = set().union(*sets.values())
        common -= members
    common = sorted(common)
    seeds = sorted(pool["seed"].unique())
    A = np.full((len(cands), len(common), len(seeds)), np.nan)
    if common:
        sub = pool[pool["target"].isin(common)]
        mean = sub.groupby(["candidate", "target", "seed"])["score"].mean()
        ci = {c: i for i, c in enumerate(cands)}
        ti = {t: i for i, t in enumerate(common)}
        si = {s: i for i, s in enumerate(seeds)}
        for (c, t, s), v in mean.items():
            A[ci[c], ti[t], si[s]] = v
    return cands, common, seeds, A


def _ranks(means: np.ndarray) -> np.ndarray:
    """Rank 1 = best; ties share the best rank (1 + number strictly better)."""
    return 1 + (means[None, :] > means[:, None]).sum(axis=1)


def _means(A: np.ndarray, t_idx=None, s_idx=None) -> np.ndarray:
    B = A if t_idx is None else A[:, t_idx, :]
    B = B if s_idx is None else B[:, :, s_idx]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(B.reshape(B.shape[0], -1), axis=1)


def _draws(A: np.ndarray, n_boot: int, seed: int):
    rng = np.random.default_rng(seed)
    _, nt, ns = A.shape
    for _ in range(n_boot):
        yield _means(A, rng.integers(0, nt, nt), rng.integers(0, ns, ns) if ns > 1 else None)


def set_scores(results: pd.DataFrame, *, by=GROUP_COLUMNS, targets: str = "common", n_boot: int = 1000,
               alpha: float = 0.05, seed: int = 0, min_sets: int = 2) -> pd.DataFrame:
    """Mean score, rank and rank interval of every candidate within its (group, set size) pool."""
    if targets not in ("common", "zero-shot"):
        raise InputError(f"targets must be 'common' or 'zero-shot', got {targets!r}")
    df = _candidates(results)
    rows = []
    for key, group in _groups(df, by):
        for size, pool in group.groupby("set_size", sort=True):
            cands, common, seeds, A = _pool_array(pool, targets)
            if len(cands) < min_sets or not common:
                continue
            means = _means(A)
            ranks = _ranks(means)
            boot = np.array([_ranks(m) for m in _draws(A, n_boot, seed)]) if n_boot else np.empty((0, len(cands)))
            names = pool.drop_duplicates("candidate").set_index("candidate")["set"]
            for i, c in enumerate(cands):
                lo, hi = (np.quantile(boot[:, i], [alpha / 2, 1 - alpha / 2]) if len(boot) else (np.nan, np.nan))
                rows.append({**dict(zip([b for b in by if b in df.columns], key)), "set_size": int(size),
                             "set": names[c], "candidate": c, "mean_score": means[i], "rank": int(ranks[i]),
                             "rank_ci_low": float(lo), "rank_ci_high": float(hi), "n_sets": len(cands),
                             "n_targets": len(common), "n_seeds": len(seeds)})
    return pd.DataFrame(rows)


def select(results: pd.DataFrame, *, by=GROUP_COLUMNS, heuristics=None, targets: str = "common",
           n_boot: int = 1000, alpha: float = 0.05, seed: int = 0, model: str | None = None,
           vocabularies=None, lm_vectors=None, min_sets: int = 3, missing: str = "error") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each heuristic's choice per (group, set size) pool; returns (selection, per-set table).

    ``model``: pre-training table for ``pretraining_size`` (default: from the table's model names).
    """
    df = _candidates(results)
    if model is None:
        from ...features.data_sizes import pretraining_model_for

        model = pretraining_model_for(df["model"].unique()) if "model" in df.columns else "xlm-r"
    sets_all = sorted(df["set"].unique())
    langs = sorted({lang for s in sets_all for lang in s.split("+")})
    # every heuristic's inputs are checked for every language here, before anything is ranked
    values = score_sets([s.split("+") for s in sets_all], langs, heuristics=heuristics, model=model,
                        vocabularies=vocabularies, lm_vectors=lm_vectors, missing=missing).set_index("set")
    hcols = [c for c in values.columns if c != "set_size"]
    selection, per_set = [], []
    by_used = [b for b in by if b in df.columns]
    for key, group in _groups(df, by):
        for size, pool in group.groupby("set_size", sort=True):
            cands, common, seeds, A = _pool_array(pool, targets)
            if len(cands) < min_sets or not common:
                continue
            names = pool.drop_duplicates("candidate").set_index("candidate")["set"]
            means = _means(A)
            ranks = _ranks(means)
            boot = np.array([_ranks(m) for m in _draws(A, n_boot, seed)]) if n_boot else None
            base = {**dict(zip(by_used, key)), "set_size": int(size)}
            best = int(np.argmax(means))
            for i, c in enumerate(cands):
                lo, hi = (np.quantile(boot[:, i], [alpha / 2, 1 - alpha / 2]) if boot is not None else (np.nan,) * 2)
                per_set.append({**base, "set": names[c], "candidate": c, "mean_score": means[i],
                                "rank": int(ranks[i]), "rank_ci_low": float(lo), "rank_ci_high": float(hi),
                                **{h: values.at[names[c], h] for h in hcols}})
            n = len(cands)
            for h in hcols:
                directions = ("max", "min") if h.startswith("diversity_") else ("max",)
                hv = np.array([values.at[names[c], h] for c in cands], dtype=float)
                scored = np.isfinite(hv)
                if not scored.any():
                    selection.append({**base, "heuristic": h, "direction": directions[0], "n_sets": n,
                                      "n_unscored": n, "targets": targets,
                                      "note": "no set of this pool has the heuristic's inputs"})
                    continue
                for direction in directions:
                    target_value = np.nanmax(hv) if direction == "max" else np.nanmin(hv)
                    chosen = np.flatnonzero(hv == target_value)
                    if boot is not None:
                        rank_draws = boot[:, chosen].mean(axis=1)
                        lo, hi = np.quantile(rank_draws, [alpha / 2, 1 - alpha / 2])
                    else:
                        lo = hi = np.nan
                    p = float(np.mean([(means >= means[i]).sum() / n for i in chosen]))
                    selection.append({**base, "heuristic": h, "direction": direction,
                                      "chosen_set": "; ".join(sorted({names[cands[i]] for i in chosen})),
                                      "heuristic_value": float(target_value), "n_tied": len(chosen),
                                      "mean_score": float(means[chosen].mean()),
                                      "rank": float(ranks[chosen].mean()), "rank_ci_low": float(lo),
                                      "rank_ci_high": float(hi), "p_value": p, "n_sets": n,
                                      "n_unscored": int((~scored).sum()),
                                      "expected_rank_random": (n + 1) / 2,
                                      "best_set": names[cands[best]], "best_score": float(means[best]),
                                      "n_targets": len(common), "n_seeds": len(seeds), "targets": targets})
    return pd.DataFrame(selection), pd.DataFrame(per_set)


def _fit(formula: str, data: pd.DataFrame):
    from ...models import fit_mixed

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = fit_mixed(formula, data)
    notes = sorted({str(w.message) for w in caught})
    return fit, notes


def set_size_model(results: pd.DataFrame, *, by=GROUP_COLUMNS, alpha: float = 0.05) -> pd.DataFrame:
    """``score ~ set_size + I(set_size ** 2) + (1|target) + (1|set)`` per group (module docstring)."""
    from scipy import stats

    df = _candidates(results)
    rows = []
    formula = "score ~ set_size + I(set_size ** 2) + (1|target) + (1|set)"
    z = stats.norm.ppf(1 - alpha / 2)
    for key, group in _groups(df, by):
        base = dict(zip([b for b in by if b in df.columns], key))
        sizes = sorted(group["set_size"].unique())
        if len(sizes) < 3:
            rows.append({**base, "formula": formula, "note": f"needs at least 3 set sizes, has {len(sizes)}"})
            continue
        fit, notes = _fit(formula, group)
        params, cov = fit.params.to_numpy(), fit.cov_params().to_numpy()
        b1, b2 = params[1], params[2]
        vertex = -b1 / (2 * b2) if b2 != 0 else np.nan
        g = np.array([0.0, -1.0 / (2 * b2), b1 / (2 * b2 ** 2)]) if b2 != 0 else np.full(3, np.nan)
        se_v = float(np.sqrt(g @ cov @ g))
        ci = fit.conf_int(alpha)
        rows.append({**base, "formula": formula, "n_rows": int(fit.nobs), "n_sets": group["set"].nunique(),
                     "set_sizes": ",".join(map(str, sizes)),
                     "b_set_size": b1, "b_set_size_ci_low": ci["lower"].iloc[1], "b_set_size_ci_high": ci["upper"].iloc[1],
                     "b_set_size_sq": b2, "b_set_size_sq_ci_low": ci["lower"].iloc[2],
                     "b_set_size_sq_ci_high": ci["upper"].iloc[2], "p_set_size_sq": float(fit.pvalues.iloc[2]),
                     "vertex": vertex, "vertex_ci_low": vertex - z * se_v, "vertex_ci_high": vertex + z * se_v,
                     "inverted_u": bool(ci["upper"].iloc[2] < 0 and sizes[0] < vertex < sizes[-1]),
                     "note": "; ".join(notes)})
    return pd.DataFrame(rows)


def diversity_model(results: pd.DataFrame, *, by=GROUP_COLUMNS, kind: str = "syntax",
                    distance: str | None = None, pair_features: pd.DataFrame | None = None) -> pd.DataFrame:
    """Diversity against relatedness to the target, per group (module docstring); sets of >= 2."""
    from ...models import aggregate_multisource
    from .heuristics import pairwise_diversity, uriel_vectors

    if kind not in DIVERSITY_KINDS:
        raise InputError(f"unknown diversity kind {kind!r}; known: {', '.join(DIVERSITY_KINDS)}")
    distance = distance or DIVERSITY_KINDS[kind]
    df = _candidates(results)
    df = df[df["set_size"] >= 2].copy()
    if df.empty:
        return pd.DataFrame([{"note": "no sets with two or more languages"}])
    langs = sorted({lang for s in df["set"].unique() for lang in s.split("+")} | set(df["target"]))
    vecs = uriel_vectors(sorted({lang for s in df["set"].unique() for lang in s.split("+")}), kind)
    div = {s: pairwise_diversity(vecs, s.split("+")) for s in df["set"].unique()}
    df["diversity"] = df["set"].map(div)
    if pair_features is None:
        from ...features import build_pair_features

        pair_features = build_pair_features([(a, b) for a in langs for b in langs], features=[distance],
                                            on_unknown="nan")
    agg = aggregate_multisource(df.drop(columns=[c for c in df.columns if c.startswith(distance)]),
                                pair_features[["source", "target", distance]], features=[distance])
    rows = []
    for key, group in _groups(agg, by):
        base = dict(zip([b for b in by if b in agg.columns], key))
        group = group.dropna(subset=["score", "diversity", distance, f"{distance}_min"]).copy()
        if group["set"].nunique() < 5:
            rows.append({**base, "note": f"needs at least 5 sets of >= 2 languages, has {group['set'].nunique()}"})
            continue
        sd = group["diversity"].std()
        group["diversity_z"] = (group["diversity"] - group["diversity"].mean()) / (sd if sd > 0 else 1.0)
        extra = " + set_size" if group["set_size"].nunique() > 1 else ""
        formula = f"score ~ diversity_z + {distance} + {distance}_min{extra} + (1|target) + (1|set)"
        fit, notes = _fit(formula, group)
        table = fit.table()
        for _, r in table[table["effect"] == "fixed"].iterrows():
            rows.append({**base, "formula": formula, "term": r["term"], "estimate": r["estimate"],
                         "std_error": r["std_error"], "conf_low": r["conf_low"], "conf_high": r["conf_high"],
                         "p_value": float(fit.pvalues.get(r["term"], np.nan)), "n_rows": int(fit.nobs),
                         "n_sets": group["set"].nunique(), "diversity_kind": kind, "note": "; ".join(notes)})
    return pd.DataFrame(rows)


def summarise_selection(selection: pd.DataFrame, *, by=GROUP_COLUMNS, n_sim: int = 10000,
                        seed: int = 0) -> pd.DataFrame:
    """Each heuristic over all pools of a group: how high its choices rank, against chance.

    ``percentile`` = (rank − 1) / (n_sets − 1) per pool (0 = best); ``mean_percentile`` is its mean
    over pools, ``share_best`` the share of pools where the choice is the best set.  ``p_value``:
    the chance that choices drawn uniformly at random from each pool reach a mean percentile at
    least as good (``n_sim`` simulations, one independent uniform rank per pool).
    """
    sel = selection.dropna(subset=["rank"]) if "rank" in selection.columns else selection.iloc[0:0]
    sel = sel[sel["n_sets"] > 1]
    rng = np.random.default_rng(seed)
    rows = []
    keys = [b for b in by if b in sel.columns] + ["heuristic", "direction"]
    for key, g in sel.groupby(keys, sort=True):
        n = g["n_sets"].to_numpy(int)
        pct = (g["rank"].to_numpy(float) - 1) / (n - 1)
        sims = np.mean((rng.integers(0, n[None, :], size=(n_sim, len(n)))) / (n[None, :] - 1), axis=1)
        observed = float(pct.mean())
        rows.append({**dict(zip(keys, key)), "n_pools": len(g), "mean_percentile": observed,
                     "share_best": float(np.mean(g["rank"].to_numpy() == 1)),
                     "mean_rank": float(g["rank"].mean()), "mean_n_sets": float(n.mean()),
                     "p_value": float((1 + np.sum(sims <= observed + 1e-12)) / (n_sim + 1))})
    return pd.DataFrame(rows)
