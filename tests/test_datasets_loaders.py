"""Loaders of the registered datasets, checked against the mirror's raw files.

Known values were read by hand from the raw files; each test names the file and line (1-based,
header = line 1) or JSON record it took them from.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from xltstats.datasets import list_datasets, load_dataset
from xltstats.errors import ConfigError

_MIRROR_ENV = os.environ.get("XLTSTATS_MIRROR")

pytestmark = pytest.mark.skipif(not _MIRROR_ENV,
                                reason="XLTSTATS_MIRROR is not set (point it at shared/data/published)")

#: Rows per registry entry (default variant).
EXPECTED_ROWS = {
    "xpos": 6825,            # 65 sources x 105 targets
    "langrank-pos": 1531,    # 1,545 rows less 14 with score "nan"
    "langrank-dep": 870,     # 30 x 29
    "langrank-el": 477,      # 9 targets x 53 transfer languages
    "langrank-mt": 2862,     # 54 x 53
    "proxylm-intent": 12500,  # 50 x 50 locales (zh-TW left out) x 5 models
    "sumeval": 29840,        # train split: sum over files of records x targets
}


@pytest.fixture(scope="module")
def tables():
    """Each dataset loaded once for the module."""
    return {name: load_dataset(name) for name in list_datasets()}


def _row(df, **where):
    mask = pd.Series(True, index=df.index)
    for column, value in where.items():
        mask &= df[column] == value
    hit = df[mask]
    assert len(hit) == 1, f"{where}: {len(hit)} rows"
    return hit.iloc[0]


def test_every_registry_entry_has_a_row_count_check():
    assert set(EXPECTED_ROWS) == set(list_datasets())


@pytest.mark.parametrize("name", list(EXPECTED_ROWS))
def test_row_counts_and_contract(tables, name):
    df = tables[name]
    assert len(df) == EXPECTED_ROWS[name]
    assert list(df.columns[:9]) == ["model", "task", "source", "target", "score", "metric",
                                    "n_source_examples", "n_target_examples", "seed"]
    # Language codes normalised to ISO 639-3, originals kept.
    codes = pd.concat([df["source"], df["target"]])
    assert codes.str.fullmatch(r"[a-z]{3}").all()
    assert {"source_code", "target_code"} <= set(df.columns)
    assert df["score"].dtype == "float64" and df["score"].notna().all()


# --- xpos -------------------------------------------------------------------------------------

def test_xpos_main_file_values(tables):
    df = tables["xpos"]
    assert df["source"].nunique() == 65 and df["target"].nunique() == 105
    assert (df["training_length"] == "10000").all()
    # results/udpos-ft-10000.csv line 3: en -> nl 90.39106638418079
    en_nl = _row(df, source_code="en", target_code="nl")
    assert en_nl["source"] == "eng" and en_nl["target"] == "nld"
    assert en_nl["score"] == pytest.approx(90.39106638418079, abs=1e-12)
    assert en_nl["metric"] == "accuracy" and en_nl["model"] == "xlm-roberta-base"
    # results/udpos-sizes-train.csv line 6: en 19912; udpos-sizes-test.csv: nl 1472
    assert en_nl["n_source_examples"] == 19912 and en_nl["target_test_size"] == 1472
    # results/ldnd.csv row English, column Dutch: 61.13
    assert en_nl["ldnd"] == pytest.approx(61.13)
    # results/wiki-langs.csv line 19: en 300.8 GiB; Dutch 29.3 GiB
    assert en_nl["source_pretrain_size"] == pytest.approx(300.8)
    assert en_nl["target_pretrain_size"] == pytest.approx(29.3)
    assert en_nl["same_family"] and en_nl["same_script"] and not en_nl["same_language"]
    # line 850: no -> no 97.10708717331234 (Norwegian: UD "no" -> ISO 639-3 "nor")
    no_no = _row(df, source_code="no", target_code="no")
    assert no_no["source"] == "nor" and no_no["same_language"]
    assert no_no["score"] == pytest.approx(97.10708717331234, abs=1e-12)
    assert no_no["ldnd"] == 0.0
    # line 8: en -> ru 90.96012351181825; Latin vs Cyrillic script
    en_ru = _row(df, source_code="en", target_code="ru")
    assert en_ru["score"] == pytest.approx(90.96012351181825, abs=1e-12)
    assert not en_ru["same_script"] and en_ru["same_top_family"] and not en_ru["same_family"]
    # research/udpos/word-order.csv: English SVO, Russian SVO, Hindi SOV, Afrikaans Unknown
    assert en_ru["same_word_order"] and en_ru["target_word_order"] == "SVO"
    assert not _row(df, source_code="en", target_code="hi")["same_word_order"]
    assert pd.isna(_row(df, source_code="en", target_code="af")["same_word_order"])
    # results/wiki-langs.csv lines 34 and 86: hi 20.2 GiB, ta 12.2 GiB (native script; the romanised
    # rows on lines 35 and 87, 0.5 and 0.3 GiB, are a separate corpus and not added)
    hi_ta = _row(df, source_code="hi", target_code="ta")
    assert hi_ta["source_pretrain_size"] == pytest.approx(20.2)
    assert hi_ta["target_pretrain_size"] == pytest.approx(12.2)
    # UD kmr (Kurmanji) is CC-100 "ku": line 49, 0.4 GiB
    assert _row(df, source_code="en", target_code="kmr")["target_pretrain_size"] == pytest.approx(0.4)
    # Maltese is not in XLM-R pre-training (absent from results/wiki-langs.csv).
    en_mt = _row(df, source_code="en", target_code="mt")
    assert not en_mt["target_in_pretraining"] and en_mt["target_pretrain_size"] == 0.0


def test_xpos_ldnd_agrees_with_the_raw_asjp_output(tables):
    """ldnd (from results/ldnd.csv) equals the lower triangle of research/udpos/asjp-ldnd.txt.

    The ASJP program's output lists the same 90 languages in the same order under upper-case
    abbreviations; it is parsed here independently of the loader.
    """
    import re

    mirror = Path(_MIRROR_ENV.split(os.pathsep)[0]) / "xpos"
    rows = []
    for line in (mirror / "research/udpos/asjp-ldnd.txt").read_text(encoding="utf-8").splitlines():
        m = re.match(r"^ ([A-Z_]+)\s+([-0-9. ]+)$", line.rstrip())
        if m:
            rows.append([float(x) for x in m[2].split()])
    names = pd.read_csv(mirror / "results/ldnd.csv", index_col=0).index.tolist()
    assert len(rows) == len(names) == 90
    reference = {}
    for a, values in enumerate(rows):
        for b, value in enumerate(values):
            reference[(names[a], names[b])] = reference[(names[b], names[a])] = value
    df = tables["xpos"]
    pairs = list(zip(df["source_language"], df["target_language"]))
    expected = pd.Series([reference.get(p, float("nan")) for p in pairs], index=df.index)
    assert expected.notna().sum() > 5000
    pd.testing.assert_series_equal(df["ldnd"], expected, check_names=False, atol=1e-9, rtol=0)


def test_xpos_all_training_lengths():
    df = load_dataset("xpos", variant="all")
    assert len(df) == 9 * 6825
    assert df.groupby("training_length").size().to_dict() == {
        length: 6825 for length in ["00630", "01250", "02500", "05000", "10000", "20000", "40000",
                                    "1epoch", "3epoch"]}
    assert (df["base_model"] == "xlm-roberta-base").all()
    # results/udpos-ft-1epoch.csv line 3: en -> nl 89.85257768361582
    row = _row(df, source_code="en", target_code="nl", training_length="1epoch")
    assert row["model"] == "xlm-roberta-base@1epoch"
    assert row["score"] == pytest.approx(89.85257768361582, abs=1e-12)
    assert pd.isna(row["training_length_n"])
    # results/udpos-ft-00630.csv line 3: en -> nl 86.63488700564972
    row = _row(df, source_code="en", target_code="nl", training_length="00630")
    assert row["score"] == pytest.approx(86.63488700564972, abs=1e-12)
    assert row["training_length_n"] == 630


def test_xpos_single_length_and_bad_variant():
    df = load_dataset("xpos", variant="630")
    assert (df["training_length"] == "00630").all() and (df["model"] == "xlm-roberta-base").all()
    with pytest.raises(ConfigError, match="unknown xpos variant '7epoch'"):
        load_dataset("xpos", variant="7epoch")


# --- LangRank -----------------------------------------------------------------------------------

def test_langrank_pos_values(tables):
    df = tables["langrank-pos"]
    # experiment_csvs/URIEL/pos.csv line 2: pcm (task) <- bxr (aux) 0.2588, rank 16, overlap 0.00084
    row = _row(df, target_code="pcm", source_code="bxr")
    assert row["score"] == pytest.approx(0.2588)
    assert row["langrank_rank"] == 16 and row["langrank_relevance"] == 45
    assert row["word_overlap"] == pytest.approx(0.0008403361344537816)
    assert row["n_source_examples"] == 927 and row["n_target_examples"] == 0
    assert row["uriel_geographic"] == pytest.approx(0.4976)
    # 14 rows have the score "nan" upstream (8 with task language hsb, 6 with hy) and are dropped:
    # hsb has 59 rows in the file, hy 59.
    assert (df["target_code"] == "hsb").sum() == 59 - 8
    assert (df["target_code"] == "hy").sum() == 59 - 6


def test_langrank_dep_el_mt_values(tables):
    # URIEL/dep.csv line 2: cs <- ru LAS 69.43
    row = _row(tables["langrank-dep"], target_code="cs", source_code="ru")
    assert row["score"] == pytest.approx(69.43) and row["metric"] == "las"
    assert (row["target"], row["source"]) == ("ces", "rus")
    # URIEL/el.csv line 2: ben <- amh 0.28, entity overlap 0.0002
    row = _row(tables["langrank-el"], target_code="ben", source_code="amh")
    assert row["score"] == pytest.approx(0.28) and row["entity_overlap"] == pytest.approx(0.0002)
    # URIEL/mt.csv line 2: eus->eng with transfer slk, BLEU 0.0962 (stored /100)
    row = _row(tables["langrank-mt"], target_code="eus", source_code="slk")
    assert row["score"] == pytest.approx(9.62) and row["metric"] == "bleu"
    assert row["mt_output_language"] == "eng"
    assert row["n_source_examples"] == 61470 and row["n_target_examples"] == 5182
    assert row["subword_overlap"] == pytest.approx(0.031499003984063745)


# --- ProxyLM ------------------------------------------------------------------------------------

def test_proxylm_intent_values(tables):
    df = tables["proxylm-intent"]
    assert sorted(df["model"].unique()) == ["aya", "bloomz-560m", "llama3", "smollm-135m", "smollm-360m"]
    assert df.groupby("model").size().eq(2500).all()
    # intent_experiments.csv line 2: ka -> da, aya 59.24680564895763, bloomz 14.156018829858777
    row = _row(df, source_code="ka", target_code="da", model="aya")
    assert (row["source"], row["target"]) == ("kat", "dan")
    assert row["score"] == pytest.approx(59.24680564895763, abs=1e-12)
    assert row["train_word_vocab_size"] == 58 and row["uriel_genetic"] == 1.0
    row = _row(df, source_code="ka", target_code="da", model="bloomz-560m")
    assert row["score"] == pytest.approx(14.156018829858777, abs=1e-12)
    assert pd.isna(row["n_source_examples"])
    assert not df["source_code"].eq("zh-TW").any() and df["source_code"].eq("zh-CN").any()


# --- SumEval ------------------------------------------------------------------------------------

def test_sumeval_multi_source_record(tables):
    df = tables["sumeval"]
    assert set(df["split"]) == {"train"}
    rec = df[df["config_id"] == "XNLI_XLMR#0"]
    assert len(rec) == 15 and set(rec["file"]) == {"SumEval/data/train/XNLI_XLMR.json"}
    # train/XNLI_XLMR.json record 0: bg, el, es, hi, sw, vi, zh 100000; ru, th, ur 10000; de, tr 1000
    expected = {"bul": 100000, "ell": 100000, "spa": 100000, "hin": 100000, "swa": 100000,
                "vie": 100000, "zho": 100000, "rus": 10000, "tha": 10000, "urd": 10000,
                "deu": 1000, "tur": 1000}
    ar = _row(rec, target="ara")
    assert ar["source"] == "mul" and json.loads(ar["source_languages"]) == expected
    assert list(json.loads(ar["source_languages"])) == sorted(expected)
    assert ar["n_source_examples"] == 7 * 100000 + 3 * 10000 + 2 * 1000 and ar["n_target_examples"] == 0
    assert ar["score"] == pytest.approx(0.8024) and ar["metric"] == "accuracy"
    assert ar["model"] == "xlm-roberta-large" and ar["task"] == "xnli"
    bg = _row(rec, target="bul")  # the config includes 100,000 Bulgarian examples
    assert bg["score"] == pytest.approx(0.8323) and bg["n_target_examples"] == 100000


def test_sumeval_single_source_record(tables):
    df = tables["sumeval"]
    # train/TyDiQA_XLMR_ID.json record 16: en 3696 only; te 0.7412666666666666
    te = _row(df, config_id="TyDiQA_XLMR_ID#16", target="tel")
    assert te["source"] == "eng" and te["source_code"] == "en"
    assert json.loads(te["source_languages"]) == {"eng": 3696}
    assert te["n_source_examples"] == 3696 and te["n_target_examples"] == 0
    assert te["score"] == pytest.approx(0.7412666666666666) and te["metric"] == "f1"
    assert te["task"] == "tydiqa"
    ood = df[df["config_id"] == "TyDiQA_XLMR_OOD#16"]
    assert len(ood) == 11 and set(ood["task"]) == {"tydiqa-xquad"}


def test_sumeval_test_release_keeps_configs_without_scores():
    df = load_dataset("sumeval", variant="test_release")
    assert len(df) == 24320 and set(df["split"]) == {"test_release"}
    assert df["score"].isna().all()
    surprise = df[df["config_id"] == "UDPOS_XLMR_surprise_langs_diff_configs#0"]
    assert len(surprise) == 15 and set(surprise["config_set"]) == {"surprise_langs_diff_configs"}


# --- users' own files ----------------------------------------------------------------------------

def test_load_dataset_reads_a_results_file(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("model,task,source,target,score,metric,n_source_examples,n_target_examples,seed\n"
                    "xlmr,pos,en,de,0.9,accuracy,1000,0,1\n", encoding="utf-8")
    df = load_dataset(path)
    assert df.loc[0, "source"] == "eng" and df.loc[0, "target"] == "deu"


def test_unknown_name_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown dataset 'sumevl'; did you mean 'sumeval'.*available: xpos.*not an existing results file"):
        load_dataset("sumevl")
    with pytest.raises(ConfigError, match="has no variant"):
        load_dataset("langrank-pos", variant="all")


def test_mirror_argument_overrides_the_environment(tmp_path):
    with pytest.raises(Exception, match="is not in the mirror"):
        load_dataset("langrank-el", mirror=tmp_path)
    assert Path(_MIRROR_ENV.split(os.pathsep)[0]).is_dir()
