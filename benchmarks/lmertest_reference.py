"""Export the tables and model list that ``lmertest_reference.R`` reads (Satterthwaite golden).

Usage (from the repository root, ``XLTSTATS_MIRROR`` set for the xpos cases)::

    python benchmarks/lmertest_reference.py /tmp/xlt_lmertest
    Rscript benchmarks/lmertest_reference.R /tmp/xlt_lmertest tests/golden

The simulated tables are the shipped ``tests/golden/lme4_data_sim_*.csv`` (copied unchanged); the
xpos table is built from the published xpos results as ``benchmarks/mixed.py`` builds it.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mixed as bench  # noqa: E402


def export(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    cases = {}
    for name, (table, formula) in bench.golden_cases().items():
        if table == "xpos":
            try:
                bench.xpos_table().to_csv(directory / "xpos.csv", index=False, float_format="%.10g")
            except FileNotFoundError:
                continue
        else:
            shutil.copyfile(bench.GOLDEN / f"lme4_data_{table}.csv", directory / f"{table}.csv")
        cases[name] = {"table": table, "formula": formula}
    (directory / "cases.json").write_text(json.dumps(cases, indent=1))


if __name__ == "__main__":
    export(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/xlt_lmertest"))
