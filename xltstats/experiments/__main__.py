"""Command line: ``python -m xltstats.experiments {plan,run,status,merge,tasks} ...``."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import XltstatsError, report_error


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m xltstats.experiments",
                                description="Fine-tuning grids for cross-lingual transfer studies")
    sub = p.add_subparsers(dest="command", required=True)
    plan = sub.add_parser("plan", help="list the jobs of a study (validates the config)")
    plan.add_argument("config")
    plan.add_argument("--json", action="store_true", help="one JSON object per job")
    run = sub.add_parser("run", help="run the pending jobs, then write the results table")
    run.add_argument("config")
    run.add_argument("--results", help="results table to write (.csv .tsv .jsonl .parquet)")
    run.add_argument("--run-dir", help="run folder (journals, checkpoints, caches); default: the "
                                       "config's run_dir, else RESULTS_STEM.run/ beside --results")
    run.add_argument("--executor", default="local", choices=["local", "slurm", "submitit-local", "submitit-debug"])
    run.add_argument("--job", action="append", help="run only this job (index or id; repeatable)")
    run.add_argument("--partition", help="SLURM partition")
    run.add_argument("--account", help="SLURM account")
    run.add_argument("--time", type=int, help="minutes per job (SLURM timeout)")
    run.add_argument("--gpus", type=int, default=1, help="GPUs per job (SLURM)")
    run.add_argument("--cpus", type=int, default=8, help="CPUs per job (SLURM)")
    run.add_argument("--mem-gb", type=int, default=64)
    run.add_argument("--parallelism", type=int, default=64, help="max array tasks running at once")
    run.add_argument("--no-wait", action="store_true",
                     help="with slurm: submit the array and return; `status` / `merge` later")
    run.add_argument("--no-progress", action="store_true")
    st = sub.add_parser("status", help="done and pending rows per job")
    st.add_argument("config")
    st.add_argument("--results", help="also (re)write the results table of the finished rows")
    st.add_argument("--run-dir", help="run folder (as for run)")
    mg = sub.add_parser("merge", help="write the results table from all job journals")
    mg.add_argument("config")
    mg.add_argument("--results", required=True)
    mg.add_argument("--run-dir", help="run folder (as for run)")
    rp = sub.add_parser("represent", help="dump hidden states (study field 'representations') and "
                                          "write cka.csv / mingling.csv / tsne.csv")
    rp.add_argument("config")
    rep = sub.add_parser("repair", help="move bad journal lines (corrupt, torn, conflicting) aside "
                                       "into <journal>.rejected")
    rep.add_argument("config")
    rep.add_argument("--results", help="the --results of the run (locates its run folder)")
    rep.add_argument("--run-dir", help="run folder (as for run)")
    rep.add_argument("--dry-run", action="store_true", help="only list what would be moved")
    sub.add_parser("tasks", help="list the registered tasks")
    return p


def main(argv=None) -> int:
    try:
        args = _parser().parse_args(argv)
        return _dispatch(args)
    except XltstatsError as exc:
        return report_error("xltstats.experiments", exc)
    except KeyboardInterrupt:
        print("xltstats.experiments: interrupted; finished rows are in the journals, rerun the same "
              "command to continue", file=sys.stderr)
        return 130


def _dispatch(args) -> int:
    from .config import choose_run_dir, load_study
    from .plan import expand

    if args.command == "tasks":
        from .tasks import get_task, list_tasks

        for name in list_tasks():
            t = get_task(name)
            print(f"{name:10s} {t.kind:15s} {t.metric:9s} {t.description}")
        return 0
    study = load_study(args.config)
    if args.command != "plan":
        study = choose_run_dir(study, getattr(args, "run_dir", None), getattr(args, "results", None))
    if args.command == "repair":
        from .runner import repair

        report = repair(study, dry_run=args.dry_run)
        verb = "would move" if args.dry_run else "moved"
        for entry in report:
            if "skipped" in entry:
                print(f"{entry['file']}: skipped ({entry['skipped']})")
            else:
                print(f"{entry['file']}: line {entry['line']}: {verb} to "
                      f"{Path(entry['file']).name}.rejected: {entry['reason']}")
        moved = sum("skipped" not in e for e in report)
        print(f"{study.run_dir}: {moved} line(s) {verb} aside" if moved else
              f"{study.run_dir}: every journal line is good")
        return 0
    if args.command == "plan":
        jobs = expand(study)
        if args.json:
            for i, job in enumerate(jobs):
                print(json.dumps({"index": i, "job": job.id, "task": job.task, "source": job.source,
                                  "seed": job.seed, "rows": len(job.units),
                                  "few_shot_runs": len(job.few_shot),
                                  **({"kind": job.kind} if study.adapter_study is not None else {})}))
            return 0
        print(f"study {study.name}: model {study.model_name}, config hash {study.config_hash}")
        print(f"{'#':>4}  {'job':32s} {'rows':>5} {'few-shot runs':>13}")
        for i, job in enumerate(jobs):
            print(f"{i:>4}  {job.id:32s} {len(job.units):>5} {len(job.few_shot):>13}")
        if study.adapter_study is not None:
            from collections import Counter

            kinds, rows = Counter(j.kind for j in jobs), Counter()
            for j in jobs:
                rows[j.kind] += len(j.units)
            print(f"{len(jobs)} jobs, {sum(rows.values())} rows: " + ", ".join(
                f"{kind} {kinds[kind]} ({rows[kind]} rows)" for kind in kinds))
            return 0
        print(f"{len(jobs)} jobs (fine-tuning runs), {sum(len(j.units) for j in jobs)} rows, "
              f"{sum(len(j.few_shot) for j in jobs)} few-shot continuations")
        return 0
    if args.command == "status":
        from .runner import merge, status

        rows = status(study)
        print(f"{'#':>4}  {'job':32s} {'done':>5} {'pending':>8}  checkpoint")
        for r in rows:
            print(f"{r['index']:>4}  {r['job']:32s} {r['done']:>5} {r['pending']:>8}  "
                  f"{'yes' if r['checkpoint'] else 'no'}")
        done, total = sum(r["done"] for r in rows), sum(r["rows"] for r in rows)
        print(f"{done}/{total} rows done, {sum(r['pending'] == 0 for r in rows)}/{len(rows)} jobs complete")
        if args.results:
            path, n, pending = merge(study, args.results)
            print(f"wrote {n} rows to {path}")
        return 0
    if args.command == "represent":
        from .representations import dump_representations

        if study.representations is None:
            from ..errors import ConfigError

            raise ConfigError(f"{study.path}: field 'representations': missing (nothing to dump)")
        print(dump_representations(study))
        return 0
    if args.command == "merge":
        from .runner import merge

        path, n, pending = merge(study, args.results)
        print(f"wrote {n} rows to {path}" + (f" ({pending} rows still pending)" if pending else ""))
        return 0
    from .plan import find_job
    from .runner import run_study

    jobs = [find_job(expand(study), ref) for ref in args.job] if args.job else None
    slurm = {"partition": args.partition, "account": args.account, "gpus": args.gpus,
             "cpus": args.cpus, "mem_gb": args.mem_gb, "parallelism": args.parallelism}
    if args.time:
        slurm["time"] = args.time
    summary = run_study(study, args.results, executor=args.executor, jobs=jobs, slurm=slurm,
                        progress=not args.no_progress, wait=not args.no_wait)
    print(json.dumps(summary))
    if summary.get("pending"):
        print(f"xltstats.experiments: {summary['pending']} row(s) of the study are still pending "
              f"(run folder {study.run_dir})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
