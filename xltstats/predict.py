"""``python -m xltstats.predict``: predict transfer scores of new language pairs from a saved fit.

    python -m xltstats.predict --fit FIT_DIR --pairs pairs.csv --out predictions.csv [--model mixed|ols]

``--pairs`` is a table (.csv, .tsv, .jsonl or .parquet) with ``source`` and ``target`` columns (any
language codes :func:`xltstats.languages.to_iso639_3` understands) and optionally the model's feature
columns. When a feature column is missing it is computed with
:func:`xltstats.features.build_pair_features` (with the fit's corpus and pre-training table); a
covariate the fit took from its dataset (e.g. xpos's ``ldnd`` or pre-training sizes) is looked up in
the fit's ``results.csv`` by pair, or by language for per-language columns (see
:func:`dataset_covariates`); columns the model needs beyond the pair (e.g. ``task``) must be in the
pairs file. Pairs whose features stay missing get a missing prediction and a message. The output has the pairs file's columns plus ``prediction``, ``se_mean``,
``se_prediction``, ``lower`` and ``upper`` (a ``1 - alpha`` prediction interval for a new run), written
atomically. Errors in the input are reported with file, row and column and exit with status 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from xltstats.errors import InputError, XltstatsError
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


def _fit_context(fit_dir: Path) -> tuple[dict, pd.DataFrame | None]:
    """The fit's configuration (from its manifest) and the tidy table it used (results.csv), if present."""
    import json

    config = {}
    manifest = fit_dir / "manifest.json"
    if manifest.is_file():
        try:
            config = json.loads(manifest.read_text(encoding="utf-8")).get("config") or {}
        except ValueError as exc:
            raise InputError(f"cannot read the manifest: {exc}", file=manifest) from None
    results = fit_dir / "results.csv"
    data = pd.read_csv(results, low_memory=False) if results.is_file() else None
    return config, data


def _first_per(frame: pd.DataFrame, keys: list[str], column: str) -> pd.Series:
    return frame.dropna(subset=[column]).groupby(keys, sort=True)[column].first()


def dataset_covariates(table: pd.DataFrame, columns: list[str], data: pd.DataFrame | None) -> pd.DataFrame:
    """Fill dataset covariates (columns the fit took from the dataset, not from the feature builder).

    ``same_language`` is ``source == target``. Otherwise the value comes from the fit's own table
    (``results.csv``): the pair's value when the fit saw the pair; else, for a per-language column
    ``source_X``/``target_X``, the language's value on either side; for ``same_X``, whether the two
    languages' ``X`` agree. What none of these gives stays missing (and so does the prediction).
    """
    table = table.copy()
    for col in columns:
        if col == "same_language":
            table[col] = (table["source"] == table["target"]).astype(float)
            continue
        if data is None or col not in data.columns:
            raise InputError(f"column {col!r} came from the fit's dataset and the fit folder has no results.csv with "
                             "it: give it in the pairs file", column=col)
        by_pair = _first_per(data, ["source", "target"], col)
        values = pd.Series(by_pair.reindex(pd.MultiIndex.from_frame(table[["source", "target"]])).to_numpy(),
                           index=table.index)
        side, _, stem = col.partition("_")
        if side in ("source", "target", "same") and {f"source_{stem}", f"target_{stem}"} <= set(data.columns):
            per_language = pd.concat([_first_per(data, ["source"], f"source_{stem}"),
                                      _first_per(data, ["target"], f"target_{stem}")])
            per_language = per_language[~per_language.index.duplicated()]
            if side == "same":
                left, right = table["source"].map(per_language), table["target"].map(per_language)
                guess = (left == right).astype(float).where(left.notna() & right.notna())
            else:
                guess = table[side].map(per_language)
            values = values.where(values.notna(), guess)
        table[col] = pd.to_numeric(values, errors="coerce") if values.map(
            lambda v: v is None or isinstance(v, (bool, int, float))).all() else values
    return table


def add_features(table: pd.DataFrame, needed: list[str], mirror=None, fit_dir: Path | None = None) -> pd.DataFrame:
    """Add the model's feature columns the pairs file lacks: dataset covariates from the fit's table,
    pair features from :func:`xltstats.features.build_pair_features` with the fit's options."""
    missing = [c for c in needed if c not in table.columns]
    if not missing:
        return table
    config, data = _fit_context(fit_dir) if fit_dir is not None else ({}, None)
    covariates = set(config.get("covariates") or []) | {"same_language"}
    from_dataset = [c for c in missing if c in covariates and c not in (config.get("features") or [])]
    table = dataset_covariates(table, from_dataset, data) if from_dataset else table
    missing = [c for c in missing if c not in from_dataset]
    if not missing:
        return table
    from xltstats.features import build_pair_features
    from xltstats.features.data_sizes import pretraining_model_for

    model = pretraining_model_for(data["model"].unique()) if data is not None and "model" in data.columns else "xlm-r"
    pairs = table[["source", "target"]].drop_duplicates()
    features = build_pair_features(pairs, features=missing, mirror=mirror, on_unknown="nan", model=model,
                                   corpus=config.get("lexical_corpus", "udhr"), tokenizer=config.get("tokenizer"))
    lacking = [c for c in missing if c not in features.columns]
    if lacking:
        raise InputError(f"feature(s) {lacking} are neither in the pairs file nor computable by build_pair_features",
                         column=lacking[0])
    return table.merge(features[["source", "target", *missing]], on=["source", "target"], how="left", validate="m:1")


def run(args) -> Path:
    from xltstats.models.persist import load_model

    if not 0 < args.alpha < 1:
        raise InputError(f"--alpha must be between 0 and 1, got {args.alpha}")
    model = load_model(Path(args.fit), which=args.model)
    pairs_path = Path(args.pairs)
    from xltstats.languages import language_options

    # codes read as the fit read them (individual_languages in its configuration)
    with language_options(individual=bool(_fit_context(Path(args.fit))[0].get("individual_languages"))):
        table = normalise_codes(read_pairs(pairs_path), pairs_path)
        table = add_features(table, model.feature_columns, mirror=args.mirror, fit_dir=Path(args.fit))
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
    try:
        run(args)
    except XltstatsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
