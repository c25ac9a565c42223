"""Citations of the data and methods a fit used (issue 15)."""
from __future__ import annotations

import re

import pytest

from xltstats import references as R

REQUIRED = ["littell-etal-2017-uriel", "skirgard-etal-2023-grambank", "khan-etal-2025-urielplus",
            "unicode-udhr", "de-marneffe-etal-2021-universal", "bates-etal-2015-lme4",
            "ke-etal-2017-lightgbm", "nakagawa-schielzeth-2013-r2", "cameron-gelbach-miller-2011"]


def test_shipped_bibtex_is_well_formed():
    entries = R.references()
    assert set(REQUIRED) <= set(entries)
    text = R.package_data(R.REFERENCES_FILE).read_text(encoding="utf-8")
    assert len(entries) == text.count("\n@")
    for key, entry in entries.items():
        assert entry.count("{") == entry.count("}"), key
        assert re.search(r"^\s*title\s*=", entry, flags=re.M), key
        assert re.search(r"^\s*(year|howpublished)\s*=", entry, flags=re.M), key


def _manifest(**overrides):
    manifest = {
        "config": {"ols": {"cov_type": "cluster2"}, "lexical_corpus": "udhr", "groups": {"a": ["x"]},
                   "cv": {"schemes": ["random"]}},
        "features_used": ["syntactic_distance", "morphological_distance", "char_ngram_similarity",
                          "target_pretrain_share"],
        "formulas": {"ols": "score ~ syntactic_distance", "mixed": "score ~ x + (1 | source)"},
    }
    manifest.update(overrides)
    return manifest


def test_keys_follow_what_the_fit_used():
    keys = R.used_keys(_manifest(), models=["xlm-roberta-base"], trees=True)
    assert set(REQUIRED) - {"de-marneffe-etal-2021-universal"} <= set(keys)
    assert "conneau-etal-2020-unsupervised" in keys and "xue-etal-2021-mt5" not in keys
    assert "mackinnon-white-1985" not in keys
    plain = R.used_keys(_manifest(config={"ols": {"cov_type": "HC3"}, "lexical_corpus": "pud"},
                                  features_used=["word_overlap"], formulas={"ols": "score ~ 1"}),
                        trees=False)
    assert "mackinnon-white-1985" in plain and "cameron-gelbach-miller-2011" not in plain
    assert "de-marneffe-etal-2021-universal" in plain and "unicode-udhr" not in plain
    assert "bates-etal-2015-lme4" not in plain and "ke-etal-2017-lightgbm" not in plain
    assert "littell-etal-2017-uriel" not in plain


def test_bibtex_and_text():
    out = R.bibtex(["bates-etal-2015-lme4", "littell-etal-2017-uriel"])
    assert out.index("bates-etal-2015-lme4") < out.index("littell-etal-2017-uriel")
    assert R.citation_text("bates-etal-2015-lme4") == (
        "Bates et al. (2015). Fitting Linear Mixed-Effects Models Using lme4. "
        "Journal of Statistical Software. doi:10.18637/jss.v067.i01")
    assert R.citation_text("cameron-gelbach-miller-2011").startswith("Cameron, Gelbach and Miller (2011).")
    assert R.citation_text("skirgard-etal-2023-grambank").startswith("Skirgård et al. (2023).")
    with pytest.raises(KeyError):
        R.bibtex(["no-such-key"])


def test_written_into_the_fit_folder_and_the_methods_section(tmp_path):
    import pandas as pd

    from xltstats.report.sections import _references_text

    pd.DataFrame({"model": ["mt5-base"], "score": [1.0]}).to_csv(tmp_path / "results.csv", index=False)
    (tmp_path / "cv.csv").write_text("x\n1\n", encoding="utf-8")
    keys = R.write_references(tmp_path, _manifest())
    written = (tmp_path / "references.bib").read_text(encoding="utf-8")
    assert written == R.bibtex(keys)
    assert "xue-etal-2021-mt5" in keys and "conneau-etal-2020-unsupervised" not in keys
    assert "ke-etal-2017-lightgbm" in keys
    text = _references_text({"references": keys})
    assert "**References.**" in text and "Littell et al. (2017)" in text
    assert text.count("\n- ") == len(keys)
