"""Transfer-language influence and negative interference (Faisal & Anastasopoulos, MRL 2024).

:mod:`.analysis` (influence matrix, categories, mixed model, interference of adapter sets, adapter
weight similarity), :mod:`.loaders` (neg_inf's ``prefix,task,lang,m1,m2`` lines), :mod:`.report`,
and the CLI ``python -m xltstats.studies.influence``.
"""
from .analysis import (CATEGORY_RULE, adapter_similarity, categories, influence_matrix,
                       influence_model, influence_rows, interference, pair_features)
from .loaders import CODE_MAP, NegInfRuns, read_neg_inf

__all__ = ["CATEGORY_RULE", "adapter_similarity", "categories", "influence_matrix", "influence_model",
           "influence_rows", "interference", "pair_features", "CODE_MAP", "NegInfRuns", "read_neg_inf"]
