"""Corpus measures of morphological similarity from Universal Dependencies annotation (PUD).

The 21 PUD treebanks translate the same 1000 sentences, so their annotation can be compared on
equal content.  Per language, over all syntactic words (integer CoNLL-U IDs; multiword-token
ranges and empty nodes are skipped):

*morphology profile*
    for every UPOS, the distribution of the FEATS ``Feature=Value`` pairs its words carry: each
    word adds 1 to each of its pairs (a multi-valued ``Case=Nom,Acc`` counts as the one value
    ``Nom,Acc``), or 1 to the event ``<none>`` when it has no features.  The ``<none>`` event keeps
    profiles of treebanks with little or no FEATS annotation (Japanese, Chinese, Thai PUD) defined
    and lets "this part of speech is not inflected" count as a difference.
*features per token*
    the number of ``Feature=Value`` pairs divided by the number of words (punctuation included).

``morphological_distance_ud`` of two languages = sum over the UPOS tags both languages use of
``w(u) * JSD(P_s(.|u), P_t(.|u))``, where JSD is the Jensen-Shannon divergence with base-2 logs
(0 = identical distributions, 1 = disjoint) and ``w(u)`` is the mean relative frequency of ``u`` in
the two treebanks, renormalised over the shared tags.  Conditioning on UPOS keeps differences in
part-of-speech frequencies out of the measure.  ``feats_per_token_diff`` = ``|f_s - f_t|``.

Caveat: FEATS inventories also reflect annotation choices of each treebank team, not only the
languages; the measure is best read as "morphological annotation distance on parallel text".
Languages without a PUD treebank get NaN.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

NONE_EVENT = "<none>"
COLUMNS = (
    "morphological_distance_ud",
    "feats_per_token_diff",
    "feats_per_token_source",
    "feats_per_token_target",
)


@dataclass
class MorphologyProfile:
    """Per-UPOS feature=value counts, UPOS word counts and FEATS totals of one treebank."""

    events: dict[str, Counter] = field(default_factory=dict)
    upos_counts: Counter = field(default_factory=Counter)
    n_words: int = 0
    n_feature_pairs: int = 0

    @property
    def feats_per_token(self) -> float:
        return self.n_feature_pairs / self.n_words if self.n_words else float("nan")


def morphology_profile(sentences) -> MorphologyProfile:
    """Profile of parsed CoNLL-U sentences (iterables of ``conllu`` tokens / dicts)."""
    profile = MorphologyProfile()
    for sentence in sentences:
        for token in sentence:
            if not isinstance(token["id"], int):  # multiword range (1, '-', 2) or empty node
                continue
            upos = token["upos"] or "_"
            feats = token["feats"] or {}
            counter = profile.events.setdefault(upos, Counter())
            profile.upos_counts[upos] += 1
            profile.n_words += 1
            if feats:
                for name, value in feats.items():
                    if isinstance(value, (set, frozenset, list, tuple)):
                        value = ",".join(sorted(value))
                    counter[f"{name}={value}"] += 1
                    profile.n_feature_pairs += 1
            else:
                counter[NONE_EVENT] += 1
    return profile


def jensen_shannon(p: Counter, q: Counter) -> float:
    """Jensen-Shannon divergence (base 2) of two count distributions."""
    keys = sorted(set(p) | set(q))
    a = np.array([p.get(k, 0) for k in keys], dtype=float)
    b = np.array([q.get(k, 0) for k in keys], dtype=float)
    if a.sum() == 0 or b.sum() == 0:
        return float("nan")
    a /= a.sum()
    b /= b.sum()
    m = (a + b) / 2

    def kl(x):
        nz = x > 0
        return float(np.sum(x[nz] * np.log2(x[nz] / m[nz])))

    return max(0.0, (kl(a) + kl(b)) / 2)


def profile_distance(source: MorphologyProfile, target: MorphologyProfile) -> float:
    """UPOS-weighted Jensen-Shannon divergence of two profiles (see the module docstring)."""
    shared = sorted(set(source.upos_counts) & set(target.upos_counts))
    if not shared or not source.n_words or not target.n_words:
        return float("nan")
    weights = np.array(
        [(source.upos_counts[u] / source.n_words + target.upos_counts[u] / target.n_words) / 2 for u in shared]
    )
    divergences = np.array([jensen_shannon(source.events[u], target.events[u]) for u in shared])
    return float(np.sum(weights * divergences) / weights.sum())


def ud_morphology_from_profiles(profiles: dict[str, MorphologyProfile], pairs) -> pd.DataFrame:
    """Pair measures for ``pairs`` from precomputed ``{code: profile}`` (codes used verbatim)."""
    from .lexical import _pairs_frame

    frame = _pairs_frame(pairs, normalise=False)
    cache: dict[tuple[str, str], float] = {}
    dist, diff, fs, ft = [], [], [], []
    for s, t in zip(frame["source"], frame["target"]):
        ps, pt = profiles.get(s), profiles.get(t)
        fs.append(ps.feats_per_token if ps else np.nan)
        ft.append(pt.feats_per_token if pt else np.nan)
        if ps is None or pt is None:
            dist.append(np.nan)
            diff.append(np.nan)
            continue
        key = (min(s, t), max(s, t))
        if key not in cache:
            cache[key] = profile_distance(profiles[key[0]], profiles[key[1]])
        dist.append(cache[key])
        diff.append(abs(ps.feats_per_token - pt.feats_per_token))
    frame["morphological_distance_ud"] = np.asarray(dist, dtype=float)
    frame["feats_per_token_diff"] = np.asarray(diff, dtype=float)
    frame["feats_per_token_source"] = np.asarray(fs, dtype=float)
    frame["feats_per_token_target"] = np.asarray(ft, dtype=float)
    return frame


def ud_morphology_features(pairs, mirror=None) -> pd.DataFrame:
    """Morphological distance from PUD annotation for language pairs.

    Returns ``source``, ``target`` (ISO 639-3) and :data:`COLUMNS`, in the order of ``pairs``;
    NaN where a language has no PUD treebank.
    """
    from .corpora import corpora_config, load_pud_treebank
    from .lexical import _pairs_frame

    frame = _pairs_frame(pairs)
    available = set(corpora_config()["pud"]["treebanks"])
    wanted = sorted((set(frame["source"]) | set(frame["target"])) & available)
    profiles = {lang: morphology_profile(load_pud_treebank(lang, mirror)) for lang in wanted}
    return ud_morphology_from_profiles(profiles, frame)
