"""The columns the prediction estimators (OLS and the trees of cross-validation) get beyond the
explanatory models': the multi-source and few-shot columns of :func:`multisource_features`, the
grouping columns of the mixed model's random terms (:func:`grouping_columns`) and the tree
features (:func:`tree_columns`).  Used by :func:`xltstats.pipeline.design.model_table` and
:func:`~xltstats.pipeline.design.prediction_table` (see :mod:`xltstats.pipeline.design`).
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from ..errors import InputError

__all__ = ["multisource_features", "grouping_columns", "tree_columns", "LOG_EXAMPLES", "TARGET_EXAMPLES",
           "SOURCE_SET_COLUMNS"]

#: Prefix of LITMUS's per-pivot columns: ``log_examples_eng`` is ``log(1 + examples in eng)``.
LOG_EXAMPLES = "log_examples_"
#: ``log(1 + n_target_examples)``: the examples in the target language itself (few-shot).
TARGET_EXAMPLES = "log_target_examples"
#: Per-row summaries of the source set (from :func:`xltstats.models.multisource.aggregate_multisource`).
SOURCE_SET_COLUMNS = ("n_sources", "source_entropy", "log_total_source_examples")


def multisource_features(table: pd.DataFrame, columns=None) -> tuple[pd.DataFrame, list[str]]:
    """Multi-source and few-shot columns for the prediction estimators; the one builder of fit and predict.

    Returns ``(table with the columns, their names)``.  The columns, for any results table (or table
    of new rows) with ``source``, ``target`` and the optional ``source_languages``,
    ``n_source_examples`` and ``n_target_examples``:

    * ``log_examples_<lang>`` = ``log(1 + c)`` with ``c`` the examples of pivot language ``lang`` in
      the row's ``source_languages`` (0 when the row has none in it; a single-source row without
      ``source_languages`` has ``{source: n_source_examples}``, missing when that count is): the
      representation of LITMUS (Srinivasan et al. 2021).  Made only when the table has multi-source
      rows (``source == "mul"``).
    * ``log_target_examples`` = ``log(1 + n_target_examples)``, missing where the count is.
    * ``n_sources``, ``source_entropy`` (nats) and ``log_total_source_examples`` (``log(1 +`` total
      ``)``) of the source set, as :func:`~xltstats.models.multisource.aggregate_multisource` counts
      them; only for tables with multi-source rows.

    ``columns=None`` (a fit): every column above that the table supports, the pivots being every
    language with examples in some row.  ``columns`` given (prediction: the fitted model's column
    names): exactly those of them that this function makes, whatever the new rows hold; other names
    are ignored (a pivot the new rows lack is 0, a pivot the fit did not have is not made).
    """
    from ..models.multisource import aggregate_multisource, parse_source_languages
    from ..results import MULTI_SOURCE, SOURCE_LANGUAGES

    multi = bool((table["source"].astype(str) == MULTI_SOURCE).any())
    if columns is None:
        pivots = None
        want_target = "n_target_examples" in table.columns and \
            pd.to_numeric(table["n_target_examples"], errors="coerce").nunique() > 1
        want_set = list(SOURCE_SET_COLUMNS) if multi else []
    else:
        columns = list(columns)
        pivots = [c[len(LOG_EXAMPLES):] for c in columns if c.startswith(LOG_EXAMPLES)]
        want_target = TARGET_EXAMPLES in columns
        want_set = [c for c in SOURCE_SET_COLUMNS if c in columns]
    out = table.copy()
    added: list[str] = []
    if want_target:
        if "n_target_examples" not in table.columns:
            raise InputError(f"{TARGET_EXAMPLES} needs column 'n_target_examples'", column="n_target_examples")
        out[TARGET_EXAMPLES] = np.log1p(pd.to_numeric(table["n_target_examples"], errors="coerce").to_numpy(float))
        added.append(TARGET_EXAMPLES)
    if pivots or (pivots is None and multi):
        cells = table[SOURCE_LANGUAGES] if SOURCE_LANGUAGES in table.columns else pd.Series(None, index=table.index)
        counts = table["n_source_examples"] if "n_source_examples" in table.columns else pd.Series(np.nan, index=table.index)
        parsed: dict = {}
        rows = []
        for i, (cell, source, n) in enumerate(zip(cells.to_numpy(), table["source"].astype(str), counts.to_numpy())):
            if isinstance(cell, (str, dict)):
                key = cell if isinstance(cell, str) else json.dumps(cell, sort_keys=True)
                if key not in parsed:
                    parsed[key] = parse_source_languages(cell, row=i + 1, column=SOURCE_LANGUAGES)
                rows.append(parsed[key])
            elif source == MULTI_SOURCE:
                raise InputError(f"a multi-source row needs '{SOURCE_LANGUAGES}'", row=i + 1, column=SOURCE_LANGUAGES)
            else:
                n = pd.to_numeric(n, errors="coerce")
                rows.append({source: float(n) if pd.notna(n) else np.nan})
        if pivots is None:
            pivots = sorted({lang for r in rows for lang, c in r.items() if not c <= 0})
        values = np.array([[r.get(lang, 0.0) for lang in pivots] for r in rows], float).reshape(len(rows), len(pivots))
        for j, lang in enumerate(pivots):
            out[LOG_EXAMPLES + lang] = np.log1p(values[:, j])
        added += [LOG_EXAMPLES + lang for lang in pivots]
    if want_set:
        summary = aggregate_multisource(table[[c for c in ("source", "target", SOURCE_LANGUAGES, "n_source_examples")
                                               if c in table.columns]].reset_index(drop=True),
                                        pd.DataFrame({"source": [], "target": []}), features=[])
        summary["log_total_source_examples"] = np.log1p(summary["total_source_examples"].to_numpy(float))
        for c in want_set:
            out[c] = summary[c].to_numpy(float)
        added += want_set
    return out, added


def grouping_columns(formula: str | None, data: pd.DataFrame, source: str = "source", target: str = "target") -> list[str]:
    """The grouping columns of ``formula``'s random terms other than source and target (``model``,
    ``task`` when pooled): the information the other estimators get as categorical features."""
    from ..models.formula import parse_formula

    groups = []
    if formula is None:  # no random term left (too few levels): no mixed model, no grouping columns
        return groups
    for _, group in parse_formula(formula).random:
        for g in str(group).split(":"):
            g = g.strip()
            if g not in (source, target) and g in data.columns and g not in groups and data[g].nunique() > 1:
                groups.append(g)
    return groups


def tree_columns(complete: pd.DataFrame, used: list[str], extra: list[str]) -> list[str]:
    """``used``, then the nearest and farthest source's pair features (``f_min``, ``f_max`` of the
    multi-source aggregation) and the ``extra`` columns of :func:`multisource_features` that vary
    in the complete rows: the columns of the prediction estimators."""
    aggregated = [f"{f}_{side}" for f in used for side in ("min", "max") if f"{f}_{side}" in complete.columns]
    columns = list(used)
    for c in aggregated + list(extra):
        if c not in columns and pd.to_numeric(complete[c], errors="coerce").nunique(dropna=True) > 1:
            columns.append(c)
    return columns
