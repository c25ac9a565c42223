"""Source sets: enumeration, the fixed-budget split, and canonical names.

A source set is a sorted tuple of ISO 639-3 codes.  Generators (config syntax in
``experiments/README.md``):

* ``all K-sets of [a, b, c, ...]``: every K-combination, in lexicographic order of the sorted
  pool (``itertools.combinations``), so the 35 triples of 7 languages always come in one order;
* ``all A..B-sets of [...]``: every combination of each size A..B, sizes ascending;
* ``sizes A..B of [a, b, c, ...]``: the nested prefixes of the list *as given* (``[a]``, ``[a, b]``,
  ...), the design of a number-of-sources curve where each set adds one language.

Budget split (:func:`split_budget`): a total of N examples over a set of k languages gives each
``N // k``; the ``N % k`` remaining examples go one each to the first languages of the set in
sorted order.  The counts sum to N exactly, and the split depends on nothing but N and the set.
"""
from __future__ import annotations

import itertools
import re

from ...errors import ConfigError

_ALL = re.compile(r"^\s*all\s+(\d+)(?:\s*\.\.\s*(\d+))?\s*-?\s*sets?\s+of\s+\[(.*)\]\s*$", re.I)
_SIZES = re.compile(r"^\s*sizes\s+(\d+)\s*\.\.\s*(\d+)\s+of\s+\[(.*)\]\s*$", re.I)


def canonical(languages) -> tuple[str, ...]:
    return tuple(sorted(dict.fromkeys(languages)))


def set_name(languages) -> str:
    """``ara+deu+eng``: the set's languages in sorted order."""
    return "+".join(canonical(languages))


def combinations(pool, k: int) -> list[tuple[str, ...]]:
    pool = canonical(pool)
    if not 1 <= k <= len(pool):
        raise ValueError(f"cannot choose {k} of {len(pool)} languages")
    return [tuple(c) for c in itertools.combinations(pool, k)]


def prefixes(ordered, low: int, high: int) -> list[tuple[str, ...]]:
    ordered = list(dict.fromkeys(ordered))
    if not 1 <= low <= high <= len(ordered):
        raise ValueError(f"sizes {low}..{high} need 1 <= {low} <= {high} <= {len(ordered)} languages")
    return [canonical(ordered[:k]) for k in range(low, high + 1)]


def split_budget(total: int, languages) -> dict[str, int]:
    """Examples per language for a fixed total (module docstring); raises if total < len(set)."""
    langs = canonical(languages)
    if not langs:
        raise ValueError("empty source set")
    if total < len(langs):
        raise ValueError(f"a budget of {total} examples cannot be split over {len(langs)} sources "
                         f"({set_name(langs)}): each needs at least one")
    base, extra = divmod(int(total), len(langs))
    return {lang: base + (1 if i < extra else 0) for i, lang in enumerate(langs)}


def parse_generator(text: str, normalise, fail):
    """Expand one generator string into sets; ``normalise(code_list, where)`` gives ISO codes."""
    m = _ALL.match(text)
    if m:
        low = int(m[1])
        high = int(m[2]) if m[2] else low
        pool = normalise([s.strip() for s in m[3].split(",") if s.strip()])
        if len(set(pool)) < len(pool):
            fail("a language is listed twice in the pool")
        if not 1 <= low <= high <= len(pool):
            fail(f"set sizes {low}..{high} need 1 <= size <= {len(pool)} (the pool size)")
        return [c for k in range(low, high + 1) for c in combinations(pool, k)]
    m = _SIZES.match(text)
    if m:
        pool = normalise([s.strip() for s in m[3].split(",") if s.strip()])
        low, high = int(m[1]), int(m[2])
        if not 1 <= low <= high <= len(pool):
            fail(f"sizes {low}..{high} need 1 <= {low} <= {high} <= {len(pool)} (the list length)")
        return prefixes(pool, low, high)
    return None


def parse_sources(entries, normalise, fail_at) -> list[tuple[str, ...]]:
    """The study's ``sources:`` entries as a list of canonical sets (singletons for plain codes).

    ``entries``: a code, a list whose items are codes, lists (sets), generator strings, or mappings
    ``{all: K | [A, B], of: [...]}`` / ``{sizes: [A, B], of: [...]}``.  ``normalise(codes, field)``
    returns ISO 639-3 codes; ``fail_at(field, message)`` raises.  Duplicate sets are dropped (first
    occurrence kept); the order is the order given.
    """
    if isinstance(entries, str):
        entries = [entries]
    if not isinstance(entries, list) or not entries:
        fail_at("sources", "must be a non-empty list of languages, sets of languages or set generators")
    out: list[tuple[str, ...]] = []
    for i, entry in enumerate(entries):
        where = f"sources[{i}]"

        def fail(message, where=where):
            fail_at(where, message)

        if isinstance(entry, str) and ("[" in entry):
            sets = parse_generator(entry, lambda codes: normalise(codes, where), fail)
            if sets is None:
                fail(f"cannot read {entry!r}: use 'all K-sets of [a, b, ...]', 'all A..B-sets of [...]' "
                     "or 'sizes A..B of [a, b, ...]'")
        elif isinstance(entry, (str, int)) and not isinstance(entry, bool):
            sets = [tuple(normalise([str(entry)], where))]
        elif isinstance(entry, list):
            if not entry:
                fail("empty source set")
            if any(not isinstance(x, str) for x in entry):
                fail("a source set must be a list of language codes")
            codes = normalise(entry, where)
            if len(set(codes)) < len(codes):
                fail(f"a language appears twice in the set {entry}")
            sets = [canonical(codes)]
        elif isinstance(entry, dict):
            keys = set(entry)
            if keys not in ({"all", "of"}, {"sizes", "of"}):
                fail("a generator mapping is {all: K or [A, B], of: [...]} or {sizes: [A, B], of: [...]}")
            kind = "all" if "all" in entry else "sizes"
            spec = entry[kind]
            low, high = (spec, spec) if isinstance(spec, int) else tuple(spec) if isinstance(spec, list) \
                and len(spec) == 2 else (None, None)
            if not all(isinstance(x, int) and not isinstance(x, bool) for x in (low, high)):
                fail(f"'{kind}' must be a size or [smallest, largest]")
            pool = entry["of"]
            if not isinstance(pool, list) or not pool:
                fail("'of' must be a non-empty list of language codes")
            text = (f"all {low}..{high}-sets of [{', '.join(map(str, pool))}]" if kind == "all"
                    else f"sizes {low}..{high} of [{', '.join(map(str, pool))}]")
            sets = parse_generator(text, lambda codes: normalise(codes, where), fail)
        else:
            fail(f"cannot read {entry!r} as a language, a set or a generator")
        for s in sets:
            if s not in out:
                out.append(s)
    return out


def check_budget(total, sets, fail_at) -> int | None:
    if total is None:
        return None
    if isinstance(total, bool) or not isinstance(total, int) or total < 1:
        fail_at("source_budget", f"must be a positive integer, got {total!r}")
    for s in sets:
        if total < len(s):
            fail_at("source_budget", f"a budget of {total} examples cannot be split over the {len(s)} "
                                     f"sources of {set_name(s)}: each needs at least one")
    return total


__all__ = ["canonical", "set_name", "combinations", "prefixes", "split_budget", "parse_sources",
           "check_budget", "ConfigError"]
