"""``python -m xltstats.studies.influence``: influence matrix, categories and mixed model.

Input: a results table (``--data``, any format :func:`xltstats.results.read_results` reads) or
neg_inf result lines (``--neg-inf FILE ...`` with ``--model``).  Writes into ``--out``:
``influence_rows.csv`` (every transfer row with its influence), ``influence_matrix.csv``,
``categories.csv``, ``interference.csv``, ``mixed_model.csv``, ``failed.csv`` (neg_inf ``0,0``
lines), ``notes.txt`` and ``report.html`` (heatmaps per level, categories with their rule, the
mixed model, interference of adapter sets).  Same inputs, same bytes.
"""
from __future__ import annotations

import sys
from pathlib import Path

from .._cli import study_main

DEFAULT_FEATURES = "syntactic_distance,genetic_distance,target_in_pretraining,source_in_pretraining"

#: The inputs (one of them) and the options, as ``add_argument`` keywords.
INPUTS = {
    "--data": dict(help="results table with a 'condition' column"),
    "--neg-inf": dict(nargs="+", help="neg_inf prefix,task,lang,m1,m2 files"),
}
OPTIONS = {
    "--model": dict(help="model name for neg_inf lines (they do not say)"),
    "--task-languages": dict(help="neg_inf: the task adapter's training languages as "
                                  "lang=count,lang=count (baselines become rows)"),
    "--out": dict(required=True),
    "--features": dict(default=DEFAULT_FEATURES, help=f"pair features of the mixed model (default {DEFAULT_FEATURES})"),
    "--pretraining": dict(help="pre-training table for *_in_pretraining: xlm-r or mt5"),
    "--adapters": dict(help="folder of language-adapter folders (<lang>/ or "
                            "lang_adapter-<lang>/): adds adapter_cosine_distance"),
    "--delta-points": dict(type=float, default=1.0),
    "--n-boot": dict(type=int, default=2000),
    "--seed": dict(type=int, default=0),
    "--alpha": dict(type=float, default=0.05),
}


def main(argv=None) -> int:
    return study_main("xltstats.studies.influence", __doc__, INPUTS, OPTIONS, run, argv)


def _adapter_folders(root: Path) -> dict:
    from ...errors import InputError

    if not root.is_dir():
        raise InputError("not a folder of language adapters", file=root)
    out = {}
    children = [c for c in sorted(root.iterdir()) if (c / "adapter_config.json").is_file()]
    runner = [c for c in children if c.name.startswith("lang_adapter-")]
    for child in runner or children:  # a runner's checkpoints/ folder also holds task adapters
        out[child.name.removeprefix("lang_adapter-")] = child
    if len(out) < 2:
        raise InputError("needs at least two adapter folders (each with adapter_config.json)", file=root)
    return out


def run(args) -> Path:
    import pandas as pd

    from ...errors import InputError
    from ...results import read_results
    from ..._io import atomic_write_text
    from .._common import write_csv
    from . import analysis as an
    from .report import write_report

    out = Path(args.out)
    failed = pd.DataFrame()
    if args.neg_inf:
        from .loaders import read_neg_inf

        if not args.model:
            raise InputError("--neg-inf needs --model (the lines do not name the model)")
        langs = None
        if args.task_languages:
            langs = {}
            for part in args.task_languages.split(","):
                lang, _, count = part.partition("=")
                if not count.strip().isdigit():
                    raise InputError(f"--task-languages: {part!r} is not lang=count")
                langs[lang.strip()] = int(count)
        runs = read_neg_inf(args.neg_inf, model=args.model, task_languages=langs)
        results, failed = runs.results, runs.failed
    else:
        results = read_results(args.data)
    features = [f.strip() for f in args.features.split(",") if f.strip()]
    rows = an.influence_rows(results)
    notes = []
    if rows.attrs.get("n_without_baseline"):
        notes.append(f"{rows.attrs['n_without_baseline']} transfer rows have no baseline for their "
                     "target and are left out")
    if args.adapters:
        sim = an.adapter_similarity(_adapter_folders(Path(args.adapters)))
        rows = rows.merge(sim[["source", "target", "adapter_cosine_distance"]], how="left",
                          on=["source", "target"])
        features.append("adapter_cosine_distance")
    if args.pretraining is None:
        dropped = [f for f in features if f.endswith("_in_pretraining") and f not in rows.columns]
        if dropped:
            notes.append(f"{', '.join(dropped)} left out: no --pretraining table (xlm-r or mt5) and "
                         "no such column")
            features = [f for f in features if f not in dropped]
    matrix = an.influence_matrix(rows, alpha=args.alpha)
    cats = an.categories(rows, delta_points=args.delta_points, n_boot=args.n_boot, seed=args.seed)
    model, model_notes = an.influence_model(rows, [f for f in features if f != "adapter_cosine_distance"],
                                            pretraining=args.pretraining, alpha=args.alpha)
    notes += model_notes
    if "adapter_cosine_distance" in features:
        # only pairs whose target also has a language adapter have this feature: its own model
        with_sim, sim_notes = an.influence_model(rows, features, pretraining=args.pretraining,
                                                 alpha=args.alpha)
        notes += [f"with adapter similarity: {n}" for n in sim_notes]
        if len(with_sim):
            model = pd.concat([model.assign(spec="pair features"),
                               with_sim.assign(spec="pair features + adapter similarity")],
                              ignore_index=True)
    inter = an.interference(results)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(rows, out / "influence_rows.csv")
    write_csv(matrix, out / "influence_matrix.csv")
    write_csv(cats, out / "categories.csv")
    write_csv(model if len(model) else pd.DataFrame({"note": ["no mixed model"]}), out / "mixed_model.csv")
    write_csv(inter if len(inter) else pd.DataFrame({"note": ["no adapter sets"]}), out / "interference.csv")
    if len(failed):
        write_csv(failed, out / "failed.csv")
    atomic_write_text(out / "notes.txt",
                      "\n".join(["category rule: " + cats.attrs.get("rule", "")] + notes) + "\n")
    write_report(out / "report.html", matrix=matrix, categories=cats, model=model, interference=inter,
                 failed=failed, notes=notes, alpha=args.alpha)
    print(f"wrote {out}/report.html ({len(rows)} transfer rows, {len(matrix)} cells)")
    return out


if __name__ == "__main__":
    sys.exit(main())
