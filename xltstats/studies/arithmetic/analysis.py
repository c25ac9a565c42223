"""Language arithmetic (Klimaszewski et al.): lambda curves, validation-only selection, gains.

Input: a results table whose rows carry ``condition = la=<a1>:<w1>+<a2>:<w2>;split=<validation|test>``
(the runner's ``sweep`` jobs, or :func:`~xltstats.studies.arithmetic.loaders.read_la_results`), with
``lambda`` = w1, ``adapter_a``/``adapter_b`` and optionally ``example_stats`` (per-test-example
counts, for bootstraps over sentences) and ``scenario``.

* :func:`curves`: mean test score per lambda over seeds, with a band: a t-interval over seeds when
  there are at least two, else a bootstrap over test examples.
* :func:`select`: lambda* per (pair, target, seed) from the *validation* rows only; a table without
  validation rows cannot select (an error: choosing on the test rows would score the choice on the
  data it was made on).
* :func:`gains`: gain = s_test(lambda*) - s_test(baseline lambda) (default 1: the first adapter
  alone -- English in the zero-shot scenario, the target's own adapter in enhancement), with a
  paired bootstrap that resamples seeds and, within each, test examples (the same examples for both
  arms).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ...errors import InputError
from .._common import condition_columns, example_counts, score_from_counts

PAIR = ["model", "task", "target", "adapter_a", "adapter_b"]


def sweep_rows(results: pd.DataFrame) -> pd.DataFrame:
    df = condition_columns(results)
    needed = ["lambda", "adapter_a", "adapter_b", "split"]
    if "la" in df.columns:
        parsed = df["la"].map(_parse_la)
        for position, name in enumerate(("adapter_a", "lambda_from_condition", "adapter_b")):
            if name not in df.columns:
                df[name] = parsed.map(lambda t, i=position: t[i] if t else None)
        if "lambda" not in df.columns:
            df["lambda"] = df["lambda_from_condition"]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise InputError(f"not a language-arithmetic table: no {', '.join(missing)} (in 'condition' "
                         "as la=<a1>:<w1>+<a2>:<w2>;split=... or as columns)", column=missing[0])
    df = df[df["lambda"].notna()].copy()
    df["lambda"] = pd.to_numeric(df["lambda"]).round(6)
    df["eval_language"] = df["target"]
    df = _fill_targets(df)
    if "scenario" not in df.columns:
        df["scenario"] = np.where(df["target"] == df["adapter_a"], "enhance",
                                  np.where(df["target"] == df["adapter_b"], "enhance", "zero_shot"))
    return df.reset_index(drop=True)


def _parse_la(text):
    if not isinstance(text, str) or "+" not in text:
        return None
    left, right = text.split("+", 1)
    a1, w1 = left.rsplit(":", 1)
    a2, _ = right.rsplit(":", 1)
    return a1, float(w1), a2


def _pair_key(df):
    return PAIR + (["scenario"] if "scenario" in df.columns else [])


def _counts(cell):
    return example_counts(cell)


def curves(results: pd.DataFrame, *, level: float = 0.95, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Test score per lambda: mean over seeds, band (t over seeds, or bootstrap over examples)."""
    from scipy import stats

    df = sweep_rows(results)
    test = df[df["split"] == "test"]
    rng = np.random.default_rng(seed)
    out = []
    for key, group in test.groupby(_pair_key(df) + ["lambda"], sort=True):
        scores = group["score"].to_numpy(float)
        n = len(scores)
        row = dict(zip(_pair_key(df) + ["lambda"], key), mean_score=float(scores.mean()), n_seeds=n)
        if n >= 2:
            half = stats.t.ppf(0.5 + level / 2, n - 1) * scores.std(ddof=1) / np.sqrt(n)
            row.update(band_low=row["mean_score"] - half, band_high=row["mean_score"] + half,
                       band="t over seeds")
        else:
            counts = _counts(group["example_stats"].iloc[0]) if "example_stats" in group else None
            if counts is None:
                row.update(band_low=np.nan, band_high=np.nan, band="none (one seed, no example counts)")
            else:
                metric = group["metric"].iloc[0]
                idx = rng.integers(0, len(counts), (n_boot, len(counts)))
                draws = score_from_counts(metric, counts[idx].sum(axis=1))
                low, high = np.quantile(draws, [(1 - level) / 2, 1 - (1 - level) / 2])
                row.update(band_low=float(low), band_high=float(high), band="bootstrap over test examples")
        out.append(row)
    return pd.DataFrame(out)


def select(results: pd.DataFrame) -> pd.DataFrame:
    """lambda* per (pair, target, seed): the best validation score (first in lambda order on ties).

    Raises :class:`InputError` when a pair has test rows but no validation rows.
    """
    df = sweep_rows(results)
    out = []
    key = _pair_key(df) + ["seed"]
    for k, group in df.groupby(key, sort=True):
        val = group[group["split"] == "validation"].sort_values("lambda", kind="mergesort")
        if val.empty:
            raise InputError(f"no validation rows for {dict(zip(key, k))}: lambda can only be chosen on "
                             "validation data (choosing it on the test rows is refused)", column="split")
        best = val.iloc[int(np.argmax(val["score"].to_numpy()))]
        selected_on = "val_target" if (val["eval_language"] == val["target"]).all() else "val_source"
        out.append(dict(zip(key, k), selected_lambda=float(best["lambda"]),
                        validation_score=float(best["score"]), selected_on=selected_on,
                        n_lambdas=len(val)))
    return pd.DataFrame(out)


def gains(results: pd.DataFrame, *, baseline_lambda: float = 1.0, level: float = 0.95,
          n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Gain at the selected lambda over the baseline lambda, with a paired bootstrap."""
    df = sweep_rows(results)
    # validation rows of val_source carry the source as target: select on them per pair
    chosen = select(df)
    rng = np.random.default_rng(seed)
    test = df[df["split"] == "test"]
    out = []
    pair_key = _pair_key(df)
    for key, group in test.groupby(pair_key, sort=True):
        sel = chosen.merge(pd.DataFrame([dict(zip(pair_key, key))]), on=pair_key)
        seeds = sorted(group["seed"].unique())
        arms = []
        for s in seeds:
            lam = sel.loc[sel["seed"] == s, "selected_lambda"]
            if lam.empty:
                continue
            rows = group[group["seed"] == s].set_index("lambda")
            if baseline_lambda not in rows.index:
                raise InputError(f"no test row at the baseline lambda {baseline_lambda:g} for "
                                 f"{dict(zip(pair_key, key))}, seed {s}", column="lambda")
            picked, base = rows.loc[float(lam.iloc[0])], rows.loc[baseline_lambda]
            arms.append((float(lam.iloc[0]), picked, base))
        if not arms:
            continue
        metric = group["metric"].iloc[0]
        gains_by_seed = np.array([p["score"] - b["score"] for _, p, b in arms])
        counts = [(_counts(p.get("example_stats")), _counts(b.get("example_stats"))) for _, p, b in arms]
        have_counts = all(c is not None and d is not None and len(c) == len(d) for c, d in counts)
        draws = np.empty(n_boot)
        for i in range(n_boot):
            pick = rng.integers(0, len(arms), len(arms))
            if have_counts:
                total = 0.0
                for j in pick:
                    c, d = counts[j]
                    idx = rng.integers(0, len(c), len(c))
                    total += score_from_counts(metric, c[idx].sum(0)) - score_from_counts(metric, d[idx].sum(0))
                draws[i] = total / len(pick)
            else:
                draws[i] = gains_by_seed[pick].mean()
        low, high = np.quantile(draws, [(1 - level) / 2, 1 - (1 - level) / 2])
        p_two = float(min(1.0, 2 * min((draws <= 0).mean(), (draws >= 0).mean())))
        how = "seeds and test examples (paired)" if have_counts else "seeds only (no per-example counts)"
        if not have_counts and len(arms) < 2:  # nothing to resample: no interval rather than a false one
            low = high = p_two = np.nan
            how = "none: one seed and no per-example counts"
        out.append(dict(zip(pair_key, key), n_seeds=len(arms),
                        selected_lambdas=",".join(f"{a:g}" for a, _, _ in arms),
                        baseline_lambda=baseline_lambda,
                        baseline_score=float(np.mean([b["score"] for _, _, b in arms])),
                        selected_score=float(np.mean([p["score"] for _, p, _ in arms])),
                        gain=float(gains_by_seed.mean()), ci_low=float(low), ci_high=float(high),
                        p_value=p_two, bootstrap=how))
    return pd.DataFrame(out)


def _fill_targets(df: pd.DataFrame) -> pd.DataFrame:
    """Validation rows take the test target of their sweep (they may be scored on the source
    language, ``select_on: val_source``; ``eval_language`` keeps the language they were scored on).
    A sweep is a ``run_id`` when the table has one (runner tables), else (model, task, pair, seed)."""
    key = ["run_id"] if "run_id" in df.columns and df["run_id"].notna().all() else \
        ["model", "task", "adapter_a", "adapter_b", "seed"]
    tests = df[df["split"] == "test"].groupby(key)["target"].unique()
    out = []
    for k, group in df.groupby(key, sort=False):
        targets = tests.get(k if len(key) > 1 else k[0] if isinstance(k, tuple) else k, [])
        if len(targets) == 1:
            group = group.assign(target=targets[0])
        out.append(group)
    return pd.concat(out, ignore_index=True) if out else df
