"""Loader for xpos (de Vries, Wieling & Nissim 2022): POS tagging transfer with XLM-R base.

The upstream ``results/udpos-ft-*.csv`` files hold one row per (source = ``lang_train``, target =
``lang_pred``) pair: the UPOS test accuracy (percent) of ``xlm-roberta-base`` fine-tuned on the
source language's UD 2.8 training data and evaluated zero-shot on the target's test data; 65
sources x 105 targets = 6,825 rows per file.  ``results/README.md`` names ``udpos-ft-10000.csv`` as
the file of the paper's main results: :func:`load_xpos` returns it by default.  The other files are
the same grid after a different fine-tuning length; the part of the file name after ``udpos-ft-``
is kept as ``training_length`` (``"00630"`` ... ``"40000"``, ``"1epoch"``, ``"3epoch"``) and, when
it is a number, as the integer ``training_length_n``.  The upstream repository does not document
whether that number counts optimisation steps or sampled training sentences, so it is kept as a
label rather than put into ``n_source_examples``.  With several lengths in one table
(``variant="all"``) the ``model`` column names the length (``xlm-roberta-base@1epoch``), since the
rows are different fine-tuned models; ``base_model`` is always ``xlm-roberta-base``.

Columns added from the dataset's own auxiliary tables (all shipped in the same repository):

``n_source_examples``
    UD training sentences of the source language (``results/udpos-sizes-train.csv``).
``target_test_size``
    UD test sentences of the target (``results/udpos-sizes-test.csv``).
``source_script``, ``target_script``, ``same_script``
    Writing system per language (``results/udpos-langs.csv``).
``source_family``, ``target_family``, ``same_family``, ``same_top_family``
    Family labels of ``research/udpos/fams.txt`` (e.g. ``"IE, Germanic"``).  ``same_family``
    compares the full label, as the paper's ``family_same``; ``same_top_family`` compares only the
    part before the comma (e.g. both Indo-European).
``source_word_order``, ``target_word_order``, ``same_word_order``
    Dominant order of subject, object and verb (WALS 81A: ``SOV``, ``SVO``, ``VSO``, ``No dominant
    order``) from ``research/udpos/word-order.csv`` (the paper's ``sov_order_same``); missing where
    the file says ``Unknown`` or lacks the language.
``source_pretrain_size``, ``target_pretrain_size`` (GiB), ``source_in_pretraining``, ``target_in_pretraining``
    XLM-R (CC-100) pre-training data per language from ``results/wiki-langs.csv`` (the table of
    the XLM-R paper as shipped by xpos; romanised duplicates are left out, the two Burmese rows are
    summed).  A language absent from pre-training has size 0.  ``lzh`` is matched to
    "Traditional Chinese" because the upstream table does so; UD ``kmr`` is matched to CC-100
    ``ku`` (Kurmanji).
``same_language``
    Source and target share a UD language code.
``ldnd``
    ASJP lexical distance LDND (``results/ldnd.csv``, by language name; 0 for a language with
    itself; NaN where a language has no ASJP word list).
"""
from __future__ import annotations

import re

import pandas as pd

from ._common import finish, read_csv
from .registry import dataset_info, get_dataset_file

NAME = "xpos"
MAIN_LENGTH = "10000"
TRAINING_LENGTHS = ["00630", "01250", "02500", "05000", "10000", "20000", "40000", "1epoch", "3epoch"]

#: UD codes whose CC-100 code differs (CC-100 "ku" is Kurmanji).
_UD_TO_CC100 = {"kmr": "ku"}


def _results_path(length: str) -> str:
    return f"results/udpos-ft-{length}.csv"


def _normalise_variant(variant) -> list[str]:
    if variant in (None, "main", "default"):
        return [MAIN_LENGTH]
    if variant == "all":
        return list(TRAINING_LENGTHS)
    text = str(variant).strip().lower()
    if text.isdigit():
        text = f"{int(text):05d}"
    if text in TRAINING_LENGTHS:
        return [text]
    from ..errors import ConfigError

    raise ConfigError(
        f"unknown xpos variant {variant!r}: use 'main' (udpos-ft-{MAIN_LENGTH}.csv), 'all', or one "
        f"training length of {', '.join(TRAINING_LENGTHS)}"
    )


def _read_lines(path) -> list[str]:
    with open(path, encoding="utf-8") as fh:
        return [line.rstrip("\n") for line in fh if line.strip()]


def language_table(mirror=None) -> pd.DataFrame:
    """One row per UD language code of xpos: name, script, family, sizes, XLM-R pre-training.

    Columns: ``code``, ``language``, ``script``, ``family``, ``word_order``, ``train_size``, ``test_size``,
    ``pretrain_size`` (GiB, 0 if absent), ``in_pretraining``.
    """
    langs, _ = read_csv(NAME, "results/udpos-langs.csv", mirror, index_col=0, keep_default_na=False)
    langs = langs.rename(columns={"language_id": "code"})[["code", "language", "script"]]

    families = {}
    for line in _read_lines(get_dataset_file(NAME, "research/udpos/fams.txt", mirror)):
        name, _, family = line.partition(" ")
        families.setdefault(name.replace("_", " "), family.strip())
    langs["family"] = langs["language"].map(families)

    train, _ = read_csv(NAME, "results/udpos-sizes-train.csv", mirror, index_col=0, keep_default_na=False)
    test, _ = read_csv(NAME, "results/udpos-sizes-test.csv", mirror, index_col=0, keep_default_na=False)
    langs["train_size"] = langs["code"].map(dict(zip(train["language"], train["size"]))).astype("Int64")
    langs["test_size"] = langs["code"].map(dict(zip(test["language"], test["size"]))).astype("Int64")

    order, _ = read_csv(NAME, "research/udpos/word-order.csv", mirror, index_col=0, keep_default_na=False)
    order = order[order["SOV"] != "Unknown"]
    langs["word_order"] = langs["language"].map(dict(zip(order["language"], order["SOV"])))

    wiki, _ = read_csv(NAME, "results/wiki-langs.csv", mirror, index_col=0, keep_default_na=False)
    # Romanised duplicates (e.g. Hindi in Latin script) are a separate CC-100 corpus: keep the
    # native-script rows, and sum true duplicates (the two Burmese encodings).
    native = wiki.groupby("language_id")["script"].transform(lambda s: (s != "latin").any())
    wiki = wiki[~(native & (wiki["script"] == "latin"))]
    sizes = wiki.groupby("language_id")["size"].sum()
    cc = langs["code"].map(lambda c: _UD_TO_CC100.get(c, c))
    langs["in_pretraining"] = cc.isin(sizes.index)
    langs["pretrain_size"] = cc.map(sizes).fillna(0.0).astype(float)
    return langs.reset_index(drop=True)


def ldnd_table(mirror=None) -> pd.DataFrame:
    """The LDND matrix of ``results/ldnd.csv`` in long form: ``language_a``, ``language_b``, ``ldnd``."""
    mat, _ = read_csv(NAME, "results/ldnd.csv", mirror, index_col=0)
    mat.index.name = "language_a"
    long = mat.stack(future_stack=True).rename("ldnd").reset_index()
    long.columns = ["language_a", "language_b", "ldnd"]
    same = long["language_a"] == long["language_b"]
    long.loc[same, "ldnd"] = 0.0
    return long.dropna(subset=["ldnd"]).reset_index(drop=True)


def _read_results(length: str, mirror) -> tuple[pd.DataFrame, str]:
    df, path = read_csv(NAME, _results_path(length), mirror, index_col=0, keep_default_na=False,
                        na_values=[""], dtype={"lang_train": str, "lang_pred": str})
    expected = {"lang_train", "lang_pred", "model_id", "score"}
    missing = expected - set(df.columns)
    if missing:
        from ..errors import InputError

        raise InputError(f"missing column(s) {sorted(missing)}", file=path)
    df = df.assign(training_length=length)
    return df, path


def load_xpos(mirror=None, variant="main") -> pd.DataFrame:
    """The xpos results table (see the module docstring); ``variant``: ``main``, ``all`` or a length."""
    lengths = _normalise_variant(variant)
    parts, paths = [], []
    for length in lengths:
        df, path = _read_results(length, mirror)
        parts.append(df)
        paths.append(path)
    raw = pd.concat(parts, ignore_index=True)
    info = dataset_info(NAME)

    base_model = raw["model_id"].astype(str)
    # Rows of different training lengths are different fine-tuned models; with several lengths
    # in one table the model name says which (the row key has no other place for it).
    model = base_model + "@" + raw["training_length"] if len(lengths) > 1 else base_model
    out = pd.DataFrame({
        "model": model,
        "task": info["task"],
        "source": raw["lang_train"],
        "target": raw["lang_pred"],
        "score": raw["score"].astype(float),
        "metric": info["metric"],
    })
    langs = language_table(mirror).set_index("code")
    out["n_source_examples"] = out["source"].map(langs["train_size"]).astype("Int64")
    out["n_target_examples"] = 0
    # A single fine-tuning run per pair; the upstream results carry no seed.
    out["seed"] = 0
    out["base_model"] = base_model.to_numpy()
    out["training_length"] = raw["training_length"].to_numpy()
    out["training_length_n"] = pd.array(
        [int(t) if t.isdigit() else pd.NA for t in raw["training_length"]], dtype="Int64")
    out["target_test_size"] = out["target"].map(langs["test_size"]).astype("Int64")
    for side in ("source", "target"):
        codes = out[side]
        out[f"{side}_language"] = codes.map(langs["language"])
        out[f"{side}_script"] = codes.map(langs["script"])
        out[f"{side}_family"] = codes.map(langs["family"])
        out[f"{side}_word_order"] = codes.map(langs["word_order"])
        out[f"{side}_pretrain_size"] = codes.map(langs["pretrain_size"]).astype(float)
        out[f"{side}_in_pretraining"] = codes.map(langs["in_pretraining"]).astype("boolean")
    out["same_language"] = out["source"] == out["target"]
    out["same_script"] = out["source_script"] == out["target_script"]
    out["same_family"] = (out["source_family"] == out["target_family"]).astype("boolean")
    top = {side: out[f"{side}_family"].str.split(",").str[0].str.strip() for side in ("source", "target")}
    out["same_top_family"] = (top["source"] == top["target"]).astype("boolean")
    for col in ("same_family", "same_top_family"):
        out.loc[out["source_family"].isna() | out["target_family"].isna(), col] = pd.NA
    out["same_word_order"] = (out["source_word_order"] == out["target_word_order"]).astype("boolean")
    out.loc[out["source_word_order"].isna() | out["target_word_order"].isna(), "same_word_order"] = pd.NA

    ldnd = ldnd_table(mirror)
    key = pd.MultiIndex.from_frame(ldnd[["language_a", "language_b"]])
    lookup = pd.Series(ldnd["ldnd"].to_numpy(), index=key)
    pairs = pd.MultiIndex.from_arrays([out["source_language"], out["target_language"]])
    out["ldnd"] = lookup.reindex(pairs).to_numpy(dtype=float)

    unknown = sorted(set(out["source"]).union(out["target"]) - set(langs.index))
    if unknown:
        from ..errors import InputError

        raise InputError(f"language code(s) {unknown} are not in results/udpos-langs.csv",
                         file=paths[0])
    file = paths[0] if len(paths) == 1 else re.sub(r"udpos-ft-[^/\\]+\.csv$", "udpos-ft-*.csv", paths[0])
    return finish(out, file)

