"""Data-derived pair features: pre-training shares, writing scripts, fine-tuning sizes.

Pre-training tables shipped in ``xltstats/data/`` (each row names its source paper and table, and
says whether its figures were checked against an independent transcription: ``verified``,
``verified_against``, ``note``):

``pretraining_xlmr_cc100.csv``
    CC-100, the XLM-R pre-training corpus (Conneau et al., 2020, ACL, appendix Table 6): tokens
    (millions) and size (GiB) per language, 93 languages.  Paper rows of one language are summed
    (``variants``): Chinese Simplified + Traditional, Burmese + Burmese (Zawgyi), and the romanised
    Hindi, Urdu, Bengali, Tamil and Telugu rows, as Litmus (Patankar et al., 2022) also does.  Sizes
    checked against mayhewsw/multilingual-data-stats (``cc-100/cc-100.csv``) and Microsoft Litmus
    (``xlmr_pretraining_sizes``): they agree for every language but Swedish, where the two
    sources differ (85.0 GiB is used; ``verified`` is false).  Share = size / sum of sizes.
``pretraining_mt5_mc4.csv``
    mC4, the mT5 pre-training corpus (Xue et al., 2021, NAACL, appendix Table 6): tokens (billions)
    for all 101 languages (plus the tokens of the romanised ``-Latn`` rows of Russian, Hindi,
    Greek, Japanese, Chinese and Bulgarian), and for the 67 largest also pages (millions) and the
    percentage of mT5 training examples (temperature sampling, alpha = 0.3).  Tokens checked
    against mayhewsw/multilingual-data-stats (``mc4/mc4.csv``): they agree except for Malayalam and
    Mongolian, swapped between the two transcriptions (``verified`` false).  Share = the language's
    tokens (romanised row included) / all tokens, the same kind of corpus share as for CC-100; the
    sampling percentage stays in the table for reference.

Model families and their pre-training tables (:data:`PRETRAINING_FAMILIES`; a model name matches
a family when one of the family's patterns starts the name or follows a ``-``, ``/`` or ``_``:
``xlm-roberta-large``, ``FacebookAI/xlm-roberta-base``, ``xltstats-tiny-mt5``):

=========  ========================================  ==========================================
family     patterns                                  pre-training table
=========  ========================================  ==========================================
xlm-r      ``xlm-roberta``, ``xlm-r``, ``xlmr``      CC-100 (``pretraining_xlmr_cc100.csv``)
mt5        ``mt5``                                   mC4 (``pretraining_mt5_mc4.csv``)
mbert      ``mbert``, ``bert-base-multilingual``     none: Wikipedia of 104 languages, no
                                                     per-language sizes are shipped
=========  ========================================  ==========================================

Any other model (aya, llama-3, bloomz, LaBSE, T-ULRv6, LangRank's task models, ...) has no table:
for a results table whose models are not all of one family with a table, the fit leaves the
pre-training features out and says so in the manifest notes (:func:`pretraining_note`); they are
never taken from another model's corpus.

Features (``model`` picks the table; ``"xlm-r"``/``"xlmr"``/``"xlm-roberta-*"`` or
``"mt5"``/``"mt5-*"``; for ``"mbert"`` and ``"none"`` (a model without a table) no table is
shipped and the pre-training columns are NaN):

``source_pretrain_share``, ``target_pretrain_share``
    log10 of the language's share of the pre-training data.  A language the model was not
    pre-trained on has share 0; its log is set to log10(half the smallest share in the table), so
    that unseen languages stay in a regression (``target_in_pretraining`` tells them apart).  NaN
    where the language was in pre-training but its figure is not in the table.
``target_in_pretraining``
    1.0 / 0.0: the target language is in the model's pre-training languages.
``same_script``
    1.0 / 0.0: both languages' most likely script (CLDR likely subtags via ``langcodes`` /
    ``language-data``: ``hin`` -> Deva, ``srp`` -> Cyrl, ``zho`` -> Hans, ``jpn`` -> Jpan) is the
    same.  Script codes are compared as they are, so Hans/Hant/Jpan/Kore count as different.  Where
    CLDR has no likely script, the script of the language's UDHR text
    (``data/language_scripts.csv``, see :mod:`xltstats.features.scripts`); NaN when neither
    gives one.
``n_source_examples``, ``n_target_examples``
    fine-tuning example counts, passed through from the pairs table when it has them.
"""
from __future__ import annotations

import math
import re
from functools import lru_cache

import numpy as np
import pandas as pd

from ..errors import InputError
from ..paths import package_data
from .scripts import cldr_script, language_script  # noqa: F401  (cldr_script: re-exported)

DATA_COLUMNS = ("source_pretrain_share", "target_pretrain_share", "target_in_pretraining",
                "same_script")
PASS_THROUGH_COLUMNS = ("n_source_examples", "n_target_examples")
PRETRAINING_TABLES = {"xlm-r": "pretraining_xlmr_cc100.csv", "mt5": "pretraining_mt5_mc4.csv"}

# individual languages that results tables may use for the macrolanguage the tables list
_INDIVIDUAL_TO_MACRO = {
    "arb": "ara", "azj": "aze", "ekk": "est", "pes": "fas", "khk": "mon", "zsm": "msa",
    "npi": "nep", "gaz": "orm", "ory": "ori", "pbu": "pus", "als": "sqi", "swh": "swa",
    "uzn": "uzb", "ydd": "yid", "cmn": "zho", "lvs": "lav", "nob": "nor", "kmr": "kur",
    "tgl": "fil", "zlm": "msa", "prs": "fas", "pst": "pus",
}


# (family, name patterns, table key in PRETRAINING_TABLES or None, pre-training corpus)
PRETRAINING_FAMILIES = (
    ("xlm-r", ("xlm-roberta", "xlm-r", "xlmr"), "xlm-r", "CC-100 (Conneau et al., 2020)"),
    ("mt5", ("mt5",), "mt5", "mC4 (Xue et al., 2021)"),
    ("mbert", ("mbert", "bert-base-multilingual"), None,
     "Wikipedia in 104 languages (Devlin et al., 2019); no per-language size table is shipped"),
)
NO_TABLE = "none"
_PRETRAINING_COLUMNS = "source_pretrain_share, target_pretrain_share, target_in_pretraining"


def _model_name(model) -> str:
    return str(model).strip().lower().replace("_", "-")


def model_family(model) -> str | None:
    """The family (``xlm-r``, ``mt5``, ``mbert``) of a model name, None when it is none of them."""
    name = _model_name(model)
    for family, patterns, _, _ in PRETRAINING_FAMILIES:
        for pattern in patterns:
            if re.search(r"(?:^|[-/.])" + re.escape(pattern), name):
                return family
    return None


def model_table_key(model: str) -> str:
    """``"xlm-r"`` or ``"mt5"`` for a model name such as ``xlm-roberta-large`` or ``google/mt5-base``;
    ``"mbert"`` and ``"none"`` (no table: the pre-training columns are NaN)."""
    name = _model_name(model).rsplit("/", 1)[-1]
    if name == NO_TABLE:
        return NO_TABLE
    if name.startswith(("xlm-r", "xlmr")):
        return "xlm-r"
    if name.startswith("mt5"):
        return "mt5"
    if name.startswith(("mbert", "bert-base-multilingual")):
        return "mbert"
    raise InputError(f"unknown model '{model}' for the pre-training features; known: xlm-r "
                     "(CC-100 table), mt5 (mC4 table), mbert (no table: shares are NaN), none "
                     "(no table)", column="model")


def _families(model_names) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for model in sorted({str(m) for m in model_names}):
        found.setdefault(model_family(model) or "", []).append(model)
    return found


def pretraining_model_for(model_names) -> str:
    """The pre-training table for the models of a results table: ``xlm-r`` or ``mt5`` when every
    model is of that family, ``mbert`` (no table) when all are mBERT, else ``none``: models
    without a table, or of families with different tables, get no pre-training features
    (:func:`pretraining_note` says why).  Never borrows another model's table."""
    families = _families(model_names)
    if len(families) == 1:
        family = next(iter(families))
        if family:
            return family
    return NO_TABLE


def pretraining_note(model_names) -> str | None:
    """Why the models of a table get no pre-training features (None when they do)."""
    families = _families(model_names)
    unknown = families.get("", [])
    if len(families) == 1 and not unknown:
        family = next(iter(families))
        corpus = next(c for f, _, key, c in PRETRAINING_FAMILIES if f == family)
        if pretraining_model_for(model_names) in PRETRAINING_TABLES:
            return None
        return (f"no pre-training table for {family} ({corpus}): {_PRETRAINING_COLUMNS} "
                "left out")
    if unknown:
        shown = ", ".join(unknown[:6]) + (f" and {len(unknown) - 6} more" if len(unknown) > 6 else "")
        return (f"no pre-training table is known for model(s) {shown}: {_PRETRAINING_COLUMNS} "
                "left out rather than taken from another model's corpus (tables: xlm-r -> CC-100, "
                "mt5 -> mC4; mbert has none)")
    shown = ", ".join(f"{family}: {', '.join(models)}" for family, models in sorted(families.items()))
    return (f"the models were pre-trained on different corpora ({shown}): {_PRETRAINING_COLUMNS} "
            "left out (fit one model family at a time, e.g. with 'subset: {model: ...}')")


@lru_cache(maxsize=None)
def pretraining_table(model: str = "xlm-r") -> pd.DataFrame:
    """The shipped pre-training table for a model, with a ``share`` column (fraction, NaN unknown)."""
    key = model_table_key(model)
    if key not in PRETRAINING_TABLES:
        raise InputError(f"xltstats ships no pre-training table for '{model}'", column="model")
    table = pd.read_csv(package_data(PRETRAINING_TABLES[key]), dtype={"iso639_1": str})
    if key == "xlm-r":
        table["share"] = table["size_gib"] / table["size_gib"].sum()
    else:
        tokens = table["tokens_billion"] + table["romanised_tokens_billion"].fillna(0.0)
        table["share"] = tokens / tokens.sum()
    return table


@lru_cache(maxsize=None)
def _shares(key: str) -> tuple[dict[str, float], float]:
    table = pretraining_table(key)
    shares = {str(c): float(s) for c, s in zip(table["iso639_3"], table["share"])}
    floor = float(np.nanmin(table["share"])) / 2.0
    return shares, floor


def _lookup(code: str, shares: dict[str, float]):
    if code in shares:
        return code
    macro = _INDIVIDUAL_TO_MACRO.get(code)
    return macro if macro in shares else None


def log_pretrain_share(codes, model: str = "xlm-r") -> np.ndarray:
    key = model_table_key(model)
    if key not in PRETRAINING_TABLES:
        return np.full(len(codes), np.nan)
    shares, floor = _shares(key)
    out = np.empty(len(codes))
    for i, code in enumerate(codes):
        key = _lookup(code, shares)
        if key is None:
            out[i] = math.log10(floor)
        else:
            share = shares[key]
            out[i] = math.log10(share) if share == share else np.nan
    return out


def in_pretraining(codes, model: str = "xlm-r") -> np.ndarray:
    key = model_table_key(model)
    if key not in PRETRAINING_TABLES:
        return np.full(len(codes), np.nan)
    shares, _ = _shares(key)
    return np.array([0.0 if _lookup(c, shares) is None else 1.0 for c in codes])


@lru_cache(maxsize=None)
def likely_script(code: str) -> str | None:
    """ISO 15924 script of a language: CLDR's likely script, else the script of its UDHR text
    (:mod:`xltstats.features.scripts`), None when neither says."""
    return language_script(code)[0]


def same_script(left_codes, right_codes) -> np.ndarray:
    out = np.empty(len(left_codes))
    for i, (a, b) in enumerate(zip(left_codes, right_codes)):
        sa, sb = likely_script(a), likely_script(b)
        out[i] = np.nan if sa is None or sb is None else float(sa == sb)
    return out


def data_pair_features(left_codes, right_codes, model: str = "xlm-r",
                       columns=DATA_COLUMNS) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for col in columns:
        if col == "source_pretrain_share":
            out[col] = log_pretrain_share(left_codes, model)
        elif col == "target_pretrain_share":
            out[col] = log_pretrain_share(right_codes, model)
        elif col == "target_in_pretraining":
            out[col] = in_pretraining(right_codes, model)
        elif col == "same_script":
            out[col] = same_script(left_codes, right_codes)
        else:
            raise KeyError(col)
    return out
