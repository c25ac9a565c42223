"""One results vocabulary across OLS, mixed and saved (portable) models; summaries as objects
(text, HTML, LaTeX); fit_ols from a formula; short cross-validation summaries; frozen results."""
from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest

from xltstats.errors import ConfigError, InputError
from xltstats.models import (MeanBaseline, OLSEstimator, cross_validate, fit_mixed, fit_ols,
                             load_model, save_model)
from xltstats.models.summary import Summary

LANGS = ["eng", "deu", "fra", "spa", "rus", "hin", "jpn", "tur", "fin", "ara", "swa", "zho"]
INTERVAL_COLUMNS = ["prediction", "se_mean", "se_prediction", "lower", "upper"]


def pairs(seed=0, langs=LANGS):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame([(s, t) for s in langs for t in langs if s != t], columns=["source", "target"])
    df["syntactic_distance"] = rng.uniform(0, 1, len(df))
    df["word_overlap"] = rng.uniform(0, 1, len(df))
    src = dict(zip(langs, rng.normal(0, 3, len(langs))))
    tgt = dict(zip(langs, rng.normal(0, 3, len(langs))))
    df["score"] = (70 - 10 * df.syntactic_distance + 6 * df.word_overlap + df.source.map(src)
                   + df.target.map(tgt) + rng.normal(0, 2, len(df)))
    return df


NEW = pd.DataFrame({"source": ["eng", "xho"], "target": ["fra", "eng"],
                    "syntactic_distance": [0.2, 0.7], "word_overlap": [0.5, 0.1]})


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    data = pairs()
    ols = fit_ols(data, formula="score ~ syntactic_distance + word_overlap", cov_type="cluster2")
    mixed = fit_mixed("score ~ syntactic_distance + word_overlap + (1|source) + (1|target)", data)
    folder = tmp_path_factory.mktemp("fit")
    save_model(folder, ols=ols, mixed=mixed)
    return {"ols": ols, "mixed": mixed, "portable_ols": load_model(folder, "ols"),
            "portable_mixed": load_model(folder, "mixed")}


@pytest.mark.parametrize("kind", ["ols", "mixed", "portable_ols", "portable_mixed"])
def test_one_vocabulary(fitted, kind):
    m = fitted[kind]
    terms = ["Intercept", "syntactic_distance", "word_overlap"]
    assert list(m.params.index) == terms and m.params.name == "params"
    assert m.bse.name == "bse"
    np.testing.assert_allclose(m.bse, np.sqrt(np.diag(m.cov_params())), rtol=1e-12)
    assert list(m.cov_params().index) == terms
    assert m.scale > 0 and m.nobs == len(pairs())
    assert m.formula.startswith("score ~ syntactic_distance + word_overlap")
    assert m.df_inference is None or m.df_inference > 0
    if not kind.startswith("portable"):
        assert m.tvalues.name == "tvalues" and m.pvalues.name == "pvalues"
        assert list(m.conf_int().columns) == ["lower", "upper"]
    pred = m.predict(NEW)
    assert pred.name == "prediction"
    pi = m.prediction_interval(NEW)
    assert list(pi.columns) == INTERVAL_COLUMNS
    np.testing.assert_allclose(pi["prediction"], pred)
    np.testing.assert_allclose(pi["se_prediction"] ** 2, pi["se_mean"] ** 2 + m.scale, rtol=1e-10)


@pytest.mark.parametrize("model", ["ols", "mixed"])
def test_saved_model_predicts_what_the_fit_predicts(fitted, model):
    ours = fitted[f"portable_{model}"].prediction_interval(NEW)
    ref = fitted[model].prediction_interval(NEW)
    pd.testing.assert_frame_equal(ours, ref, rtol=1e-8)
    # an unseen source (xho) gets its whole variance component in se_mean
    if model == "mixed":
        assert ours["se_mean"].iloc[1] ** 2 > fitted["mixed"].variance_components["source"]


def test_tidy_tables_keep_their_columns(fitted):
    assert list(fitted["ols"].table().columns) == ["term", "estimate", "std_error", "statistic", "p_value",
                                                   "conf_low", "conf_high"]
    assert list(fitted["mixed"].table().columns) == ["effect", "group", "term", "estimate", "std_error",
                                                     "statistic", "conf_low", "conf_high"]


@pytest.mark.parametrize("kind", ["ols", "mixed"])
def test_summary_renders_as_text_html_and_latex(fitted, kind):
    s = fitted[kind].summary()
    assert isinstance(s, Summary)
    assert str(s) == s.as_text() == repr(s)
    assert "syntactic_distance" in s and "syntactic_distance" in str(s)
    html = s._repr_html_()
    assert html.startswith("<div") and html.count("<table") == 1 + len(s.tables)
    assert "<td>syntactic_distance</td>" in html
    latex = s.as_latex()
    assert latex.count("\\begin{tabular}") == 1 + len(s.tables)
    assert "syntactic\\_distance" in latex and "score \\textasciitilde{}" in latex
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.title = "changed"


def test_summary_escapes_html_and_latex():
    s = Summary(title="a <b> & c_d", facts=[("x%", 1.5)], tables=[("t", pd.DataFrame({"c&": ["<i>"]}))],
                notes=["50% of $rows"])
    assert "<b>" not in s.as_html() and "&lt;b&gt; &amp; c_d" in s.as_html() and "&lt;i&gt;" in s.as_html()
    latex = s.as_latex()
    assert "c\\&" in latex and "x\\%" in latex and "50\\% of \\$rows" in latex
    assert str(s).splitlines()[0] == "a <b> & c_d"


def test_results_are_frozen(fitted):
    with pytest.raises(dataclasses.FrozenInstanceError):
        fitted["ols"].scale = 1.0
    with pytest.raises(AttributeError, match="read-only"):
        fitted["mixed"].params = None


def test_fit_ols_from_a_formula_equals_features():
    data = pairs(1)
    by_features = fit_ols(data, features=["syntactic_distance", "word_overlap"])
    by_keyword = fit_ols(data, formula="score ~ 1 + syntactic_distance + word_overlap")
    positional = fit_ols("score ~ syntactic_distance + word_overlap", data)
    quoted = fit_ols(data.rename(columns={"word_overlap": "word overlap"}),
                     formula='score ~ syntactic_distance + Q("word overlap")')
    for other in (by_keyword, positional):
        pd.testing.assert_series_equal(other.params, by_features.params)
        pd.testing.assert_frame_equal(other.cov_params(), by_features.cov_params())
    np.testing.assert_allclose(quoted.params.to_numpy(), by_features.params.to_numpy())
    assert quoted.features == ["syntactic_distance", "word overlap"]


@pytest.mark.parametrize("formula, error, match", [
    ("score ~ 0 + syntactic_distance", ConfigError, "intercept"),
    ("score ~ syntactic_distance - 1", ConfigError, "intercept"),
    ("score ~ np.log(word_overlap)", ConfigError, "not a column name"),
    ("score ~ syntactic_distance:word_overlap", ConfigError, "not a column name"),
    ("score ~ syntactic_distance + (1|source)", ConfigError, "fit_mixed"),
    ("score ~ missing_feature", InputError, "missing_feature"),
    ("score syntactic_distance", ConfigError, "form"),
])
def test_fit_ols_formula_errors(formula, error, match):
    with pytest.raises(error, match=match):
        fit_ols(pairs(), formula=formula)


def test_fit_ols_refuses_a_formula_and_features():
    with pytest.raises(ConfigError, match="not both"):
        fit_ols(pairs(), formula="score ~ word_overlap", features=["word_overlap"])


def test_cv_summary_does_not_list_every_language():
    langs = [f"l{i:02d}" for i in range(24)]
    data = pairs(2, langs)
    cv = cross_validate(data, {"ols": OLSEstimator(["syntactic_distance", "word_overlap"]),
                               "mean": MeanBaseline()}, scheme="leave-one-target-out", max_folds=6,
                        baseline="mean")
    s = cv.summary()
    assert isinstance(s, Summary)
    verdict = next(line for line in str(s).splitlines() if line.startswith("ols "))
    assert "+…(4)" in verdict                                   # folds of 4 held-out languages
    assert sum(lang in verdict for lang in langs) <= 2 * 6      # 2 languages per fold named
    short = next(line for line in str(cv.summary(max_listed=1)).splitlines() if line.startswith("ols "))
    assert short.count("+…(4)") == 2 and " more" in short      # one fold per list, 6 folds in all
    assert "(full lists: CVResults.comparison()" in str(cv.summary(max_listed=1))
    full = cv.comparison().set_index("estimator").loc["ols"]
    assert all(lang in full["folds_better_list"] + full["folds_worse_list"] for lang in langs)
    assert "<table" in s._repr_html_()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cv.scheme = "random"
