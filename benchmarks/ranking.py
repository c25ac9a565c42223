"""Source ranking on the four LangRank tables: every ranker's NDCG@3 against the LambdaRank anchor.

    python benchmarks/ranking.py [langrank-dep langrank-el langrank-mt langrank-pos] [--out DIR] [--n-jobs N]

Leave-one-target-out (every target ranked by models that never saw it), LangRank's relevance and
its features (dataset sizes, the six URIEL distances, word/entity overlap, TTR distance; as
``tests/test_models_ranking.py``), the crossed mixed model ``score ~ features + (1|source) + (1|target)``,
:func:`xltstats.models.ranking.ranking_estimators` (OLS, mixed, LightGBM trees, the hybrid once it
exists) and ``select=True``: lambdarank_mixed, ensemble and ``best``, the ranker chosen by an inner
cross-validation on each fold's training targets. Prints, per table, each method's mean NDCG@3 and its
ratio and difference against LambdaRank, and how often each candidate was chosen; ``--out`` writes
``ranking_ndcg.csv`` (one row per table and method) and ``ranking_selection.csv``. Needs
``XLTSTATS_MIRROR`` (the published LangRank tables).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

TABLES = ["langrank-dep", "langrank-el", "langrank-mt", "langrank-pos"]


def run(name: str, n_jobs: int = 1, inner_folds: int = 3):
    from xltstats.datasets import load_dataset
    from xltstats.models.ranking import langrank_features, rank_sources, ranking_estimators

    d, feats = langrank_features(load_dataset(name))
    formula = "score ~ " + " + ".join(feats) + " + (1|source) + (1|target)"
    start = time.perf_counter()
    res = rank_sources(d, feats, k=3, estimators=ranking_estimators(feats, formula), mixed_formula=formula,
                       select=True, inner_folds=inner_folds, n_jobs=n_jobs)
    seconds = time.perf_counter() - start
    ev = res.evaluation()
    anchor = float(ev.set_index("method").loc["lambdarank", "mean_ndcg_at_3"])
    ev.insert(0, "table", name)
    ev["ratio_to_lambdarank"] = ev["mean_ndcg_at_3"] / anchor
    ev["minus_lambdarank"] = ev["mean_ndcg_at_3"] - anchor
    return ev, res.selection.assign(table=name), seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tables", nargs="*", default=TABLES)
    parser.add_argument("--out", default=None)
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--inner-folds", type=int, default=3)
    args = parser.parse_args(argv)
    evaluations, selections = [], []
    for name in args.tables:
        ev, selection, seconds = run(name, args.n_jobs, args.inner_folds)
        evaluations.append(ev)
        selections.append(selection)
        print(f"{name}: {seconds:.0f} s; chosen: {selection['chosen'].value_counts().to_dict()}")
        print(ev[["method", "n_queries", "mean_ndcg_at_3", "se_ndcg_at_3", "ratio_to_lambdarank",
                  "minus_lambdarank"]].to_string(index=False, float_format=lambda v: f"{v:.4f}"), flush=True)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        pd.concat(evaluations, ignore_index=True).to_csv(out / "ranking_ndcg.csv", index=False)
        pd.concat(selections, ignore_index=True).to_csv(out / "ranking_selection.csv", index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
