"""Run a study: jobs one after another, or as a SLURM job array through submitit.

Run folder layout (``run_dir`` of the study)::

    journal/<job id>.jsonl      append-only results rows of each job (the source of truth)
    checkpoints/<job id>/       source checkpoint (saved atomically, reused by few-shot runs)
    tokenizer/                  tokenizer trained on the study's text (``tokenizer: {train: true}``)
    cache/tokenized/            tokenised data sets
    logs/<job id>.log           per-job log;  submitit/  SLURM / submitit logs
    locks/<job id>.lock         held (flock) by the process running the job

Two ``run`` processes on one study share the work: each job is run by whichever process takes its
lock first; a process that finds a job locked runs the other jobs first, then waits for the
locked ones (saying so) and counts them as done elsewhere, so both end with the complete table.
Every row of the run folder must carry the study's config hash: a run folder (or an existing
results file) holding rows of another configuration is refused rather than silently mixed.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from ..errors import ConfigError
from ._job_resources import (_load_cached, _lock_file, _train_study_tokenizer, _try_lock,  # noqa: F401
                             _try_lock_path, job_log, load_examples, run_locked, study_tokenizer)
from .config import StudyConfig, load_study
from .journal import journal_dir, read_all, repair_journal, write_table
from .plan import Job, expand, row_key, run_id
from .tasks import get_task

log = logging.getLogger("xltstats.experiments")


def preflight(study: StudyConfig, jobs: list[Job] | None = None) -> None:
    """Check that every data set the jobs need exists and is large enough, before any training.

    Local data (directories, pinned UD files) is loaded; hub data sets are sized from their
    metadata (:meth:`Task.size`) so that submitting a grid does not read every corpus first.
    """
    jobs = expand(study) if jobs is None else jobs
    if study.adapter_study is not None:
        from .adapter_runner import preflight as adapter_preflight

        return adapter_preflight(study, jobs)
    if getattr(study, "reinit", None):
        from .studyspec import check_reinit_range

        check_reinit_range(study)
    sizes: dict[tuple, int] = {}
    for job in jobs:
        spec, task = study.task(job.task), get_task(job.task)
        needs = [(lang, "train") for lang in job.languages] + [(u.target, "test") for u in job.units]
        needs += [(u.target, "train") for u in job.few_shot]
        for lang, split in needs:
            key = (job.task, lang, split)
            if key in sizes:
                continue
            try:
                sizes[key] = task.size(spec.data, lang, split)
            except Exception as exc:  # noqa: BLE001 - any loading problem is a config problem here
                raise ConfigError(f"{study.path}: task {job.task}, language {lang}, split {split}: "
                                  f"cannot load data: {exc}") from exc
            if not sizes[key]:
                raise ConfigError(f"{study.path}: task {job.task}: no {split} examples for {lang}")
        from .multisource import planned_counts

        planned_counts(study, job, {lang: sizes[(job.task, lang, "train")] for lang in job.languages})
        for unit in job.few_shot:
            n_train = sizes[(job.task, unit.target, "train")]
            if unit.n_target > n_train:
                raise ConfigError(
                    f"{study.path}: field 'few_shot': size {unit.n_target} exceeds the {n_train} "
                    f"training examples of task {job.task} in {unit.target}")


# ---- one job ----------------------------------------------------------------------------------
def _row(study, job, unit, score, metric, n_source, n_eval, extra=None) -> dict:
    row = {
        "model": study.model_name, "task": job.task, "source": job.source, "target": unit.target,
        "score": round(float(score), 6), "metric": metric, "n_source_examples": n_source,
        "n_target_examples": unit.n_target, "seed": job.seed, "config_hash": study.config_hash,
        "run_id": run_id(study, job), "row_key": row_key(study, job, unit),
        "n_eval_examples": n_eval,
    }
    row.update(extra or {})
    return row


def run_job(study: StudyConfig, job: Job, *, progress: bool = True, wait: bool = False) -> int:
    """Run the unfinished parts of ``job``; returns the number of rows written.

    A job locked by another process is skipped (``wait=False``) or waited for (``wait=True``)."""
    return run_job_status(study, job, progress=progress, wait=wait)[1]


def run_job_status(study: StudyConfig, job: Job, *, progress: bool = True,
                   wait: bool = False) -> tuple[str, int]:
    """(outcome, rows written): outcome ``done`` (nothing pending), ``ran`` (this process ran it),
    ``locked`` (another process holds it; skipped) or ``elsewhere`` (waited: another process
    finished it)."""
    if study.adapter_study is not None:
        from .adapter_runner import run_adapter_job

        return run_adapter_job(study, job, progress=progress, wait=wait)
    def pending(keys) -> list:
        return [u for u in job.units if row_key(study, job, u) not in keys]

    def work(journal) -> int:
        with job_log(study, job):
            written = _run_job(study, job, journal, pending(journal.keys), progress)
            if not study.keep_checkpoints and not pending(journal.keys):
                import shutil

                shutil.rmtree(study.run_dir / "checkpoints" / job.id, ignore_errors=True)
        return written

    return run_locked(study, job, wait=wait, pending=pending, work=work)


def _run_job(study, job, journal, pending, progress) -> int:
    import torch

    from . import train as T
    from .metrics import score

    hp, fhp = study.hyperparameters, {**study.hyperparameters, **study.few_shot_hyperparameters}
    device = T.pick_device()
    T.setup_torch(hp, device)
    if not progress:
        import transformers

        transformers.utils.logging.disable_progress_bar()
    task = get_task(job.task)
    spec = study.task(job.task)
    tokenizer = study_tokenizer(study)
    arch = T.architecture(study.model)

    def features(lang, split, examples):
        return T.cached_encode(study.cache_dir, task, spec.data, lang, split, arch, tokenizer,
                               examples, hp)

    if job.source_set or study.source_budget is not None:
        from .multisource import row_columns, source_examples

        source_train, counts = source_examples(study, job,
                                               lambda lang: load_examples(study, job.task, lang, "train"))
        extra = row_columns(study, job, counts)
    else:
        source_train = load_examples(study, job.task, job.source, "train")
        cap = hp.get("max_train_examples")
        if cap and cap < len(source_train):
            keep = T.sample_indices(len(source_train), cap, job.seed, job.task, job.source, "source")
            source_train = [source_train[i] for i in keep]
        extra = {}
    if job.reinit is not None:
        from .reinit import condition_text

        extra.update(condition=condition_text(job.reinit), reinit_layers=json.dumps(list(job.reinit)))
    n_source = len(source_train)
    source_key = "+".join(job.languages)

    ckpt = study.run_dir / "checkpoints" / job.id
    if T.checkpoint_complete(ckpt):
        log.info("%s: reusing source checkpoint %s", job.id, ckpt)
        model = T.load_checkpoint(ckpt, task, arch).to(device)
    else:
        model = T.build_model(study.model, task, arch, tokenizer, job.seed)
        if job.reinit:
            from .reinit import reinitialize

            log.info("%s: re-initialised blocks %s: %s", job.id, list(job.reinit),
                     reinitialize(model, job.reinit, job.seed))
        model = model.to(device)
        stats = T.train(model, features(source_key, "train", source_train), hp, seed=job.seed,
                        device=device, pad_id=tokenizer.pad_token_id, desc=f"{job.id} source",
                        progress=progress)
        log.info("%s: trained on %d source examples: %s", job.id, n_source, stats)
        T.save_checkpoint(model, tokenizer, ckpt)
    model.eval()
    written = 0

    # zero-shot (and in-language): the source checkpoint, loaded once, evaluated on every target.
    # Each target is batched on its own (length-sorted, large batches) so that its score does not
    # depend on which other targets were still pending, and its row is written as soon as it is done.
    t0 = time.perf_counter()
    for u in [u for u in pending if u.n_target == 0]:
        test = load_examples(study, job.task, u.target, "test")
        preds = T.predict(model, task, arch, tokenizer, test, features(u.target, "test", test), hp,
                          device, progress)
        journal.append(_row(study, job, u, score(task, test, preds), spec.metric, n_source, len(test), extra))
        written += 1
    if written:
        log.info("%s: zero-shot evaluation of %d targets in %.1fs", job.id, written,
                 time.perf_counter() - t0)

    # few-shot continuations from the source checkpoint
    few = [u for u in pending if u.n_target > 0]
    if few:
        source_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        for u in few:
            target_train = load_examples(study, job.task, u.target, "train")
            keep = T.sample_indices(len(target_train), u.n_target, job.seed, job.task, u.target, "few-shot")
            shots = [target_train[i] for i in keep]
            model.load_state_dict(source_state)
            stats = T.train(model, T.encode(task, arch, tokenizer, shots, hp), fhp, seed=job.seed,
                            device=device, pad_id=tokenizer.pad_token_id,
                            desc=f"{job.id} {u.target} n={u.n_target}", progress=progress)
            test = load_examples(study, job.task, u.target, "test")
            preds = T.predict(model, task, arch, tokenizer, test, features(u.target, "test", test),
                              hp, device, progress)
            value = score(task, test, preds)
            log.info("%s: few-shot %s n=%d score %.3f (%s)", job.id, u.target, u.n_target, value, stats)
            journal.append(_row(study, job, u, value, spec.metric, n_source, len(test), extra))
            written += 1
        model.load_state_dict(source_state)
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return written


def job_pending(study: StudyConfig, job, done: dict) -> bool:
    """Whether ``job`` still has rows (or, for adapter training jobs, a checkpoint) to make."""
    if study.adapter_study is not None:
        from .adapter_runner import is_pending

        return is_pending(study, job, done)
    return any(row_key(study, job, u) not in done for u in job.units)


def run_job_by_id(config_path: str, job_id: str, progress: bool = False, run_dir=None) -> int:
    """Entry point of one array task (picklable for submitit)."""
    from .config import with_run_dir

    study = load_study(config_path)
    if run_dir is not None:
        study = with_run_dir(study, run_dir)
    job = next(j for j in expand(study) if j.id == job_id)
    return run_job(study, job, progress=progress)


# ---- whole studies ----------------------------------------------------------------------------
def study_rows(study: StudyConfig) -> dict[str, dict]:
    """The journal rows of the study's run folder; rows of another configuration are refused."""
    rows = read_all(study.run_dir)
    foreign = {}
    for row in rows.values():
        if row.get("config_hash") != study.config_hash:
            foreign.setdefault(str(row.get("config_hash")), row)
    if foreign:
        hashes = ", ".join(sorted(foreign))
        raise ConfigError(
            f"{study.path}: the run folder {study.run_dir} holds rows of another configuration "
            f"(config hash {hashes}; this config's hash is {study.config_hash}: model or "
            "hyperparameters differ), so its table would mix two studies; use another --results or "
            "--run-dir for this configuration, or delete that run folder")
    return rows


def check_results_target(study: StudyConfig, results) -> None:
    """Refuse to overwrite a results file made from another configuration's journal."""
    import pandas as pd

    path = Path(results)
    if not path.is_file():
        return
    try:
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path, columns=["config_hash"])
        elif path.suffix == ".jsonl":
            frame = pd.read_json(path, lines=True, dtype=False)
        else:
            frame = pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",",
                                usecols=lambda c: c == "config_hash", dtype=str)
    except Exception:  # noqa: BLE001 - an unreadable old file is simply replaced
        return
    if "config_hash" not in frame.columns or not len(frame):
        return
    hashes = sorted(set(frame["config_hash"].dropna().astype(str)) - {study.config_hash})
    if hashes:
        raise ConfigError(
            f"{path}: this results file was made from another configuration's journal (config "
            f"hash {', '.join(hashes)}; {study.path} has {study.config_hash}); it is left as it is: "
            "choose another --results, or delete the file")


def status(study: StudyConfig) -> list[dict]:
    """Done and pending rows per job."""
    done = study_rows(study)
    out = []
    for i, job in enumerate(expand(study)):
        n_done = sum(row_key(study, job, u) in done for u in job.units)
        ckpt = study.run_dir / "checkpoints" / job.id
        out.append({"index": i, "job": job.id, "rows": len(job.units), "done": n_done,
                    "pending": len(job.units) - n_done + (job_pending(study, job, done)
                                                          and n_done == len(job.units)),
                    "checkpoint": (ckpt / "COMPLETE").is_file()})
    return out


def merge(study: StudyConfig, results) -> tuple[Path, int, int]:
    """Write the results table of the study's current grid from all journals (atomically).

    Returns (path, rows written, rows still pending).
    """
    check_results_target(study, results)
    done = study_rows(study)
    rows, pending = [], 0
    for job in expand(study):
        for u in job.units:
            row = done.get(row_key(study, job, u))
            if row is None:
                pending += 1
            else:
                rows.append(row)
    path = write_table(rows, results)
    return path, len(rows), pending


def run_study(study: StudyConfig, results=None, *, executor: str = "local", jobs=None,
              slurm: dict | None = None, progress: bool = True, wait: bool = True) -> dict:
    """Run the pending jobs (all, or the ``jobs`` given), then write ``results``."""
    all_jobs = expand(study)
    selected = all_jobs if not jobs else jobs
    if results is not None:
        check_results_target(study, results)
    done = study_rows(study)
    todo = [j for j in selected if job_pending(study, j, done)]
    preflight(study, selected)
    outcomes: dict[str, str] = {}
    if executor == "local":
        from tqdm.auto import tqdm

        for job in tqdm(todo, desc="jobs", disable=not progress):
            outcomes[job.id] = run_job_status(study, job, progress=progress)[0]
        # jobs another process was running: wait for them, then they are done (or ours to finish)
        for job in [j for j in todo if outcomes[j.id] == "locked"]:
            outcomes[job.id] = run_job_status(study, job, progress=progress, wait=True)[0]
    elif executor in ("slurm", "submitit-local", "submitit-debug") and study.adapter_study is not None:
        # training stages first: each stage is one array, submitted when the previous one is done
        submitted = []
        for stage in sorted({j.stage for j in todo}):
            submitted += _submit(study, [j for j in todo if j.stage == stage], executor, slurm or {},
                                 wait=wait)
            if not wait:
                return {"jobs": len(selected), "submitted": submitted,
                        "note": f"stage {stage} only; rerun when it has finished"}
    elif executor in ("slurm", "submitit-local", "submitit-debug"):
        submitted = _submit(study, todo, executor, slurm or {}, wait=wait) if todo else []
        if not wait:
            return {"jobs": len(selected), "submitted": submitted}
    else:
        raise ConfigError(f"unknown executor {executor!r}; use local, slurm, submitit-local")
    if executor == "local":
        summary = {"jobs": len(selected),
                   "ran": sum(o == "ran" for o in outcomes.values()),
                   "done_by_another_process": sum(o == "elsewhere" for o in outcomes.values()),
                   "already_done": len(selected) - len(todo) + sum(o == "done" for o in outcomes.values())}
    else:
        summary = {"jobs": len(selected), "ran": len(todo)}
    if study.representations is not None and executor == "local":
        from .representations import dump_representations

        summary["representations"] = str(dump_representations(study, selected, progress=progress))
    if results is not None:
        path, n_rows, pending = merge(study, results)
        summary.update(results=str(path), rows=n_rows, pending=pending)
    return summary


def repair(study: StudyConfig, *, dry_run: bool = False) -> list[dict]:
    """Move the bad lines of every journal of the study's run folder aside (see
    :func:`~xltstats.experiments.journal.repair_journal`), each under its job's lock.

    Returns one entry per line moved, plus ``{"file", "skipped": reason}`` for a journal whose
    job is running in another process (left alone: its writer may be mid-line)."""
    report = []
    folder = journal_dir(study.run_dir)
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        lock = _lock_file(study.run_dir / "locks" / f"{path.stem}.lock", wait=False)
        if lock is None:
            report.append({"file": str(path), "skipped": "its job is running in another process"})
            continue
        try:
            report.extend(repair_journal(path, dry_run=dry_run))
        finally:
            lock.close()
    return report


def _submit(study: StudyConfig, jobs: list[Job], executor: str, slurm: dict, wait: bool = True) -> list[str]:
    """Run ``jobs`` as a submitit job array (each writes its own journal); wait unless told not to.

    Returns the scheduler's job ids.
    """
    import submitit

    folder = study.run_dir / "submitit" / "%j"
    if executor == "slurm":
        ex = submitit.AutoExecutor(folder=folder, cluster="slurm")
        params = {"timeout_min": int(slurm.get("time", 24 * 60)),
                  "slurm_partition": slurm.get("partition"),
                  "gpus_per_node": int(slurm.get("gpus", 1)),
                  "cpus_per_task": int(slurm.get("cpus", 8)),
                  "mem_gb": int(slurm.get("mem_gb", 64)),
                  "slurm_array_parallelism": int(slurm.get("parallelism", 64)),
                  "name": f"xlt-{study.name}"}
        if slurm.get("account"):
            params["slurm_account"] = slurm["account"]
        ex.update_parameters(**{k: v for k, v in params.items() if v is not None})
    elif executor == "submitit-local":
        ex = submitit.LocalExecutor(folder=folder)
        ex.update_parameters(timeout_min=int(slurm.get("time", 60)))
    else:
        ex = submitit.DebugExecutor(folder=folder)
    config = str(Path(study.path).resolve())
    with ex.batch():
        handles = [ex.submit(run_job_by_id, config, job.id, False, str(study.run_dir)) for job in jobs]
    ids = [str(h.job_id) for h in handles]
    if not wait:
        return ids
    failures = []
    for job, handle in zip(jobs, handles):
        try:
            handle.result()
        except Exception as exc:  # noqa: BLE001 - report every failed shard, rerun redoes only them
            failures.append(f"{job.id}: {exc}")
    if failures:
        raise ConfigError("some jobs failed (rerun the same command to retry them):\n  "
                          + "\n  ".join(failures))
    return ids
