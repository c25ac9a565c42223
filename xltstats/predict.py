"""``python -m xltstats.predict``: predict transfer scores of new language pairs from a saved fit.

    python -m xltstats.predict --fit FIT_DIR --pairs pairs.csv --out predictions.csv [--model mixed|ols]

``--pairs`` is a table (.csv, .tsv, .jsonl or .parquet) with ``source`` and ``target`` columns (any
language codes :func:`xltstats.languages.to_iso639_3` understands; ``nan`` is Min Nan, not a missing
value) and optionally the model's feature columns. Missing feature columns are computed as the fit
computed them (:func:`xltstats.pipeline.design.prediction_table`): pair features with the fit's
corpus and pre-training table, dataset covariates looked up in the fit's own ``results.csv``;
columns the model needs beyond the pair (e.g. ``task``) must be in the pairs file. Pairs whose
features stay missing get a missing prediction and a message. The output has the pairs file's
columns plus ``prediction``, ``se_mean``, ``se_prediction``, ``lower`` and ``upper`` (a ``1 - alpha``
prediction interval for a new run), written atomically. Errors in the input are reported with file,
row and column and exit with status 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from xltstats.errors import InputError, run_command
from xltstats.pipeline.design import dataset_covariates  # noqa: F401  (re-exported for scripts)
from xltstats.results import read_table, write_results


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m xltstats.predict",
                                     description="Predict transfer scores of new language pairs from a saved fit "
                                                 "(model.json), with prediction intervals.")
    parser.add_argument("--fit", required=True, help="fit folder written by `python -m xltstats.fit` (has model.json)")
    parser.add_argument("--pairs", required=True, help="table of pairs: source, target (+ feature columns)")
    parser.add_argument("--out", required=True, help="output table (.csv, .tsv, .jsonl or .parquet)")
    parser.add_argument("--model", default=None, help="which saved model: mixed or ols (default: the fit's default)")
    parser.add_argument("--alpha", type=float, default=0.05, help="1 - level of the prediction intervals (0.05)")
    parser.add_argument("--no-random", action="store_true",
                        help="mixed model: ignore the fitted language effects (predict as for unseen languages)")
    parser.add_argument("--mirror", default=None, help="local mirror of published data used by the features")
    return parser


def read_pairs(path: Path) -> pd.DataFrame:
    return read_table(path, what="pairs table", required=("source", "target"))


def normalise_codes(table: pd.DataFrame, path: Path) -> pd.DataFrame:
    from xltstats.languages import to_iso639_3

    table = table.copy()
    for col in ("source", "target"):
        codes = []
        for i, value in enumerate(table[col]):
            if pd.isna(value):
                raise InputError("missing language code", file=path, row=i + 1, column=col)
            try:
                codes.append(to_iso639_3(str(value)))
            except ValueError as exc:
                raise InputError(str(exc), file=path, row=i + 1, column=col) from None
        table[col] = codes
    return table


def run(args) -> Path:
    from xltstats.models.persist import load_model
    from xltstats.pipeline import FitFolder
    from xltstats.pipeline.design import prediction_table

    if not 0 < args.alpha < 1:
        raise InputError(f"--alpha must be between 0 and 1, got {args.alpha}")
    folder = FitFolder(args.fit)
    model = load_model(folder.path, which=args.model)
    pairs_path = Path(args.pairs)
    from xltstats.languages import language_options

    # codes read as the fit read them (individual_languages in its configuration)
    with language_options(individual=bool(folder.config.individual_languages)):
        table = normalise_codes(read_pairs(pairs_path), pairs_path)
        if any(c not in table.columns for c in model.feature_columns):
            table = prediction_table(table, model.feature_columns, folder.config, reference=folder.results,
                                     mirror=args.mirror)
    lacking = table[model.feature_columns].isna().any(axis=1)
    if lacking.any():
        columns = [c for c in model.feature_columns if table[c].isna().any()]
        print(f"xltstats.predict: {int(lacking.sum())} of {len(table)} pairs lack {', '.join(columns)}; "
              "their predictions are missing (give the values in the pairs file)", file=sys.stderr)
    try:
        intervals = model.prediction_interval(table, alpha=args.alpha, include_random=not args.no_random)
    except InputError as exc:
        raise InputError(exc.message, file=pairs_path, row=exc.row, column=exc.column) from None
    out = pd.concat([table.reset_index(drop=True), intervals.reset_index(drop=True)], axis=1)
    out_path = Path(args.out)
    write_results(out, out_path, float_format="%.6g")
    return out_path


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command("xltstats.predict", run, args)


if __name__ == "__main__":
    sys.exit(main())
