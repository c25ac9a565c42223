"""Fine-tuning grids for cross-lingual transfer studies.

``python -m xltstats.experiments run STUDY.yaml --results results.csv`` fine-tunes a model on
every (task, source language, seed), evaluates each source checkpoint on all targets while it is loaded
(zero-shot) and continues from it on a few target examples (few-shot), appending every row to a
durable journal so that an interrupted run resumes where it stopped.  The rows follow the
results-table schema read by ``python -m xltstats.fit``.

Importing this package does not import torch or transformers; only running jobs does.
"""
from __future__ import annotations

_LAZY = {
    "load_study": ("xltstats.experiments.config", "load_study"),
    "StudyConfig": ("xltstats.experiments.config", "StudyConfig"),
    "expand": ("xltstats.experiments.plan", "expand"),
    "Job": ("xltstats.experiments.plan", "Job"),
    "run_study": ("xltstats.experiments.runner", "run_study"),
    "run_job": ("xltstats.experiments.runner", "run_job"),
    "status": ("xltstats.experiments.runner", "status"),
    "merge": ("xltstats.experiments.runner", "merge"),
    "list_tasks": ("xltstats.experiments.tasks", "list_tasks"),
    "get_task": ("xltstats.experiments.tasks", "get_task"),
    "Task": ("xltstats.experiments.tasks", "Task"),
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'xltstats.experiments' has no attribute {name!r}")
