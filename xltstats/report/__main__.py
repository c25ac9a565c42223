"""``python -m xltstats.report --fit DIR [--out FILE]``: render a fit folder's HTML report."""
from __future__ import annotations

import argparse
import sys

from xltstats.errors import XltstatsError, report_error


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m xltstats.report",
        description="Render the self-contained HTML report of a fit folder written by python -m xltstats.fit.")
    parser.add_argument("--fit", required=True, metavar="DIR", help="the fit folder")
    parser.add_argument("--out", metavar="FILE", help="output HTML file (default: DIR/report.html)")
    parser.add_argument("--engine", default="auto", choices=["auto", "quarto", "python", "kernel"],
                        help="auto: Quarto when on PATH, else run the cells here and convert with pandoc; "
                             "kernel: run the cells in a Jupyter kernel")
    args = parser.parse_args(argv)
    from .render import render_report

    try:
        render_report(args.fit, args.out, engine=args.engine, quiet=False)
    except XltstatsError as exc:
        return report_error("xltstats.report", exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
