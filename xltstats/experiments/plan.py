"""Expand a study into independent jobs, and key every results row.

One *job* is one fine-tuning run on a (task, source language, seed): it trains the source
checkpoint once, evaluates it on every target while loaded (the zero-shot rows, ``n = 0``) and
continues from it on ``n`` examples of each other target for the few-shot rows.  Jobs share
nothing but read-only data, so they run one after another, or as a SLURM job array.
"""
from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass

from .config import StudyConfig


@dataclass(frozen=True)
class Unit:
    """One results row of a job: evaluation on ``target`` after ``n_target`` target examples."""

    target: str
    n_target: int


@dataclass(frozen=True)
class Job:
    task: str
    source: str  # a language, or "mul" for a multi-source set
    seed: int
    units: tuple[Unit, ...]
    source_set: tuple[str, ...] = ()  # the languages of a multi-source job (sorted)
    reinit: tuple[int, ...] | None = None  # re-initialised blocks (() = the baseline), None = no re-init

    @property
    def id(self) -> str:
        source = "+".join(self.source_set) if self.source_set else self.source
        condition = "" if self.reinit is None else "-reinit" + ("-".join(map(str, self.reinit)) or "none")
        return f"{self.task}-{source}{condition}-seed{self.seed}"

    @property
    def languages(self) -> tuple[str, ...]:
        """The source languages (one for a single-source job)."""
        return self.source_set or (self.source,)

    @property
    def zero_shot(self) -> tuple[Unit, ...]:
        return tuple(u for u in self.units if u.n_target == 0)

    @property
    def few_shot(self) -> tuple[Unit, ...]:
        return tuple(u for u in self.units if u.n_target > 0)


def _digest(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def expand(study: StudyConfig) -> list[Job]:
    """The jobs of ``study`` in a fixed order (task, source, seed as listed)."""
    if study.adapter_study is not None:
        from .adapter_study import expand_adapter_study

        return expand_adapter_study(study)
    jobs = []
    sets = getattr(study, "source_sets", None) or [(s,) for s in study.sources]
    conditions = getattr(study, "reinit", None) or [None]
    for spec in study.tasks:
        for members in sets:
            source = members[0] if len(members) == 1 else "mul"
            for condition in conditions:
                for seed in study.seeds:
                    units = []
                    targets = list(study.targets)
                    for member in members:
                        if study.in_language and member not in targets:
                            targets.append(member)
                    for target in targets:
                        if target in members and not study.in_language:
                            continue
                        for n in study.few_shot_sizes(spec.name):
                            if n > 0 and target in members:
                                continue  # in-language few-shot would just be more source data
                            units.append(Unit(target, n))
                    if units:
                        jobs.append(Job(spec.name, source, seed, tuple(units),
                                        members if len(members) > 1 else (), condition))
    return jobs


def run_id(study: StudyConfig, job: Job) -> str:
    """Identifies the source checkpoint a row comes from."""
    if study.adapter_study is not None:
        from .adapter_study import adapter_run_id

        return adapter_run_id(study, job)
    spec = study.task(job.task)
    extra = []  # only when used, so that plain studies keep their keys
    if job.source_set:
        extra.append(["sources", list(job.source_set)])
    if getattr(study, "source_budget", None) is not None:
        extra.append(["budget", study.source_budget])
    if job.reinit is not None:
        extra.append(["reinit", list(job.reinit)])
    return _digest(study.config_hash, job.task, spec.data, job.source, job.seed, *extra)


def row_key(study: StudyConfig, job: Job, unit: Unit) -> str:
    """Identifies a results row: the run's config hash plus the grid cell."""
    if study.adapter_study is not None:
        from .adapter_study import adapter_row_key

        return adapter_row_key(study, job, unit)
    return _digest(run_id(study, job), unit.target, unit.n_target)


def find_job(jobs: list[Job], ref: str) -> Job:
    """A job by index (``3``) or id (``xnli-eng-seed1``)."""
    if ref.isdigit() and int(ref) < len(jobs):
        return jobs[int(ref)]
    for job in jobs:
        if job.id == ref:
            return job
    from ..errors import ConfigError

    raise ConfigError(f"no job {ref!r}; jobs are 0..{len(jobs) - 1} or ids like {jobs[0].id}")


def sample_indices(n_total: int, n: int, seed: int, *key: str) -> list[int]:
    """First ``n`` of a permutation of ``range(n_total)`` seeded by ``seed`` and ``key``.

    Samples for growing ``n`` are nested (the 10 examples are among the 100), so few-shot curves
    compare like with like; the key (task, language, purpose) makes samples of different
    languages independent.
    """
    import numpy as np

    if n > n_total:
        raise ValueError(f"asked for {n} examples of {n_total}")
    rng = np.random.default_rng([seed, zlib.crc32("/".join(key).encode())])
    return sorted(rng.permutation(n_total)[:n].tolist())
