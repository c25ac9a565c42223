"""The logit-scale mixed model (``mixed: {scale: logit}``) against lme4 and against the Gaussian one.

Usage::

    python benchmarks/logit_mixed.py export            # tests/golden/logit_data_sim_bounded.csv (+ new rows)
    Rscript benchmarks/logit_mixed_reference.R tests/golden   # tests/golden/logit_lme4_sim_bounded.json
    python benchmarks/logit_mixed.py cv [--data langrank-pos] [--schemes random,leave-one-target-out]

``export`` writes the simulated table (12 sources x 15 targets, accuracies in percent with a few at
exactly 0 and 100) and the rows to predict; the R script squeezes and logit-transforms the scores
itself, fits lmer and writes the golden values (``tests/test_models_bounded.py`` compares).  ``cv``
cross-validates the Gaussian and the logit-scale mixed model (the fit's default formula) on a
bounded registry dataset and prints the coverage and mean width of their 95% intervals, the RMSE
and how many Gaussian intervals reached past the metric's range.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden"
DATA = "logit_data_sim_bounded.csv"
NEWDATA = "logit_newdata_sim_bounded.csv"
FORMULA = "score ~ x1 + x2 + (1 | source) + (1 | target)"


def simulate(seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Crossed logit-normal scores in percent: known fixed effects (1.0, 0.8, -0.5), source SD 0.7,
    target SD 0.5, residual SD 0.4 on the logit scale; rows 0-2 set to exactly 100, 0, 100."""
    rng = np.random.default_rng(seed)
    sources, targets = [f"s{i:02d}" for i in range(12)], [f"t{j:02d}" for j in range(15)]
    u, v = dict(zip(sources, rng.normal(0, 0.7, 12))), dict(zip(targets, rng.normal(0, 0.5, 15)))
    rows = pd.DataFrame([(s, t) for s in sources for t in targets], columns=["source", "target"])
    rows["x1"] = np.round(rng.normal(size=len(rows)), 4)
    rows["x2"] = np.round(rng.uniform(0, 1, len(rows)), 4)
    z = 1.0 + 0.8 * rows["x1"] - 0.5 * rows["x2"] + rows["source"].map(u) + rows["target"].map(v) \
        + rng.normal(0, 0.4, len(rows))
    rows["score"] = np.round(100 / (1 + np.exp(-z)), 3)
    rows.loc[[0, 1, 2], "score"] = [100.0, 0.0, 100.0]
    new = pd.DataFrame({"source": ["s00", "s05", "s11", "new_source", "s03", "new_source"],
                        "target": ["t00", "t07", "t14", "t03", "new_target", "new_target"],
                        "x1": [0.0, 1.5, -2.0, 0.3, 2.5, -0.5], "x2": [0.5, 0.1, 0.9, 0.4, 0.0, 1.0]})
    return rows, new


def export(out: Path = GOLDEN) -> None:
    data, new = simulate()
    data.to_csv(out / DATA, index=False)
    new.to_csv(out / NEWDATA, index=False)
    print(f"wrote {out / DATA} ({len(data)} rows) and {out / NEWDATA}")


def cross_validate_scales(name: str, schemes: list[str], max_folds: int = 10) -> pd.DataFrame:
    """CV metrics of the Gaussian and the logit-scale mixed model on registry dataset ``name``."""
    from xltstats.results.metrics import ScoreScale
    from xltstats.models.bounded import LogitMixedEstimator
    from xltstats.models.validation import MixedEstimator, cross_validate
    from xltstats.pipeline import FitConfig
    from xltstats.pipeline.design import model_table
    from xltstats.pipeline.run import load_results

    config = FitConfig(data=name)
    design = model_table(load_results(config), config)
    complete = design.complete
    names = complete["metric"].unique()
    if len(names) != 1:
        raise SystemExit(f"{name}: the scores do not share one metric")
    scale = ScoreScale.of(complete)  # the metric's range on the scale the scores are on, as the fit clips to
    low, high = np.full(len(complete), scale.low), np.full(len(complete), scale.high)
    rows = []
    for scheme in schemes:
        start = time.perf_counter()
        result = cross_validate(complete, {"mixed": MixedEstimator(design.formula),
                                           "mixed_logit": LogitMixedEstimator(design.formula, low[0], high[0])},
                                scheme=scheme, max_folds=max_folds, seed=0)
        table = result.metrics()
        pred = result.predictions
        past = pred.assign(past=(pred["upper"] > high[0]) | (pred["lower"] < low[0])).groupby("estimator")["past"].sum()
        clipped = (pred["upper"].clip(low[0], high[0]) - pred["lower"].clip(low[0], high[0])).groupby(
            pred["estimator"]).mean()
        table["intervals_past_range"] = table["estimator"].map(past).astype(int)
        table["clipped_width"] = table["estimator"].map(clipped)
        table["seconds"] = time.perf_counter() - start
        rows.append(table.assign(scheme=scheme, data=name, n=len(complete), range=f"{low[0]:g}-{high[0]:g}"))
    return pd.concat(rows, ignore_index=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("export")
    cv = sub.add_parser("cv")
    cv.add_argument("--data", default="langrank-pos")
    cv.add_argument("--schemes", default="random,leave-one-target-out")
    args = parser.parse_args(argv)
    if args.command == "export":
        export()
    else:
        table = cross_validate_scales(args.data, args.schemes.split(","))
        columns = [c for c in ["data", "n", "range", "scheme", "estimator", "rmse", "coverage", "mean_interval_width",
                               "clipped_width", "intervals_past_range", "n_predicted"] if c in table.columns]
        print(table[columns].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
