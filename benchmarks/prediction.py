"""Every estimator on every registry dataset under the same splits, side by side.

Usage::

    python benchmarks/prediction.py [DATASET ...] [--out FILE.csv] [--n-jobs N] [--inner-folds K]

For each dataset (default: every registry dataset) the model table is built as ``python -m
xltstats.fit`` builds it (default configuration: features, tree features, grouping columns), and
:func:`xltstats.models.validation.cross_validate` runs :func:`default_estimators` (OLS and trees
given ``model`` / ``task`` when the mixed model has them as random effects; the trees also the
multi-source and few-shot columns) with ``select=True`` on the fit's schemes — held-out targets,
held-out sources, random rows — where the fit would run them.  On SumEval the shape of its
``train`` / ``test_release`` split is added, scored by cross-validation on ``train``: the test
release holds new training configurations (``config_id``) and, for its surprise languages,
targets never seen in training, so ``leave-one-config-out`` holds out whole configurations (and
held-out targets are the other part of that shape).

Printed per dataset, scheme and estimator: RMSE, MAE, NDCG@3 (per held-out query — target, within
model and task — the candidates ranked by predicted score against LangRank relevance,
:func:`xltstats.models.ranking.ndcg_at_k`; candidates are sources, or source sets for multi-source
rows; queries with fewer than 3 candidates left out), the coverage of the estimator's own 95%
intervals and of the cross-conformal ones every estimator gets, and ``vs_gbt`` = RMSE / RMSE of
the LightGBM baseline (the tree baseline).  ``chosen`` is the estimator inner cross-validation
picked in each outer fold (its RMSE the nested one); ``stacked`` the convex stack.  The last table
checks, per dataset and scheme, ``chosen`` RMSE <= min(LightGBM, mean-per-target baseline).
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import pandas as pd

from xltstats.models.ranking import ndcg_at_k, relevance_from_scores
from xltstats.pipeline.run import _scheme_possible  # the fit's own rule

CONFIG_SCHEME = "leave-one-config-out"


def ndcg3(predictions: pd.DataFrame, complete: pd.DataFrame) -> pd.Series:
    """Mean NDCG@3 per estimator over held-out queries with at least 3 candidates."""
    keys = complete.loc[predictions["row"].to_numpy()]
    frame = predictions[["estimator", "fold", "observed", "prediction"]].reset_index(drop=True)
    for c in ("model", "task", "target"):
        frame[c] = keys[c].astype(str).to_numpy() if c in keys.columns else ""
    multi = keys["source"].astype(str).eq("mul").to_numpy()
    if "source_languages" in keys.columns:
        frame["candidate"] = np.where(multi, keys["source_languages"].astype(str), keys["source"].astype(str))
    else:
        frame["candidate"] = keys["source"].astype(str).to_numpy()
    frame = frame.dropna(subset=["prediction"])
    mean = frame.groupby(["estimator", "fold", "model", "task", "target", "candidate"], sort=True)[
        ["observed", "prediction"]].mean().reset_index()
    out = {}
    for name, g in mean.groupby("estimator", sort=False):
        scores = [ndcg_at_k(relevance_from_scores(q["observed"]), q["prediction"], 3, names=q["candidate"])
                  for _, q in g.groupby(["fold", "model", "task", "target"], sort=True) if len(q) >= 3]
        out[name] = float(np.nanmean(scores)) if scores else np.nan
    return pd.Series(out)


def run_dataset(name: str, n_jobs: int, inner_folds: int | None) -> list[pd.DataFrame]:
    from xltstats.models.validation import GROUP_SCHEME, cross_validate
    from xltstats.pipeline import FitConfig
    from xltstats.pipeline.design import model_table
    from xltstats.pipeline.run import load_results

    config = FitConfig(data=name)
    design = model_table(load_results(config), config)
    complete = design.complete
    schemes = [(s, s, None) for s in config.cv.schemes if _scheme_possible(s, complete)]
    if "config_id" in complete.columns and complete["config_id"].nunique() >= 3:
        schemes.append((CONFIG_SCHEME, GROUP_SCHEME, "config_id"))
    tables = []
    for label, scheme, group in schemes:
        start = time.time()
        cv = cross_validate(complete, features=design.used, scheme=scheme, k=config.cv.k, seed=config.seed,
                            mixed_formula=design.formula, max_folds=config.cv.max_folds, n_jobs=n_jobs,
                            tree_features=design.tree_features, categorical=design.categorical, group=group,
                            select=True, inner_folds=inner_folds or config.cv.inner_folds)
        metrics = cv.metrics().set_index("estimator")
        metrics["ndcg3"] = ndcg3(cv.predictions, complete)
        metrics["vs_gbt"] = metrics["rmse"] / metrics.loc["gbt", "rmse"] if "gbt" in metrics.index else np.nan
        sel = cv.selection().iloc[0]
        table = metrics.reset_index()[["estimator", "rmse", "mae", "ndcg3", "coverage", "conformal_coverage",
                                       "vs_gbt", "selected"]]
        table.insert(0, "scheme", label)
        table.insert(0, "dataset", name)
        table["picks"] = np.where(table["estimator"] == "chosen", sel["picks"], "")
        table["seconds"] = round(time.time() - start, 1)
        tables.append(table)
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"), flush=True)
        if cv.failures:
            print(f"  {len(cv.failures)} failed fit(s), e.g. {cv.failures[0]}", flush=True)
    return tables


def verdict(table: pd.DataFrame) -> pd.DataFrame:
    """Per dataset and scheme: chosen RMSE against the best of LightGBM and the mean baseline."""
    rows = []
    for (dataset, scheme), g in table.groupby(["dataset", "scheme"], sort=False):
        r = g.set_index("estimator")["rmse"]
        bar = min(r.get("gbt", np.inf), r.get("mean", np.inf))
        rows.append({"dataset": dataset, "scheme": scheme, "chosen_rmse": r.get("chosen"), "gbt_rmse": r.get("gbt"),
                     "mean_rmse": r.get("mean"), "chosen_vs_best_of_gbt_mean": r.get("chosen") / bar,
                     "met": bool(r.get("chosen") <= bar + 1e-12)})
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    from xltstats.datasets.registry import list_datasets

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="*", help="registry datasets (default: all)")
    parser.add_argument("--out", help="write the whole table to this CSV file")
    parser.add_argument("--n-jobs", type=int, default=1, help="folds at once (threads)")
    parser.add_argument("--inner-folds", type=int, default=None, help="inner CV folds (default: the fit's)")
    args = parser.parse_args(argv)
    names = args.datasets or list_datasets()
    tables = []
    for name in names:
        print(f"== {name}", flush=True)
        tables += run_dataset(name, args.n_jobs, args.inner_folds)
    table = pd.concat(tables, ignore_index=True)
    check = verdict(table)
    print("\n== chosen RMSE <= min(LightGBM, mean baseline)?")
    print(check.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.out:
        table.to_csv(args.out, index=False)
        check.to_csv(args.out.replace(".csv", "") + "_verdict.csv", index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
