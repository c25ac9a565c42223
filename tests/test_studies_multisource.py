"""Source sets, budget splits, selection heuristics and their evaluation."""
import json

import numpy as np
import pandas as pd
import pytest

from xltstats.errors import InputError
from xltstats.studies.multisource import (combinations, prefixes, score_sets, select, set_size_model,
                                          split_budget)
from xltstats.studies.multisource.analysis import summarise_selection
from xltstats.studies.multisource.heuristics import pairwise_diversity

POOL = ["ara", "deu", "eng", "spa", "fra", "rus", "zho"]


def test_35_triples_stable_order():
    triples = combinations(POOL, 3)
    assert len(triples) == 35 and len(set(triples)) == 35
    assert triples[0] == ("ara", "deu", "eng") and triples[-1] == ("rus", "spa", "zho")
    assert triples == combinations(list(reversed(POOL)), 3)  # order of the pool given does not matter
    assert triples == sorted(triples)


def test_prefixes_nested():
    sets = prefixes(["eng", "spa", "deu", "zho", "fra"], 1, 5)
    assert sets[0] == ("eng",) and sets[2] == ("deu", "eng", "spa") and len(sets[-1]) == 5
    assert all(set(a) < set(b) for a, b in zip(sets, sets[1:]))


@pytest.mark.parametrize("total", [1000, 1001, 1002, 7, 3])
def test_budget_split(total):
    split = split_budget(total, ["spa", "eng", "deu"])
    assert sum(split.values()) == total
    assert max(split.values()) - min(split.values()) <= 1
    base, extra = divmod(total, 3)
    assert split == {lang: base + (i < extra) for i, lang in enumerate(["deu", "eng", "spa"])}


def test_budget_too_small():
    with pytest.raises(ValueError, match="cannot be split over 3 sources"):
        split_budget(2, ["eng", "spa", "deu"])
    with pytest.raises(ValueError, match="empty"):
        split_budget(10, [])


TOY = {"aaa": np.array([1.0, 0.0]), "bbb": np.array([0.0, 1.0]), "ccc": np.array([1.0, 1.0]),
       "ddd": np.array([1.0, 0.1])}


def test_toy_diversity_hand_computed():
    # 1 - cos: a-b 1, a-c 1-1/sqrt2, b-c 1-1/sqrt2, a-d 1-1/sqrt(1.01), ...
    r2 = 1 / np.sqrt(2)
    assert pairwise_diversity(TOY, ["aaa", "bbb", "ccc"]) == pytest.approx(1 + 2 * (1 - r2))
    table = score_sets([["aaa", "bbb"], ["aaa", "ddd"], ["bbb", "ccc"]], heuristics=["diversity_lm"],
                       lm_vectors=TOY)
    cos_ad = 1 / np.sqrt(1.01)
    assert table["diversity_lm"].tolist() == pytest.approx([1.0, 1 - cos_ad, 1 - r2])
    assert table["set"].iloc[int(table["diversity_lm"].argmax())] == "aaa+bbb"


def test_heuristic_bad_input_names_language_and_vector():
    with pytest.raises(InputError, match="'eus'.*'fam'"):
        score_sets([["eng", "eus"]], heuristics=["diversity_family"])
    with pytest.raises(InputError, match="'ccc' has no LM-embedding vector"):
        score_sets([["aaa", "ccc"]], heuristics=["diversity_lm"], lm_vectors={"aaa": np.ones(2)})
    out = score_sets([["eng", "eus"], ["eng", "fra"]], heuristics=["diversity_family"], missing="nan")
    assert np.isnan(out["diversity_family"].iloc[0]) and out["diversity_family"].iloc[1] > 0


def test_script_and_pretraining_heuristics():
    out = score_sets([["eng", "fra", "deu"], ["ara", "rus", "zho"], ["eng", "rus", "fra"]],
                     heuristics=["script_diversity", "pretraining_size"])
    assert out["script_diversity"].tolist() == [1, 3, 2]  # Lim et al.'s cases 1, 3, 2
    assert (out["pretraining_size"] > 0).all()


def _toy_results():
    # 4 sets of 2 from the toy pool, 5 targets, 2 seeds; planted means: aaa+bbb best
    planted = {"aaa+bbb": 0.8, "aaa+ccc": 0.6, "aaa+ddd": 0.5, "bbb+ccc": 0.7}
    rows = []
    rng = np.random.default_rng(0)
    for s, mu in planted.items():
        a, b = s.split("+")
        for t in ["ttt", "uuu", "vvv", "www", "xxx"]:
            for seed in (1, 2):
                rows.append({"model": "m", "task": "x", "source": "mul", "target": t,
                             "score": mu + 0.01 * rng.normal(), "metric": "accuracy",
                             "n_source_examples": 100, "n_target_examples": 0, "seed": seed,
                             "source_languages": json.dumps({a: 50, b: 50})})
    return pd.DataFrame(rows)


def test_select_ranks_and_p_values():
    sel, per = select(_toy_results(), heuristics=["diversity_lm"], lm_vectors=TOY, n_boot=200)
    mx = sel[sel["direction"] == "max"].iloc[0]
    assert mx["chosen_set"] == "aaa+bbb" and mx["rank"] == 1 and mx["p_value"] == 0.25
    assert mx["rank_ci_low"] == 1 and mx["rank_ci_high"] == 1 and mx["n_sets"] == 4
    mn = sel[sel["direction"] == "min"].iloc[0]  # aaa+ddd is the least diverse and the worst
    assert mn["chosen_set"] == "aaa+ddd" and mn["rank"] == 4 and mn["p_value"] == 1.0
    assert per.sort_values("rank")["set"].tolist() == ["aaa+bbb", "bbb+ccc", "aaa+ccc", "aaa+ddd"]
    summary = summarise_selection(sel, n_sim=2000)
    assert summary.loc[summary["direction"] == "max", "mean_percentile"].iloc[0] == 0


def test_set_size_model_recovers_inverted_u():
    rng = np.random.default_rng(1)
    langs = ["eng", "spa", "deu", "zho", "fra", "rus", "ara"]
    rows = []
    for k in range(1, 6):
        for j in range(3):  # three sets per size
            members = [langs[(j + i) % 7] for i in range(k)]
            for t in ["hin", "tur", "swa", "jpn", "kor", "vie"]:
                score = 0.5 + 0.12 * k - 0.02 * k * k + 0.02 * rng.normal()
                rows.append({"model": "m", "task": "x", "source": "mul" if k > 1 else members[0],
                             "target": t, "score": score, "metric": "accuracy", "n_source_examples": 1000,
                             "n_target_examples": 0, "seed": 1,
                             "source_languages": json.dumps({m: 1000 // k for m in members})})
    out = set_size_model(pd.DataFrame(rows)).iloc[0]
    assert out["b_set_size_sq"] == pytest.approx(-0.02, abs=0.005)
    assert out["vertex"] == pytest.approx(3.0, abs=0.4) and out["inverted_u"]


def test_vocab_coverage_from_a_tokenizer(tmp_path):
    pytest.importorskip("transformers")
    from xltstats.experiments.train import load_tokenizer, train_tokenizer
    from xltstats.studies.multisource import token_vocabularies

    texts = {"aaa": ["the cat sat", "the dog"], "bbb": ["le chat", "le chien"], "ccc": ["the chat"]}
    train_tokenizer([t for v in texts.values() for t in v], tmp_path / "tok", vocab_size=100)
    tok = load_tokenizer(str(tmp_path / "tok"))
    vocab = token_vocabularies(texts, tok)
    words = {lang: {w for line in lines for w in line.split()} for lang, lines in texts.items()}
    assert {tok.convert_ids_to_tokens(i) for i in vocab["aaa"]} == words["aaa"]  # whole words in this vocab
    out = score_sets([["aaa"], ["aaa", "ccc"], ["aaa", "bbb"]], heuristics=["vocab_coverage"],
                     vocabularies=vocab).set_index("set")["vocab_coverage"]
    everything = words["aaa"] | words["bbb"] | words["ccc"]  # the, cat, sat, dog, le, chat, chien
    assert out["aaa"] == pytest.approx(4 / 7)
    assert out["aaa+ccc"] == pytest.approx(5 / len(everything))
    assert out["aaa+bbb"] == pytest.approx(1.0)
