"""xltstats: explain and predict cross-lingual transfer in multilingual language models.

Importing xltstats imports neither torch nor transformers; the fine-tuning runner in
:mod:`xltstats.experiments` loads them when it runs.
"""
from __future__ import annotations

from xltstats._interrupt import install_for_command_line as _install_for_command_line

_install_for_command_line()  # Ctrl-C during a CLI's start-up: a message, exit 130, no traceback

__version__ = "0.1.0"

_LAZY = {
    "read_results": ("xltstats.results", "read_results"),
    "write_results": ("xltstats.results", "write_results"),
    "validate_results": ("xltstats.results", "validate_results"),
    "to_iso639_3": ("xltstats.languages", "to_iso639_3"),
    "load_dataset": ("xltstats.datasets", "load_dataset"),
    "list_datasets": ("xltstats.datasets", "list_datasets"),
    "build_pair_features": ("xltstats.features", "build_pair_features"),
    "fit_ols": ("xltstats.models", "fit_ols"),
    "fit_mixed": ("xltstats.models", "fit_mixed"),
    "compare_mixed": ("xltstats.models.mixed", "compare_mixed"),
    "compare_feature_groups": ("xltstats.models.mixed", "compare_feature_groups"),
    "fit_fewshot": ("xltstats.models.fewshot", "fit_fewshot"),
    "cross_validate": ("xltstats.models.validation", "cross_validate"),
    "rank_sources": ("xltstats.models.ranking", "rank_sources"),
    "plan_annotation": ("xltstats.models.planner", "plan_annotation"),
    "add_features": ("xltstats.pipeline.design", "add_pair_features"),
    "FitConfig": ("xltstats.pipeline.config", "FitConfig"),
    "load_config": ("xltstats.pipeline.config", "load_config"),
    "run_fit": ("xltstats.pipeline.run", "run_fit"),
    "FitFolder": ("xltstats.pipeline.artifacts", "FitFolder"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'xltstats' has no attribute {name!r}")


def __dir__():
    return sorted(set(__all__) | {"__version__"})
