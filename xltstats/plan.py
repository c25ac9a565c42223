"""``python -m xltstats.plan``: which languages to annotate, and how many examples each, from a saved fit.

    python -m xltstats.plan --fit FIT_DIR --targets fin,tur --candidates eng,deu,fin,tur --budget 5000 \\
        [--step 500] [--base eng=10000] [--task T] [--model M] [--alpha 0.05] [--out plan.csv]

The fit's OLS or mixed model (``model.json``; ``--which``) predicts each target's score for a
training configuration (see :mod:`xltstats.models.planner`); the plan maximises the mean predicted
score over ``--targets`` by annotating up to ``--budget`` examples, ``--step`` at a time, in the
``--candidates``, on top of the ``--base`` data one has. It prints the plan, the predicted gain and
its interval; ``--out`` writes one row per candidate (examples to annotate, the plan's objective, gain
and interval) and ``--per-target`` each target's base and planned predictions. Errors name the
argument and exit with status 2.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from xltstats.errors import InputError, run_command

PROG = "xltstats.plan"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m xltstats.plan", description=__doc__.splitlines()[0][len(
        "``python -m xltstats.plan``: "):])
    parser.add_argument("--fit", required=True, help="fit folder written by `python -m xltstats.fit` (has model.json)")
    parser.add_argument("--targets", required=True, help="target languages, comma-separated")
    parser.add_argument("--candidates", required=True, help="languages one could annotate, comma-separated")
    parser.add_argument("--budget", required=True, help="examples to annotate in all")
    parser.add_argument("--step", default=None, help="annotate in multiples of this (default: budget / 10)")
    parser.add_argument("--base", default="", help="data one has already: LANG=N,LANG=N (default: none)")
    parser.add_argument("--which", default=None, help="which saved model: mixed or ols (default: the fit's default)")
    parser.add_argument("--task", default=None, help="the task to plan for, when the fit has several")
    parser.add_argument("--model", default=None, help="the model to plan for, when the fit has several")
    parser.add_argument("--alpha", default="0.05", help="1 - level of the gain's interval (0.05)")
    parser.add_argument("--search", default="auto", choices=("auto", "exact", "greedy"),
                        help="exact enumeration, greedy marginal gain, or auto (exact when the grid is small)")
    parser.add_argument("--out", default=None, help="plan table (.csv, .tsv, .jsonl or .parquet)")
    parser.add_argument("--per-target", default=None, help="table of each target's base and planned predictions")
    parser.add_argument("--mirror", default=None, help="local mirror of published data used by the features")
    return parser


def _number(text: str, option: str, *, positive: bool = True) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise InputError(f"{option} must be a number, got {text!r}") from None
    if not math.isfinite(value) or (positive and value <= 0):
        raise InputError(f"{option} must be a positive number, got {text!r}")
    return value


def _languages(text: str, option: str) -> list[str]:
    from xltstats.languages import to_iso639_3

    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise InputError(f"{option} names no language")
    codes = []
    for item in items:
        try:
            codes.append(to_iso639_3(item))
        except ValueError as exc:
            raise InputError(f"{option}: {exc}") from None
    return codes


def _base(text: str) -> dict:
    from xltstats.languages import to_iso639_3

    out = {}
    for item in [t.strip() for t in text.split(",") if t.strip()]:
        lang, sep, count = item.partition("=")
        if not sep:
            raise InputError(f"--base: {item!r} is not LANG=N")
        try:
            code = to_iso639_3(lang.strip())
        except ValueError as exc:
            raise InputError(f"--base: {exc}") from None
        value = _number(count, f"--base {lang.strip()}", positive=False)
        if value < 0:
            raise InputError(f"--base {lang.strip()} must be >= 0, got {count!r}")
        out[code] = out.get(code, 0.0) + value
    return out


def run(args):
    from xltstats.models.planner import plan_annotation
    from xltstats.results import write_results

    budget = _number(args.budget, "--budget")
    step = None if args.step is None else _number(args.step, "--step")
    alpha = _number(args.alpha, "--alpha")
    if not alpha < 1:
        raise InputError(f"--alpha must be between 0 and 1, got {args.alpha!r}")
    folder = Path(args.fit)
    if not (folder / "model.json").is_file():
        raise InputError(f"--fit: {folder} is not a fit folder (it has no model.json)")
    from xltstats.languages import language_options
    from xltstats.pipeline import FitFolder

    with language_options(individual=bool(FitFolder(folder).config.individual_languages)):
        targets = _languages(args.targets, "--targets")
        candidates = _languages(args.candidates, "--candidates")
        base = _base(args.base)
    context = {k: v for k, v in (("task", args.task), ("model", args.model)) if v is not None}
    try:
        plan = plan_annotation(folder, targets, candidates, budget, step, base=base, alpha=alpha, search=args.search,
                               which=args.which, context=context, mirror=args.mirror)
    except InputError as exc:
        option = {"budget": "--budget", "step": "--step", "targets": "--targets", "candidates": "--candidates",
                  "base": "--base"}.get(exc.message.split(" ")[0])
        raise (InputError(f"{option}: {exc.message}") if option else exc) from None
    print(plan.summary())
    if args.out:
        write_results(plan.table(), Path(args.out), float_format="%.6g")
    if args.per_target:
        write_results(plan.per_target, Path(args.per_target), float_format="%.6g")
    return plan


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(PROG, run, args)


if __name__ == "__main__":
    sys.exit(main())
