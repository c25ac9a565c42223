"""Command line: ``python -m xltstats.features``.

Writes the features of every ordered pair of ``--languages`` (same-language pairs included), or of
the pairs in ``--pairs FILE`` (a table with ``source`` and ``target`` columns: .csv, .tsv, .jsonl or
.parquet), to ``--out FILE`` (format by extension; written to a temporary file and moved into
place, so a failed run leaves nothing half-written), and prints the coverage report.  Errors in
the input exit with status 2 and the message on stderr.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from ..errors import InputError, XltstatsError
from ..languages import collect_resolutions, language_options
from ..results import read_table, write_results
from .build import build_pair_features, feature_coverage

_FORMATS = (".csv", ".tsv", ".jsonl", ".parquet")


def read_pairs(path: Path) -> pd.DataFrame:
    return read_table(path, what="pairs table", required=("source", "target"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m xltstats.features",
        description="Language-pair features (URIEL distances, Grambank morphology, lexical "
                    "similarity, pre-training shares) for every ordered pair.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--languages", help="comma-separated language codes: every ordered pair")
    source.add_argument("--pairs", type=Path, help="table with source and target columns")
    parser.add_argument("--out", type=Path, required=True, help=f"output table ({', '.join(_FORMATS)})")
    parser.add_argument("--features", default=None,
                        help="comma-separated feature groups or columns, or 'all' "
                             "(default: every feature that needs no corpus or tokenizer)")
    parser.add_argument("--model", default="xlm-r",
                        help="pre-training table: xlm-r (CC-100), mt5 (mC4), mbert or none (no "
                             "table: the pre-training columns are missing)")
    parser.add_argument("--individual-languages", action="store_true",
                        help="keep individual languages (pes, cmn, arb, nob) instead of folding "
                             "them into their macrolanguage (fas, zho, ara, nor)")
    parser.add_argument("--corpus", default="udhr", choices=["udhr", "pud"],
                        help="parallel corpus of the lexical measures")
    parser.add_argument("--tokenizer", default=None,
                        help="tokenizer for subword_overlap: a local folder or a Hugging Face id "
                             "(with a mirror set, only a folder or a tokenizer already in the "
                             "Hugging Face cache: the network is not used)")
    parser.add_argument("--mirror", default=None, help="local data mirror directory")
    parser.add_argument("--on-unknown", default="error", choices=["error", "nan"],
                        help="a language URIEL lacks: error (default) or NaN features")
    args = parser.parse_args(argv)
    try:
        if args.languages is not None:
            languages = [c.strip() for c in args.languages.split(",") if c.strip()]
            if not languages:
                raise InputError("--languages names no language")
            pairs, file = languages, None
        else:
            pairs, file = read_pairs(args.pairs), args.pairs
        with language_options(individual=args.individual_languages), \
                collect_resolutions() as resolved:
            features = build_pair_features(pairs, args.features, model=args.model,
                                           tokenizer=args.tokenizer, corpus=args.corpus,
                                           mirror=args.mirror, on_unknown=args.on_unknown,
                                           file=file)
        write_results(features, args.out, float_format="%.10g")
    except XltstatsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    coverage = feature_coverage(features)
    for note in resolved.values():
        print(f"language: {note}")
    print(f"wrote {len(features)} pairs x {features.shape[1] - 2} columns to {args.out}")
    print(coverage.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
