"""Statistical models of transfer scores (OLS, crossed mixed effects, few-shot curves)."""
from __future__ import annotations

# --- mixed-effects models (xltstats/models/mixed.py) ---
from xltstats.models.mixed import MixedModelWarning, MixedResults, compare_mixed, fit_mixed

# --- OLS, few-shot curves, validation, ranking, simulation: imports added below this line ---

__all__ = ["fit_mixed", "MixedResults", "compare_mixed", "MixedModelWarning"]
