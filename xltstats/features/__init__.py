"""Language-pair features: typology (URIEL, Grambank), lexical similarity, data sizes.

The entry point is :func:`build_pair_features`; :func:`feature_coverage` summarises what it could
compute, and :data:`FEATURE_GROUPS` sorts the columns by what they measure.  Command line:
``python -m xltstats.features --languages eng,deu,fra --out features.csv``.
"""
from __future__ import annotations

from .build import (
    ALL_FEATURES,
    DEFAULT_FEATURES,
    FEATURE_GROUPS,
    build_pair_features,
    feature_coverage,
    feature_group,
    pairs_frame,
    resolve_features,
)

__all__ = [
    "ALL_FEATURES",
    "DEFAULT_FEATURES",
    "FEATURE_GROUPS",
    "build_pair_features",
    "feature_coverage",
    "feature_group",
    "pairs_frame",
    "resolve_features",
]
