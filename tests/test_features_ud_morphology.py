"""UD (PUD) morphology distance: hand-computed profiles and divergences, NaN rules, real data."""
from __future__ import annotations

import math

import conllu
import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

from xltstats.features.ud_morphology import (
    jensen_shannon,
    morphology_profile,
    profile_distance,
    ud_morphology_features,
    ud_morphology_from_profiles,
)


LANG_A = """# sent_id = s1
# text = a b
1-2\tab\t_\t_\t_\t_\t_\t_\t_\t_
1\ta\ta\tNOUN\t_\tNumber=Sing\t0\troot\t_\t_
2\tb\tb\tNOUN\t_\tCase=Nom|Number=Plur\t1\tdep\t_\t_
3\tc\tc\tVERB\t_\t_\t1\tdep\t_\t_

"""
LANG_B = """# sent_id = s1
# text = a b
1\ta\ta\tNOUN\t_\tNumber=Sing\t0\troot\t_\t_
2\tb\tb\tVERB\t_\t_\t1\tdep\t_\t_

"""


def _parse(tmp_path, name, text):
    path = tmp_path / f"{name}.conllu"
    path.write_text(text, encoding="utf-8")
    return conllu.parse(path.read_text(encoding="utf-8"))


def test_profile_counts_by_hand(tmp_path):
    a = morphology_profile(_parse(tmp_path, "a", LANG_A))
    assert a.n_words == 3  # the 1-2 multiword range is not a word
    assert a.n_feature_pairs == 3
    assert a.feats_per_token == pytest.approx(1.0)
    assert dict(a.events["NOUN"]) == {"Number=Sing": 1, "Case=Nom": 1, "Number=Plur": 1}
    assert dict(a.events["VERB"]) == {"<none>": 1}


def test_distance_by_hand(tmp_path):
    a = morphology_profile(_parse(tmp_path, "a", LANG_A))
    b = morphology_profile(_parse(tmp_path, "b", LANG_B))
    # NOUN: (1/3, 1/3, 1/3) vs (1, 0, 0); m = (2/3, 1/6, 1/6)
    # KL(p||m) = 1/3 * log2(1/2) + 2/3 * log2(2) = 1/3; KL(q||m) = log2(3/2)
    jsd_noun = (1 / 3 + math.log2(1.5)) / 2
    assert jensen_shannon(a.events["NOUN"], b.events["NOUN"]) == pytest.approx(jsd_noun)
    assert jsd_noun == pytest.approx(jensenshannon([1, 1, 1], [3, 0, 0], base=2) ** 2)
    # VERB: identical {<none>}; weights: NOUN (2/3 + 1/2) / 2, VERB (1/3 + 1/2) / 2
    w_noun, w_verb = (2 / 3 + 1 / 2) / 2, (1 / 3 + 1 / 2) / 2
    expected = (w_noun * jsd_noun + w_verb * 0.0) / (w_noun + w_verb)
    assert profile_distance(a, b) == pytest.approx(expected)
    assert profile_distance(b, a) == pytest.approx(expected)
    assert profile_distance(a, a) == pytest.approx(0.0)

    df = ud_morphology_from_profiles({"aaa": a, "bbb": b}, [("aaa", "bbb"), ("bbb", "aaa"), ("aaa", "ccc")])
    assert df.loc[0, "morphological_distance_ud"] == pytest.approx(expected)
    assert df.loc[1, "morphological_distance_ud"] == pytest.approx(expected)
    # feats per token: 3/3 vs 1/2
    assert df.loc[0, "feats_per_token_diff"] == pytest.approx(0.5)
    assert df.loc[0, "feats_per_token_source"] == pytest.approx(1.0)
    assert df.loc[0, "feats_per_token_target"] == pytest.approx(0.5)
    assert np.isnan(df.loc[2, "morphological_distance_ud"])  # no profile -> NaN, not 0
    assert np.isnan(df.loc[2, "feats_per_token_diff"])


def test_disjoint_distributions_reach_one(tmp_path):
    a = morphology_profile(_parse(tmp_path, "a", LANG_B))
    b = morphology_profile(_parse(tmp_path, "b", LANG_B.replace("Number=Sing", "Gender=Fem").replace("\t_\t1\tdep", "\tMood=Ind\t1\tdep")))
    assert profile_distance(a, b) == pytest.approx(1.0)


@pytest.mark.needs_mirror
def test_pud_real_data_orderings():
    pairs = [("spa", "por"), ("spa", "fin"), ("por", "spa"), ("es", "et")]
    df = ud_morphology_features(pairs)
    assert list(df["source"]) == ["spa", "spa", "por", "spa"]
    d = df["morphological_distance_ud"]
    assert 0 <= d[0] < d[1] <= 1
    assert d[0] == pytest.approx(d[2])
    assert np.isnan(d[3])  # no Estonian PUD treebank
    assert df.loc[0, "feats_per_token_source"] > 1.5  # Spanish PUD: about 2 features per word
