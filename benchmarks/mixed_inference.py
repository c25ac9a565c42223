"""Time the profile-likelihood intervals of the fixed effects against lme4, in the same run.

Usage (from the repository root; ``XLTSTATS_MIRROR`` set for the xpos cases; needs ``Rscript``
with lme4 and lmerTest)::

    python benchmarks/mixed_inference.py

It exports the Satterthwaite golden cases' tables (``lmertest_reference.py``), runs
``lmertest_reference.R`` on them into a temporary folder (lme4's ``confint(method = "profile")``
is timed inside R), times ``MixedResults.conf_int(method="profile")`` on the same fits, and prints
per case both times, the ratio ours / lme4 and the largest relative difference of the ends.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import lmertest_reference  # noqa: E402
import mixed as bench  # noqa: E402

from xltstats.models import fit_mixed  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        lmertest_reference.export(tmp / "data")
        (tmp / "out").mkdir()
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


if __name__ == "__main__":
    main()
