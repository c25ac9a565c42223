"""`python -m xltstats.reproduce`: rerun a fit from its manifest and compare its tables.

The fit command is stood in for by tests/fixtures/fit_small/make_fit_small.py, which writes a
synthetic fit folder deterministically from its seed (``--perturb`` changes one coefficient).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from xltstats.reproduce import compare_tables, main, rerun_command

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "fit_small"
sys.path.insert(0, str(FIXTURE))
from make_fit_small import make_fit  # noqa: E402


@pytest.fixture
def fake_fit_on_path(monkeypatch):
    """Let `python -m make_fit_small` run in the rerun's subprocess."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(FIXTURE), os.environ.get("PYTHONPATH")])))


def _fit(tmp_path, *args: str) -> Path:
    out = tmp_path / "fit"
    make_fit(out, seed=2, argv=["make_fit_small", "--out", str(out), "--seed", "2", *args])
    return out


def _set_argv(fit: Path, argv: list[str]) -> None:
    manifest = json.loads((fit / "manifest.json").read_text())
    manifest["argv"] = argv
    (fit / "manifest.json").write_text(json.dumps(manifest))


def test_identical_rerun_exits_0(tmp_path, fake_fit_on_path, capsys):
    fit = _fit(tmp_path)
    assert main([str(fit)]) == 0
    out = capsys.readouterr().out
    assert "reproduced: all tables byte-identical" in out
    for table in ["results.csv", "features.csv", "predictions.csv", "cv.csv", "tables/coef_ols.csv"]:
        assert f"identical   {table}" in out


def test_changed_coefficient_is_reported_with_its_row(tmp_path, fake_fit_on_path, capsys):
    fit = _fit(tmp_path)
    _set_argv(fit, ["make_fit_small", "--out", str(fit), "--seed", "2", "--perturb", "0.5"])
    assert main([str(fit)]) == 1
    out = capsys.readouterr().out
    assert "DIFFERENT   tables/coef_ols.csv" in out
    assert "column 'estimate': 1 of 4 value(s) differ, max |diff| 0.5" in out
    assert "row 2 (term=syntactic_distance)" in out
    assert "identical   results.csv" in out
    assert "NOT reproduced" in out


def test_missing_and_reformatted_tables(tmp_path, fake_fit_on_path, capsys):
    fit = _fit(tmp_path)
    (fit / "tables" / "extra.csv").write_text("a,b\n1,2\n")
    vif = fit / "tables" / "vif.csv"
    vif.write_text(vif.read_text().replace(",1.1\n", ",1.10000\n"))  # same number, other text
    assert main([str(fit)]) == 1
    out = capsys.readouterr().out
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


def test_rerun_command_replaces_the_output_folder(tmp_path):
    out = tmp_path / "tmpfit"
    command = rerun_command(["xltstats.fit", "--data", "xpos", "--out", "fit"], out)
    assert command[:2] == [sys.executable, "-m"]
    assert command[2:] == ["xltstats.fit", "--data", "xpos", "--out", str(out), "--no-report"]
    assert rerun_command(["xltstats.fit", "--output=fit", "--no-report"], out)[2:] == [
        "xltstats.fit", f"--output={out}", "--no-report"]
    assert rerun_command(["xltstats.fit", "--data", "xpos"], out)[-3:] == ["--out", str(out), "--no-report"]


def test_bad_manifest_and_failed_rerun_exit_2(tmp_path, fake_fit_on_path, capsys):
    fit = _fit(tmp_path)
    _set_argv(fit, "make_fit_small --out x")
    assert main([str(fit)]) == 2
    assert "column 'argv'" in capsys.readouterr().err
    _set_argv(fit, ["make_fit_small", "--unknown-option"])
    assert main([str(fit)]) == 2
    assert "the rerun failed" in capsys.readouterr().err
    (fit / "manifest.json").unlink()
    assert main([str(fit)]) == 2
    assert main([str(tmp_path / "nope")]) == 2


def test_module_entry_point_exit_status(tmp_path, fake_fit_on_path):
    fit = _fit(tmp_path)
    done = subprocess.run([sys.executable, "-m", "xltstats.reproduce", str(fit)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith("reproduced: all tables byte-identical")


def test_rerun_runs_in_the_recorded_folder_and_warns_about_changed_inputs(tmp_path, fake_fit_on_path,
                                                                         monkeypatch, capsys):
    import hashlib

    project = tmp_path / "project"
    project.mkdir()
    (project / "seed.txt").write_text("2\n")
    fit = _fit(tmp_path)
    manifest = json.loads((fit / "manifest.json").read_text())
    manifest.update(argv=["make_fit_small", "--seed-file", "seed.txt", "--out", "fit"], cwd=str(project),
                    inputs=[{"path": "seed.txt", "sha256": hashlib.sha256(b"2\n").hexdigest()}])
    (fit / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.chdir(tmp_path)  # relative paths in argv resolve from the recorded cwd, not from here
    assert main([str(fit)]) == 0
    assert "warning" not in capsys.readouterr().out
    (project / "seed.txt").write_text("3\n")
    assert main([str(fit)]) == 1
    out = capsys.readouterr().out
    assert "warning: input seed.txt has changed since the fit" in out
    assert "DIFFERENT   results.csv" in out
    assert not (project / "fit").exists()  # the rerun wrote into a temporary folder


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

    from xltstats.reproduce import check_versions

    manifest = {"versions": {"pandas": metadata.version("pandas"), "numpy": "0.0.1", "python": "2.7.18",
                             "xltstats": None}}
    warnings = check_versions(manifest)
    assert warnings == [f"numpy is {metadata.version('numpy')} now, 0.0.1 when the fit was made",
                        f"python is {__import__('platform').python_version()} now, 2.7.18 when the fit was made"]
    from xltstats.reproduce import _xltstats_commit

    if _xltstats_commit() is not None:  # a git checkout: a recorded commit that differs is reported
        assert check_versions({"git_commit": "0" * 40})[0].startswith("xltstats is at commit")


def test_a_tampered_stored_table_is_listed_as_different(tmp_path, fake_fit_on_path, capsys):
    """Editing a stored table after the fit (one number, nothing else) is caught and located."""
    fit = _fit(tmp_path)
    table = fit / "tables" / "variance_components.csv"
    lines = table.read_text().splitlines(keepends=True)
    cells = lines[1].rstrip("\n").split(",")
    column = next(i for i, c in enumerate(cells) if c.replace(".", "", 1).replace("-", "", 1).isdigit())
    header = lines[0].rstrip("\n").split(",")[column]
    cells[column] = str(float(cells[column]) + 1.0)
    lines[1] = ",".join(cells) + "\n"
    table.write_text("".join(lines))
    assert main([str(fit)]) == 1
    out = capsys.readouterr().out
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
