"""Loader for ProxyLM's MASSIVE intent-classification table (Anugraha et al. 2025).

``src/proxy_regressor/csv_datasets/intent_experiments.csv`` has one row per (source locale,
target locale) pair of 51 MASSIVE locales (2,601 pairs) and one accuracy column (percent) per
model: ``aya``, ``llama3``, ``smollm_135m``, ``smollm_360m``, ``bloomz_560m``.  The loader melts
the five columns into the ``model`` column (hyphenated: ``smollm-135m``), before the Chinese locales are merged (see below).

Language codes are MASSIVE's (ISO 639-1 plus ``zh-CN`` / ``zh-TW``, ``nb``).  Both Chinese locales
are Mandarin Chinese (``zho``) in ISO 639-3, which cannot tell Simplified (mainland) from Traditional
(Taiwan) writing; the results-table key (model, task, source, target, ...) then holds two rows
for every pair involving Chinese.  The loader keeps ``zh-CN`` and leaves out the 101 pairs per model
with ``zh-TW`` on either side (505 rows), giving 50 x 50 pairs x 5 models = 12,500 rows.

The file does not state how many training examples each run used, so ``n_source_examples`` is
missing (``<NA>``); the runs are zero-shot from the source locale (``n_target_examples`` = 0);
``seed`` is 0 (one run per pair).

Shipped covariates keep their upstream names (``train_word_vocab_size``, ``test_word_vocab_size``,
``avg_train_sentence_length``, ``avg_test_sentence_length``, ``ttr_train``, ``ttr_test``,
``train_test_ttr_distance``, ``train_test_jsd``, ``train_test_tf_idf``,
``train_test_st_similarity``, ``direction_indicator``), except ``train_test_word_overlap``, renamed
``word_overlap``, and the URIEL distances, prefixed ``uriel_`` (``uriel_genetic`` ...) so that they
do not collide with the distances xltstats computes itself.
"""
from __future__ import annotations

import pandas as pd

from ..errors import InputError
from ._common import finish, read_csv
from .registry import dataset_info

NAME = "proxylm-intent"
MODELS = {
    "aya_accuracy": "aya",
    "llama3_accuracy": "llama3",
    "smollm_135m_accuracy": "smollm-135m",
    "smollm_360m_accuracy": "smollm-360m",
    "bloomz_560m_accuracy": "bloomz-560m",
}
_URIEL = ["genetic", "geographic", "syntactic", "inventory", "phonological", "featural"]


def load_proxylm_intent(mirror=None) -> pd.DataFrame:
    """The MASSIVE intent table of ProxyLM in long format (one row per model and pair)."""
    info = dataset_info(NAME)
    raw, path = read_csv(NAME, info["main_file"], mirror, keep_default_na=False, na_values=[""])
    missing = [c for c in ["source_lang", "target_lang", *MODELS] if c not in raw.columns]
    if missing:
        raise InputError(f"missing column(s) {missing}", file=path)
    # ISO 639-3 cannot tell zh-TW from zh-CN (see the module docstring): keep zh-CN only.
    raw = raw[(raw["source_lang"] != "zh-TW") & (raw["target_lang"] != "zh-TW")].reset_index(drop=True)
    covariates = raw.drop(columns=list(MODELS)).rename(
        columns={"source_lang": "source", "target_lang": "target",
                 "train_test_word_overlap": "word_overlap",
                 **{u: f"uriel_{u}" for u in _URIEL}})
    covariate_cols = [c for c in covariates.columns if c not in ("source", "target")]

    parts = []
    for column, model in MODELS.items():
        part = pd.DataFrame({
            "model": model,
            "task": info["task"],
            "source": covariates["source"].astype(str),
            "target": covariates["target"].astype(str),
            "score": raw[column].astype(float),
            "metric": info["metric"],
            "n_source_examples": pd.array([pd.NA] * len(raw), dtype="Int64"),
            "n_target_examples": 0,
            "seed": 0,
        })
        parts.append(pd.concat([part, covariates[covariate_cols]], axis=1))
    return finish(pd.concat(parts, ignore_index=True), path)
