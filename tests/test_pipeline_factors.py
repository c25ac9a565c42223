"""Models honest on small factors (issue 13, item 2): one-level factors left out, two-level factors
fixed, cluster-robust errors only with enough clusters; every fallback is a note."""
from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from xltstats.models.ols import fit_ols
from xltstats.pipeline.factors import check_random_terms, default_formula

TARGETS = ["deu", "fra", "fin", "tur", "hin", "jpn", "spa", "rus", "ara", "kor", "vie", "ind", "swa", "tel", "ell"]


def _table(n_sources: int, n_targets: int, seed: int = 0, **extra) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [{"source": f"s{i}", "target": f"t{j}", "model": "m", "task": "t", **extra}
            for i in range(n_sources) for j in range(n_targets) for _ in range(2)]
    table = pd.DataFrame(rows)
    table["x"] = rng.normal(size=len(table))
    table["score"] = 0.5 + 0.1 * table["x"] + rng.normal(scale=0.05, size=len(table))
    return table


# ---------------------------------------------------------------------- OLS: cluster2 needs clusters

def test_cluster2_with_few_clusters_falls_back_to_hc3_with_a_note():
    data = _table(n_sources=4, n_targets=12)
    fallback = fit_ols(data, features=["x"], cov_type="cluster2")
    hc3 = fit_ols(data, features=["x"], cov_type="HC3")
    assert fallback.cov_type == "HC3" and fallback.df_inference is None
    np.testing.assert_allclose(fallback.cov.to_numpy(), hc3.cov.to_numpy())
    assert len(fallback.notes) == 1
    assert "4 source clusters" in fallback.notes[0] and "target" not in fallback.notes[0].split("have")[1]
    assert "HC3" in fallback.notes[0] and "Cameron & Miller 2015" in fallback.notes[0]
    # enough clusters: clustered as asked, no note; the threshold is a parameter
    enough = fit_ols(_table(n_sources=10, n_targets=12), features=["x"], cov_type="cluster2")
    assert enough.cov_type == "cluster2" and enough.notes == () and enough.df_inference == 9
    assert fit_ols(data, features=["x"], cov_type="cluster2", min_clusters=3).cov_type == "cluster2"


def test_one_source_cluster_is_hc3_not_a_linalg_error():
    data = _table(n_sources=1, n_targets=15)
    result = fit_ols(data, features=["x"], cov_type="cluster2")
    assert result.cov_type == "HC3" and np.isfinite(result.bse).all()
    assert "have 1 source cluster:" in result.notes[0]


# ---------------------------------------------------------------------- the default formula

def test_one_level_factor_is_left_out_and_two_levels_are_fixed():
    data = _table(n_sources=1, n_targets=6)
    data["model"] = np.where(np.arange(len(data)) % 2 == 0, "labse", "laser")
    notes = []
    formula = default_formula(["x"], data, notes=notes)
    assert formula == "score ~ x + C(model) + (1 | target)"
    assert any(n.startswith("source has one level (s0)") for n in notes)
    assert any("model has 2 levels (labse, laser)" in n and "fixed effect C(model)" in n for n in notes)
    # the user can force two-level factors to be random
    forced = []
    assert default_formula(["x"], data, min_levels=2, notes=forced) == "score ~ x + (1 | target) + (1 | model)"
    assert not any(n.startswith("model") for n in forced)


def test_two_level_factor_the_features_determine_gets_no_term():
    data = _table(n_sources=2, n_targets=6)
    data["source_size"] = np.where(data["source"] == "s0", 1.0, 3.0)  # constant within each source
    notes = []
    assert default_formula(["x", "source_size"], data, notes=notes) == "score ~ x + source_size + (1 | target)"
    assert any("already tell its levels apart" in n for n in notes)


def test_no_factor_with_enough_levels_means_no_mixed_model():
    notes = []
    assert default_formula(["x"], _table(n_sources=1, n_targets=2), notes=notes) is None
    assert notes[-1] == "no grouping factor has enough levels for a random effect: no mixed model was fitted"


def test_a_written_formula_loses_its_one_level_terms_only():
    data = _table(n_sources=1, n_targets=2)
    notes = []
    kept = check_random_terms("score ~ x + (1 | source) + (1 | target)", data, notes=notes)
    assert kept == "score ~ x + (1 | target)"
    assert "(1 | source) was dropped: source has one level" in notes[0]
    assert "(1 | target) is fitted as written, but target has only 2 levels" in notes[1]
    assert check_random_terms("score ~ x + (1 | source)", data, notes=[]) is None
    # a multi-membership factor counts the languages of all its members
    assert check_random_terms("score ~ x + (1 | mm(source, target))", data, notes=[]) is not None
    untouched = "score ~ x + (1 | target)"
    assert check_random_terms(untouched, _table(4, 4), notes=[]) is untouched


def test_min_levels_is_checked_in_the_configuration():
    from xltstats.errors import ConfigError
    from xltstats.pipeline import FitConfig

    assert FitConfig().mixed.min_levels == 3 and FitConfig().ols.min_clusters == 10
    with pytest.raises(ConfigError, match=r"'mixed.min_levels' must be an integer >= 2, got 1"):
        FitConfig().replace(mixed={"min_levels": 1})
    with pytest.raises(ConfigError, match=r"'ols.min_clusters' must be an integer >= 2"):
        FitConfig().replace(ols={"min_clusters": "few"})


# ---------------------------------------------------------------------- a whole fit

def _one_source_results(path, n_sources=1):
    rng = np.random.default_rng(3)
    sources = ["eng", "deu", "fra"][:n_sources]
    rows = [{"model": "xlm-roberta-large", "task": "xnli", "source": s, "target": t, "metric": "accuracy",
             "score": float(rng.uniform(0.4, 0.8)), "n_source_examples": 1000, "n_target_examples": 0, "seed": seed}
            for s in sources for t in TARGETS for seed in (1, 2)]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


CONFIG = ("features: [syntactic_distance, genetic_distance]\ncovariates: []\n"
          "cv: {schemes: [random], max_folds: 2, k: 2}\nranking: {enabled: false}\nreport: false\nols: {n_boot: 5}\n")


@pytest.mark.skipif(not os.environ.get("XLTSTATS_MIRROR"), reason="XLTSTATS_MIRROR is not set")
def test_a_per_model_fit_with_one_source_runs_and_says_why(tmp_path, monkeypatch, capsys):
    """sumeval's per-task, per-model fits (one source level under the default cov_type cluster2)
    crashed with a LinAlgError traceback; now exit 0 with the reasons in the notes."""
    from xltstats.fit import main

    monkeypatch.chdir(tmp_path)
    _one_source_results(tmp_path / "one.csv")
    (tmp_path / "one.yaml").write_text(CONFIG, encoding="utf-8")
    assert main(["--data", "one.csv", "--config", "one.yaml", "--out", "fit"]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    manifest = json.loads((tmp_path / "fit" / "manifest.json").read_text())
    notes = manifest["notes"]
    assert any(n.startswith("source has one level (eng)") for n in notes)
    assert any(n.startswith("OLS: two-way clustered errors") and "1 source cluster" in n for n in notes)
    assert all(f"note: {n}" in err for n in notes)  # printed at the end of the fit
    assert manifest["formulas"]["mixed"] == "score ~ syntactic_distance + genetic_distance + (1 | target)"
    coef = pd.read_csv(tmp_path / "fit" / "tables" / "coef_ols.csv")
    assert np.isfinite(coef["std_error"]).all()


@pytest.mark.skipif(not os.environ.get("XLTSTATS_MIRROR"), reason="XLTSTATS_MIRROR is not set")
def test_a_fit_without_any_random_effect_has_no_mixed_model(tmp_path):
    from xltstats import read_results
    from xltstats.pipeline import FitConfig, FitFolder, run_fit

    data = read_results(_one_source_results(tmp_path / "one.csv"))
    data = data[data["target"].isin(["deu", "fin"])]
    data = pd.concat([data.assign(seed=data["seed"] + 2 * k) for k in range(8)], ignore_index=True)
    data["noise"] = np.random.default_rng(0).normal(size=len(data))
    config = FitConfig.from_dict({"data": "one.csv", "features": ["syntactic_distance"], "covariates": ["noise"],
                                  "cv": {"schemes": ["random"], "k": 2}, "ranking": {"enabled": False},
                                  "report": False, "ols": {"n_boot": 5}})
    fit = run_fit(config, data=data)
    assert fit.mixed is None and fit.formula is None and "coef_mixed" not in fit.tables
    assert any(n.startswith("source has one level (eng)") for n in fit.notes)
    assert any(n.startswith("target has 2 levels (deu, fin)") for n in fit.notes)
    assert "no grouping factor has enough levels for a random effect: no mixed model was fitted" in fit.notes
    assert "mixed_prediction" not in fit.predictions.columns
    FitFolder(tmp_path / "out").write(fit)
    assert json.loads((tmp_path / "out" / "model.json").read_text())["default"] == "ols"


def test_unordered_pairs_get_one_effect_per_language_when_there_are_enough():
    data = _table(n_sources=1, n_targets=6)
    assert default_formula(["x"], data, unordered=True) == "score ~ x + (1 | mm(source, target))"
    notes = []
    assert default_formula(["x"], _table(n_sources=1, n_targets=1), unordered=True, notes=notes) is None
    assert notes[0].startswith("the pairs have 2 language(s) (s0, t0), fewer than mixed.min_levels (3)")


def _two_model_fit(tmp_path):
    from xltstats.models import fit_mixed
    from xltstats.models.persist import save_model

    data = _table(n_sources=5, n_targets=6)
    data["model"] = np.where(np.arange(len(data)) % 2 == 0, "labse", "laser")
    formula = default_formula(["x"], data, notes=[])
    assert "C(model)" in formula
    fitted = fit_mixed(formula, data, warn=False)
    save_model(tmp_path, mixed=fitted)
    return data, fitted


def test_a_fixed_factor_level_the_fit_never_saw_gets_no_prediction_from_model_json(tmp_path):
    from xltstats.models.persist import load_model

    data, fitted = _two_model_fit(tmp_path)
    portable = load_model(tmp_path)
    assert portable.spec["factor_levels"] == {"model": ["labse", "laser"]}
    new = pd.concat([data.head(2), data.head(1).assign(model="laser3")], ignore_index=True)
    got = portable.prediction_interval(new)
    np.testing.assert_allclose(got["prediction"][:2], fitted.predict(new.head(2)), rtol=1e-9)
    # not the reference level's prediction (labse's would be finite): missing, bounds too
    assert got.iloc[2].isna().all()
    assert portable.unseen_levels(new) == ["", "", "model 'laser3' was not in the fit (it saw labse, laser)"]


def test_saved_models_say_why_an_unseen_fixed_level_has_no_prediction(tmp_path):
    from xltstats.models.nested import SavedModels

    data, fitted = _two_model_fit(tmp_path)
    new = pd.concat([data.head(1), data.head(1).assign(model="laser3")], ignore_index=True)
    out = SavedModels.load(tmp_path).predict(new, which="mixed")
    assert np.isfinite(out["prediction"][0]) and np.isnan(out["prediction"][1])
    assert out["model_reason"].tolist() == ["", "model 'laser3' was not in the fit (it saw labse, laser)"]


def test_a_hand_edited_factor_levels_entry_is_an_error_naming_the_key(tmp_path):
    from xltstats.errors import InputError
    from xltstats.models.persist import load_model

    _two_model_fit(tmp_path)
    path = tmp_path / "model.json"
    document = json.loads(path.read_text())
    document["models"]["mixed"]["factor_levels"] = {"model": "labse"}
    path.write_text(json.dumps(document))
    with pytest.raises(InputError, match="factor_levels.model"):
        load_model(tmp_path)
