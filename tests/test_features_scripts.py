"""Scripts beyond CLDR's likely scripts, from the UDHR texts (issue 13 point 6)."""
from __future__ import annotations

import os

import numpy as np
import pytest

from xltstats.features import scripts
from xltstats.features.data_sizes import cldr_script, likely_script, same_script
from xltstats.paths import package_data


@pytest.mark.parametrize("text, script", [
    ("Всі люди народжуються вільними", "Cyrl"), ("All human beings are born free", "Latn"),
    ("ܟܠ ܒܪܢܫܐ", "Syrc"), ("人人生而自由", "Hani"), ("ᐃᓄᒃᑎᑐᑦ", "Cans"),
    ("सभी मनुष्य", "Deva"), ("12, 34; (!)", None),
])
def test_text_script(text, script):
    assert scripts.text_script(text)[0] == script


def test_mixed_text_share():
    found, letters, share = scripts.text_script("abcd" * 3 + "абвг")
    assert found == "Latn" and letters == 16 and share == pytest.approx(0.75)


def test_lookup_prefers_cldr_then_udhr_then_unknown():
    assert scripts.language_script("deu") == ("Latn", "cldr")
    assert cldr_script("kmr") is None                      # CLDR has no likely script
    assert scripts.language_script("kmr") == ("Latn", "udhr:kmr")
    assert scripts.language_script("aii") == ("Syrc", "udhr:aii")
    assert scripts.language_script("hyw") == (None, "unknown")
    assert likely_script("kmr") == "Latn" and likely_script("hyw") is None


def test_same_script_known_where_udhr_gives_the_script():
    result = same_script(["kmr", "kmr", "aii", "hyw"], ["deu", "rus", "deu", "deu"])
    assert result.tolist()[:3] == [1.0, 0.0, 0.0] and np.isnan(result[3])


def test_table_rows_only_where_cldr_is_silent():
    table = scripts.script_table()
    assert len(table) == 158
    assert all(cldr_script(code) is None for code in table)
    assert all(origin.startswith("udhr:") for _, origin in table.values())


@pytest.mark.skipif(not os.environ.get("XLTSTATS_MIRROR"), reason="needs the UDHR mirror")
def test_shipped_rows_regenerate():
    wanted = {"kmr", "aii", "cjy", "niv", "ike", "gug"}
    shipped = package_data(scripts.SCRIPTS_FILE).read_text(encoding="utf-8").splitlines()
    expected = [shipped[0]] + [line for line in shipped[1:] if line.split(",")[0] in wanted]
    assert len(expected) == 7
    text = scripts.format_table(scripts.build_script_table(languages=wanted))
    assert text.splitlines() == expected


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("XLTSTATS_MIRROR"), reason="needs the UDHR mirror")
def test_shipped_table_regenerates_byte_for_byte():
    text = scripts.format_table(scripts.build_script_table())
    assert text == package_data(scripts.SCRIPTS_FILE).read_text(encoding="utf-8")
