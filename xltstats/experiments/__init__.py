"""Fine-tuning grids for cross-lingual transfer studies.

``python -m xltstats.experiments run STUDY.yaml --results results.csv`` fine-tunes a model on
every (task, source language, seed), evaluates each source checkpoint on all targets while it is loaded
(zero-shot) and continues from it on a few target examples (few-shot), appending every row to a
durable journal so that an interrupted run resumes where it stopped.  The rows follow the
results-table schema read by ``python -m xltstats.fit``.

Importing this package does not import torch or transformers; only running jobs does.
"""
from __future__ import annotations

from xltstats._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports("xltstats.experiments", {
    "xltstats.experiments.config": ("load_study", "StudyConfig"),
    "xltstats.experiments.plan": ("expand", "Job"),
    "xltstats.experiments.runner": ("run_study", "run_job", "status", "merge"),
    "xltstats.experiments.tasks": ("list_tasks", "get_task", "Task"),
})
