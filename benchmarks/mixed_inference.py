"""Time the mixed model's fixed-effect inference against R, in the same run: the profile-likelihood
intervals against lme4, and Kenward-Roger (adjusted covariance and df) against pbkrtest.

Usage (from the repository root; ``XLTSTATS_MIRROR`` set for the xpos cases; needs ``Rscript``
with lme4, lmerTest and pbkrtest)::

    python benchmarks/mixed_inference.py                       # both parts
    python benchmarks/mixed_inference.py --only kenward-roger --cases sim_slopes,sim_three_factor

It exports the Satterthwaite golden cases' tables (``lmertest_reference.py``).  Profile part:
runs ``lmertest_reference.R`` on them into a temporary folder (lme4's ``confint(method =
"profile")`` is timed inside R), times ``MixedResults.conf_int(method="profile")`` on the same
fits, and prints per case both times, the ratio ours / lme4 and the largest relative difference
of the ends.  Kenward-Roger part: runs ``pbkrtest_reference.R`` (``vcovAdj`` timed inside R; on
xpos, n = 6,825, pbkrtest forms dense n x n matrices and takes many minutes), times
``MixedResults.kenward_roger()`` (``Phi_A`` and every coefficient's df) on the same fits, and
prints both times, the ratio and the largest relative differences of the df and of ``Phi_A``
(to its largest entry).  Without ``Rscript`` only our times are printed.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import lmertest_reference  # noqa: E402
import mixed as bench  # noqa: E402

from xltstats.models import fit_mixed  # noqa: E402


def profile_part(tmp: Path) -> None:
    (tmp / "out").mkdir(exist_ok=True)
    subprocess.run(["Rscript", str(HERE / "lmertest_reference.R"), str(tmp / "data"), str(tmp / "out")],
                   check=True, stdout=subprocess.DEVNULL)
    gold = json.loads((tmp / "out" / "lme4_profile_fixed.json").read_text())
    cases = json.loads((tmp / "data" / "cases.json").read_text())
    rows = []
    for name, spec in gold["cases"].items():
        data = pd.read_csv(tmp / "data" / f"{cases[name]['table']}.csv")
        res = fit_mixed(spec["formula"], data, warn=False)
        start = time.perf_counter()
        ours = res.conf_int(method="profile")
        seconds = time.perf_counter() - start
        rel = max(abs(ours.iloc[i][end] - spec[end][i]) / abs(spec[end][i])
                  for i in range(len(ours)) for end in ("lower", "upper"))
        rows.append({"case": name, "n": res.nobs, "p": len(ours), "ours_s": seconds,
                     "lme4_s": spec["seconds"], "ours/lme4": seconds / spec["seconds"],
                     "max_rel_diff": rel})
    print("profile intervals of the fixed effects, xltstats vs lme4", gold["lme4_version"])
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.3g}"))


def kenward_roger_part(tmp: Path, only: list[str] | None) -> None:
    cases = json.loads((tmp / "data" / "cases.json").read_text())
    names = [c for c in cases if only is None or c in only]
    gold = None
    if shutil.which("Rscript"):
        (tmp / "out").mkdir(exist_ok=True)
        subprocess.run(["Rscript", str(HERE / "pbkrtest_reference.R"), str(tmp / "data"), str(tmp / "out"),
                        ",".join(names), "kr.json"], check=True, stdout=subprocess.DEVNULL)
        gold = json.loads((tmp / "out" / "kr.json").read_text())
    rows = []
    for name in names:
        data = pd.read_csv(tmp / "data" / f"{cases[name]['table']}.csv")
        res = fit_mixed(cases[name]["formula"], data, warn=False)
        start = time.perf_counter()
        ours = res.kenward_roger()
        seconds = time.perf_counter() - start
        row = {"case": name, "n": res.nobs, "q": res._design.q, "ours_s": seconds}
        if gold is not None:
            spec = gold["cases"][name]
            want = np.asarray(spec["vcov_adj"], dtype=float).reshape(len(ours), len(ours))
            got = res.cov_params_kenward_roger().to_numpy()
            row.update({"pbkrtest_s": spec["seconds"], "ours/pbkrtest": seconds / spec["seconds"],
                        "df_max_rel_diff": float(np.max(np.abs(ours["df"].to_numpy() / spec["df"] - 1))),
                        "PhiA_max_rel_diff": float(np.max(np.abs(got - want)) / np.max(np.abs(want)))})
        rows.append(row)
    print("Kenward-Roger (Phi_A and the df of every coefficient), xltstats vs "
          + (f"pbkrtest {gold['pbkrtest_version']}" if gold else "nothing: Rscript not found"))
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.3g}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("profile", "kenward-roger"), help="run one part")
    parser.add_argument("--cases", help="comma-separated golden cases of the Kenward-Roger part (default all)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        lmertest_reference.export(tmp / "data")
        if args.only != "kenward-roger":
            profile_part(tmp)
        if args.only != "profile":
            kenward_roger_part(tmp, args.cases.split(",") if args.cases else None)


if __name__ == "__main__":
    main()
