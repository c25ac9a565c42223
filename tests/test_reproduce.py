"""`python -m xltstats.reproduce`: rerun a fit from its manifest and compare its tables.

Reruns are real fits of a small table (reproduce runs nothing but xltstats' own fit); the table
comparison is checked on synthetic fit folders from tests/fixtures/fit_small/make_fit_small.py
(``perturb`` changes one coefficient).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from xltstats.pipeline.compare import ReproduceResult, compare_fit_folders
from xltstats.reproduce import compare_tables, main

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "fit_small"
sys.path.insert(0, str(FIXTURE))
from make_fit_small import make_fit  # noqa: E402

LANGS = ["eng", "deu", "fra", "fin", "tur", "hin", "jpn"]


def _fit(tmp_path, *args: str) -> Path:
    out = tmp_path / "fit"
    make_fit(out, seed=2, argv=["make_fit_small", "--out", str(out), "--seed", "2", *args])
    return out


def _set_argv(fit: Path, argv) -> None:
    manifest = json.loads((fit / "manifest.json").read_text())
    manifest["argv"] = argv
    (fit / "manifest.json").write_text(json.dumps(manifest))


def _compare(stored: Path, rerun: Path) -> str:
    return ReproduceResult(["python", "-P", "-m", "xltstats.fit"], 0.0, compare_fit_folders(stored, rerun)).report()


def tiny_results(path: Path) -> Path:
    """A small results table the real fit handles in seconds."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    rows = [{"model": "m", "task": "t", "source": s, "target": t, "score": float(rng.uniform(20, 90)),
             "metric": "accuracy", "n_source_examples": 1000, "n_target_examples": 0, "seed": 1}
            for s in LANGS for t in LANGS]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


TINY_CONFIG = ("features: [syntactic_distance, genetic_distance]\ncovariates: [same_language]\n"
               "cv: {schemes: [random]}\nranking: {enabled: false}\nreport: false\n")


@pytest.fixture(scope="module")
def real_fit(tmp_path_factory):
    """A real fit folder of python -m xltstats.fit, made with relative paths from its project folder."""
    if not os.environ.get("XLTSTATS_MIRROR"):
        pytest.skip("XLTSTATS_MIRROR is not set")
    project = tmp_path_factory.mktemp("project")
    tiny_results(project / "tiny.csv")
    (project / "tiny.yaml").write_text(TINY_CONFIG, encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "xltstats.fit", "--data", "tiny.csv", "--config", "tiny.yaml",
                           "--out", "fit", "--quiet"], cwd=project, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return project / "fit"


@pytest.mark.slow
def test_identical_rerun_exits_0(real_fit, tmp_path):
    """A real fit reruns byte-identically through the module entry point; its paths are shown."""
    fit = tmp_path / "received"
    shutil.copytree(real_fit, fit)
    done = subprocess.run([sys.executable, "-m", "xltstats.reproduce", str(fit)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert out.rstrip().endswith("reproduced: all tables byte-identical")
    assert f"  --data {real_fit.parent / 'tiny.csv'}" in out and f"  --config {real_fit.parent / 'tiny.yaml'}" in out
    for table in ["results.csv", "features.csv", "predictions.csv", "cv.csv", "tables/coef_ols.csv"]:
        assert f"identical   {table}" in out


def test_changed_coefficient_is_reported_with_its_row(tmp_path):
    stored = _fit(tmp_path)
    rerun = make_fit(tmp_path / "rerun", seed=2, perturb=0.5)
    out = _compare(stored, rerun)
    assert "DIFFERENT   tables/coef_ols.csv" in out
    assert "column 'estimate': 1 of 4 value(s) differ, max |diff| 0.5" in out
    assert "row 2 (term=syntactic_distance)" in out
    assert "identical   results.csv" in out
    assert "NOT reproduced" in out


def test_missing_and_reformatted_tables(tmp_path):
    fit = _fit(tmp_path)
    rerun = make_fit(tmp_path / "rerun", seed=2)
    (fit / "tables" / "extra.csv").write_text("a,b\n1,2\n")
    vif = fit / "tables" / "vif.csv"
    vif.write_text(vif.read_text().replace(",1.1\n", ",1.10000\n"))  # same number, other text
    out = _compare(fit, rerun)
    assert "MISSING     tables/extra.csv" in out
    assert "DIFFERENT   tables/vif.csv (numerically equal within tolerance)" in out


def test_compare_tables_explains_shape_and_text_differences(tmp_path):
    stored, rerun = tmp_path / "a", tmp_path / "b"
    stored.mkdir(), rerun.mkdir()
    (stored / "t.csv").write_text("term,estimate\nx,1.0\ny,2.0\n")
    (rerun / "t.csv").write_text("term,estimate,extra\nx,1.0,3\n")
    difference = compare_tables(stored, rerun, "t.csv")
    assert difference.status == "different" and not difference.within_tolerance
    assert any("rerun only ['extra']" in d for d in difference.details)
    assert any("row count: stored 2, rerun 1" in d for d in difference.details)
    (rerun / "t.csv").write_text("term,estimate\nx,1.0\nz,2.0000000001\n")
    difference = compare_tables(stored, rerun, "t.csv")
    assert any("column 'term': 1 of 2" in d for d in difference.details)
    assert any("column 'estimate'" in d and "beyond" not in d for d in difference.details)


def test_rerun_command_is_our_fit_with_absolute_paths_and_a_temporary_output(tmp_path):
    from xltstats.reproduce import rerun_command, validated_arguments

    out = tmp_path / "tmpfit"
    args = validated_arguments(["xltstats.fit", "--data", "xpos", "--out", "fit", "--config", "c.yaml", "--seed", "3"])
    command, paths = rerun_command(args, out, tmp_path)
    assert command == [sys.executable, "-P", "-m", "xltstats.fit", "--data", "xpos", "--config",
                       str(tmp_path / "c.yaml"), "--seed", "3", "--out", str(out), "--no-report", "--quiet"]
    assert paths == {"--config": str(tmp_path / "c.yaml")}
    args = validated_arguments(["xltstats.fit", "--data=mine.csv", "--no-report"])
    assert rerun_command(args, out, tmp_path)[1] == {"--data": str(tmp_path / "mine.csv")}


def test_bad_manifest_and_failed_rerun_exit_2(tmp_path, capsys):
    fit = _fit(tmp_path)
    _set_argv(fit, "make_fit_small --out x")
    assert main([str(fit)]) == 2
    assert "column 'argv'" in capsys.readouterr().err
    _set_argv(fit, ["make_fit_small", "--seed", "2"])
    assert main([str(fit)]) == 2
    assert "refusing to run 'make_fit_small': reproduce runs only xltstats' own fit" in capsys.readouterr().err
    for bad, message in [(["xltstats.fit", "--unknown-option"], "unrecognized arguments: --unknown-option"),
                         (["xltstats.fit", "--seed", "-4"], "--seed: must be an integer >= 0"),
                         (["xltstats.fit", "--help"], "unrecognized arguments: --help"),
                         (["xltstats.fit", "--list-datasets"], "refusing the recorded option --list-datasets")]:
        _set_argv(fit, bad)
        assert main([str(fit)]) == 2
        err = capsys.readouterr().err
        assert message in err and "nothing was run" in err, err
    _set_argv(fit, ["xltstats.fit", "--data", str(tmp_path / "missing.csv")])
    assert main([str(fit)]) == 2
    assert "the rerun failed (exit 2)" in capsys.readouterr().err
    (fit / "manifest.json").unlink()
    assert main([str(fit)]) == 2
    assert main([str(tmp_path / "nope")]) == 2


def test_a_manifest_naming_other_code_runs_nothing(tmp_path, capsys):
    """Issue 16: argv naming another module, with a cwd or fit folder that holds it, runs nothing."""
    evil = tmp_path / "evil"
    marker = tmp_path / "PWNED"
    payload = f"open({str(marker)!r}, 'w').write('ran')\n"
    for package in ("fit", "xltstats"):
        for folder in (evil, tmp_path / "fit"):
            (folder / package).mkdir(parents=True, exist_ok=True)
            (folder / package / "__init__.py").write_text(payload)
            (folder / package / "pwn.py").write_text(payload)
            (folder / package / "fit.py").write_text(payload)
            (folder / package / "__main__.py").write_text(payload)
    make_fit(tmp_path / "fit", seed=2)
    manifest = json.loads((tmp_path / "fit" / "manifest.json").read_text())
    manifest.update(argv=["fit.pwn", "--data", "xpos"], cwd=str(evil))
    (tmp_path / "fit" / "manifest.json").write_text(json.dumps(manifest))
    assert main([str(tmp_path / "fit")]) == 2
    err = capsys.readouterr().err
    assert "refusing to run 'fit.pwn': reproduce runs only xltstats' own fit" in err and "nothing was run" in err
    assert not marker.exists()
    # our own fit, recorded in a folder that shadows xltstats: the shadow is never imported
    manifest.update(argv=["xltstats.fit", "--data", "missing.csv"])
    (tmp_path / "fit" / "manifest.json").write_text(json.dumps(manifest))
    assert main([str(tmp_path / "fit")]) == 2
    err = capsys.readouterr().err
    assert "the rerun failed (exit 2)" in err and "missing.csv" in err
    assert not marker.exists()


@pytest.mark.slow
def test_relative_paths_resolve_from_the_recorded_folder_and_changed_inputs_are_warned_about(
        real_fit, tmp_path, monkeypatch, capsys):
    project = tmp_path / "project"
    shutil.copytree(real_fit.parent, project)
    fit = project / "fit"
    manifest = json.loads((fit / "manifest.json").read_text())
    assert manifest["cwd"] == str(real_fit.parent) and manifest["argv"][:3] == ["xltstats.fit", "--data", "tiny.csv"]
    manifest["cwd"] = str(project)
    (fit / "manifest.json").write_text(json.dumps(manifest))
    tiny = project / "tiny.csv"
    lines = tiny.read_text().splitlines()
    cells = lines[1].split(",")
    cells[4] = "11.5"
    lines[1] = ",".join(cells)
    tiny.write_text("\n".join(lines) + "\n")
    monkeypatch.chdir(tmp_path)  # relative paths in argv resolve from the recorded cwd, not from here
    assert main([str(fit)]) == 1
    out = capsys.readouterr().out
    assert "warning: input tiny.csv has changed since the fit" in out
    assert "DIFFERENT   results.csv" in out
    assert sorted(p.name for p in project.iterdir()) == ["fit", "tiny.csv", "tiny.yaml"]  # rerun wrote elsewhere


@pytest.mark.slow
def test_real_fit_reports_and_reproduces(tmp_path, monkeypatch):
    """End to end on the shared xpos mirror: fit (4 sources), render the report, reproduce."""
    mirror = os.environ.get("XLTSTATS_MIRROR")
    if not mirror:
        pytest.skip("XLTSTATS_MIRROR is not set (needs the shared published-data mirror)")
    mirror = Path(mirror) if Path(mirror).is_absolute() else Path(__file__).resolve().parents[1] / mirror
    (tmp_path / "sub.yaml").write_text("subset:\n  source: [eng, deu, rus, hye]\ncv:\n  schemes: [random]\n")
    monkeypatch.chdir(tmp_path)
    fit = subprocess.run([sys.executable, "-m", "xltstats.fit", "--data", "xpos", "--mirror", str(mirror),
                          "--config", "sub.yaml", "--out", "fit", "--quiet"], capture_output=True, text=True)
    assert fit.returncode == 0, fit.stderr[-3000:]
    html = (tmp_path / "fit" / "report.html").read_text(encoding="utf-8")
    assert "could not be produced" not in html and html.count("<img ") >= 6
    done = subprocess.run([sys.executable, "-m", "xltstats.reproduce", "fit"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_changed_package_versions_are_warned_about():
    from importlib import metadata

    from xltstats.pipeline.manifest import xltstats_commit
    from xltstats.reproduce import check_versions

    manifest = {"versions": {"pandas": metadata.version("pandas"), "numpy": "0.0.1", "python": "2.7.18",
                             "xltstats": None}}
    warnings = check_versions(manifest)
    assert warnings == [f"numpy is {metadata.version('numpy')} now, 0.0.1 when the fit was made",
                        f"python is {__import__('platform').python_version()} now, 2.7.18 when the fit was made"]
    if xltstats_commit() is not None:  # a git checkout: a recorded commit that differs is reported
        assert check_versions({"git_commit": "0" * 40})[0].startswith("xltstats is at commit")


def test_a_tampered_stored_table_is_listed_as_different(tmp_path):
    """Editing a stored table after the fit (one number, nothing else) is caught and located."""
    fit = _fit(tmp_path)
    rerun = make_fit(tmp_path / "rerun", seed=2)
    table = fit / "tables" / "variance_components.csv"
    lines = table.read_text().splitlines(keepends=True)
    cells = lines[1].rstrip("\n").split(",")
    column = next(i for i, c in enumerate(cells) if c.replace(".", "", 1).replace("-", "", 1).isdigit())
    header = lines[0].rstrip("\n").split(",")[column]
    cells[column] = str(float(cells[column]) + 1.0)
    lines[1] = ",".join(cells) + "\n"
    table.write_text("".join(lines))
    out = _compare(fit, rerun)
    assert "DIFFERENT   tables/variance_components.csv" in out
    assert f"column '{header}': 1 of" in out and "max |diff| 1" in out
    assert "identical   tables/coef_ols.csv" in out and "identical   results.csv" in out
    assert "NOT reproduced: 1 of" in out


def test_missing_cells_on_both_sides_are_equal_and_one_sided_ones_are_counted(tmp_path):
    """pandas 3 reads empty text cells as NaN in its string dtype: NaN on both sides is no difference."""
    stored, rerun = tmp_path / "a", tmp_path / "b"
    stored.mkdir()
    rerun.mkdir()
    (stored / "t.csv").write_text("k,word_order,x\na,SVO,1.0\nb,,\nc,SOV,3.0\n")
    (rerun / "t.csv").write_text("k,word_order,x\na,SVO,1.0\nb,,2.0\nc,VSO,3.0\n")
    difference = compare_tables(stored, rerun, "t.csv")
    assert difference.status == "different"
    assert "column 'word_order': 1 of 3 value(s) differ" in difference.details
    assert "  row 3 (k=c): stored 'SOV', rerun 'VSO'" in difference.details
    assert not any("stored nan, rerun nan" in line for line in difference.details)
    numeric = next(line for line in difference.details if line.startswith("column 'x'"))
    assert numeric.startswith("column 'x': 1 of 3 value(s) differ, 1 missing on one side only")
