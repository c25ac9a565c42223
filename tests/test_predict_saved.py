"""`python -m xltstats.predict` on a real fit: multi-source rows, derived covariates, nested fallback
models for pairs that lack features, saved trees, scoreless rows as prediction targets.

One small fit (7 languages; ``deu`` has no Grambank data, so ``morphological_distance`` is missing
for its pairs) is shared by the module; each test predicts from its folder.
"""
from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.skipif(not os.environ.get("XLTSTATS_MIRROR"), reason="XLTSTATS_MIRROR is not set")

LANGS = ["eng", "deu", "fra", "fin", "tur", "hin", "jpn"]
SETS = [{"eng": 1000, "deu": 1000}, {"fra": 500, "hin": 1500}, {"jpn": 1000, "tur": 1000}]
EFFECT = {lang: 5.0 * i for i, lang in enumerate(["fin", "eng", "jpn", "deu", "hin", "fra", "tur"])}
TARGETLESS = [("fin", "tur"), ("hin", "eng")]  # single-source rows without a score
CONFIG = ("features: [syntactic_distance, genetic_distance, morphological_distance]\n"
          "covariates: [same_language, same_script]\ncv: {schemes: [random], hybrid: true}\nranking: {enabled: false}\n"
          "fewshot: {enabled: false}\nreport: false\n")


def results_table() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    rows = []
    for s in LANGS:
        for t in LANGS:
            # planted language effects, so that the random intercepts are not zero
            score = np.nan if (s, t) in TARGETLESS else float(rng.uniform(20, 60) + EFFECT[t] - EFFECT[s] / 2)
            rows.append({"source": s, "target": t, "score": score, "n_source_examples": 1000})
    for t in LANGS:
        for k, mix in enumerate(SETS):
            score = np.nan if (t, k) == ("fin", 2) else float(rng.uniform(20, 60) + EFFECT[t])
            rows.append({"source": "mul", "target": t, "score": score, "n_source_examples": sum(mix.values()),
                         "source_languages": json.dumps(mix)})
    table = pd.DataFrame(rows).assign(model="m", task="t", metric="accuracy", n_target_examples=0, seed=1)
    return table.assign(config_id=[f"run{i:03d}" for i in range(len(table))])


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    import warnings

    from xltstats import read_results
    from xltstats.pipeline import FitFolder, load_config, run_fit

    work = tmp_path_factory.mktemp("predict")
    results_table().to_csv(work / "runs.csv", index=False)
    (work / "fit.yaml").write_text(CONFIG, encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = run_fit(load_config(work / "fit.yaml"), data=read_results(work / "runs.csv"))
    FitFolder(work / "fit").write(fit)
    return fit, work / "fit", work


def predict(folder, work, pairs: pd.DataFrame, *extra: str, name="pairs.csv") -> pd.DataFrame:
    from xltstats.predict import main

    pairs.to_csv(work / name, index=False)
    out = work / f"out-{name}"
    assert main(["--fit", str(folder), "--pairs", str(work / name), "--out", str(out), *extra]) == 0
    return pd.read_csv(out, keep_default_na=False, na_values=[""])


def test_multi_source_rows_are_predicted_from_their_source_languages(fitted):
    fit, folder, work = fitted
    runs = results_table()
    multi = runs[(runs["source"] == "mul") & runs["target"].isin(["eng", "fra"])][
        ["source", "target", "source_languages", "config_id"]]
    got = predict(folder, work, multi, "--model", "mixed")
    # one prediction per source set, not one per target
    assert got.groupby("target")["prediction"].nunique().tolist() == [3, 3]
    stored = pd.read_csv(folder / "predictions.csv").set_index("config_id")
    expected = stored.loc[got["config_id"], "mixed_prediction"].to_numpy()
    np.testing.assert_allclose(got["prediction"], expected, rtol=1e-5)
    # the features are the count-weighted means of the sources' features, as in the fit's table
    fit_rows = fit.data.set_index("config_id").loc[got["config_id"]]
    np.testing.assert_allclose(got["syntactic_distance"], fit_rows["syntactic_distance"], rtol=1e-5)
    assert got["model_used"].eq("mixed").all()


def test_an_unseen_pair_gets_same_script_from_the_feature_builder(fitted):
    from xltstats.features import build_pair_features

    fit, folder, work = fitted
    assert fit.design.provenance["same_script"] == "builder"
    got = predict(folder, work, pd.DataFrame({"source": ["ind", "eng"], "target": ["eng", "ind"]}), "--model", "ols")
    built = build_pair_features([("ind", "eng"), ("eng", "ind")], features=["same_script"])
    assert got["same_script"].tolist() == built["same_script"].tolist() == [1.0, 1.0]
    assert got["prediction"].notna().all()


def test_a_pair_without_grambank_data_is_predicted_by_the_nested_model(fitted):
    fit, folder, work = fitted
    got = predict(folder, work, pd.DataFrame({"source": ["spa", "fra"], "target": ["fin", "fin"]}),
                  "--model", "mixed")
    assert np.isnan(got["morphological_distance"].iloc[0]) and got["prediction"].notna().all()
    assert got["model_used"].tolist() == ["mixed without morphological_distance", "mixed"]
    assert got["model_reason"].iloc[0] == "lacks morphological_distance" and pd.isna(got["model_reason"].iloc[1])
    # the sub-model fitted at fit time, on every scored row that has its features (deu's too)
    subset, nested = next((s, r) for s, r in fit.nested["mixed"] if "morphological_distance" not in s
                          and len(s) == len(fit.used) - 1)
    assert nested.nobs == fit.data.dropna(subset=[*subset, "score"]).shape[0] > len(fit.design.complete)
    np.testing.assert_allclose(got["prediction"].iloc[0], nested.predict(got.iloc[[0]]).iloc[0], rtol=1e-5)
    # the fit's own rows that lack it are predicted the same way in predictions.csv
    stored = pd.read_csv(folder / "predictions.csv")
    deu = stored[(stored["source"] == "deu") & (stored["target"] != "deu")]
    assert deu["mixed_model_used"].eq("mixed without morphological_distance").all() and not deu["in_fit"].any()


def test_saved_trees_predict_exactly_as_the_fit(fitted):
    from xltstats.models.nested import SavedModels

    fit, folder, work = fitted
    table = fit.data.head(30).assign(genetic_distance=lambda d: d["genetic_distance"].where(d.index % 4 > 0))
    saved = SavedModels.load(folder).predict(table, "gbt")
    # the in-memory trees' intervals clipped to the score's range, as model.json's predictions are
    own, _ = fit.scale.clip(fit.gbt.predict_interval(table), ("prediction", "lower", "upper"))
    for column in ("prediction", "lower", "upper"):
        np.testing.assert_array_equal(saved[column].to_numpy(), own[column].to_numpy())
    assert saved["model_used"].eq("gbt").all()
    assert saved["model_reason"].iloc[0] == "lacks genetic_distance (the trees route missing values)"
    got = predict(folder, work, pd.DataFrame({"source": ["ind"], "target": ["eng"]}), "--model", "gbt")
    assert got["prediction"].notna().all() and got["se_mean"].isna().all()


def test_saved_hybrid_predicts_exactly_as_the_fit(fitted):
    from xltstats.models.nested import SavedModels

    fit, folder, work = fitted
    assert fit.hybrid is not None and "hybrid" in json.loads((folder / "model.json").read_text())["models"]
    table = fit.data.head(30).assign(genetic_distance=lambda d: d["genetic_distance"].where(d.index % 4 > 0))
    saved = SavedModels.load(folder).predict(table, "hybrid")
    own = fit.hybrid.predict_interval(table)
    for column in ("prediction", "lower", "upper"):
        np.testing.assert_array_equal(saved[column].to_numpy(), own[column].to_numpy())
    assert saved["model_used"].eq("hybrid").all() and saved["se_mean"].isna().all()
    assert saved["model_reason"].iloc[0] == "lacks genetic_distance (the trees route missing values)"
    stored = pd.read_csv(folder / "predictions.csv")
    assert stored["hybrid_prediction"].notna().all()


def test_hybrid_gives_an_unseen_language_random_effect_zero_through_predict(fitted):
    fit, folder, work = fitted
    got = predict(folder, work, pd.DataFrame({"source": ["ind", "ind", "eng"], "target": ["eng", "zul", "fra"]}),
                  "--model", "hybrid")
    assert got["model_used"].eq("hybrid").all()
    spec = json.loads((folder / "model.json").read_text())["models"]["hybrid"]["random"]
    intercept = spec["coefficients"][spec["terms"].index("Intercept")]
    blup = {entry["group"]: {k: v[0] for k, v in entry["levels"].items()} for entry in spec["random"]}
    trees = fit.hybrid.booster_.predict(got[fit.hybrid.features].to_numpy(float), raw_score=True)
    # ind (and zul) never seen: random effect 0; eng and fra seen: their BLUPs
    expected = trees + intercept + np.array([blup["target"]["eng"], 0.0, blup["source"]["eng"] + blup["target"]["fra"]])
    assert "ind" not in blup["source"] and "zul" not in blup["target"] and abs(blup["target"]["eng"]) > 1
    np.testing.assert_allclose(got["prediction"], expected, rtol=1e-5)  # predict writes 6 significant digits
    # a new language's interval is wider: the whole variance component instead of the BLUP's
    width = got["upper"] - got["lower"]
    assert width.iloc[1] > width.iloc[2] and width.iloc[0] > width.iloc[2]


def test_auto_uses_the_hybrid_when_the_fit_chose_it(fitted, tmp_path):
    import shutil

    _, folder, work = fitted
    chosen = tmp_path / "fit"
    shutil.copytree(folder, chosen)
    document = json.loads((chosen / "model.json").read_text())
    document["best"] = {**document.get("best", {}), "model": "hybrid"}
    (chosen / "model.json").write_text(json.dumps(document))
    got = predict(chosen, work, pd.DataFrame({"source": ["ind"], "target": ["eng"]}), name="auto.csv")
    assert got["model_used"].tolist() == ["hybrid"]


def test_every_input_column_is_kept_and_auto_is_the_best_by_cv(fitted):
    fit, folder, work = fitted
    pairs = pd.DataFrame({"note": ["a", "b"], "source": ["en", "mul"], "target": ["fi", "tur"],
                          "source_languages": [None, json.dumps({"en": 10, "fin": 30})], "config_id": ["x", "y"]})
    got = predict(folder, work, pairs)
    assert list(got.columns[:7]) == ["note", "source", "source_code", "target", "target_code", "source_languages",
                                     "config_id"]
    assert got["source"].tolist() == ["eng", "mul"] and got["source_code"].tolist() == ["en", "mul"]
    assert got["note"].tolist() == ["a", "b"] and got["config_id"].tolist() == ["x", "y"]
    assert got["source_languages"].iloc[1] == '{"eng": 10, "fin": 30}'
    best = json.loads((folder / "model.json").read_text())["best"]
    cv = fit.cv_table[fit.cv_table["estimator"].isin(["ols", "mixed", "gbt", "hybrid"])]
    assert best["model"] == cv.sort_values("rmse")["estimator"].iloc[0]
    assert got["model_used"].str.startswith(best["model"]).all()


def test_no_prediction_at_all_exits_2_and_writes_nothing(fitted, capsys):
    from xltstats.predict import main

    _, folder, work = fitted
    pairs = pd.DataFrame({"source": ["eng"], "target": ["fin"], **{c: [np.nan] for c in [
        "syntactic_distance", "genetic_distance", "morphological_distance", "same_script", "same_language"]}})
    pairs.to_csv(work / "empty.csv", index=False)
    out = work / "none.csv"
    assert main(["--fit", str(folder), "--pairs", str(work / "empty.csv"), "--out", str(out), "--model", "ols"]) == 2
    err = capsys.readouterr().err
    assert "empty.csv: no pair could be predicted by the ols model" in err and "no saved ols model" in err
    assert not out.exists()
    # the mixed model's random-effects-only sub-model still predicts it
    got = predict(folder, work, pairs, "--model", "mixed", name="empty.csv")
    assert got["model_used"].iloc[0].startswith("mixed without syntactic_distance+genetic_distance")


def test_rows_without_a_score_are_targets_predicted_by_the_fit(fitted):
    fit, folder, work = fitted
    assert fit.results["score"].isna().sum() == 3
    assert fit.design.complete["score"].notna().all() and fit.ols.nobs == len(fit.design.complete)
    assert all(len(r.predictions.dropna(subset=["observed"])) == len(r.predictions) for r in fit.cv.values())
    stored = pd.read_csv(folder / "predictions.csv")
    targets = stored[stored["score"].isna()]
    assert len(targets) == 3 and not targets["in_fit"].any()
    assert targets[["mixed_prediction", "ols_prediction", "gbt_prediction"]].notna().all().all()
    # the same predictions as predict gives for those rows
    runs = results_table()
    rows = runs[runs["score"].isna()][["source", "target", "source_languages", "config_id"]]
    got = predict(folder, work, rows, "--model", "mixed", name="targets.csv").set_index("config_id")
    np.testing.assert_allclose(got.loc[targets["config_id"], "prediction"], targets["mixed_prediction"], rtol=1e-5)
