"""Retired ISO 639-3 codes (SIL table), individual languages, English names (issue 13 point 5)."""
from __future__ import annotations

import hashlib

import pytest

from xltstats.errors import InputError
from xltstats.languages import (
    LanguageCodeError,
    collect_resolutions,
    language_options,
    normalise_codes,
    retirement,
    retirement_table,
    to_iso639_3,
)
from xltstats.paths import package_data


def test_shipped_table_is_the_documented_file():
    path = package_data("iso639_3_retirements.tsv")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    doc = package_data("iso639_3_retirements.md").read_text(encoding="utf-8")
    assert digest in doc
    table = retirement_table()
    assert len(table) == 388 and f"{len(table)} codes" in doc
    assert set(table["Ret_Reason"]) == {"C", "D", "M", "N", "S"}
    # Every change, duplicate and merge names its replacement; splits name theirs in the remedy.
    assert (table.loc[table["Ret_Reason"].isin(["C", "D", "M"]), "Change_To"] != "").all()


def test_retired_code_maps_to_replacement_and_is_reported():
    with collect_resolutions() as notes:
        assert to_iso639_3("jai") == "jac"
        assert to_iso639_3("JAI") == "jac"
        assert to_iso639_3("fri") == "fry"          # changed (C)
        assert to_iso639_3("deu") == "deu"
    assert set(notes) == {"jai", "JAI", "fri"}
    assert "Western Jacalteco" in notes["jai"] and "2009-01-16" in notes["jai"]
    assert "merged into jac" in notes["jai"]
    assert retirement("jai")["replacement"] == "jac"
    assert retirement("deu") is None


def test_every_retired_code_is_mapped_listed_or_explained():
    import langcodes

    table = retirement_table()
    mapped = 0
    for row in table.to_dict("records"):
        code = row["Id"]
        still_accepted = langcodes.Language.get(code).is_valid()
        if row["Ret_Reason"] in ("C", "D", "M"):
            iso = to_iso639_3(code)
            if not still_accepted:
                assert iso == to_iso639_3(row["Change_To"]), code
                mapped += 1
        elif not still_accepted:
            with pytest.raises(LanguageCodeError) as caught:
                to_iso639_3(code)
            if row["Ret_Reason"] == "S" and len(retirement(code)["split_into"]) > 1:
                assert caught.value.candidates == retirement(code)["split_into"]
            else:
                assert "non-existent" in str(caught.value) or "split" in str(caught.value)
    assert mapped == 104


def test_split_code_lists_the_new_languages():
    with pytest.raises(LanguageCodeError) as caught:
        to_iso639_3("cit")
    assert caught.value.candidates == ["rhg", "ctg"]
    assert "Chittagonian" in str(caught.value) and "split" in str(caught.value)


def test_retired_code_still_in_use_is_kept():
    # ajp was merged into apc in 2023, but UD (xpos) and URIEL use ajp: tables keep joining.
    assert retirement("ajp")["replacement"] == "apc"
    assert to_iso639_3("ajp") == "ajp"


@pytest.mark.parametrize("code, folded, individual", [
    ("pes", "fas", "pes"), ("cmn", "zho", "cmn"), ("arb", "ara", "arb"), ("nob", "nor", "nob"),
    ("nb", "nor", "nob"), ("zsm", "msa", "zsm"), ("ekk", "est", "ekk"), ("swh", "swa", "swh"),
    ("fa", "fas", "fas"), ("zh-CN", "zho", "zho"), ("no", "nor", "nor"), ("nn", "nno", "nno"),
    ("yue", "yue", "yue"), ("deu", "deu", "deu"),
])
def test_individual_languages_kept_on_request(code, folded, individual):
    assert to_iso639_3(code) == folded
    assert to_iso639_3(code, individual=True) == individual
    with language_options(individual=True):
        assert to_iso639_3(code) == individual
        assert to_iso639_3(code, individual=False) == folded
    assert to_iso639_3(code) == folded


def test_individual_languages_do_not_collide_in_a_table():
    values = ["pes", "fa", "cmn", "zh", "arb", "ar", "nb", "no"]
    assert len(set(normalise_codes(values))) == 4
    assert normalise_codes(values, individual=True) == ["pes", "fas", "cmn", "zho", "arb",
                                                        "ara", "nob", "nor"]


@pytest.mark.parametrize("name, code", [
    ("Bengali", "ben"), ("Farsi", "fas"), ("German", "deu"), ("Swiss German", "gsw"),
    ("Western Jacalteco", "jac"), ("moroccan arabic", "ary"), ("Norwegian Bokmål", "nor"),
])
def test_english_names(name, code):
    with collect_resolutions() as notes:
        assert to_iso639_3(name) == code
    assert notes == {name: notes[name]} and f"English name of {code}" in notes[name]


def test_english_names_follow_the_individual_option():
    assert to_iso639_3("Mandarin Chinese") == "zho"
    assert to_iso639_3("Mandarin Chinese", individual=True) == "cmn"


def test_short_values_are_codes_not_names():
    assert to_iso639_3("Ga") == "gle"       # Irish (ga), not the Ga language (gaa)
    assert to_iso639_3("gaa") == "gaa"


def test_unknown_names_and_codes_get_sensible_suggestions():
    with pytest.raises(LanguageCodeError) as caught:
        to_iso639_3("Bengalii")
    assert "ben (Bangla)" in caught.value.suggestions
    assert "neither a language code nor an English language name" in str(caught.value)
    with pytest.raises(LanguageCodeError) as caught:
        to_iso639_3("Germn")
    assert caught.value.suggestions[0] == "deu (German)"
    # A name with a qualifier langcodes would match by prefix only ("Arabic") is not guessed.
    with pytest.raises(LanguageCodeError):
        to_iso639_3("Arabic, Moroccan")


def test_table_errors_name_row_and_column():
    with pytest.raises(InputError) as caught:
        normalise_codes(["deu", "jai", "cit"], file="t.csv", column="target")
    assert "row 3" in str(caught.value) and "'target'" in str(caught.value)
    assert "rhg" in str(caught.value)


def test_fit_config_option_is_validated_and_reading_follows_it(tmp_path):
    from xltstats.errors import ConfigError
    from xltstats.pipeline.config import FitConfig
    from xltstats.results import read_results

    assert FitConfig().individual_languages is None
    assert "individual_languages" not in FitConfig().to_dict()       # existing manifests unchanged
    assert FitConfig.from_dict({"individual_languages": True}).individual_languages is True
    with pytest.raises(ConfigError, match="'individual_languages' must be true or false"):
        FitConfig.from_dict({"individual_languages": "yes"})
    table = tmp_path / "t.csv"
    table.write_text("model,task,source,target,score,metric,n_source_examples,n_target_examples,seed\n"
                     "m,t,pes,deu,0.5,accuracy,100,0,1\nm,t,fa,deu,0.6,accuracy,100,0,1\n",
                     encoding="utf-8")
    with language_options(individual=True):
        assert sorted(read_results(table)["source"]) == ["fas", "pes"]
    with pytest.raises(InputError):     # folded, the two rows collide (same key)
        read_results(table)
