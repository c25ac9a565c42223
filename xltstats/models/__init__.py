"""Statistical models of transfer scores (OLS, crossed mixed effects, few-shot curves)."""
from __future__ import annotations

# --- mixed-effects models (xltstats/models/mixed/, one module per lme4 stage) ---
from xltstats.models.mixed import (MixedModelWarning, MixedResults, compare_feature_groups, compare_mixed,
                                   fit_mixed)

# --- OLS, few-shot curves, validation, ranking, simulation: imports added below this line ---
from xltstats.models.fewshot import FewShotResults, fit_fewshot
from xltstats.models.hybrid import HybridEstimator
from xltstats.models.multisource import aggregate_multisource
from xltstats.models.ols import OLSResults, fit_ols
from xltstats.models.persist import PortableModel, load_model, save_model
from xltstats.models.ranking import RankingResults, ndcg_at_k, rank_sources
from xltstats.models.simulate import CrossedSimulator, recovery_study
from xltstats.models.tables import write_table
from xltstats.models.validation import (CVResults, GradientBoostingEstimator, MeanBaseline, MixedEstimator,
                                        OLSEstimator, cross_validate)

__all__ = ["fit_ols", "OLSResults", "fit_fewshot", "FewShotResults", "aggregate_multisource", "save_model",
           "load_model", "PortableModel", "rank_sources", "RankingResults", "ndcg_at_k", "CrossedSimulator",
           "recovery_study", "write_table", "cross_validate", "CVResults", "OLSEstimator", "MixedEstimator",
           "MeanBaseline", "GradientBoostingEstimator", "HybridEstimator"]

__all__ += ["fit_mixed", "MixedResults", "compare_mixed", "compare_feature_groups", "MixedModelWarning"]
