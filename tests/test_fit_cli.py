"""End to end: ``python -m xltstats.fit`` as a user runs it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

MIRROR = os.environ.get("XLTSTATS_MIRROR")

SUBSET_TARGETS = ["deu", "fra", "spa", "ita", "por", "rus", "pol", "ces", "fin", "tur", "jpn", "kor",
                  "zho", "ara", "hin", "ind", "swe", "nld", "heb", "eus"]


def run_fit(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.setdefault("MPLBACKEND", "Agg")
    return subprocess.run([sys.executable, "-m", "xltstats.fit", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def assert_modes_follow_umask(out: Path, umask: int) -> None:
    """``ls -l`` of a fit folder: files 0o666 & ~umask, folders 0o777 & ~umask (mkstemp's 0600 nowhere)."""
    wrong = {str(p.relative_to(out)): oct(p.stat().st_mode & 0o777) for p in [out, *out.rglob("*")]
             if p.stat().st_mode & 0o777 != (0o777 if p.is_dir() else 0o666) & ~umask}
    assert wrong == {}, f"under umask {umask:o}"


def write_subset_config(path: Path, **extra) -> Path:
    config = {"subset": {"target": SUBSET_TARGETS}, "cv": {"schemes": ["leave-one-target-out"], "k": 5},
              "report": False}
    config.update(extra)
    import yaml

    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.mark.needs_mirror
def test_fit_end_to_end_on_a_subset_of_xpos(tmp_path):
    config = write_subset_config(tmp_path / "subset.yaml")
    out = tmp_path / "fit"
    proc = run_fit("--data", "xpos", "--config", str(config), "--out", str(out), "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    for name in ["results.csv", "features.csv", "feature_coverage.csv", "predictions.csv", "manifest.json",
                 "tables/coef_ols.csv", "tables/coef_ols.md", "tables/coef_ols.tex", "tables/coef_mixed.csv",
                 "tables/variance_components.csv", "tables/group_comparison.csv", "tables/dominance.csv"]:
        assert (out / name).is_file(), name
    results = pd.read_csv(out / "results.csv")
    assert set(results["target"]) <= set(SUBSET_TARGETS)
    coef = pd.read_csv(out / "tables/coef_ols.csv")
    assert "syntactic_distance" in set(coef.iloc[:, 0])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["argv"][0] == "xltstats.fit"
    assert manifest["dataset"]["name"] == "xpos"
    assert all(len(i["sha256"]) == 64 for i in manifest["inputs"])
    assert manifest["versions"]["numpy"]
    assert "(1 | source)" in manifest["formulas"]["mixed"]
    assert manifest["cwd"] == str(tmp_path)
    # no temporary folder left beside the output
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert_modes_follow_umask(out, os.umask(os.umask(0o022)))
    from test_latex_tables import latex_problems  # the fit's LaTeX tables are paper-ready

    assert {p.name: latex_problems(p.read_text(encoding="utf-8")) for p in (out / "tables").glob("*.tex")} == {
        p.with_suffix(".tex").name: [] for p in (out / "tables").glob("*.csv")}

    # the saved model predicts new pairs: features computed, dataset covariates looked up in the fit's table
    from xltstats.predict import main as predict_main

    pairs = tmp_path / "pairs.csv"
    pd.DataFrame({"source": ["eng", "fin", "eng"], "target": ["fra", "tur", "eng"]}).to_csv(pairs, index=False)
    assert predict_main(["--fit", str(out), "--pairs", str(pairs), "--out", str(tmp_path / "pred.csv"),
                         "--mirror", MIRROR, "--model", "mixed"]) == 0
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert pred["same_language"].tolist() == [0, 0, 1]
    seen = results[(results.source == "eng") & (results.target == "fra")].iloc[0]
    assert pred.loc[0, "ldnd"] == pytest.approx(seen["ldnd"])
    assert pred.loc[0, "source_pretrain_size"] == pytest.approx(seen["source_pretrain_size"])
    # the same prediction as the fit made for the pair it saw (load_model's default is the mixed one)
    assert json.loads((out / "model.json").read_text())["default"] == "mixed"
    stored = pd.read_csv(out / "predictions.csv")
    stored = stored[(stored.source == "eng") & (stored.target == "fra")]
    assert pred.loc[0, "prediction"] == pytest.approx(stored["mixed_prediction"].iloc[0], rel=1e-4)


@pytest.mark.needs_mirror
def test_fit_twice_gives_byte_identical_tables(tmp_path):
    config = write_subset_config(tmp_path / "subset.yaml", cv={"schemes": ["random"], "k": 3})
    outs = []
    for name in ("a", "b"):
        proc = run_fit("--config", str(config), "--out", str(tmp_path / name), "--quiet", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        outs.append(tmp_path / name)
    files = sorted(p.relative_to(outs[0]) for p in outs[0].rglob("*.csv"))
    assert files
    for rel in files:
        assert (outs[0] / rel).read_bytes() == (outs[1] / rel).read_bytes(), rel


@pytest.mark.needs_mirror
@pytest.mark.slow
def test_fit_folder_under_umask_077_is_private_and_under_022_readable(tmp_path):
    config = write_subset_config(tmp_path / "subset.yaml", cv={"schemes": ["random"], "k": 3},
                                 ranking={"enabled": False})
    for umask in (0o077, 0o022):
        out = tmp_path / f"fit{umask:o}"
        env = dict(os.environ, MPLBACKEND="Agg")
        proc = subprocess.run([sys.executable, "-m", "xltstats.fit", "--config", str(config), "--out", str(out),
                               "--quiet"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
                              preexec_fn=lambda mask=umask: os.umask(mask))
        assert proc.returncode == 0, proc.stderr
        assert_modes_follow_umask(out, umask)
    assert oct((tmp_path / "fit22" / "tables" / "coef_ols.csv").stat().st_mode & 0o777) == "0o644"


def test_bad_results_file_fails_cleanly_with_no_output(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("model,task,source,target,score,metric,n_source_examples,n_target_examples,seed\n"
                   "m,pos,eng,deu,0.9,accuracy,100,0,1\n"
                   "m,pos,eng,fra,high,accuracy,100,0,1\n", encoding="utf-8")
    out = tmp_path / "out"
    proc = run_fit("--data", str(bad), "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 2
    assert "bad.csv" in proc.stderr and "row 2" in proc.stderr and "score" in proc.stderr
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.csv"]


def test_bad_config_is_rejected_before_any_work(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("cv:\n  schemes: [leave-one-planet-out]\n", encoding="utf-8")
    proc = run_fit("--config", str(config), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 2
    assert "leave-one-planet-out" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_unknown_setting_is_named(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("sed: 3\n", encoding="utf-8")
    proc = run_fit("--config", str(config), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 2
    assert "sed" in proc.stderr and "c.yaml" in proc.stderr


def test_refuses_to_overwrite_a_folder_that_is_not_a_fit(tmp_path):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.tex").write_text("...", encoding="utf-8")
    proc = run_fit("--out", str(out), cwd=tmp_path)
    assert proc.returncode == 2
    assert "not an xltstats fit" in proc.stderr
    assert (out / "thesis.tex").read_text() == "..."


@pytest.mark.parametrize("setting, message", [
    ("cv:\n  max_folds: 1\n", "cv.max_folds"),
    ("ranking:\n  max_folds: ten\n", "ranking.max_folds"),
    ("cv:\n  n_jobs: 0\n", "cv.n_jobs"),
])
def test_fold_settings_are_validated(tmp_path, setting, message):
    from xltstats.errors import ConfigError
    from xltstats.pipeline.config import load_config

    config = tmp_path / "c.yaml"
    config.write_text(setting, encoding="utf-8")
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_config(config)
    assert load_config().cv.max_folds == 10


@pytest.mark.needs_mirror
def test_covariates_constant_in_complete_rows_skipped_computable_ones_computed(tmp_path):
    # deu and spa have no Grambank description, so rows with them miss morphological_distance; the
    # covariate varies only on those rows and is constant where every used feature is present.
    import numpy as np

    langs = ["eng", "fra", "fin", "tur", "jpn", "hin", "rus", "ita", "deu", "spa"]
    rng = np.random.default_rng(0)
    rows = [{"model": "m", "task": "t", "source": s, "target": t, "score": float(rng.uniform(20, 90)),
             "metric": "accuracy", "n_source_examples": 1000, "n_target_examples": 0, "seed": 1,
             "target_is_deu_or_spa": float(t in ("deu", "spa")), "word_overlap": float(rng.uniform())}
            for s in langs for t in langs]
    data = tmp_path / "results.csv"
    pd.DataFrame(rows).to_csv(data, index=False)
    import yaml

    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({
        "features": ["syntactic_distance", "morphological_distance", "word_overlap"],
        "covariates": ["target_is_deu_or_spa", "same_script", "same_language"],
        "groups": {"syntax": ["syntactic_distance"], "morphology": ["morphological_distance"]},
        "compare": [["syntax", "morphology"]], "cv": {"schemes": ["random"], "k": 3},
        "ranking": {"enabled": False}, "report": False}), encoding="utf-8")
    proc = run_fit("--data", str(data), "--config", str(config), "--out", str(tmp_path / "fit"), "--quiet",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((tmp_path / "fit" / "manifest.json").read_text())
    assert "target_is_deu_or_spa is constant in the rows that have every used feature and was skipped" in manifest["notes"]
    assert "target_is_deu_or_spa" not in manifest["features_used"]
    # same_script is not in the file, so it is computed; the file's own word_overlap is kept, not recomputed
    assert manifest["features_used"] == ["syntactic_distance", "morphological_distance", "same_script",
                                         "word_overlap", "same_language"]
    assert "kept the dataset's own word_overlap (not recomputed)" in manifest["notes"]
    used = pd.read_csv(tmp_path / "fit" / "results.csv")
    given = pd.read_csv(data)[["source", "target", "word_overlap"]]
    both = used.merge(given, on=["source", "target"], suffixes=("", "_given"))
    assert len(both) == len(given) and both["word_overlap"].tolist() == pytest.approx(both["word_overlap_given"].tolist())
    assert used.loc[(used.source == "eng") & (used.target == "rus"), "same_script"].iloc[0] == 0


@pytest.mark.needs_mirror
def test_too_few_complete_rows_names_the_feature_that_costs_them(tmp_path):
    langs = ["eng", "deu", "spa", "fra", "afr", "bul", "ron"]  # Grambank describes only eng and fra
    rows = [{"model": "m", "task": "t", "source": s, "target": t, "score": 50.0 + i, "metric": "accuracy",
             "n_source_examples": 1000, "n_target_examples": 0, "seed": 1}
            for i, (s, t) in enumerate((s, t) for s in langs for t in langs)]
    data = tmp_path / "results.csv"
    pd.DataFrame(rows).to_csv(data, index=False)
    config = tmp_path / "c.yaml"
    config.write_text("features: [syntactic_distance, morphological_distance]\ncovariates: []\n", encoding="utf-8")
    proc = run_fit("--data", str(data), "--config", str(config), "--out", str(tmp_path / "fit"), "--quiet",
                   cwd=tmp_path)
    assert proc.returncode == 2
    assert "only 4 rows have every used feature" in proc.stderr
    assert "morphological_distance (45 of 49 rows)" in proc.stderr
    assert not (tmp_path / "fit").exists()
