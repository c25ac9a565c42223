"""The fit report: sections, figures, LaTeX tables, self-containment, determinism, CLI."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from xltstats.report import render_report, template_path
from xltstats.report.__main__ import main as report_main
from xltstats.report.render import RenderError, parse_qmd
from xltstats.report.sections import FitReport

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "fixtures" / "fit_small"))
from make_fit_small import make_fit  # noqa: E402

FIGURES = ["heatmap_ner_mbert", "heatmap_ner_xlmr", "heatmap_pos_mbert", "heatmap_pos_xlmr",
           "feature_correlation", "coefficients_coef_ols", "coefficients_coef_mixed", "variance_components",
           "dominance", "residual_diagnostics", "fewshot_curves", "cv_error"]
SECTIONS = ["data", "transfer-scores-by-language-pair", "features", "models", "ols", "mixed-effects-model",
            "feature-groups", "residual-diagnostics", "few-shot-transfer", "cross-validation",
            "recommended-source-languages", "methods"]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    fit = make_fit(tmp_path_factory.mktemp("fit") / "fit_small", seed=0)
    html = render_report(fit, engine="python")
    return fit, html


def test_reports_folder_holds_the_packaged_template():
    assert (REPO / "reports" / "report.qmd").read_bytes() == template_path().read_bytes()
    assert (REPO / "reports" / "_quarto.yml").is_file()


def test_parse_qmd_finds_parameters_and_asis_cells():
    front, cells = parse_qmd(template_path().read_text(encoding="utf-8"))
    assert front["format"]["html"]["embed-resources"] is True
    code = [c for c in cells if c.kind == "code"]
    assert "parameters" in code[0].options["tags"] and "fit_dir" in code[0].source
    assert all(c.options.get("output") == "asis" for c in code[1:])
    assert any(c.kind == "markdown" and c.source.startswith("## Data") for c in cells)


def test_every_section_and_figure_is_in_the_html(rendered):
    fit, html_path = rendered
    assert html_path == fit / "report.html"
    html = html_path.read_text(encoding="utf-8")
    for section in SECTIONS:
        assert f'id="{section}"' in html, section
    images = re.findall(r'<img [^>]*src="([^"]*)"', html)
    assert len(images) == len(FIGURES)
    assert all(src.startswith("data:image/png;base64,") for src in images)
    for name in FIGURES:
        assert (fit / "figures" / f"{name}.png").stat().st_size > 1000
        assert (fit / "figures" / f"{name}.svg").read_text(encoding="utf-8").lstrip().startswith("<?xml")
    assert "Not available" not in html and "could not be produced" not in html
    assert "<math" in html  # the methods section's formulas as MathML
    assert "German" in html or "deu" in html
    assert "synthetic2026" in html and "Synthetic transfer scores" in html


def test_html_has_no_external_resources(rendered):
    html = rendered[1].read_text(encoding="utf-8")
    external = re.findall(r'<(?:script|link|img|source|iframe|embed|object)\b[^>]*\b(?:src|href|data)="(https?:)?//',
                          html)
    assert external == []
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", html)
    assert not re.search(r"@import", html)


def test_every_table_has_a_latex_version(rendered):
    fit, _ = rendered
    for csv in (fit / "tables").glob("*.csv"):
        assert csv.with_suffix(".tex").is_file(), csv.name
    for name in ["report_data_counts", "report_languages", "report_feature_coverage", "report_cv",
                 "report_recommendations", "report_versions"]:
        text = (fit / "tables" / f"{name}.tex").read_text(encoding="utf-8")
        assert text.startswith("\\begin{tabular}") and "\\bottomrule" in text


def test_missing_tex_is_written(tmp_path):
    fit = make_fit(tmp_path / "fit", with_tex=False)
    report = FitReport(fit)
    written = report.ensure_latex_tables()
    assert "coef_ols.tex" in written
    assert "syntactic\\_distance" in (fit / "tables" / "coef_ols.tex").read_text(encoding="utf-8")


def test_two_renders_are_byte_identical(rendered, tmp_path):
    fit, html_path = rendered
    first = {p.relative_to(fit): p.read_bytes() for p in sorted(fit.rglob("*")) if p.is_file()}
    second_html = render_report(fit, tmp_path / "again.html", engine="python")
    second = {p.relative_to(fit): p.read_bytes() for p in sorted(fit.rglob("*")) if p.is_file()}
    assert first == second  # figures (PNG, SVG) and tables unchanged byte for byte
    assert second_html.read_bytes() == html_path.read_bytes()


def test_recommendations_are_the_top_three_predicted_sources(tmp_path):
    fit = make_fit(tmp_path / "fit")
    (fit / "tables" / "ranking.csv").unlink()  # fall back to predictions.csv (mixed model)
    markdown = FitReport(fit).recommendations()
    predictions = pd.read_csv(fit / "predictions.csv")
    mixed = predictions[predictions["source"] != predictions["target"]]
    means = mixed.groupby(["task", "model", "target", "source"])["mixed_prediction"].mean()
    # Independent computation of one row: ner, mbert, target Finnish.
    best = means.loc[("ner", "mbert", "fin")].sort_values(ascending=False).index[:3].tolist()
    line = next(row for row in markdown.splitlines() if row.startswith("| ner") and "(fin)" in row
                and "mbert" in row)
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert [re.search(r"\((\w{3})\)", c).group(1) for c in cells[3:6]] == best


def test_sections_with_absent_inputs_say_so(tmp_path):
    fit = make_fit(tmp_path / "fit")
    for name in ["predictions.csv", "cv.csv", "features.csv", "feature_coverage.csv", "manifest.json"]:
        (fit / name).unlink()
    shutil.rmtree(fit / "tables")
    html = render_report(fit, engine="python").read_text(encoding="utf-8")
    assert html.count("Not available") >= 8
    assert "the fit folder has no <code>tables/coef_ols.csv</code>" in html
    assert (fit / "figures" / "heatmap_ner_mbert.png").is_file()  # results.csv alone still gives heatmaps
    assert html.count("<img ") == 4


def test_cli_renders_to_out_and_rejects_a_missing_folder(tmp_path, capsys):
    fit = make_fit(tmp_path / "fit")
    for name in ["predictions.csv", "results.csv", "features.csv", "feature_coverage.csv"]:
        (fit / name).unlink()
    shutil.rmtree(fit / "tables")
    out = tmp_path / "sub" / "r.html"
    assert report_main(["--fit", str(fit), "--out", str(out), "--engine", "python"]) == 0
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert report_main(["--fit", str(tmp_path / "nope"), "--out", str(tmp_path / "x.html")]) == 2
    assert "no such fit folder" in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()
    assert not [p for p in (tmp_path / "sub").iterdir() if p.name != "r.html"]  # no temp file left


def test_quarto_engine_needs_quarto(tmp_path):
    if shutil.which("quarto"):
        pytest.skip("quarto is installed; the error path cannot be exercised")
    with pytest.raises(RenderError, match="no quarto on PATH"):
        render_report(make_fit(tmp_path / "fit"), engine="quarto")


@pytest.mark.skipif(shutil.which("quarto") is None, reason="quarto is not installed")
def test_quarto_renders_the_template(tmp_path):
    fit = make_fit(tmp_path / "fit")
    html = render_report(fit, engine="quarto").read_text(encoding="utf-8")
    for section in ["data", "methods"]:
        assert f'id="{section}"' in html


@pytest.mark.slow
def test_kernel_engine_gives_the_same_report(rendered, tmp_path):
    fit, html_path = rendered
    kernel_html = render_report(fit, tmp_path / "kernel.html", engine="kernel")
    assert kernel_html.read_bytes() == html_path.read_bytes()


def test_python_module_entry_point(tmp_path):
    completed = subprocess.run([sys.executable, "-m", "xltstats.report", "--help"], capture_output=True, text=True)
    assert completed.returncode == 0 and "--fit" in completed.stdout


PROBE = """<script>
window.__xltErrors = [];
window.addEventListener('error', function (e) {
  var t = e.target || {};
  window.__xltErrors.push(e.message || ('failed to load ' + (t.id || '') + ' ' + String(t.src || t.href || '').slice(0, 60)));
}, true);
var __xltConsoleError = console.error;
console.error = function () { window.__xltErrors.push(Array.prototype.join.call(arguments, ' ')); __xltConsoleError.apply(console, arguments); };
window.addEventListener('load', function () {
  var images = Array.prototype.map.call(document.images, function (i) {
    var r = i.getBoundingClientRect();
    return {id: i.id, natural: [i.naturalWidth, i.naturalHeight], shown: [Math.round(r.width), Math.round(r.height)]};
  });
  var pre = document.createElement('pre');
  pre.id = 'xlt-probe';
  pre.textContent = JSON.stringify({errors: window.__xltErrors, images: images});
  document.body.appendChild(pre);
});
</script>"""
# A deliberately broken image: the probe must report it, which shows the probe can fail.
CONTROL = '<img id="xlt-control" src="xlt-missing-image.png" alt="control">'


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(_chromium() is None, reason="no chromium on PATH (Debian package 'chromium')")
def test_report_opens_in_headless_chromium(rendered, tmp_path):
    import html as html_module
    import json

    page = rendered[1].read_text(encoding="utf-8")
    page = page.replace("<head>", "<head>\n" + PROBE, 1).replace("</body>", CONTROL + "\n</body>", 1)
    probe_page = tmp_path / "probe.html"
    probe_page.write_text(page, encoding="utf-8")
    command = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1280,1000",
               f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--dump-dom",
               probe_page.as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    match = re.search(r'<pre id="xlt-probe">(.*?)</pre>', done.stdout, re.S)
    assert match, f"chromium did not run the probe (exit {done.returncode}): {done.stderr[-2000:]}"
    probe = json.loads(html_module.unescape(match.group(1)))
    control = [i for i in probe["images"] if i["id"] == "xlt-control"]
    figures = [i for i in probe["images"] if i["id"] != "xlt-control"]
    assert control and control[0]["natural"] == [0, 0]
    assert [e for e in probe["errors"] if "xlt-control" not in e] == []
    assert any("xlt-control" in e for e in probe["errors"])
    assert len(figures) == len(FIGURES)
    for image in figures:
        assert min(image["natural"]) > 50 and min(image["shown"]) > 50, image


def test_malformed_tables_become_notes(tmp_path):
    fit = make_fit(tmp_path / "fit")
    (fit / "tables" / "coef_ols.csv").write_text("name,value_x\na,1\n")
    (fit / "tables" / "variance_components.csv").write_text("component,variance\nsource,not-a-number\n")
    report = FitReport(fit)
    text = report.coefficient_section("coef_ols", "OLS")
    assert "Not available" in text and "tables/coef_ols.csv has no estimate column" in text
    assert "could not be produced" in report.variance_components()
    assert not (fit / "figures" / "coefficients_coef_ols.png").exists()


def test_language_names_label_the_data():
    from xltstats.report.sections import language_label

    assert language_label("zz-invalid-99") == "zz-invalid-99"
    try:
        from xltstats.languages import language_name
    except ImportError:
        pytest.skip("xltstats.languages is not available")
    assert language_label("deu") == language_name("deu")


def test_recommendations_follow_the_ranker_with_the_best_ndcg(tmp_path):
    fit = make_fit(tmp_path / "fit")
    rows = []
    for source, observed, a_rank, b_rank in [("eng", 80.0, 1, 4), ("deu", 85.0, 2, 1), ("fra", 70.0, 3, 2),
                                             ("spa", 60.0, 4, 3)]:
        rows.append({"target": "fin", "source": source, "observed": observed, "alpha_score": 10.0 - a_rank,
                     "beta_score": 5.0 - b_rank, "alpha_rank": a_rank, "beta_rank": b_rank})
    pd.DataFrame(rows).to_csv(fit / "tables" / "ranking.csv", index=False)
    pd.DataFrame({"method": ["alpha", "beta"], "mean_ndcg_at_3": [0.7, 0.9]}).to_csv(
        fit / "tables" / "ranking_ndcg.csv", index=False)
    markdown = FitReport(fit).recommendations()
    assert "(beta ranker)" in markdown
    line = next(row for row in markdown.splitlines() if "(fin)" in row)
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert [re.search(r"\((\w{3})\)", c).group(1) for c in cells[1:5]] == ["deu", "fra", "spa", "deu"]
    assert cells[1].endswith(", 4") and cells[4].endswith(", 85")


def test_quarto_on_path_is_used_with_the_fit_folder_as_parameter(tmp_path, monkeypatch):
    """A stand-in `quarto` records how it is called; the real one is not installed here."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "quarto-args.txt"
    script = bin_dir / "quarto"
    script.write_text("#!/bin/sh\n"
                      f'printf "%s\\n" "$@" > "{log}"\n'
                      f'cmp -s report.qmd "{template_path()}" || exit 3\n'
                      'echo "<!DOCTYPE html><html><body>rendered by quarto</body></html>" > report.html\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    fit = tmp_path / "fit"
    fit.mkdir()
    out = render_report(fit, tmp_path / "out.html")
    assert "rendered by quarto" in out.read_text()
    args = log.read_text().splitlines()
    assert args[:2] == ["render", "report.qmd"] and f"fit_dir:{fit.resolve()}" in args
    script.write_text("#!/bin/sh\necho 'ERROR: kernel died' >&2\nexit 1\n")
    with pytest.raises(RenderError, match="kernel died"):
        render_report(fit, tmp_path / "out2.html")
    assert not (tmp_path / "out2.html").exists()
