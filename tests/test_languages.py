"""Language-code normalisation to ISO 639-3 (xltstats.languages)."""
from __future__ import annotations

import csv
import glob
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xltstats.errors import InputError
from xltstats.languages import (
    LanguageCodeError,
    in_uriel,
    language_name,
    language_overrides,
    normalise_codes,
    to_iso639_3,
    uriel_languages,
)


@pytest.mark.parametrize(
    "code, expected",
    [
        ("de", "deu"),            # ISO 639-1
        ("deu", "deu"),           # ISO 639-2/T = 639-3
        ("ger", "deu"),           # ISO 639-2/B
        ("de-DE", "deu"),         # BCP-47 with region
        ("DE", "deu"),            # case
        (" de ", "deu"),          # stray whitespace
        ("af-ZA", "afr"),
        ("pt_BR", "por"),         # POSIX locale
        ("de_DE.UTF-8", "deu"),   # POSIX locale with encoding
        ("eng_Latn", "eng"),      # FLORES-200 style
        ("zh-Hant", "zho"),       # script subtag
        ("zh-TW", "zho"),
        ("fre", "fra"),
        ("chi", "zho"),
        ("iw", "heb"),            # deprecated 639-1 codes
        ("in", "ind"),
        ("sr-Latn", "srp"),
    ],
)
def test_standard_forms(code, expected):
    assert to_iso639_3(code) == expected


@pytest.mark.parametrize(
    "code, expected",
    [
        ("pcm", "pcm"),   # Nigerian Pidgin (UD)
        ("lzh", "lzh"),   # Classical Chinese (UD), not folded into zho
        ("yue", "yue"),
        ("hyw", "hyw"),   # Western Armenian (UD)
        ("gsw", "gsw"),
        ("swl", "swl"),
        ("kmr", "kmr"),
        ("qhe", "qhe"),   # UD code-switching pseudo-codes are kept
        ("qtd", "qtd"),
        ("qfn", "qfn"),
        ("tl", "tgl"),    # langcodes alone would give Filipino
        ("tgl", "tgl"),
        ("btk", "bbc"),   # NusaX's Toba Batak
    ],
)
def test_universal_dependencies_and_dataset_codes(code, expected):
    assert to_iso639_3(code) == expected


@pytest.mark.parametrize(
    "code, expected",
    [
        ("zh", "zho"), ("cmn", "zho"), ("ar", "ara"), ("arb", "ara"), ("fa", "fas"),
        ("pes", "fas"), ("ms", "msa"), ("zsm", "msa"), ("et", "est"), ("ekk", "est"),
        ("lv", "lav"), ("lvs", "lav"), ("sw", "swa"), ("swh", "swa"), ("sh", "hbs"),
        ("hbs", "hbs"), ("no", "nor"), ("nb", "nor"), ("nob", "nor"), ("nn", "nno"),
        ("nno", "nno"), ("id", "ind"), ("swc", "swc"),
    ],
)
def test_macro_language_policy(code, expected):
    assert to_iso639_3(code) == expected


def test_norwegian_bokmal_and_nynorsk_stay_apart():
    assert to_iso639_3("nb") == to_iso639_3("no") != to_iso639_3("nn")


def test_language_names():
    assert language_name("de") == "German"
    assert language_name("ger") == "German"
    assert language_name("zh-Hant") == "Chinese"
    assert language_name("qhe") == "Hindi-English (code-switching)"
    assert language_name("sh") == "Serbo-Croatian"
    assert language_name("tl") == "Tagalog"
    assert language_name("pcm") == "Nigerian Pidgin"


def test_unknown_code_has_suggestions():
    with pytest.raises(LanguageCodeError) as caught:
        to_iso639_3("dex")
    assert "unknown language code 'dex'" in str(caught.value)
    assert "deu (German)" in caught.value.suggestions
    assert "did you mean" in str(caught.value)


def test_misspelt_name_suggests_the_code():
    with pytest.raises(LanguageCodeError) as caught:
        to_iso639_3("germn")
    assert caught.value.suggestions[0] == "deu (German)"


def test_language_code_error_is_a_value_error():
    with pytest.raises(ValueError):
        to_iso639_3("xyz")


@pytest.mark.parametrize("code", ["", "   ", "und", "zxx", "qqq", "zz", "de-foo-bar-baz-qux"])
def test_codes_that_name_no_language_are_rejected(code):
    with pytest.raises(LanguageCodeError):
        to_iso639_3(code)


def test_ambiguous_code_lists_candidates():
    with pytest.raises(LanguageCodeError) as caught:
        to_iso639_3("bh")
    assert caught.value.candidates == ["bho", "mai", "mag"]
    assert "ambiguous" in str(caught.value) and "bho, mai, mag" in str(caught.value)


def test_non_string_code_is_rejected():
    with pytest.raises(LanguageCodeError):
        to_iso639_3(5)


def test_override_table_is_consistent():
    table = language_overrides()
    assert list(table.columns) == ["code", "iso639_3", "name", "reason"]
    assert not table["code"].duplicated().any()
    assert (table["reason"].str.len() > 10).all(), "every decision needs a reason"
    for code, target in zip(table["code"], table["iso639_3"]):
        for candidate in target.split("|"):
            assert len(candidate) == 3 and candidate.isalpha(), (code, target)
    # A code an override maps to must itself map to itself (no chains, same answer both ways).
    for target in table["iso639_3"]:
        if "|" not in target:
            assert to_iso639_3(target) == target


def test_normalised_macro_codes_are_known_to_uriel():
    if not uriel_languages():
        pytest.skip("lang2vec data files not installed")
    for code in ["zh", "ar", "fa", "ms", "no", "nb", "sh", "et", "lv", "sw", "tl", "btk", "cmn"]:
        assert in_uriel(code), code


def test_normalise_codes_maps_each_value():
    assert normalise_codes(["de", "ger", "pt_BR", "de"]) == ["deu", "deu", "por", "deu"]
    assert normalise_codes(pd.Series(["nb", "no"])) == ["nor", "nor"]
    assert normalise_codes([]) == []


def test_normalise_codes_names_file_row_and_column():
    with pytest.raises(InputError) as caught:
        normalise_codes(["de", "en", "xx", "xx"], file="runs.csv", column="target")
    error = caught.value
    assert (error.file, error.row, error.column) == ("runs.csv", 3, "target")
    assert "runs.csv, row 3, column 'target'" in str(error)
    assert "'xx'" in str(error)


def test_normalise_codes_uses_given_row_numbers():
    with pytest.raises(InputError) as caught:
        normalise_codes(["de", "bh"], file="f.tsv", column="source", rows=[10, 12])
    assert caught.value.row == 12
    assert "bho, mai, mag" in str(caught.value)


def test_normalise_codes_rejects_missing_values():
    with pytest.raises(InputError) as caught:
        normalise_codes(["de", None], column="source")
    assert caught.value.row == 2 and "missing" in str(caught.value)


def test_normalise_codes_is_fast():
    rng = np.random.default_rng(0)
    pool = ["de", "en", "fr", "zh-Hant", "pt_BR", "pcm", "nb", "ar", "sw", "qhe", "tl", "hyw"]
    values = rng.choice(pool, 100_000).tolist()
    normalise_codes(values[:100])  # load langcodes once
    start = time.perf_counter()
    result = normalise_codes(values)
    elapsed = time.perf_counter() - start
    assert len(result) == 100_000 and result[values.index("de")] == "deu"
    assert elapsed < 1.0, f"100k codes took {elapsed:.2f} s"


def _published_codes(mirror: Path) -> set[str]:
    codes: set[str] = set()
    for path in glob.glob(str(mirror / "xpos" / "results" / "udpos-ft-*.csv")):
        table = pd.read_csv(path, usecols=["lang_train", "lang_pred"], dtype=str,
                            keep_default_na=False)
        codes |= set(table["lang_train"]) | set(table["lang_pred"])
    for path in glob.glob(str(mirror / "URIELPlus-LangRank" / "experiment_csvs" / "*" / "*.csv")):
        header = next(csv.reader(open(path, encoding="utf-8")))
        columns = [name for name in header if name.lower().endswith("lang")]
        table = pd.read_csv(path, usecols=columns, dtype=str, keep_default_na=False)
        for column in columns:
            codes |= set(table[column])
    for path in glob.glob(str(mirror / "proxylm" / "src" / "proxy_regressor" / "csv_datasets"
                              / "*.csv")):
        table = pd.read_csv(path, usecols=["source_lang", "target_lang"], dtype=str,
                            keep_default_na=False)
        codes |= set(table["source_lang"]) | set(table["target_lang"])
    for path in glob.glob(str(mirror / "Litmus" / "SumEval" / "data" / "*" / "*.json")):
        for record in json.load(open(path, encoding="utf-8")):
            codes |= set(record.get("train_config", {})) | set(record.get("eval_results", {}))
    udpos_languages = mirror / "xpos" / "research" / "udpos" / "langs-ud.txt"
    if udpos_languages.exists():
        codes |= {line.split()[0] for line in udpos_languages.read_text().splitlines()
                  if line.strip()}
    return {code for code in codes if code}


def test_every_code_in_the_published_tables_normalises():
    mirror = os.environ.get("XLTSTATS_MIRROR")
    if not mirror or not Path(mirror).is_dir():
        pytest.skip("XLTSTATS_MIRROR is not set to the published-data mirror")
    codes = _published_codes(Path(mirror))
    assert len(codes) > 150
    normalised = {code: to_iso639_3(code) for code in codes}
    if uriel_languages():
        outside = {code for code, iso in normalised.items() if iso not in uriel_languages()}
        # Western Armenian and UD's code-switching pseudo-languages have no URIEL entry.
        assert outside <= {"hyw", "qhe", "qtd", "qfn"}, outside
