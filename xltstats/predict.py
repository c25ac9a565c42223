"""``python -m xltstats.predict``: predict transfer scores of new language pairs from a saved fit.

    python -m xltstats.predict --fit FIT_DIR --pairs pairs.csv --out predictions.csv [--model mixed|ols]

``--pairs`` is a table (.csv, .tsv, .jsonl or .parquet) with ``source`` and ``target`` columns (any
language codes :func:`xltstats.languages.to_iso639_3` understands) and optionally the model's feature
columns. When a feature column is missing it is computed with
:func:`xltstats.features.build_pair_features`; columns the model needs beyond the pair (e.g. ``task``)
must be in the pairs file. The output has the pairs file's columns plus ``prediction``, ``se_mean``,
``se_prediction``, ``lower`` and ``upper`` (a ``1 - alpha`` prediction interval for a new run), written
atomically. Errors in the input are reported with file, row and column and exit with status 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from xltstats.errors import InputError, XltstatsError

READERS = {".csv": lambda p: pd.read_csv(p), ".tsv": lambda p: pd.read_csv(p, sep="\t"),
           ".jsonl": lambda p: pd.read_json(p, lines=True), ".parquet": lambda p: pd.read_parquet(p)}


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
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise InputError(f"unknown table format {path.suffix!r}; use one of {', '.join(READERS)}", file=path)
    if not path.exists():
        raise InputError("no such file", file=path)
    try:
        table = reader(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the table: {exc}", file=path) from None
    for col in ("source", "target"):
        if col not in table.columns:
            raise InputError(f"the pairs table needs columns 'source' and 'target'; it has {list(table.columns)}",
                             file=path, column=col)
    if table.empty:
        raise InputError("the pairs table has no rows", file=path)
    return table


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


def add_features(table: pd.DataFrame, needed: list[str], mirror=None) -> pd.DataFrame:
    missing = [c for c in needed if c not in table.columns]
    if not missing:
        return table
    from xltstats.features import build_pair_features

    pairs = table[["source", "target"]].drop_duplicates()
    features = build_pair_features(pairs, features=missing, mirror=mirror, on_unknown="nan")
    lacking = [c for c in missing if c not in features.columns]
    if lacking:
        raise InputError(f"feature(s) {lacking} are neither in the pairs file nor computable by build_pair_features",
                         column=lacking[0])
    return table.merge(features[["source", "target", *missing]], on=["source", "target"], how="left", validate="m:1")


def write_table_atomic(table: pd.DataFrame, path: Path) -> None:
    import os
    import tempfile

    suffix = path.suffix.lower()
    if suffix not in READERS:
        raise InputError(f"unknown output format {suffix!r}; use one of {', '.join(READERS)}", file=path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        if suffix == ".csv":
            table.to_csv(tmp, index=False, float_format="%.6g", lineterminator="\n")
        elif suffix == ".tsv":
            table.to_csv(tmp, index=False, sep="\t", float_format="%.6g", lineterminator="\n")
        elif suffix == ".jsonl":
            table.to_json(tmp, orient="records", lines=True, double_precision=10)
        else:
            table.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def run(args) -> Path:
    from xltstats.models.persist import load_model

    if not 0 < args.alpha < 1:
        raise InputError(f"--alpha must be between 0 and 1, got {args.alpha}")
    model = load_model(Path(args.fit), which=args.model)
    pairs_path = Path(args.pairs)
    table = normalise_codes(read_pairs(pairs_path), pairs_path)
    table = add_features(table, model.feature_columns, mirror=args.mirror)
    try:
        intervals = model.prediction_interval(table, alpha=args.alpha, include_random=not args.no_random)
    except InputError as exc:
        raise InputError(exc.message, file=pairs_path, row=exc.row, column=exc.column) from None
    out = pd.concat([table.reset_index(drop=True), intervals.reset_index(drop=True)], axis=1)
    out_path = Path(args.out)
    write_table_atomic(out, out_path)
    return out_path


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except XltstatsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
