"""Coverage and width of the tree baseline's conformal intervals: inner calibration against outer.

Usage::

    python benchmarks/conformal.py FIT_DIR [FIT_DIR ...]

For each fit folder (``python -m xltstats.fit`` output, e.g. the seven registry datasets fitted at
db7b87b) it rebuilds the rows the models used (``results.csv``, the manifest's ``features_used``
and configuration) and cross-validates the LightGBM baseline on exactly the fit's splits twice:

* ``inner`` — the design of db7b87b: every fold fits its booster plus 3 calibration boosters on a
  grouped 3-fold split of its training rows, repeated feature rows not merged;
* ``outer`` — today's: one booster per fold (repeated feature rows merged with weights), each fold's
  interval from the other folds' held-out residuals.

It prints, per scheme, coverage and mean width of the 95% intervals, RMSE, the boosters fitted, and
whether the ``inner`` row reproduces the fit folder's own ``cv.csv`` (a check that the rows and
splits are the fit's; for the ``random`` scheme it need not: ``results.csv`` is sorted, the fit
dealt its rows into folds in loading order, so both designs here see other random folds than the
fit did, the same ones for both).  CPU seconds of the two designs are printed per dataset.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from xltstats.pipeline.run import _scheme_possible  # the fit's own rule, so the splits are the fit's


def compare(fit_dir: Path) -> list[dict]:
    from xltstats.models.validation import GradientBoostingEstimator, cross_validate

    manifest = json.loads((fit_dir / "manifest.json").read_text())
    config, used = manifest["config"], manifest["features_used"]
    data = pd.read_csv(fit_dir / "results.csv", low_memory=False)
    complete = data.dropna(subset=used + ["score"]).reset_index(drop=True)
    old_cv = pd.read_csv(fit_dir / "cv.csv").set_index(["estimator", "scheme"])
    rows = []
    for scheme in config["cv"]["schemes"]:
        if not _scheme_possible(scheme, complete):
            continue
        for design in ("inner", "outer"):
            est = GradientBoostingEstimator(used, seed=config["seed"], calibration=design,
                                            merge_duplicates="auto" if design == "outer" else False)
            start = time.process_time()
            result = cross_validate(complete, {"gbt": est}, scheme=scheme, k=config["cv"].get("k", 5),
                                    seed=config["seed"], max_folds=config["cv"].get("max_folds"), n_jobs=1)
            cpu = time.process_time() - start
            m = result.metrics().iloc[0]
            folds = result.predictions["fold"].nunique()
            row = {"dataset": fit_dir.name, "scheme": scheme, "design": design, "coverage": m["coverage"],
                   "width": m["mean_interval_width"], "rmse": m["rmse"], "boosters": folds * (4 if design == "inner" else 1),
                   "cpu_s": cpu}
            if design == "inner" and ("gbt", scheme) in old_cv.index:
                old = old_cv.loc[("gbt", scheme)]
                row["matches_fit_cv"] = bool(np.isclose(old["coverage"], m["coverage"], atol=5e-6)
                                             and np.isclose(old["mean_interval_width"], m["mean_interval_width"],
                                                            rtol=5e-6))
            rows.append(row)
    return rows


def main(argv=None) -> int:
    dirs = [Path(a) for a in (sys.argv[1:] if argv is None else argv)]
    if not dirs:
        print(__doc__)
        return 2
    all_rows = []
    for d in dirs:
        rows = compare(d)
        all_rows += rows
        table = pd.DataFrame(rows)
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"), flush=True)
    frame = pd.DataFrame(all_rows)
    wide = frame.pivot_table(index=["dataset", "scheme"], columns="design", values=["coverage", "width"])
    wide.columns = [f"{v}_{d}" for v, d in wide.columns]
    print("\nsummary (inner = db7b87b's calibration, outer = today's):")
    print(wide.reset_index().to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    cpu = frame.groupby("design")["cpu_s"].sum()
    print(f"tree baseline CPU, all datasets and schemes: inner {cpu.get('inner', 0):.1f} s, "
          f"outer {cpu.get('outer', 0):.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
