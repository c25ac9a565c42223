"""``python -m xltstats.studies.multisource``: source-set selection on a multi-source results table.

Writes into ``--out``: ``sets.{csv,md,tex}`` (every candidate: mean score, rank with bootstrap
interval, heuristic values), ``selection`` (each heuristic's choice per pool of equal set size:
rank, interval, permutation p-value), ``selection_summary`` (each heuristic over all pools of a
group), ``set_size_model`` and ``diversity_model``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ...errors import run_command


def _parser():
    p = argparse.ArgumentParser(prog="python -m xltstats.studies.multisource", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="a registry dataset (e.g. sumeval) or a results file")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--heuristics", help="comma-separated (default: all whose inputs are available)")
    p.add_argument("--targets", default="common", choices=["common", "zero-shot"])
    p.add_argument("--missing", default="error", choices=["error", "nan"],
                   help="a language lacking a heuristic's input: stop (error) or leave the heuristic "
                        "missing for sets holding it (nan)")
    p.add_argument("--pretraining", help="pre-training table: xlm-r or mt5 (default: from the model names)")
    p.add_argument("--tokenizer", help="HF tokenizer (path or id) for vocab_coverage")
    p.add_argument("--text-task", help="task[:data] whose training text vocab_coverage reads, e.g. udpos:ud")
    p.add_argument("--diversity-kind", default="syntax")
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--subset", action="append", default=[], help="COLUMN=VALUE row filter (repeatable)")
    return p


def _texts(spec: str, languages) -> dict[str, list[str]]:
    from ...experiments.tasks import get_task

    name, _, data = spec.partition(":")
    task = get_task(name)
    data = data or task.default_data
    out = {}
    for lang in languages:
        examples = task.load(data, lang, "train")
        out[lang] = [" ".join(e["text"]) if "text" in e else " ".join(e["tokens"]) for e in examples]
    return out


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    return run_command("xltstats.studies.multisource", run, args)


def run(args) -> int:
    import pandas as pd

    from ...errors import InputError
    from ...models.tables import write_table
    from .analysis import _candidates, diversity_model, select, set_size_model, summarise_selection

    if Path(args.data).is_file():
        from ...results import read_results

        df = read_results(args.data)
    else:
        from ...datasets import load_dataset

        df = load_dataset(args.data)
    for item in args.subset:
        column, _, value = item.partition("=")
        if column not in df.columns:
            raise InputError(f"--subset: no column {column!r}", column=column)
        df = df[df[column].astype(str) == value]
    if df.empty:
        raise InputError("no rows left to analyse", file=args.data)
    heuristics = args.heuristics.split(",") if args.heuristics else None
    vocabularies = None
    if args.tokenizer or args.text_task:
        if not (args.tokenizer and args.text_task):
            raise InputError("vocab_coverage needs both --tokenizer and --text-task")
        from .heuristics import token_vocabularies

        langs = sorted({lang for s in _candidates(df)["set"].unique() for lang in s.split("+")})
        vocabularies = token_vocabularies(_texts(args.text_task, langs), args.tokenizer)
    selection, per_set = select(df, heuristics=heuristics, targets=args.targets, n_boot=args.n_boot,
                                seed=args.seed, model=args.pretraining, vocabularies=vocabularies,
                                missing=args.missing)
    summary = summarise_selection(selection, seed=args.seed)
    sizes = set_size_model(df)
    diversity = diversity_model(df, kind=args.diversity_kind)
    out = Path(args.out)
    tables = {"sets": per_set, "selection": selection, "selection_summary": summary,
              "set_size_model": sizes, "diversity_model": diversity}
    for name, table in tables.items():
        write_table(table if isinstance(table, pd.DataFrame) else pd.DataFrame(table), out, name)
    print(f"{len(per_set)} candidate sets in {selection[['set_size']].drop_duplicates().shape[0] if len(selection) else 0} "
          f"set sizes; tables in {out}")
    if len(summary):
        with pd.option_context("display.width", 200, "display.max_columns", 20):
            print(summary.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
