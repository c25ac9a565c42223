"""model.json round trips (OLS and mixed) and the `python -m xltstats.predict` command."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xltstats.errors import ConfigError, InputError
from xltstats.models.mixed import fit_mixed
from xltstats.models.ols import fit_ols
from xltstats.models.persist import load_model, save_model
from xltstats.predict import main

LANGS = ["eng", "deu", "fra", "spa", "rus", "hin", "jpn", "tur", "fin", "ara"]


def data(seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame([(s, t) for s in LANGS for t in LANGS if s != t], columns=["source", "target"])
    df["syntactic_distance"] = rng.uniform(0, 1, len(df))
    df["genetic_distance"] = rng.uniform(0, 1, len(df))
    df["task"] = np.where(rng.uniform(size=len(df)) < 0.5, "pos", "ner")
    src = dict(zip(LANGS, rng.normal(0, 3, len(LANGS))))
    tgt = dict(zip(LANGS, rng.normal(0, 3, len(LANGS))))
    df["score"] = (70 - 10 * df.syntactic_distance - 4 * df.genetic_distance + 5 * (df.task == "pos")
                   + df.source.map(src) + df.target.map(tgt) + rng.normal(0, 2, len(df)))
    return df


NEW = pd.DataFrame({"source": ["eng", "deu", "xho", "eng"], "target": ["fra", "zul", "eng", "xho"],
                    "syntactic_distance": [0.2, 0.5, 0.7, 0.4], "genetic_distance": [0.3, 0.9, 1.0, 0.2],
                    "task": ["pos", "ner", "pos", "ner"]})


def test_ols_round_trip(tmp_path):
    res = fit_ols(data(), features=["syntactic_distance", "genetic_distance"], cov_type="HC3")
    save_model(tmp_path, ols=res, features=res.features)
    model = load_model(tmp_path)
    ours = model.prediction_interval(NEW, alpha=0.1)
    ref = res.prediction_interval(NEW, alpha=0.1)
    for col in ("prediction", "se_prediction", "lower", "upper"):
        np.testing.assert_allclose(ours[col], ref[col], rtol=1e-12)
    assert model.feature_columns == ["syntactic_distance", "genetic_distance"]


@pytest.mark.filterwarnings("ignore:boundary")
@pytest.mark.parametrize("formula", [
    "score ~ syntactic_distance + genetic_distance + task + (1|source) + (1|target)",
    "score ~ syntactic_distance + genetic_distance + (1 + syntactic_distance|target) + (1|source)",
])
def test_mixed_round_trip_matches_results_object(tmp_path, formula):
    res = fit_mixed(formula, data())
    save_model(tmp_path, mixed=res)
    model = load_model(tmp_path)
    assert model.name == "mixed"
    ours = model.prediction_interval(NEW)
    ref = res.prediction_interval(NEW)
    ref_col = "prediction" if "prediction" in ref.columns else "predicted"  # renamed in MixedResults
    np.testing.assert_allclose(ours["prediction"], ref[ref_col], rtol=1e-10)
    np.testing.assert_allclose(ours["lower"], ref["lower"], rtol=1e-8)
    np.testing.assert_allclose(ours["upper"], ref["upper"], rtol=1e-8)
    # unseen languages (xho) are predicted from the fixed part, with wider intervals
    width = ours["upper"] - ours["lower"]
    assert width[2] > width[0]
    fixed_only = model.prediction_interval(NEW, include_random=False)
    ref_fixed = res.prediction_interval(NEW, include_random=False)
    np.testing.assert_allclose(fixed_only["upper"], ref_fixed["upper"], rtol=1e-8)


def test_bad_model_files(tmp_path):
    with pytest.raises(InputError, match="no such model file"):
        load_model(tmp_path)
    (tmp_path / "model.json").write_text("{not json")
    with pytest.raises(InputError, match="model.json: cannot read"):
        load_model(tmp_path)
    (tmp_path / "model.json").write_text(json.dumps({"format": "xltstats-model", "version": 1, "default": "ols",
                                                     "models": {}}))
    with pytest.raises(InputError, match="no 'ols' model"):
        load_model(tmp_path)
    with pytest.raises(ConfigError):
        save_model(tmp_path)


def fit_dir(tmp_path):
    df = data()
    res = fit_ols(df, features=["syntactic_distance", "genetic_distance"])
    mixed = fit_mixed("score ~ syntactic_distance + genetic_distance + (1|source) + (1|target)", df)
    folder = tmp_path / "fit"
    folder.mkdir()
    save_model(folder, ols=res, mixed=mixed, features=res.features)
    return folder, res, mixed


def test_predict_cli_with_features_in_file(tmp_path):
    folder, res, mixed = fit_dir(tmp_path)
    pairs = tmp_path / "pairs.csv"
    NEW.assign(source=["en", "de", "xh", "en"]).to_csv(pairs, index=False)
    out = tmp_path / "pred.csv"
    assert main(["--fit", str(folder), "--pairs", str(pairs), "--out", str(out)]) == 0
    got = pd.read_csv(out)
    assert got["source"].tolist() == ["eng", "deu", "xho", "eng"]
    np.testing.assert_allclose(got["prediction"], mixed.predict(NEW), rtol=1e-5)
    assert main(["--fit", str(folder), "--pairs", str(pairs), "--out", str(out), "--model", "ols"]) == 0
    np.testing.assert_allclose(pd.read_csv(out)["prediction"], res.predict(NEW), rtol=1e-5)


def test_predict_cli_errors_exit_2_and_write_nothing(tmp_path, capsys):
    folder, _, _ = fit_dir(tmp_path)
    out = tmp_path / "pred.csv"
    bad = tmp_path / "bad.csv"
    NEW.assign(syntactic_distance=["0.1", "far", "0.2", "0.3"]).to_csv(bad, index=False)
    assert main(["--fit", str(folder), "--pairs", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "bad.csv, row 2, column 'syntactic_distance'" in err
    assert not out.exists() and not list(tmp_path.glob(".pred.csv*"))
    nocol = tmp_path / "nocol.csv"
    NEW.drop(columns="target").to_csv(nocol, index=False)
    assert main(["--fit", str(folder), "--pairs", str(nocol), "--out", str(out)]) == 2
    assert "column 'target'" in capsys.readouterr().err
    badcode = tmp_path / "badcode.csv"
    NEW.assign(target=["fra", "zzzzq", "eng", "xho"]).to_csv(badcode, index=False)
    assert main(["--fit", str(folder), "--pairs", str(badcode), "--out", str(out)]) == 2
    assert "row 2, column 'target'" in capsys.readouterr().err
    assert main(["--fit", str(tmp_path / "nowhere"), "--pairs", str(bad), "--out", str(out)]) == 2
    assert not out.exists()


def test_predict_cli_computes_missing_features_as_module(tmp_path):
    folder, res, _ = fit_dir(tmp_path)
    pairs = tmp_path / "pairs.csv"
    pd.DataFrame({"source": ["eng", "fra"], "target": ["deu", "spa"]}).to_csv(pairs, index=False)
    out = tmp_path / "pred.csv"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-m", "xltstats.predict", "--fit", str(folder), "--pairs", str(pairs),
                           "--out", str(out), "--model", "ols"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    from xltstats.features import build_pair_features
    feats = build_pair_features([("eng", "deu"), ("fra", "spa")], features=["syntactic_distance", "genetic_distance"])
    np.testing.assert_allclose(pd.read_csv(out)["prediction"], res.predict(feats), rtol=1e-5)


def test_dataset_covariates_come_from_the_fits_own_table():
    from xltstats.predict import dataset_covariates

    fit_table = pd.DataFrame({
        "source": ["eng", "eng", "deu"], "target": ["deu", "fra", "fra"],
        "ldnd": [0.8, 0.9, 0.7],
        "source_pretrain_size": [300.0, 300.0, 66.0], "target_pretrain_size": [66.0, 56.0, 56.0],
        "source_script": ["Latn", "Latn", "Latn"], "target_script": ["Latn", "Latn", "Latn"],
        "same_script": [True, True, True]})
    pairs = pd.DataFrame({"source": ["eng", "fra", "fra", "deu"], "target": ["deu", "eng", "hin", "deu"]})
    got = dataset_covariates(pairs, ["same_language", "ldnd", "source_pretrain_size", "target_pretrain_size",
                                     "same_script"], fit_table)
    assert got["same_language"].tolist() == [0.0, 0.0, 0.0, 1.0]
    # pair-level: only where the fit saw the pair
    assert got["ldnd"].iloc[0] == 0.8 and got["ldnd"].iloc[1:].isna().all()
    # per-language: the language's value from either side of the fit's table
    assert got["source_pretrain_size"].tolist() == [300.0, 56.0, 56.0, 66.0]
    assert got["target_pretrain_size"].iloc[:2].tolist() == [66.0, 300.0] and np.isnan(got["target_pretrain_size"].iloc[2])
    # same_X from the languages' X; unknown language -> missing, never a guess
    assert got["same_script"].iloc[[0, 1, 3]].tolist() == [1.0, 1.0, 1.0] and np.isnan(got["same_script"].iloc[2])
    with pytest.raises(InputError, match="came from the fit's dataset"):
        dataset_covariates(pairs, ["word_overlap"], fit_table)


def test_predict_reads_min_nan_as_a_language_not_as_missing(tmp_path):
    # ISO 639-3 "nan" is Min Nan Chinese; pandas' default NA markers would make it a missing code
    folder, _, mixed = fit_dir(tmp_path)
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("source,target,syntactic_distance,genetic_distance,task\n"
                     "nan,eng,0.2,0.3,pos\neng,NA,0.5,0.9,ner\n", encoding="utf-8")
    out = tmp_path / "pred.csv"
    assert main(["--fit", str(folder), "--pairs", str(pairs), "--out", str(out)]) == 0
    got = pd.read_csv(out, keep_default_na=False)
    assert got["source"].tolist() == ["nan", "eng"]
    assert got["target"].tolist() == ["eng", "nau"]  # NA is Nauruan's ISO 639-1 code
    new = pd.DataFrame({"source": ["nan", "eng"], "target": ["eng", "nau"], "syntactic_distance": [0.2, 0.5],
                        "genetic_distance": [0.3, 0.9], "task": ["pos", "ner"]})
    np.testing.assert_allclose(got["prediction"], mixed.predict(new), rtol=1e-5)


def test_dataset_covariates_of_a_multi_source_row_follow_its_source_set():
    from xltstats.pipeline.design import dataset_covariates

    fit_table = pd.DataFrame({
        "source": ["mul", "mul", "eng"], "target": ["fra", "fra", "fra"],
        "source_languages": ['{"deu": 10, "eng": 10}', '{"hin": 10, "jpn": 10}', None],
        "ldnd": [0.5, 0.9, 0.7], "source_size": [1.0, 2.0, 3.0], "target_size": [5.0, 5.0, 5.0]})
    pairs = pd.DataFrame({"source": ["mul", "mul", "mul"], "target": ["fra", "fra", "fra"],
                          "source_languages": ['{"hin": 10, "jpn": 10}', '{"deu": 10, "eng": 10}',
                                               '{"eng": 10, "tur": 10}']})
    got = dataset_covariates(pairs, ["ldnd", "source_size", "target_size"], fit_table)
    # the pair is (source set, target), not the pseudo-language mul
    assert got["ldnd"].tolist()[:2] == [0.9, 0.5] and np.isnan(got["ldnd"].iloc[2])
    assert got["source_size"].tolist()[:2] == [2.0, 1.0] and np.isnan(got["source_size"].iloc[2])
    assert got["target_size"].tolist() == [5.0, 5.0, 5.0]  # the target side is one language


@pytest.mark.filterwarnings("ignore:boundary")
@pytest.mark.parametrize("formula", ["score ~ syntactic_distance + (1|source) + (1|target) + (1|source:task)",
                                     "score ~ syntactic_distance + (1|mm(source, target))"])
def test_random_intercepts_of_all_rows_at_once_equal_the_row_by_row_sums(tmp_path, formula):
    """The portable model's random intercepts are summed for all rows at once; the numbers are
    those of the row-by-row rule of the module docstring exactly (same sums, same order)."""
    res = fit_mixed(formula, data())
    save_model(tmp_path, mixed=res)
    model = load_model(tmp_path)
    new = pd.concat([NEW, NEW.assign(target=NEW["source"]), data().head(30)], ignore_index=True)
    for include in (True, False):
        mean, var = model.random_parts(new, include_random=include)
        want_mean, want_var = np.zeros(len(new)), np.zeros(len(new))
        for entry in model.spec["random"]:
            from xltstats.models.mixed._design import member_labels

            members = np.column_stack([m.to_numpy() for m in member_labels(new, entry["group"])])
            for i, labels in enumerate(members):
                for label in labels:
                    weight = float(np.sum(labels == label))
                    if include and label in entry["levels"]:
                        want_mean[i] += 1.0 * entry["levels"][label][0]
                        want_var[i] += weight * entry["conditional_covariance"][label][0][0]
                    else:
                        want_var[i] += weight * entry["covariance"][0][0]
        np.testing.assert_array_equal(mean, want_mean)
        np.testing.assert_array_equal(var, want_var)
        assert (want_mean != 0).any() == include
