"""Reference check of xltstats' softImpute (xltstats.features.grambank_impute) against fancyimpute.

fancyimpute is never a dependency of xltstats: install it into a scratch environment
(``python3 -m venv /tmp/fi && /tmp/fi/bin/pip install fancyimpute``) and give its interpreter:

    python benchmarks/grambank_impute.py --reference-python /tmp/fi/bin/python [--shrinkage-fraction 0.02]

The script writes the typological matrix xltstats imputes (URIEL + Grambank, the languages with
enough observations) to a temporary file, runs fancyimpute's ``SoftImpute`` on it in that
interpreter with URIEL+'s settings (``max_iters=400, min_value=0, max_value=1``, zero start) and
the same shrinkage, runs ours, and prints: agreement of the rounded filled cells, the largest and
mean absolute difference of the filled values, our rank, and CPU seconds with their ratio.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REFERENCE = r"""
import json, sys, time
import numpy as np
from fancyimpute import SoftImpute
# the patch URIEL+ 1.3.2 applies (urielplus_imputation._load_imputation_dependencies): fancyimpute
# 0.7 passes force_all_finite, which scikit-learn >= 1.8 renamed ensure_all_finite
import importlib, inspect
from sklearn.utils import check_array
if "force_all_finite" not in inspect.signature(check_array).parameters:
    def compatible(*args, **kwargs):
        if "force_all_finite" in kwargs:
            kwargs["ensure_all_finite"] = kwargs.pop("force_all_finite")
        return check_array(*args, **kwargs)
    for name in ("fancyimpute.solver", "fancyimpute.soft_impute"):
        importlib.import_module(name).check_array = compatible
f = np.load(sys.argv[1])
X = f["X"]
shrinkage = float(sys.argv[3])
t = time.process_time()
out = SoftImpute(shrinkage_value=shrinkage, max_iters=400, min_value=0, max_value=1, verbose=False).fit_transform(X)
cpu = time.process_time() - t
np.save(sys.argv[2], out)
print(json.dumps({"cpu_seconds": cpu}))
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference-python", required=True, help="an interpreter with fancyimpute installed")
    parser.add_argument("--shrinkage-fraction", type=float, default=1 / 50,
                        help="shrinkage as a fraction of the largest singular value (URIEL+'s default 1/50)")
    args = parser.parse_args(argv)
    from xltstats.features import grambank_impute as gi

    codes, columns, X, _ = gi.typological_matrix()
    shrinkage = gi.max_singular_value(X) * args.shrinkage_fraction
    with tempfile.TemporaryDirectory() as tmp:
        matrix, result = Path(tmp) / "X.npz", Path(tmp) / "ref.npy"
        np.savez(matrix, X=X)
        done = subprocess.run([args.reference_python, "-c", REFERENCE, str(matrix), str(result), repr(shrinkage)],
                              capture_output=True, text=True, check=False)
        if done.returncode:
            print(done.stderr[-2000:], file=sys.stderr)
            return 1
        reference_cpu = json.loads(done.stdout.strip().splitlines()[-1])["cpu_seconds"]
        ref = np.load(result)
    start = time.process_time()
    ours, rank, iters = gi.soft_impute(X, shrinkage)
    our_cpu = time.process_time() - start
    gap = np.isnan(X)
    m = np.array([c.startswith("M_") for c in columns])
    diff = np.abs(ours - ref)[gap]
    agree = np.round(ours[gap]) == np.round(ref[gap])
    agree_m = (np.round(ours) == np.round(ref))[gap & m[None, :]]
    print(f"matrix {X.shape[0]} x {X.shape[1]}, {int(gap.sum())} missing cells, shrinkage {shrinkage:.4f} "
          f"({args.shrinkage_fraction:g} x largest singular value)")
    print(f"rounded filled cells agreeing: {agree.mean():.5f} (all), {agree_m.mean():.5f} (Grambank M_ cells, "
          f"{int(agree_m.size)})")
    print(f"filled values: max |ours - fancyimpute| {diff.max():.2e}, mean {diff.mean():.2e}")
    print(f"ours: rank {rank}, {iters} iterations")
    print(f"CPU seconds: ours {our_cpu:.1f}, fancyimpute {reference_cpu:.1f}, ratio {our_cpu / reference_cpu:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
