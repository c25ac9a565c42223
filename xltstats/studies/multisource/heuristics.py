"""Source-set selection heuristics that use no information about the target (Lim et al. 2024).

For a set C of source languages:

* ``pretraining_size``: Σ_{L∈C} pre-training data of L in the model's corpus (XLM-R: CC-100 GiB;
  mT5: mC4 tokens, from the tables xltstats ships).  A language absent from the table was not in
  pre-training and counts 0.
* ``vocab_coverage``: |∪_{L∈C} V_L| / |∪_{L∈pool} V_L| where V_L is the set of token ids a tokenizer
  (any Hugging Face tokenizer) produces on L's training text.
* ``diversity_<kind>``: Σ_{i<j} (1 − cos(v_i, v_j)) over the set's lang2vec vectors, kind ∈
  ``syntax`` (``syntax_knn``), ``phonology`` (``phonology_knn``), ``inventory`` (``inventory_knn``),
  ``family`` (``fam``), ``geography`` (``geo``): the kNN-imputed URIEL sets lang2vec 1.1.2 ships
  (the paper's exact feature sets are not verified).  ``diversity_lm`` does the same on vectors the
  user passes (e.g. a mean sentence embedding per language from a hidden-state dump).
* ``script_diversity``: the number of distinct scripts (CLDR's likely script) in the set; for
  triples this is the paper's Case 1 (all one script), 2, 3 (all different).

A language without a vector (not in URIEL, or all-zero ``fam`` for isolates), without a script, or
without text is an error naming the language and the vector, raised before any set is scored.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ...errors import InputError

DIVERSITY_KINDS = {"syntax": "syntactic_distance", "phonology": "phonological_distance",
                   "inventory": "inventory_distance", "family": "genetic_distance",
                   "geography": "geographic_distance"}
VECTOR_NAMES = {"syntax": "syntax_knn", "phonology": "phonology_knn", "inventory": "inventory_knn",
                "family": "fam", "geography": "geo"}
HEURISTICS = ("pretraining_size", "vocab_coverage", *(f"diversity_{k}" for k in DIVERSITY_KINDS),
              "diversity_lm", "script_diversity")


def uriel_vectors(languages, kind: str, missing: str = "error") -> dict[str, np.ndarray]:
    """Unit lang2vec vectors of one kind; InputError naming a language that lacks it
    (``missing="nan"``: that language is left out of the mapping instead)."""
    from ...features import uriel

    if kind not in DIVERSITY_KINDS:
        raise InputError(f"unknown diversity kind {kind!r}; known: {', '.join(DIVERSITY_KINDS)}")
    unit = uriel.unit_vectors(DIVERSITY_KINDS[kind])
    index = {c: i for i, c in enumerate(uriel.uriel_languages())}
    out = {}
    for lang in languages:
        if lang not in index:
            if missing == "nan":
                continue
            raise InputError(f"language {lang!r} has no lang2vec '{VECTOR_NAMES[kind]}' vector (URIEL does "
                             f"not cover it) for heuristic diversity_{kind}; "
                             f"{uriel.unknown_language_message(lang)}")
        v = np.asarray(unit[index[lang]], dtype=np.float64)
        if not np.isfinite(v).all():
            if missing == "nan":
                continue
            raise InputError(f"language {lang!r} has an empty lang2vec '{VECTOR_NAMES[kind]}' vector "
                             f"(all zeros) for heuristic diversity_{kind}")
        out[lang] = v
    return out


def pairwise_diversity(vectors: dict[str, np.ndarray], languages) -> float:
    """Σ_{i<j} (1 − cos(v_i, v_j)); NaN when a language has no vector."""
    langs = list(languages)
    if any(lang not in vectors for lang in langs):
        return math.nan
    total = 0.0
    for i, a in enumerate(langs):
        for b in langs[i + 1:]:
            u, v = vectors[a], vectors[b]
            total += 1.0 - float(u @ v) / (np.linalg.norm(u) * np.linalg.norm(v))
    return total


def pretraining_sizes(languages, model: str = "xlm-r") -> dict[str, float]:
    from ...features.data_sizes import model_table_key, pretraining_table

    key = model_table_key(model)
    table = pretraining_table(key)
    column = "size_gib" if "size_gib" in table.columns else None
    if column is None:
        table = table.assign(_size=table["tokens_billion"] + table["romanised_tokens_billion"].fillna(0.0))
        column = "_size"
    sizes = dict(zip(table["iso639_3"].astype(str), table[column].astype(float)))
    from ...features.data_sizes import _INDIVIDUAL_TO_MACRO

    out = {}
    for lang in languages:
        value = sizes.get(lang, sizes.get(_INDIVIDUAL_TO_MACRO.get(lang, ""), 0.0))
        out[lang] = 0.0 if value != value else float(value)
    return out


def scripts(languages, missing: str = "error") -> dict[str, str]:
    from ...features.data_sizes import likely_script

    out = {}
    for lang in languages:
        script = likely_script(lang)
        if script is None:
            if missing == "nan":
                continue
            raise InputError(f"language {lang!r} has no known script (CLDR) for heuristic script_diversity")
        out[lang] = script
    return out


def token_vocabularies(texts: dict[str, list[str]], tokenizer) -> dict[str, frozenset]:
    """Token ids ``tokenizer`` (a HF tokenizer or a path/hub id) uses on each language's text."""
    if isinstance(tokenizer, str):
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(tokenizer)
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    out = {}
    for lang, lines in texts.items():
        if not lines:
            raise InputError(f"language {lang!r} has no text for heuristic vocab_coverage")
        ids = set()
        for start in range(0, len(lines), 512):
            for seq in tokenizer(list(lines[start:start + 512]), add_special_tokens=False)["input_ids"]:
                ids.update(seq)
        out[lang] = frozenset(ids - special)
    return out


def score_sets(sets, pool=None, *, heuristics=None, model: str = "xlm-r", vocabularies=None,
               lm_vectors=None, missing: str = "error") -> pd.DataFrame:
    """One row per set (``set``, ``set_size``, one column per heuristic).

    ``pool``: the candidate languages (default: the union of the sets), used by vocab_coverage's
    denominator.  ``heuristics``: names from :data:`HEURISTICS` (default: every one whose inputs
    are given: vocab_coverage needs ``vocabularies`` (from :func:`token_vocabularies`),
    diversity_lm needs ``lm_vectors`` {language: vector}, pretraining_size a ``model`` with a
    pre-training table).  Inputs are checked for every language
    before any set is scored; ``missing="nan"`` instead leaves the heuristic missing (NaN) for
    every set holding a language that lacks the input (such sets cannot be chosen).
    """
    if missing not in ("error", "nan"):
        raise InputError(f"missing must be 'error' or 'nan', got {missing!r}")
    from .sets import canonical, set_name

    sets = [canonical(s) for s in sets]
    if not sets:
        raise InputError("no source sets to score")
    for s in sets:
        if not s:
            raise InputError("empty source set")
    pool = canonical(pool) if pool is not None else canonical(lang for s in sets for lang in s)
    from ...features.data_sizes import NO_TABLE

    # a model without a pre-training table (features.data_sizes.pretraining_model_for gives "none"
    # or "mbert") gets no pretraining_size, rather than another model's corpus sizes
    has_table = str(model) not in (NO_TABLE, "mbert")
    if heuristics is None:
        heuristics = [h for h in HEURISTICS if (h != "vocab_coverage" or vocabularies is not None)
                      and (h != "diversity_lm" or lm_vectors is not None)
                      and (h != "pretraining_size" or has_table)]
    unknown = [h for h in heuristics if h not in HEURISTICS]
    if unknown:
        raise InputError(f"unknown heuristic {unknown[0]!r}; known: {', '.join(HEURISTICS)}")
    columns: dict[str, list] = {"set": [set_name(s) for s in sets], "set_size": [len(s) for s in sets]}
    for h in heuristics:  # inputs first, for every language
        if h == "pretraining_size":
            if not has_table:
                if missing != "nan":
                    raise InputError(f"heuristic pretraining_size needs a model with a pre-training "
                                     f"table (xlm-r: CC-100, mt5: mC4), got {model!r}")
                columns[h] = [float("nan")] * len(sets)  # never another model's corpus sizes
                continue
            sizes = pretraining_sizes(pool, model)
            columns[h] = [sum(sizes[lang] for lang in s) for s in sets]
        elif h == "vocab_coverage":
            _need_every_language(vocabularies, pool, h, "a tokenizer and each language's training text",
                                 "text")
            everything = frozenset().union(*(vocabularies[lang] for lang in pool))
            columns[h] = [len(frozenset().union(*(vocabularies[lang] for lang in s))) / len(everything)
                          if everything else math.nan for s in sets]
        elif h == "diversity_lm":
            _need_every_language(lm_vectors, pool, h, "a vector per language (lm_vectors)",
                                 "LM-embedding vector")
            vecs = {lang: np.asarray(lm_vectors[lang], dtype=np.float64) for lang in pool}
            columns[h] = [pairwise_diversity(vecs, s) for s in sets]
        elif h == "script_diversity":
            sc = scripts(pool, missing)
            columns[h] = [len({sc[lang] for lang in s}) if all(lang in sc for lang in s) else math.nan
                          for s in sets]
        else:
            vecs = uriel_vectors(pool, h.removeprefix("diversity_"), missing)
            columns[h] = [pairwise_diversity(vecs, s) for s in sets]
    return pd.DataFrame(columns)


def _need_every_language(per_language, pool, heuristic: str, needs: str, what: str) -> None:
    """A heuristic computed from a per-language input: the input given, and an entry for every
    language of the pool (else an error naming the first language without one)."""
    if per_language is None:
        raise InputError(f"heuristic {heuristic} needs {needs}")
    lacking = [lang for lang in pool if lang not in per_language]
    if lacking:
        raise InputError(f"language {lacking[0]!r} has no {what} for heuristic {heuristic}")
