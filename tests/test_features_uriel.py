"""URIEL distances checked against plain-Python cosine distances on the raw lang2vec vectors."""
from __future__ import annotations

import functools
import math
from importlib import resources

import numpy as np
import pytest

from xltstats.errors import InputError
from xltstats.features import uriel


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XLTSTATS_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@functools.lru_cache(maxsize=None)
def _load(file):
    path = str(resources.files("lang2vec").joinpath("data", file))
    with np.load(path) as z:
        return ([str(x) for x in z["langs"]], [str(f) for f in z["feats"]],
                [str(s) for s in z["sources"]], z["data"])


def _raw(file, code, prefixes, sources):
    """The raw vector of one language, read without xltstats: list of floats (-1 = missing)."""
    langs, feats, srcs, data = _load(file)
    data = data[langs.index(code)].tolist()
    vector = []
    for prefix in prefixes:
        for j, f in enumerate(feats):
            if f.startswith(prefix):
                values = [float(data[j][srcs.index(s)]) for s in sources]
                vector.append(max(values))
    return vector


def _cosine_distance(u, v):
    dot = sum(a * b for a, b in zip(u, v))
    nu = math.sqrt(sum(a * a for a in u))
    nv = math.sqrt(sum(b * b for b in v))
    return 1.0 - dot / (nu * nv)


KNN_SETS = {
    "syntactic_distance": ("feature_predictions.npz", ["S_"], ["predicted"]),
    "phonological_distance": ("feature_predictions.npz", ["P_"], ["predicted"]),
    "inventory_distance": ("feature_predictions.npz", ["INV_"], ["predicted"]),
    "featural_distance": ("feature_predictions.npz", ["S_", "P_", "INV_"], ["predicted"]),
    "genetic_distance": ("family_features.npz", [""], ["FAM"]),
    "geographic_distance": ("geocoord_features.npz", [""], ["GEOCOORDS"]),
}
PAIRS = [("eng", "deu"), ("eng", "jpn"), ("fin", "hun"), ("hin", "urd"), ("swh", "yor")]


@pytest.mark.parametrize("column", list(KNN_SETS))
def test_knn_distances_match_hand_computation(column):
    file, prefixes, sources = KNN_SETS[column]
    got = uriel.uriel_pair_features([a for a, _ in PAIRS], [b for _, b in PAIRS], [column])[column]
    for (a, b), value in zip(PAIRS, got):
        expected = _cosine_distance(_raw(file, a, prefixes, sources), _raw(file, b, prefixes, sources))
        assert value == pytest.approx(expected, abs=1e-5), (column, a, b)


def test_wals_distance_uses_features_observed_for_both():
    for a, b in [("eng", "deu"), ("eng", "jpn"), ("fin", "hun"), ("rus", "pol")]:
        u = _raw("features.npz", a, ["S_"], ["WALS"])
        v = _raw("features.npz", b, ["S_"], ["WALS"])
        both = [(x, y) for x, y in zip(u, v) if x >= 0 and y >= 0]
        expected = _cosine_distance([x for x, _ in both], [y for _, y in both])
        got = uriel.uriel_pair_features([a], [b], ["syntactic_distance_wals",
                                                   "syntactic_distance_wals_coverage"])
        assert got["syntactic_distance_wals"][0] == pytest.approx(expected, abs=1e-6)
        assert got["syntactic_distance_wals_coverage"][0] == pytest.approx(len(both) / len(u))


def test_phoible_inventory_is_union_of_phoible_sources():
    a, b = "eng", "fra"
    u = _raw("features.npz", a, ["INV_"], list(uriel.PHOIBLE_SOURCES))
    v = _raw("features.npz", b, ["INV_"], list(uriel.PHOIBLE_SOURCES))
    both = [(x, y) for x, y in zip(u, v) if x >= 0 and y >= 0]
    expected = _cosine_distance([x for x, _ in both], [y for _, y in both])
    got = uriel.uriel_pair_features([a], [b], ["inventory_distance_phoible"])
    assert got["inventory_distance_phoible"][0] == pytest.approx(expected, abs=1e-6)


def test_no_shared_observed_features_is_nan_with_zero_coverage():
    # Estonian (macro code) has no WALS phonology in URIEL
    got = uriel.uriel_pair_features(["est"], ["eng"], ["phonological_distance_wals",
                                                       "phonological_distance_wals_coverage"])
    assert math.isnan(got["phonological_distance_wals"][0])
    assert got["phonological_distance_wals_coverage"][0] == 0.0


def test_language_without_family_has_nan_genetic_distance_and_family():
    assert uriel.language_family("eus") is None  # Basque: an isolate, no fam clade
    got = uriel.uriel_pair_features(["eus"], ["spa"], ["genetic_distance", "same_family",
                                                       "same_genus"])
    assert all(math.isnan(v[0]) for v in got.values())


def test_family_and_genus():
    got = uriel.uriel_pair_features(["eng", "eng", "fra", "fin"], ["deu", "fra", "ita", "jpn"],
                                    ["same_family", "same_genus"])
    assert got["same_family"].tolist() == [1.0, 1.0, 1.0, 0.0]
    assert got["same_genus"].tolist() == [1.0, 0.0, 1.0, 0.0]
    assert uriel.language_family("fin") == "Uralic"


def test_blocks_match_pairs_and_are_symmetric_with_zero_diagonal():
    codes = ["eng", "deu", "fra", "jpn", "hin", "swh", "fin", "tur", "eus"]
    idx = uriel.indices(codes)
    for column in uriel.KNN_DISTANCES:
        block = uriel.distance_block(column, idx, idx)
        assert block.dtype == np.float32
        np.testing.assert_allclose(block, block.T, atol=1e-6)
        np.testing.assert_allclose(np.diag(block)[:-1], 0.0, atol=1e-5)
        # Basque has no family clade: undefined genetic distance, defined everything else
        assert np.isnan(block[-1]).all() == (column == "genetic_distance")
        left, right = np.repeat(idx, len(idx)), np.tile(idx, len(idx))
        pairs = uriel.cosine_distance_pairs(column, left, right).reshape(len(idx), len(idx))
        np.testing.assert_allclose(block, pairs, atol=1e-5, equal_nan=True)
    dist, cov = uriel.observed_distance_block("syntactic_distance_wals", idx, idx)
    d2, c2 = uriel.observed_distance_pairs("syntactic_distance_wals", np.repeat(idx, len(idx)),
                                           np.tile(idx, len(idx)))
    np.testing.assert_allclose(dist, d2.reshape(dist.shape), atol=1e-5, equal_nan=True)
    np.testing.assert_allclose(cov, c2.reshape(cov.shape), atol=1e-6)


def test_unknown_language_names_it_and_suggests_near_codes():
    with pytest.raises(InputError) as info:
        uriel.indices(["eng", "hyw"])
    message = str(info.value)
    assert "'hyw'" in message and "hye (Armenian)" in message


def test_covers_all_uriel_languages():
    assert len(uriel.uriel_languages()) == 7970
    assert uriel.unit_vectors("featural_distance").shape == (7970, 289)


def test_observed_computation_and_geographic_match_urielplus():
    """URIEL+'s own (slow, per-pair) functions as an independent reference, cosine metric."""
    urielplus = pytest.importorskip("urielplus.urielplus", reason="urielplus not installed")
    import logging

    codes = ["eng", "deu", "fra", "jpn", "tur", "hin"]
    previous = logging.root.manager.disable
    logging.disable(logging.INFO)
    try:
        up = urielplus.URIELPlus()
        up.set_distance_metric("cosine")
        theirs_syntax = np.asarray(up.new_distance("syntactic", codes), dtype=float)
        theirs_geo = np.asarray(up.new_distance("geographic", codes), dtype=float)
    finally:
        logging.disable(previous)
    idx = uriel.indices(codes)
    sources = tuple(str(s) for s in uriel._npz("features.npz")["sources"])
    raw = uriel._select("features.npz", sources, ("S_",))  # URIEL+: raw values, union of sources
    ours_syntax, _ = uriel.observed_block(np.where(raw < 0, 0, raw), (raw >= 0).astype(np.float32),
                                          idx, idx)
    np.testing.assert_allclose(ours_syntax, theirs_syntax, atol=6e-5)  # URIEL+ rounds to 4 places
    ours_geo = uriel.distance_block("geographic_distance", idx, idx)
    np.testing.assert_allclose(ours_geo, theirs_geo, atol=6e-5)
