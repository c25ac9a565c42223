"""xltstats: explain and predict cross-lingual transfer in multilingual language models.

Importing xltstats imports neither torch nor transformers; the fine-tuning runner in
:mod:`xltstats.experiments` loads them when it runs.
"""
from __future__ import annotations

from xltstats._interrupt import install_for_command_line as _install_for_command_line
from xltstats._lazy import lazy_exports as _lazy_exports

_install_for_command_line()  # Ctrl-C during a CLI's start-up: a message, exit 130, no traceback

__version__ = "0.1.0"

__all__, __getattr__, __dir__ = _lazy_exports("xltstats", {
    "xltstats.results": ("read_results", "write_results", "validate_results"),
    "xltstats.languages": ("to_iso639_3",),
    "xltstats.datasets": ("load_dataset", "list_datasets"),
    "xltstats.features": ("build_pair_features",),
    "xltstats.models": ("fit_ols", "fit_mixed"),
    "xltstats.models.mixed": ("compare_mixed", "compare_feature_groups"),
    "xltstats.models.fewshot": ("fit_fewshot",),
    "xltstats.models.validation": ("cross_validate",),
    "xltstats.models.ranking": ("rank_sources",),
    "xltstats.models.planner": ("plan_annotation",),
    "xltstats.pipeline.design": (("add_features", "add_pair_features"),),
    "xltstats.pipeline.config": ("FitConfig", "load_config"),
    "xltstats.pipeline.run": ("run_fit",),
    "xltstats.pipeline.artifacts": ("FitFolder",),
}, also=("__version__",))
