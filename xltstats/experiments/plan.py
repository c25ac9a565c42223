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
    source: str
    seed: int
    units: tuple[Unit, ...]

    @property
    def id(self) -> str:
        return f"{self.task}-{self.source}-seed{self.seed}"

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
    jobs = []
    for spec in study.tasks:
        for source in study.sources:
            for seed in study.seeds:
                units = []
                targets = list(study.targets)
                if study.in_language and source not in targets:
                    targets.append(source)
                for target in targets:
                    if target == source and not study.in_language:
                        continue
                    for n in study.few_shot_sizes(spec.name):
                        if n > 0 and target == source:
                            continue  # in-language few-shot would just be more source data
                        units.append(Unit(target, n))
                if units:
                    jobs.append(Job(spec.name, source, seed, tuple(units)))
    return jobs


def run_id(study: StudyConfig, job: Job) -> str:
    """Identifies the source checkpoint a row comes from."""
    spec = study.task(job.task)
    return _digest(study.config_hash, job.task, spec.data, job.source, job.seed)


def row_key(study: StudyConfig, job: Job, unit: Unit) -> str:
    """Identifies a results row: the run's config hash plus the grid cell."""
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
