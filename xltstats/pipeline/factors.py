"""Grouping factors of the mixed model: which are random effects, which fixed, which are left out.

A random effect's variance is estimated from its levels: from one level there is nothing to
estimate (lme4 refuses such a factor), from two it is one contrast and its estimate is noise
dressed as a variance component (``(1 | model)`` over LaBSE and LASER "took" 80% of the variance).
So the default formula (:func:`default_formula`) follows one rule for the grouping factors
``source``, ``target`` and, when the data pools several, ``task`` and ``model``:

* one level in the fitted rows: no term at all (a note says so);
* fewer than ``mixed.min_levels`` levels (default 3): a fixed effect ``C(factor)`` instead of
  ``(1 | factor)``, with a note; ``min_levels: 2`` keeps two-level factors random;
* a fixed effect the features already determine (a source-level feature with two sources) would
  make the fixed design rank deficient: it is left out, with a note naming that;
* otherwise a random intercept.

A formula written in the configuration is fitted as written, except that a random term whose
factor has one level is dropped (with a note; it cannot be fitted), and a term with fewer than
``min_levels`` levels gets a note.  When no random term is left there is no mixed model: the
formula is None and the notes say why.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["default_formula", "check_random_terms", "MIN_LEVELS"]

#: Fewest levels a grouping factor needs to be a random effect by default.
MIN_LEVELS = 3


def _levels(data: pd.DataFrame, group: str) -> list[str]:
    """The levels of a grouping factor as written (``source``, ``a:b``, ``mm(source, target)``)."""
    from ..models.mixed._design import member_labels

    return sorted(set().union(*(set(labels.astype(str)) for labels in member_labels(data, group))))


def _shown(levels: list[str]) -> str:
    return ", ".join(levels[:3]) + (f" and {len(levels) - 3} more" if len(levels) > 3 else "")


def _full_rank(data: pd.DataFrame, numeric: list[str], factors: list[str]) -> bool:
    columns = [np.ones(len(data))] + [pd.to_numeric(data[c], errors="coerce").to_numpy(float) for c in numeric]
    for factor in factors:
        labels = data[factor].astype(str)
        columns += [(labels == level).to_numpy(float) for level in sorted(labels.unique())[1:]]
    matrix = np.column_stack(columns)
    return bool(np.linalg.matrix_rank(matrix) == matrix.shape[1])


def default_formula(used: list[str], data: pd.DataFrame, *, min_levels: int = MIN_LEVELS,
                    notes: list[str] | None = None, unordered: bool = False) -> str | None:
    """Every used column as a fixed effect; the grouping factors as the module docstring says.
    ``unordered``: one effect per language, ``(1 | mm(source, target))``, instead of source and
    target (:mod:`xltstats.pipeline.pairs`).  None when no factor has enough levels for a random
    effect (the notes say why)."""
    notes = [] if notes is None else notes
    random, fixed = [], []
    extra = [c for c in ("task", "model") if c in data.columns and data[c].nunique() > 1]
    candidates = extra if unordered else ["source", "target"] + extra
    if unordered:
        languages = _levels(data, "mm(source, target)")
        if len(languages) >= min_levels:
            random.append("(1 | mm(source, target))")
        else:
            notes.append(f"the pairs have {len(languages)} language(s) ({_shown(languages)}), fewer than "
                         f"mixed.min_levels ({min_levels}): no random effect per language")
    for factor in candidates:
        levels = _levels(data, factor)
        if len(levels) < 2:
            notes.append(f"{factor} has one level ({_shown(levels)}) in the {len(data)} fitted rows: it is no "
                         f"random effect (there is no variance to estimate) and is left out of the mixed model")
        elif len(levels) < min_levels:
            if _full_rank(data, used, fixed + [factor]):
                fixed.append(factor)
                notes.append(f"{factor} has {len(levels)} levels ({_shown(levels)}), fewer than mixed.min_levels "
                             f"({min_levels}): a variance from {len(levels)} levels is not estimable, so it is a "
                             f"fixed effect C({factor}) instead of (1 | {factor}) (mixed.min_levels: {len(levels)} "
                             "keeps it random)")
            else:
                notes.append(f"{factor} has {len(levels)} levels ({_shown(levels)}), fewer than mixed.min_levels "
                             f"({min_levels}), and the fixed effects already tell its levels apart (a column "
                             f"is constant within each {factor}): no term for it")
        else:
            random.append(f"(1 | {factor})")
    if not random:
        notes.append("no grouping factor has enough levels for a random effect: no mixed model was fitted")
        return None
    terms = list(used) + [f"C({f})" for f in fixed]
    return f"score ~ {' + '.join(terms) if terms else '1'} + {' + '.join(random)}"


def check_random_terms(formula: str, data: pd.DataFrame, *, min_levels: int = MIN_LEVELS,
                       notes: list[str] | None = None) -> str | None:
    """A configured formula without its random terms of one-level factors (each with a note);
    terms with fewer than ``min_levels`` levels are kept, with a note.  None when no random term
    is left."""
    from ..models.formula import parse_formula

    notes = [] if notes is None else notes
    parsed = parse_formula(formula)
    kept = []
    for expr, group in parsed.random:
        levels = _levels(data, group)
        if len(levels) < 2:
            notes.append(f"mixed.formula: ({expr} | {group}) was dropped: {group} has one level ({_shown(levels)}) "
                         f"in the {len(data)} fitted rows, so it has no variance to estimate")
            continue
        if len(levels) < min_levels:
            notes.append(f"mixed.formula: ({expr} | {group}) is fitted as written, but {group} has only "
                         f"{len(levels)} levels ({_shown(levels)}): its variance is barely estimable; "
                         f"C({group}) as a fixed effect is the alternative")
        kept.append(f"({expr} | {group})")
    if not kept:
        notes.append("mixed.formula has no random term left: no mixed model was fitted")
        return None
    if len(kept) == len(parsed.random):
        return formula
    return f"{parsed.response} ~ {parsed.fixed_rhs} + {' + '.join(kept)}"
