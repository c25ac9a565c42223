"""``python -m xltstats.studies.arithmetic``: lambda curves, selection and gains.

Input: a results table (``--data``) or language-arithmetic ``*_results.json`` files
(``--la-results FILE ...`` with ``--model``/``--task``/``--target``/``--adapters``/``--seed`` or a
``--path-pattern`` with named groups).  Writes into ``--out``: ``curves.csv``, ``selected.csv``,
``gains.csv``, ``notes.txt``, ``report.html``.  Same inputs, same bytes.
"""
from __future__ import annotations

import sys
from pathlib import Path

from .._cli import study_main


#: The inputs (one of them) and the options, as ``add_argument`` keywords.
INPUTS = {
    "--data": dict(help="results table of lambda sweeps"),
    "--la-results": dict(nargs="+", help="language-arithmetic *_results.json files"),
}
OPTIONS = {
    "--model": {}, "--task": {}, "--target": {},
    "--adapters": dict(help="a1,a2"),
    "--seed": dict(type=int),
    "--path-pattern": dict(help="regex with named groups target, a1, a2, seed, task, model"),
    "--out": dict(required=True),
    "--baseline-lambda": dict(type=float, default=1.0),
    "--n-boot": dict(type=int, default=2000),
    "--bootstrap-seed": dict(type=int, default=0),
}


def main(argv=None) -> int:
    return study_main("xltstats.studies.arithmetic", __doc__, INPUTS, OPTIONS, run, argv)


def run(args) -> Path:
    import pandas as pd

    from ...results import read_results
    from ..._io import atomic_write_text
    from .._common import write_csv
    from . import analysis as an
    from .report import write_report

    if args.la_results:
        from .loaders import read_la_results

        adapters = tuple(a.strip() for a in args.adapters.split(",")) if args.adapters else None
        results = read_la_results(args.la_results, model=args.model, task=args.task,
                                  target=args.target, adapters=adapters, seed=args.seed,
                                  path_pattern=args.path_pattern)
    else:
        results = read_results(args.data)
    out = Path(args.out)
    notes = []
    curves = an.curves(results, n_boot=args.n_boot, seed=args.bootstrap_seed)
    selected = an.select(results)
    gains = an.gains(results, baseline_lambda=args.baseline_lambda, n_boot=args.n_boot,
                     seed=args.bootstrap_seed)
    if "selected_lambda" in results.columns:
        merged = selected.merge(results[results["split"] == "test"][["seed", "target", "adapter_a",
                                                                     "adapter_b", "selected_lambda"]]
                                .drop_duplicates(), on=["seed", "target", "adapter_a", "adapter_b"],
                                suffixes=("", "_runner"))
        differ = merged[(merged["selected_lambda"] - merged["selected_lambda_runner"]).abs() > 1e-9]
        notes.append("selection recomputed from the validation rows agrees with the runner's "
                     "is_selected rows" if differ.empty else
                     f"{len(differ)} selections differ from the runner's (see selected.csv)")
    out.mkdir(parents=True, exist_ok=True)
    write_csv(curves, out / "curves.csv")
    write_csv(selected, out / "selected.csv")
    write_csv(gains if len(gains) else pd.DataFrame({"note": ["no gains"]}), out / "gains.csv")
    atomic_write_text(out / "notes.txt", "\n".join(notes) + ("\n" if notes else ""))
    write_report(out / "report.html", curves=curves, selected=selected, gains=gains, notes=notes)
    print(f"wrote {out}/report.html ({len(curves)} curve points, {len(gains)} gains)")
    return out


if __name__ == "__main__":
    sys.exit(main())
