"""``python -m xltstats.predict``: predict transfer scores of new language pairs from a saved fit.

    python -m xltstats.predict --fit FIT_DIR --pairs pairs.csv --out predictions.csv [--model auto]

``--pairs`` is a table (.csv, .tsv, .jsonl or .parquet) with ``source`` and ``target`` columns (any
language codes :func:`xltstats.languages.to_iso639_3` understands; ``nan`` is Min Nan, not a missing
value) and optionally the model's feature columns. A multi-source row has ``source`` ``mul`` (or
empty) and a ``source_languages`` JSON object ``{"eng": 1000, "deu": 500}``: its features are the
count-weighted features of its sources, as the fit aggregated them. Missing feature columns are
computed as the fit computed them (:func:`xltstats.pipeline.design.prediction_table`): pair
features and derived covariates (``same_script``, ...) with the fit's feature builder, corpus and
pre-training table; the dataset's own covariates looked up in the fit's ``results.csv``.

``--model``: ``mixed``, ``ols``, ``gbt`` (LightGBM trees), ``hybrid`` when the fit saved one, or
``auto`` (default): the fit's best estimator by cross-validation (``model.json`` ``best``), else
the mixed model. A pair that lacks features is predicted by the trees (they route missing values)
or, for the linear models, by the largest nested sub-model the fit saved whose features the pair
has; nothing is imputed. The output has every column of the pairs file (``source``/``target`` as
ISO 639-3 codes; the codes as given in ``source_code``/``target_code`` when any differ), the
computed columns, then ``prediction``, ``se_mean``, ``se_prediction``, ``lower``, ``upper`` (a
``1 - alpha`` prediction interval for a new run), ``model_used`` and ``model_reason`` (the features
the pair lacks), written atomically. Errors in the input are reported with file, row and column
and exit with status 2; so does a run in which no pair could be predicted (nothing is written).
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
    parser.add_argument("--model", default="auto", choices=("auto", "mixed", "ols", "gbt", "hybrid"),
                        help="which saved model (default auto: the fit's best by cross-validation, else mixed)")
    parser.add_argument("--alpha", type=float, default=0.05, help="1 - level of the prediction intervals (0.05)")
    parser.add_argument("--no-random", action="store_true",
                        help="mixed model: ignore the fitted language effects (predict as for unseen languages)")
    parser.add_argument("--mirror", default=None, help="local mirror of published data used by the features")
    return parser


def read_pairs(path: Path) -> pd.DataFrame:
    return read_table(path, what="pairs table", required=("source", "target"))


def normalise_codes(table: pd.DataFrame, path: Path) -> pd.DataFrame:
    """``source``/``target`` as ISO 639-3 codes (the given codes kept in ``source_code``/``target_code``
    when any differ); ``source_languages`` canonical as in a results table, an empty ``source`` of a
    row that has one read as ``mul``."""
    from xltstats.languages import to_iso639_3
    from xltstats.results import MULTI_SOURCE, SOURCE_LANGUAGES
    from xltstats.results._report import _Reporter
    from xltstats.results.validation import _source_languages_column

    table = table.copy()
    given = {}
    if SOURCE_LANGUAGES in table.columns:
        blank = table["source"].isna() & table[SOURCE_LANGUAGES].notna()
        table["source"] = table["source"].where(~blank, MULTI_SOURCE)
    for col in ("source", "target"):
        codes = []
        for i, value in enumerate(table[col]):
            if pd.isna(value):
                raise InputError("missing language code", file=path, row=i + 1, column=col)
            try:
                codes.append(to_iso639_3(str(value)))
            except ValueError as exc:
                raise InputError(str(exc), file=path, row=i + 1, column=col) from None
        given[col] = table[col]
        table[col] = codes
    for col, values in given.items():
        if f"{col}_code" not in table.columns and (values.astype(str) != table[col]).any():
            table.insert(table.columns.get_loc(col) + 1, f"{col}_code", values)
    if SOURCE_LANGUAGES in table.columns:
        import numpy as np

        table[SOURCE_LANGUAGES] = _source_languages_column(table, _Reporter(path, np.arange(1, len(table) + 1)))
    elif (table["source"] == MULTI_SOURCE).any():
        row = int((table["source"] == MULTI_SOURCE).to_numpy().argmax()) + 1
        raise InputError(f"source is {MULTI_SOURCE!r} (a multi-source run) but the table has no "
                         f"'{SOURCE_LANGUAGES}' column giving its sources", file=path, row=row, column="source")
    return table


def run(args) -> Path:
    from xltstats.languages import language_options
    from xltstats.models.nested import SavedModels
    from xltstats.pipeline import FitFolder
    from xltstats.pipeline.predictors import predict_pairs

    if not 0 < args.alpha < 1:
        raise InputError(f"--alpha must be between 0 and 1, got {args.alpha}")
    folder = FitFolder(args.fit)
    saved = SavedModels.load(folder.path)
    family = saved.resolve(args.model)
    pairs_path = Path(args.pairs)
    # codes read as the fit read them (individual_languages in its configuration)
    with language_options(individual=bool(folder.config.individual_languages)):
        table = normalise_codes(read_pairs(pairs_path), pairs_path)
        try:
            out = predict_pairs(table, saved, folder.config, reference=folder.results, which=family,
                                alpha=args.alpha, include_random=not args.no_random, mirror=args.mirror)
        except InputError as exc:
            raise InputError(exc.message, file=exc.file or pairs_path, row=exc.row, column=exc.column) from None
    missing = out["prediction"].isna()
    if missing.all():
        reasons = out.loc[missing, "model_reason"].value_counts()
        shown = "; ".join(f"{why or 'no reason recorded'} ({n} pair{'s' if n > 1 else ''})"
                          for why, n in reasons.head(3).items())
        raise InputError(f"no pair could be predicted by the {family} model: {shown}; nothing written",
                         file=pairs_path)
    if missing.any():
        reasons = out.loc[missing, "model_reason"].value_counts()
        print(f"xltstats.predict: {int(missing.sum())} of {len(out)} pairs have no prediction "
              f"({'; '.join(f'{why} ({n})' for why, n in reasons.head(3).items())})", file=sys.stderr)
    fallback = (out["model_used"] != family) & ~missing
    if fallback.any():
        print(f"xltstats.predict: {int(fallback.sum())} of {len(out)} pairs lack features and were predicted by "
              f"a nested {family} model without them (column model_used)", file=sys.stderr)
    if out.attrs.get("clipped") and saved.scale is not None:
        print(f"xltstats.predict: " + saved.scale.clip_note("predictions and interval bounds", out.attrs["clipped"],
                                                            int(out[["prediction", "lower", "upper"]].notna().sum().sum())),
              file=sys.stderr)
    out_path = Path(args.out)
    write_results(out, out_path, float_format="%.6g")
    return out_path


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command("xltstats.predict", run, args)


if __name__ == "__main__":
    sys.exit(main())
