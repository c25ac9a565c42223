"""Unordered (symmetric) language pairs: ``pairs: unordered`` in the fit configuration.

Some scores do not depend on the order of the two languages (bitext retrieval between two
languages, a similarity of their representations): ``score(a, b) = score(b, a)`` and there is no
source and no target.  A fit of such a table (``pairs: unordered``):

* **canonicalises** every pair: the two codes are sorted (``source < target``), and the columns
  that belong to one side (``source_X``/``target_X``, ``X_source``/``X_target``,
  ``n_source_examples``/``n_target_examples``) are swapped with them.  Rows that then share their
  row key (the same pair given in both orders) are **averaged**: the mean score, with a note that
  counts them and gives the largest difference between the two orders.  Multi-source rows are an
  error.
* **symmetrises** the directional columns: a column whose name has the word ``source`` or
  ``target`` (``source_pretrain_share``, ``target_in_pretraining``, ``feats_per_token_source``)
  is replaced by the ``min`` and the ``max`` of its two values, one for each language, named
  after the word is taken out (``pretrain_share_min``/``pretrain_share_max``,
  ``in_pretraining_min``/``in_pretraining_max``).  The other side's value comes from the partner
  column (``target_pretrain_share`` for ``source_pretrain_share``) or, for a feature xltstats
  computes, from the feature of the reversed pair; a dataset's own column with no partner cannot
  be symmetrised and is left out with a note.  min and max together are exactly what the
  unordered pair tells of the two values.
* fits one random effect per language, ``(1 | mm(source, target))``: a multi-membership factor
  that both languages of a pair load on (:mod:`xltstats.models.formula`); a written formula may
  not use ``source`` or ``target`` on their own, nor directional columns;
* cross-validates by held-out language (``leave-one-language-out``: a fold holds out every pair
  with one of its languages) instead of by source or target;
* clusters the OLS standard errors by language (``ols.cov_type: dyadic``) instead of by source
  and target;
* ranks no sources (there are none) and its report says why.

``pairs: auto`` (the default) fits ordered pairs unless the table looks unordered -- no pair in
both orders although most languages are both sources and targets -- and then stops and asks for
``pairs: unordered`` or ``pairs: ordered``.
"""
from __future__ import annotations

import pandas as pd

from ..errors import ConfigError

#: Fewer distinct pairs than this are never taken for an unordered table.
DETECT_MIN_PAIRS = 20
#: Share of the languages that must be both a source and a target for the table to look unordered.
DETECT_MIN_BOTH = 0.5
SIDES = ("source", "target")


def looks_unordered(data: pd.DataFrame) -> str | None:
    """Why ``data`` looks like a table of unordered pairs, or None when it does not."""
    single = data[(data["source"] != "mul") & (data["source"] != data["target"])]
    pairs = set(zip(single["source"].astype(str), single["target"].astype(str)))
    if len(pairs) < DETECT_MIN_PAIRS or any((t, s) in pairs for s, t in pairs):
        return None
    sources, targets = {s for s, _ in pairs}, {t for _, t in pairs}
    both, languages = sources & targets, sources | targets
    if len(both) < DETECT_MIN_BOTH * len(languages):
        return None
    return (f"none of its {len(pairs)} language pairs appears in both orders, although {len(both)} of its "
            f"{len(languages)} languages are both a source and a target")


def resolve_pairs(config, data: pd.DataFrame) -> str:
    """``ordered`` or ``unordered`` for this table (``auto`` asks for confirmation, see the module)."""
    if config.pairs != "auto":
        return config.pairs
    reason = looks_unordered(data)
    if reason:
        raise ConfigError(f"the table looks like unordered (symmetric) pairs: {reason}.  If a score does not "
                          "depend on the order of the two languages, set 'pairs: unordered' in the fit config "
                          "(one effect per language, cross-validation by held-out language, no source ranking); "
                          "if it does, set 'pairs: ordered'")
    return "ordered"


def directional_stem(column: str) -> tuple[str, str] | None:
    """``(side, stem)`` of a column that belongs to one language of the pair
    (``target_in_pretraining`` -> ``("target", "in_pretraining")``), None for any other."""
    words = str(column).split("_")
    sides = [w for w in words if w in SIDES]
    if len(sides) != 1 or len(words) < 2:
        return None
    return sides[0], "_".join(w for w in words if w not in SIDES)


def partner(column: str) -> str | None:
    """The other side's column: ``source_pretrain_share`` -> ``target_pretrain_share``."""
    found = directional_stem(column)
    if found is None:
        return None
    other = "target" if found[0] == "source" else "source"
    return "_".join(other if w == found[0] else w for w in str(column).split("_"))


def canonicalise(data: pd.DataFrame, notes: list[str], *, average: bool = True) -> pd.DataFrame:
    """Pairs written with sorted codes, side columns swapped with them; rows of one pair given in
    both orders averaged (``average``; without it, as for new pairs to predict, every row stays)."""
    from ..results import key_columns

    if (data["source"] == "mul").any():
        raise ConfigError("'pairs: unordered' cannot take multi-source rows (source 'mul'): a set of source "
                          "languages has no unordered partner")
    data = data.copy()
    swap = (data["source"].astype(str) > data["target"].astype(str)).to_numpy()
    if swap.any():
        swapped = {"source": "target"}
        for column in data.columns:
            other = partner(column)
            if other is not None and other in data.columns:
                swapped[column] = other
        for column, other in list(swapped.items()):
            swapped[other] = column
        original = data.copy()
        for column, other in swapped.items():
            data.loc[swap, column] = original.loc[swap, other].to_numpy()
    if not average:
        return data.reset_index(drop=True)
    keys = [c for c in key_columns(data) if c in data.columns]
    repeated = data.duplicated(keys, keep=False)
    if repeated.any():
        groups = data[repeated].groupby(keys, sort=True, dropna=False)["score"]
        spread = float((groups.max() - groups.min()).max())
        n_pairs = groups.ngroups
        mean = data.groupby(keys, sort=False, dropna=False)["score"].transform("mean")
        data = data.assign(score=mean).drop_duplicates(keys, keep="first").reset_index(drop=True)
        notes.append(f"pairs: unordered: {n_pairs} pair(s) were given in both orders; each is one pair whose "
                     f"score is the mean of the two (largest difference between the orders: {spread:.4g})")
    return data.reset_index(drop=True)


def symmetrise(data: pd.DataFrame, used: list[str], notes: list[str], reversed_values=None,
               computed=frozenset()) -> tuple[pd.DataFrame, list[str], dict[str, list[str]]]:
    """Directional columns of ``used`` replaced by their ``<stem>_min`` and ``<stem>_max``.

    ``reversed_values(column)`` gives a column xltstats computes (one of ``computed``) for the
    reversed pairs, aligned with ``data`` (the source side of a target column).  Returns the
    table, the new list of used columns and a map from each replaced column to its new ones.
    """
    renamed: dict[str, list[str]] = {}
    out, new_used = data.copy(), []
    for column in used:
        found = directional_stem(column)
        if found is None:
            new_used.append(column)
            continue
        side, stem = found
        names = [f"{stem}_min", f"{stem}_max"]
        if names[0] in out.columns and names[0] in new_used:  # its partner already made them
            renamed[column] = names
            continue
        other = partner(column)
        if other in out.columns and pd.to_numeric(out[other], errors="coerce").notna().any():
            values = pd.to_numeric(out[other], errors="coerce")
        elif column in computed and reversed_values is not None:
            values = pd.to_numeric(reversed_values(column), errors="coerce")
        else:
            notes.append(f"pairs: unordered: {column} belongs to the {side} language and the data has no "
                         f"{other} to pair it with; it cannot be made symmetric and was left out")
            continue
        mine = pd.to_numeric(out[column], errors="coerce")
        both = pd.concat([mine.rename("a"), values.rename("b")], axis=1)
        out[names[0]] = both.min(axis=1, skipna=False)
        out[names[1]] = both.max(axis=1, skipna=False)
        renamed[column] = names
        new_used += names
    if renamed:
        shown = ", ".join(f"{c} -> {' and '.join(n)}" for c, n in renamed.items())
        notes.append(f"pairs: unordered: directional columns replaced by the min and max of the two "
                     f"languages' values ({shown})")
    return out, list(dict.fromkeys(new_used)), renamed


def check_unordered_formula(formula: str) -> None:
    """A written formula of an unordered fit may not use the order of the two languages."""
    from ..models.formula import multi_membership_members, parse_formula, referenced_columns

    parsed = parse_formula(formula)
    for _expr, group in parsed.random:
        if multi_membership_members(group) is None and set(g.strip() for g in group.split(":")) & set(SIDES):
            raise ConfigError(f"'mixed.formula': with 'pairs: unordered', ({_expr} | {group}) depends on which "
                              "language of a pair is written first; use (1 | mm(source, target)), one effect "
                              "per language")
    names = referenced_columns(formula, pd.DataFrame(columns=_names_in(formula)))
    directional = [c for c in names if c not in SIDES and directional_stem(c) is not None]
    if directional:
        stem = directional_stem(directional[0])[1]
        raise ConfigError(f"'mixed.formula': with 'pairs: unordered', {directional[0]} belongs to one language "
                          f"of the pair; use its symmetric {stem}_min / {stem}_max")


def _names_in(formula: str) -> list[str]:
    import io
    import tokenize

    return [t.string for t in tokenize.generate_tokens(io.StringIO(formula).readline) if t.type == tokenize.NAME]


def unordered_formula(formula: str) -> str:
    """The ordered default ``formula`` made unordered: its ``(1 | source)`` and ``(1 | target)``
    become one effect per language, ``(1 | mm(source, target))``; its other terms stay."""
    from ..models.formula import parse_formula

    parsed = parse_formula(formula)
    random = ["(1 | mm(source, target))"] + [f"({expr} | {group})" for expr, group in parsed.random
                                               if group not in SIDES]
    return f"{parsed.response} ~ {parsed.fixed_rhs} + {' + '.join(random)}"
