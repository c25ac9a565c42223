"""build_pair_features, feature_coverage, the pre-training tables and the CLI."""
from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xltstats.errors import InputError
from xltstats.features import (
    DEFAULT_FEATURES,
    FEATURE_GROUPS,
    build_pair_features,
    feature_coverage,
    resolve_features,
)
from xltstats.features import data_sizes, uriel
from xltstats.features.__main__ import main as cli_main

REPO = Path(__file__).resolve().parents[1]
try:
    import urielplus  # noqa: F401

    HAS_URIELPLUS = True
except ImportError:
    HAS_URIELPLUS = False


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XLTSTATS_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


LANGS = ["eng", "deu", "fra", "fin", "jpn"]


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XLTSTATS_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
        return build_pair_features(["en", "de", "fr", "fi", "ja"], cache=False)


def test_every_ordered_pair_sorted_and_normalised(table):
    assert len(table) == 25
    assert list(table.columns[:2]) == ["source", "target"]
    pairs = list(zip(table["source"], table["target"]))
    assert pairs == sorted((a, b) for a in LANGS for b in LANGS)


def test_symmetric_distances_and_zero_diagonal(table):
    distance_columns = [c for c in table.columns if c.endswith("_distance")
                        or c.endswith("_distance_wals") or c.endswith("_phoible")]
    swapped = table.rename(columns={"source": "target", "target": "source"})
    merged = table.merge(swapped, on=["source", "target"], suffixes=("", "_rev"))
    for c in distance_columns + ["same_family", "same_genus", "same_script"]:
        np.testing.assert_allclose(merged[c], merged[f"{c}_rev"], atol=1e-6, equal_nan=True,
                                   err_msg=c)
    diagonal = table[table["source"] == table["target"]]
    for c in distance_columns:
        values = diagonal[c].dropna()
        assert (values == 0).all(), c
    assert (table.loc[table["source"] != table["target"], "syntactic_distance"] > 0).all()


def test_default_columns_and_coverage_columns(table):
    assert set(DEFAULT_FEATURES) - {"n_source_examples", "n_target_examples"} <= set(table.columns)
    for c in list(uriel.OBSERVED_DISTANCES) + ["morphological_distance"]:
        coverage = table[f"{c}_coverage"].dropna()
        assert ((coverage >= 0) & (coverage <= 1)).all()
    # German is not in this Grambank release: NaN, never 0
    assert table.loc[table["source"] == "deu", "morphological_distance"].isna().all()


def test_values_match_the_uriel_layer(table):
    row = table[(table["source"] == "eng") & (table["target"] == "jpn")].iloc[0]
    direct = uriel.uriel_pair_features(["eng"], ["jpn"], ["syntactic_distance"])
    assert row["syntactic_distance"] == pytest.approx(direct["syntactic_distance"][0])
    assert row["same_family"] == 0.0 and row["same_script"] == 0.0


def test_feature_coverage_report(table):
    report = feature_coverage(table)
    assert list(report.columns) == ["feature", "group", "pairs", "pairs_with_value", "coverage",
                                    "languages_without_value"]
    morph = report.set_index("feature").loc["morphological_distance"]
    assert morph["pairs"] == 25 and morph["group"] == "morphology"
    if HAS_URIELPLUS:  # without it the default set leaves the Grambank feature NaN
        assert morph["pairs_with_value"] == 16  # German lacks: 25 - 9 pairs
        assert morph["languages_without_value"] == 1
    assert report.set_index("feature").loc["syntactic_distance", "coverage"] == 1.0


def test_pairs_from_tuples_and_dataframe_pass_through_counts():
    df = pd.DataFrame({"source": ["en", "en", "de"], "target": ["de", "de", "en"],
                       "n_source_examples": [100, 100, 50], "n_target_examples": [0, 10, 0],
                       "score": [0.5, 0.6, 0.7]})
    out = build_pair_features(df, ["syntax", "data"], cache=False)
    assert list(out[["source", "target", "n_target_examples"]].itertuples(index=False, name=None)) == [
        ("deu", "eng", 0), ("eng", "deu", 0), ("eng", "deu", 10)]
    assert "score" not in out
    tuples = build_pair_features([("en", "de"), ("de", "en")], ["syntactic_distance"], cache=False)
    assert list(tuples.columns) == ["source", "target", "syntactic_distance"]
    assert tuples["syntactic_distance"].iloc[0] == pytest.approx(tuples["syntactic_distance"].iloc[1])


def test_feature_groups_and_resolution():
    assert set(FEATURE_GROUPS) == {"syntax", "phonology", "morphology", "lexical", "data",
                                   "genealogy_geography"}
    cols = resolve_features(["syntax", "genetic_distance"])
    assert cols == ["syntactic_distance", "syntactic_distance_wals",
                    "syntactic_distance_wals_coverage", "genetic_distance"]
    assert "subword_overlap" not in resolve_features("lexical", tokenizer_given=False)
    assert "subword_overlap" in resolve_features("lexical", tokenizer_given=True)


def test_cache_returns_identical_table():
    first = build_pair_features(["eng", "deu", "tur"], ["syntax", "data"])
    cached = list((Path(os.environ["XLTSTATS_CACHE"]) / "features").glob("*.parquet"))
    assert cached, "the first call should have written a cache entry"
    second = build_pair_features(["eng", "deu", "tur"], ["syntax", "data"])
    pd.testing.assert_frame_equal(first, second)


@pytest.mark.parametrize("pairs,features,kwargs,fragment", [
    (["eng", "hyw"], None, {}, "'hyw' is not in URIEL"),
    (["eng", "qqq"], None, {}, "unknown language code 'qqq'"),
    ([("eng", "deu", "fra")], None, {}, "is not a (source, target) pair"),
    (pd.DataFrame({"src": ["eng"], "target": ["deu"]}), None, {}, "no column 'source'"),
    (["eng", "deu"], ["synax"], {}, "did you mean syntax"),
    (["eng", "deu"], ["data"], {"model": "gpt-2"}, "unknown model 'gpt-2'"),
    (["eng", "deu"], None, {"on_unknown": "skip"}, "on_unknown"),
    ([], None, {}, "no language pairs"),
])
def test_errors(pairs, features, kwargs, fragment):
    with pytest.raises(InputError) as info:
        build_pair_features(pairs, features, cache=False, **kwargs)
    assert fragment in str(info.value)


def test_unknown_language_in_table_names_row_and_column():
    df = pd.DataFrame({"source": ["eng", "hyw"], "target": ["deu", "eng"]})
    with pytest.raises(InputError) as info:
        build_pair_features(df, ["syntax"], cache=False, file="pairs.csv")
    assert str(info.value).startswith("pairs.csv, row 2, column 'source':")
    assert "hye (Armenian)" in str(info.value)
    out = build_pair_features(df, ["syntax", "target_in_pretraining"], cache=False,
                              on_unknown="nan")
    assert out.loc[out["source"] == "hyw", "syntactic_distance"].isna().all()
    assert out.loc[out["source"] == "hyw", "target_in_pretraining"].tolist() == [1.0]


def test_pretraining_tables_are_consistent():
    for key, name in data_sizes.PRETRAINING_TABLES.items():
        table = data_sizes.pretraining_table(key)
        assert table["iso639_3"].is_unique, name
        assert table["source"].str.contains("et al. 20").all(), name
        assert (table["share"].dropna() > 0).all() and table["share"].sum() <= 1.0 + 1e-9
    mc4 = data_sizes.pretraining_table("mt5").dropna(subset=["pages_million"])
    # the mT5 sampling percentage is a monotone function of the page count (alpha = 0.3)
    ordered = mc4.sort_values(["pages_million", "mt5_sampling_percent"],
                              ascending=False)["mt5_sampling_percent"]
    assert (ordered.diff().dropna() <= 1e-9).all()
    assert len(data_sizes.pretraining_table("mt5")) == 101


def test_pretraining_rows_are_checked_or_flagged():
    for key in data_sizes.PRETRAINING_TABLES:
        table = data_sizes.pretraining_table(key)
        assert table["verified"].dtype == bool
        assert table["verified_against"].str.contains("mayhewsw/multilingual-data-stats").all()
        unverified = table[~table["verified"]]
        assert (unverified["note"].str.len() > 20).all(), key  # says why
    cc = data_sizes.pretraining_table("xlm-r").set_index("iso639_3")
    # figures a transcription from memory had wrong, checked against two published copies
    assert cc.loc["dan", "size_gib"] == 45.6
    assert cc.loc["mya", "size_gib"] == pytest.approx(0.4 + 1.6)  # Burmese + Burmese (Zawgyi)
    assert cc.loc["zho", "size_gib"] == pytest.approx(46.9 + 16.6)  # Simplified + Traditional
    assert cc.loc["hin", "size_gib"] == pytest.approx(20.2 + 0.5)  # + Hindi romanised
    assert not cc.loc["swe", "verified"]  # the two copies disagree
    # paper: "2.5TB"; with Swedish as printed (12.1 GiB) the table sums to 2,394 GiB
    assert cc["size_gib"].sum() - 85.0 + 12.1 == pytest.approx(2394.3)
    mc4 = data_sizes.pretraining_table("mt5").set_index("iso639_3")
    total = (mc4["tokens_billion"] + mc4["romanised_tokens_billion"].fillna(0)).sum()
    assert 6200 < total < 6350  # paper: 6.3T tokens
    assert mc4.loc["eng", "share"] == pytest.approx(2733 / total)
    assert mc4["share"].notna().all()  # every mT5 language has a share, the smallest too
    assert mc4.loc["yor", "share"] == pytest.approx(0.05 / total)
    assert set(mc4.index[~mc4["verified"]]) == {"mal", "mon"}
    # the percentages follow the paper's sampling p ~ pages^0.3 (a check on their transcription)
    sampled = mc4.dropna(subset=["pages_million"])
    predicted = 5.67 * (sampled["pages_million"] / 3067) ** 0.3
    assert ((sampled["mt5_sampling_percent"] / predicted).between(0.96, 1.001)).all()


def test_data_features():
    out = data_sizes.data_pair_features(["eng", "eng", "hin"], ["deu", "hyw", "urd"], "xlm-r")
    assert out["target_in_pretraining"].tolist() == [1.0, 0.0, 1.0]
    assert out["same_script"][2] == 0.0  # Devanagari vs Arabic script
    cc = data_sizes.pretraining_table("xlm-r").set_index("iso639_3")
    assert out["source_pretrain_share"][0] == pytest.approx(math.log10(cc.loc["eng", "share"]))
    assert out["target_pretrain_share"][1] == pytest.approx(math.log10(cc["share"].min() / 2))
    # individual-language codes find their macrolanguage's row (Malay, Dari, Central Pashto)
    assert data_sizes.in_pretraining(["zlm", "zsm", "prs", "pst", "nob"], "xlm-r").tolist() == [1.0] * 5
    mbert = data_sizes.data_pair_features(["eng"], ["deu"], "bert-base-multilingual-cased")
    assert math.isnan(mbert["source_pretrain_share"][0])


def _cli(*args, cwd):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "xltstats.features", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_cli_writes_every_ordered_pair_and_prints_coverage(tmp_path):
    out = tmp_path / "features.csv"
    result = _cli("--languages", "eng,deu,fin", "--out", str(out), "--features",
                  "syntax,genealogy_geography", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out)
    assert len(table) == 9 and "genetic_distance" in table
    assert "syntactic_distance" in result.stdout and "coverage" in result.stdout
    again = tmp_path / "again.csv"
    assert cli_main(["--languages", "eng,deu,fin", "--out", str(again), "--features",
                     "syntax,genealogy_geography"]) == 0
    assert out.read_bytes() == again.read_bytes()


def test_cli_errors_exit_2_and_write_nothing(tmp_path, capsys):
    out = tmp_path / "features.csv"
    assert cli_main(["--languages", "eng,hyw", "--out", str(out)]) == 2
    assert "'hyw' is not in URIEL" in capsys.readouterr().err
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("source,target\neng,deu\nfra,zzz\n")
    assert cli_main(["--pairs", str(pairs), "--out", str(out)]) == 2
    assert "pairs.csv, row 2, column 'target'" in capsys.readouterr().err
    assert cli_main(["--pairs", str(tmp_path / "none.csv"), "--out", str(out)]) == 2
    assert "none.csv: file not found" in capsys.readouterr().err
    assert not out.exists() and list(tmp_path.iterdir()) == [pairs]


def test_cli_pairs_file(tmp_path, capsys):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("source\ttarget\nen\tde\nde\ten\n")
    out = tmp_path / "out.parquet"
    assert cli_main(["--pairs", str(pairs), "--out", str(out), "--features", "syntactic_distance"]) == 0
    table = pd.read_parquet(out)
    assert table[["source", "target"]].values.tolist() == [["deu", "eng"], ["eng", "deu"]]


def test_lexical_and_ud_integration():
    if not os.environ.get("XLTSTATS_MIRROR"):
        pytest.skip("XLTSTATS_MIRROR is not set (needs the UDHR and PUD mirror)")
    out = build_pair_features(["eng", "deu"], ["lexical", "morphology"], cache=False)
    assert {"char_ngram_similarity", "word_overlap_units", "morphological_distance_ud"} <= set(out)
    assert "subword_overlap" not in out
    fwd = out[(out["source"] == "eng") & (out["target"] == "deu")].iloc[0]
    rev = out[(out["source"] == "deu") & (out["target"] == "eng")].iloc[0]
    assert fwd["char_ngram_similarity"] == pytest.approx(rev["char_ngram_similarity"])
    assert 0 < fwd["char_ngram_similarity"] < 1
