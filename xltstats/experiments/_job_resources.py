"""What every kind of job takes from its study: the examples of a task, language and split (kept
in memory), the study's tokenizer (trained once, under a lock, into the run folder), the job's lock
and its log file.  Used by the runner, the adapter-study jobs and the representation dumps.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import sys
from pathlib import Path

from .config import StudyConfig
from .journal import Journal, journal_dir, read_journal
from .plan import Job
from .tasks import get_task

log = logging.getLogger("xltstats.experiments")


def load_examples(study: StudyConfig, task_name: str, lang: str, split: str) -> list[dict]:
    """Examples of one task, language and split (test sets cut to ``max_test_examples``).

    Kept in memory (a few data sets at a time): a job reads each target's test set and
    few-shot training set once, not once per few-shot size.
    """
    spec = study.task(task_name)
    cap = study.hyperparameters.get("max_test_examples") if split == "test" else None
    return _load_cached(task_name, spec.data, lang, split, cap)


@functools.lru_cache(maxsize=6)
def _load_cached(task_name: str, data: str, lang: str, split: str, cap) -> list[dict]:
    examples = get_task(task_name).load(data, lang, split)
    return examples[:cap] if cap else examples


def study_tokenizer(study: StudyConfig):
    """The study's tokenizer; trains (once, saved in the run folder) when asked to."""
    from . import train as T

    spec = study.model
    if "pretrained" in spec:
        return T.load_tokenizer(spec["pretrained"])
    tok = spec["tokenizer"]
    if isinstance(tok, dict):
        path = study.run_dir / "tokenizer"
        lock = _lock_file(study.run_dir / "locks" / "tokenizer.lock", wait=True)
        try:
            _train_study_tokenizer(study, path, tok)
        finally:
            lock.close()
        return T.load_tokenizer(str(path))
    return T.load_tokenizer(tok)


def _train_study_tokenizer(study: StudyConfig, path: Path, tok: dict) -> None:
    """Train the study's tokenizer unless it exists (the caller holds the tokenizer lock, so two
    runs of one study do not train it at the same time)."""
    from . import train as T

    if not (path / "tokenizer.json").is_file():
        texts = []
        for task_spec in study.tasks:
            task = get_task(task_spec.name)
            for lang in sorted(set(study.sources) | set(study.targets)):
                split = "train" if task.has_split(task_spec.data, lang, "train") else "test"
                for e in load_examples(study, task.name, lang, split):
                    texts.append(" ".join(e["text"]) if "text" in e else " ".join(e["tokens"]))
        for task_spec in study.tasks:  # verbalised targets must be in the vocabulary
            task = get_task(task_spec.name)
            texts += [task.verbalize(i) for i in range(len(task.labels))] + list(task.labels)
            texts.append(task.prompt)
        T.train_tokenizer(texts, path, tok["vocab_size"])


def run_locked(study: StudyConfig, job: Job, *, wait: bool, pending, work) -> tuple[str, int]:
    """The life cycle of every job: (outcome, rows written).

    ``pending(keys)`` says whether rows are left to write given the row keys in the job's journal;
    ``work(journal)`` writes them and returns how many.  Nothing pending: ``done``.  Another
    process holds the job: ``locked`` (skipped), or with ``wait`` its lock is waited for.  Under
    the lock the journal is opened again (only the lock holder may cut a torn tail off it, and
    rows of a process that held the lock until just now count): nothing left is ``elsewhere``
    (after waiting) or ``done``; else ``work`` runs: ``ran``.
    """
    path = journal_dir(study.run_dir) / f"{job.id}.jsonl"
    if not pending({row["row_key"] for row in read_journal(path)}):  # read-only: a torn tail is ignored
        return "done", 0
    lock, waited = lock_job(study, job, wait=wait)
    if lock is None:
        return "locked", 0
    try:
        journal = Journal(path)
        if not pending(journal.keys):
            return ("elsewhere" if waited else "done"), 0
        return "ran", work(journal)
    finally:
        lock.close()


@contextlib.contextmanager
def job_log(study: StudyConfig, job: Job):
    """While the block runs, the runner's log lines also go to ``<run_dir>/logs/<job id>.log``."""
    path = study.run_dir / "logs" / f"{job.id}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        handler.close()


def lock_job(study: StudyConfig, job: Job, *, wait: bool):
    """(lock, waited): the job's lock (close it to release) and whether another process held it
    first; (None, False) when another process holds it and ``wait`` is false (logged: skipped)."""
    lock = _try_lock(study, job)
    if lock is not None:
        return lock, False
    if not wait:
        log.warning("%s is running in another process; skipped", job.id)
        return None, False
    print(f"xltstats.experiments: job {job.id} is being run by another process; waiting for it "
          "to finish", file=sys.stderr, flush=True)
    return _lock_file(study.run_dir / "locks" / f"{job.id}.lock", wait=True), True


def _try_lock(study: StudyConfig, job: Job):
    """An exclusive lock on the job (released when its file is closed or the process dies)."""
    return _try_lock_path(study.run_dir / "locks" / f"{job.id}.lock")


def _try_lock_path(path: Path):
    return _lock_file(path, wait=False)


def _lock_file(path: Path, *, wait: bool):
    """An exclusive ``flock`` on ``path``: the open file (close it to release), or None when
    ``wait`` is false and another process holds it."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except OSError:
        fh.close()
        return None
    return fh
