"""Loaders for the LangRank transfer-language tables (Lin et al. 2019): POS, DEP, EL, MT.

Source files.  The same four tables are shipped by NLPerf (``data/data_tsf{pos,parsing,el,mt}.csv``)
and by URIELPlus-LangRank (``experiment_csvs/URIEL/{pos,dep,el,mt}.csv``).  Compared cell by cell
they hold the same rows and values: ``pos`` and ``dep`` are byte-identical, ``el`` differs only in
using ISO 639-3 language codes where NLPerf uses ISO 639-1, and ``mt`` only in a stray space in
one NLPerf header.  The registry therefore pins the URIELPlus-LangRank ``URIEL/`` files: same
content, cleaner codes and headers.  (Its ``URIEL+/*_updated.csv`` files replace the URIEL
distances with URIEL+ ones and are not used here.)

Orientation.  Each row is a (task language, transfer language) pair: ``target`` is the
low-resource task language, ``source`` the transfer language.  For ``mt`` the task is translating
the task language ("Source lang" in the file) into English ("Target lang", always ``eng``): the task
language is ``target`` here and ``mt_output_language`` keeps ``eng``.

Scores and metrics.  ``pos``: tagging accuracy (fraction); ``dep``: labelled attachment score
(percent); ``el``: entity-linking accuracy (fraction); ``mt``: BLEU in points (0-100: the file stores BLEU/100, multiplied back here).
14 POS rows (8 with target ``hsb``, 6 with ``hy``) have the score ``nan`` upstream and are left out.

Examples.  ``n_source_examples`` is the transfer language's dataset size as shipped ("Transfer
lang dataset size").  POS, DEP and EL are counted as zero-shot (``n_target_examples`` = 0); MT
systems were trained on the task language's data together with the transfer language's, so
``n_target_examples`` is "Target lang dataset size" there.  ``seed`` is 0 (one run per pair).

Shipped covariates, renamed to snake case: ``word_overlap`` (``subword_overlap`` for MT,
``entity_overlap`` for EL), ``transfer_dataset_size``, ``target_dataset_size``,
``transfer_target_size_ratio``, ``transfer_ttr``, ``target_ttr``, ``ttr_distance``, the URIEL
distances ``uriel_genetic`` ... ``uriel_geographic`` (prefixed so that they do not collide with
the distances xltstats computes itself), for MT also ``uriel_*_to_output`` (the ``*_2`` columns:
distances between the task language and English), and LangRank's ``langrank_rank`` /
``langrank_relevance`` (rank of the transfer language for the task language and its relevance
level).
"""
from __future__ import annotations

import pandas as pd

from ..errors import InputError
from ._common import finish, read_csv
from .registry import dataset_info

TASKS = ("pos", "dep", "el", "mt")
_URIEL = ["GENETIC", "SYNTACTIC", "FEATURAL", "PHONOLOGICAL", "INVENTORY", "GEOGRAPHIC"]

#: Per task: (column of the task language, column of the transfer language, score column,
#: relevance-level column).
_LAYOUT = {
    "pos": ("Task lang", "Aux lang", "Accuracy", "Accuracy level"),
    "dep": ("Target lang", "Transfer lang", "Accuracy", "Accuracy level"),
    "el": ("Target lang", "Transfer lang", "Accuracy", "Accuracy level"),
    "mt": ("Source lang", "Transfer lang", "BLEU", "BLEU level"),
}

_RENAME = {
    "Overlap word-level": "word_overlap",
    "Word overlap": "word_overlap",
    "Overlap subword-level": "subword_overlap",
    "Entity overlap": "entity_overlap",
    "Transfer lang dataset size": "transfer_dataset_size",
    "Target lang dataset size": "target_dataset_size",
    "Transfer over target size ratio": "transfer_target_size_ratio",
    "Transfer lang TTR": "transfer_ttr",
    "Target lang TTR": "target_ttr",
    "Transfer target TTR distance": "ttr_distance",
    "Rank": "langrank_rank",
    **{u: f"uriel_{u.lower()}" for u in _URIEL},
    **{f"{u}_2": f"uriel_{u.lower()}_to_output" for u in _URIEL},
}


def load_langrank(task: str, mirror=None) -> pd.DataFrame:
    """The LangRank table of one task (``pos``, ``dep``, ``el`` or ``mt``) as a results table."""
    if task not in TASKS:
        raise ValueError(f"LangRank task must be one of {TASKS}, not {task!r}")
    name = f"langrank-{task}"
    info = dataset_info(name)
    raw, path = read_csv(name, info["main_file"], mirror, keep_default_na=False, na_values=[""])
    raw.columns = [c.strip() for c in raw.columns]
    target_col, source_col, score_col, level_col = _LAYOUT[task]
    missing = [c for c in (target_col, source_col, score_col) if c not in raw.columns]
    if missing:
        raise InputError(f"missing column(s) {missing}", file=path)

    # Upstream writes a failed run's score as "nan": such rows carry no result and are left out.
    failed = raw[score_col].astype(str).str.strip().str.lower().isin(["nan", ""])
    score = pd.to_numeric(raw[score_col].where(~failed), errors="coerce")
    bad = score.isna() & ~failed
    if bad.any():
        i = int(bad.to_numpy().argmax())
        raise InputError(f"score {raw[score_col].iloc[i]!r} is not a number", file=path,
                         row=i + 1, column=score_col)
    raw = raw[~failed].reset_index(drop=True)
    score = score[~failed].reset_index(drop=True)
    sizes = raw["Transfer lang dataset size"]
    out = pd.DataFrame({
        "model": info["model"],
        "task": info["task"],
        "source": raw[source_col].astype(str),
        "target": raw[target_col].astype(str),
        "score": score.astype(float) * (100.0 if task == "mt" else 1.0),
        "metric": info["metric"],
        "n_source_examples": sizes.round().astype("Int64"),
        "n_target_examples": (raw["Target lang dataset size"].round().astype("int64")
                              if task == "mt" else 0),
        "seed": 0,
    })
    if task == "mt":
        out["mt_output_language"] = raw["Target lang"].astype(str)
    out["langrank_relevance"] = raw[level_col].astype("Int64")
    for col, new in _RENAME.items():
        if col in raw.columns:
            out[new] = raw[col].astype("Int64") if new == "langrank_rank" else raw[col].astype(float)
    return finish(out, path)
