"""``python -m xltstats.reproduce DIR``: rerun a fit from its manifest and compare every table.

A fit folder may come from someone else, so nothing in it is trusted to name code: the rerun is
always ``python -m xltstats.fit`` of *this* xltstats (started with ``-P`` in an empty working
folder, so no module is imported from the fit folder or the recorded working directory).  The
manifest's ``argv`` must start with ``xltstats.fit`` and its options must parse with the fit
CLI's own parser (unknown options are refused); paths in it (``--data``, ``--config``,
``--mirror``) are resolved against the recorded ``cwd`` when that folder exists, else against the
current folder, and printed before the rerun.  The rerun writes into a temporary folder
(``--out`` replaced) without a report.

Every table (``results.csv``, ``features.csv``, ``feature_coverage.csv``, ``predictions.csv``,
``cv.csv``, ``tables/*.csv``) is compared byte for byte; a table that differs is then compared
cell by cell (numbers with a tolerance) to say how.  Exit status: 0 when every table is
byte-identical, 1 when any differs or is missing, 2 when the rerun cannot be made.
"""
from __future__ import annotations

import argparse
import sys

from xltstats.errors import XltstatsError, report_error
# the library side (checking the manifest, the rerun, the comparison) is pipeline.rerun / pipeline.compare
from xltstats.pipeline.compare import ReproduceResult, compare_fit_folders, compare_tables  # noqa: F401
from xltstats.pipeline.rerun import (PATH_OPTIONS, REFUSED_OPTIONS, check_versions, read_manifest,  # noqa: F401
                                     rerun_command, reproduce, validated_arguments)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m xltstats.reproduce",
        description="Rerun a fit from DIR/manifest.json and compare every table with the stored one. "
                    "Only xltstats' own fit is run, with the recorded options checked against its parser. "
                    "Exit 0: all tables byte-identical; 1: some differ; 2: the rerun could not be made.")
    parser.add_argument("fit_dir", metavar="DIR", help="fit folder written by python -m xltstats.fit")
    parser.add_argument("--rtol", type=float, default=1e-6, help="relative tolerance used to describe differences")
    parser.add_argument("--atol", type=float, default=1e-9, help="absolute tolerance used to describe differences")
    parser.add_argument("--keep", metavar="DIR2", help="write the rerun into DIR2 (kept) instead of a temp folder")
    args = parser.parse_args(argv)
    try:
        result = reproduce(args.fit_dir, rtol=args.rtol, atol=args.atol, keep=args.keep)
    except XltstatsError as exc:
        return report_error("xltstats.reproduce", exc)
    print(result.report())
    return 0 if result.identical else 1


if __name__ == "__main__":
    sys.exit(main())
