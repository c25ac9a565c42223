"""Grambank morphological distance checked against a plain-Python computation on the CSV."""
from __future__ import annotations

import csv
import math

import pytest

pytest.importorskip("urielplus", reason="the Grambank data ships with the urielplus package")

from xltstats.features import grambank  # noqa: E402


def _rows():
    directory = grambank.urielplus_csv_dir()
    with open(directory / "uriel_glottocode_map.csv", newline="", encoding="utf-8") as fh:
        glotto = {r["iso_code"]: r["glottocode"] for r in csv.DictReader(fh)}
    with open(directory / "grambank_data.csv", newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        columns = [c for c in reader.fieldnames if c.startswith("M_")]
        table = {r["language_id"]: [int(float(r[c])) for c in columns] for r in reader}
    return glotto, table, columns


def _hand(a, b):
    glotto, table, columns = _rows()
    u, v = table[glotto[a]], table[glotto[b]]
    both = [(x, y) for x, y in zip(u, v) if x >= 0 and y >= 0]
    dot = sum(x * y for x, y in both)
    nu = math.sqrt(sum(x * x for x, _ in both))
    nv = math.sqrt(sum(y * y for _, y in both))
    return 1 - dot / (nu * nv), len(both) / len(columns)


@pytest.mark.parametrize("a,b", [("eng", "fra"), ("fin", "hun"), ("jpn", "kor"), ("tur", "hin")])
def test_morphological_distance_matches_hand_computation(a, b):
    expected, coverage = _hand(a, b)
    got = grambank.morphological_pair_features([a, b], [b, a])
    assert got["morphological_distance"][0] == pytest.approx(expected, abs=1e-12)
    assert got["morphological_distance"][1] == pytest.approx(expected, abs=1e-12)  # symmetric
    assert got["morphological_distance_coverage"][0] == pytest.approx(coverage)


def test_morphological_subset_is_75_grambank_parameters():
    table = grambank.morphological_features()
    assert len(table) == 75 and table["grambank_id"].is_unique
    assert table["column"].str.startswith("M_").all()
    assert table["grambank_id"].str.match(r"^GB\d{3}$").all()


def test_language_without_grambank_entry_is_nan_not_zero():
    got = grambank.morphological_pair_features(["deu", "eng"], ["eng", "eng"])
    assert math.isnan(got["morphological_distance"][0])  # German is not in this Grambank release
    assert math.isnan(got["morphological_distance_coverage"][0])
    assert got["morphological_distance"][1] == 0.0


def test_macrolanguage_code_uses_its_main_individual_language():
    est = grambank.morphological_pair_features(["est"], ["fin"])["morphological_distance"][0]
    ekk = grambank.morphological_pair_features(["ekk"], ["fin"])["morphological_distance"][0]
    assert est == ekk and not math.isnan(est)


def test_german_and_spanish_are_absent_from_the_data_not_lost_in_mapping():
    glotto, table, _ = _rows()
    assert glotto["deu"] == "stan1295" and glotto["spa"] == "stan1288"
    assert "stan1295" not in table and "stan1288" not in table
    # no other Grambank row is reachable for them either
    assert "deu" not in grambank.grambank_languages()
    assert "spa" not in grambank.grambank_languages()


@pytest.mark.parametrize("iso,glottocode", [("hrv", "sout1528"), ("srp", "sout1528"),
                                            ("krl", "nort2673"), ("ajp", "nort3139"),
                                            ("urd", "hind1269")])
def test_grambank_variety_stand_in_matches_hand_computation(iso, glottocode):
    glotto, table, columns = _rows()
    assert glotto[iso] not in table and glottocode in table  # the map alone finds nothing
    u, v = table[glottocode], table[glotto["rus"]]
    both = [(x, y) for x, y in zip(u, v) if x >= 0 and y >= 0]
    dot = sum(x * y for x, y in both)
    expected = 1 - dot / math.sqrt(sum(x * x for x, _ in both) * sum(y * y for _, y in both))
    got = grambank.morphological_pair_features([iso], ["rus"])
    assert got["morphological_distance"][0] == pytest.approx(expected, abs=1e-12)
    assert got["morphological_distance_coverage"][0] == pytest.approx(len(both) / len(columns))
