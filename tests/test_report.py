"""The fit report: sections, figures, LaTeX tables, self-containment, determinism, CLI."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
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
           "heatmap_ner_mbert_residuals", "heatmap_ner_xlmr_residuals", "heatmap_pos_mbert_residuals",
           "heatmap_pos_xlmr_residuals",
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
        assert not (fit / "figures" / f"{name}.svg").exists()  # SVG is opt-in (report: {svg: true})
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
        assert text.startswith("\\begin{table}") and "\\begin{tabular}" in text and "\\bottomrule" in text
        assert "\\caption{" in text and f"\\label{{tab:{name.replace('_', '-')}}}" in text


def test_missing_tex_is_written(tmp_path):
    fit = make_fit(tmp_path / "fit", with_tex=False)
    report = FitReport(fit)
    written = report.ensure_latex_tables()
    assert "coef_ols.tex" in written
    assert "Syntactic distance" in (fit / "tables" / "coef_ols.tex").read_text(encoding="utf-8")  # readable


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
    # table cells are Markdown-escaped text (report.escape.md_escape): read them back as text
    rows = [re.sub(r"\\([^|])", r"\1", row) for row in markdown.splitlines()]
    line = next(row for row in rows if row.startswith("| ner") and "(fin)" in row and "mbert" in row)
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
    assert html.count("<img ") == 8  # the four score heatmaps and their residual views


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


def test_a_table_without_its_schema_is_a_note_and_a_bug_raises(tmp_path):
    """A table lacking the columns of its FitFolder schema is named in a note; a table that has them
    but cannot be used (here a word where a number belongs) is not hidden behind a note."""
    fit = make_fit(tmp_path / "fit")
    (fit / "tables" / "coef_ols.csv").write_text("name,value_x\na,1\n")
    (fit / "tables" / "variance_components.csv").write_text("component,variance\nsource,not-a-number\n")
    report = FitReport(fit)
    text = report.coefficient_section("coef_ols", "OLS")
    assert "Not available" in text and "coef_ols.csv, column 'term': lacks column(s) term, estimate" in text
    with pytest.raises(ValueError):
        report.variance_components()
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
    assert cells[4].endswith(", 85")
    # after each name: a model's predicted score and 95% interval for the pair (not the ranker's unitless
    # score), averaged over the pair's rows in predictions.csv; the fixture's mixed model has no intervals
    predictions = pd.read_csv(fit / "predictions.csv")
    pair = predictions[(predictions["target"] == "fin") & (predictions["source"] == "deu")]
    mean = pair[["ols_prediction", "ols_lower", "ols_upper"]].mean()
    from xltstats.report.sections._base import _format_value

    assert re.sub(r"\\(.)", r"\1", cells[1]) == (f"German (deu), {_format_value(mean.iloc[0])} "
                                                  f"[{_format_value(mean.iloc[1])}, {_format_value(mean.iloc[2])}]")
    assert "the OLS model's predicted score" in markdown and "95% prediction interval" in markdown


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


# ---------------------------------------------------------------------------------------------
# Table formatting, fold descriptions, recommendations, figure layout


def test_counts_read_back_as_floats_are_shown_as_integers():
    from xltstats.report.sections import format_frame, latex_table

    frame = pd.DataFrame({"n": [2180.0, 5.0], "estimate": [1.5, 2.0], "gap": [3.0, float("nan")]})
    shown = format_frame(frame)
    assert shown["n"].tolist() == ["2180", "5"]
    assert shown["estimate"].tolist() == ["1.5", "2"]
    assert shown["gap"].tolist() == ["3", "–"]
    assert "2180 &" in latex_table(frame) and "2180.0" not in latex_table(frame)


def _write_grouped_cv(fit: Path) -> None:
    """A cv_comparison table as the fit writes it when languages are held out in groups."""
    pd.DataFrame({
        "estimator": ["ols", "mixed", "ols"],
        "baseline": ["gbt", "gbt", "gbt"],
        "rmse": [1.0, 0.9, 1.1],
        "folds_compared": [3, 3, 2],
        "folds_better": [1, 2, 0],
        "folds_better_list": ["deu+eng", "deu+eng fin+fra", "–"],
        "folds_worse_list": ["fin+fra hin+jpn+kor", "hin+jpn+kor", "fold1 fold2"],
        "scheme": ["leave-one-target-out", "leave-one-target-out", "random"],
    }).to_csv(fit / "tables" / "cv_comparison.csv", index=False)


def _set_config(fit: Path, **config) -> None:
    import json

    manifest = json.loads((fit / "manifest.json").read_text())
    manifest.setdefault("config", {}).update(config)
    manifest["seed"] = 7
    (fit / "manifest.json").write_text(json.dumps(manifest))


def test_svg_figures_only_when_the_configuration_asks(tmp_path):
    fit = make_fit(tmp_path / "fit")
    _set_config(fit, report={"svg": True})
    report = FitReport(fit)
    assert report.svg
    report.feature_correlations()
    svg = fit / "figures" / "feature_correlation.svg"
    assert svg.read_text(encoding="utf-8").lstrip().startswith("<?xml")
    assert "(PNG and SVG)" in report.closing()
    _set_config(fit, report=True)
    assert not FitReport(fit).svg and "(PNG)" in FitReport(fit).closing()


def test_heatmap_is_one_image_with_blank_missing_cells():
    from xltstats.report import figures as F

    matrix = pd.DataFrame([[0.5, np.nan], [0.25, 0.75]], index=["deu", "eng"], columns=["fin", "fra"])
    fig = F.transfer_heatmap(matrix, title="t", metric="accuracy")
    ax = fig.axes[0]
    assert len(ax.images) == 1 and not ax.collections  # no per-cell patches or mesh edges
    image = ax.images[0].get_array()
    assert image.mask.tolist() == [[False, True], [False, False]]
    assert [t.get_text() for t in ax.texts] == ["0.50", "0.25", "0.75"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["fin", "fra"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["deu", "eng"]


def test_cv_design_is_read_from_the_grouped_fold_labels(tmp_path):
    fit = make_fit(tmp_path / "fit")
    _write_grouped_cv(fit)
    _set_config(fit, cv={"schemes": ["leave-one-target-out", "random"], "max_folds": 3, "k": 2})
    report = FitReport(fit)
    assert report.cv_folds() == {"leave-one-target-out": ["deu+eng", "fin+fra", "hin+jpn+kor"],
                                 "random": ["fold1", "fold2"]}
    design = report.cv_design()
    assert design["leave-one-target-out"].startswith(
        "the 7 target languages dealt at random (seed 7) into 3 groups of 2–3, each group held out together")
    assert "`deu+eng`" in design["leave-one-target-out"]
    assert design["random"] == "rows dealt at random (seed 7) into 2 folds, each held out once"
    section = report.cross_validation()
    assert "the 7 target languages dealt at random" in section
    assert "folds_better_list" not in section and "hin+jpn+kor" not in section.split("Each model")[1]
    tex = (fit / "tables" / "report_cv_comparison.tex").read_text(encoding="utf-8")
    assert "hin+jpn+kor" in tex and tex.index("Scheme") < tex.index("Estimator")
    methods = report.methods()
    assert "**Validation.**" in methods and "into 3 groups of 2–3" in methods
    # The fixture's cv.csv has the mean and gradient-boosting baselines: both are described.
    assert "`gbt`, LightGBM gradient-boosted trees" in methods and "`mean`, the target's mean score" in methods


def test_cv_design_without_fold_labels_follows_the_configuration(tmp_path):
    fit = make_fit(tmp_path / "fit")
    (fit / "tables" / "cv_comparison.csv").unlink(missing_ok=True)
    results = pd.read_csv(fit / "results.csv")
    n_sources = results["source"].nunique()
    _set_config(fit, cv={"schemes": ["leave-one-source-out"], "max_folds": 2})
    design = FitReport(fit).cv_design()["leave-one-source-out"]
    assert design.startswith(f"the {n_sources} source languages dealt at random (seed 7) into 2 groups")
    _set_config(fit, cv={"schemes": ["leave-one-source-out"], "max_folds": 100})
    assert FitReport(fit).cv_design()["leave-one-source-out"] == (
        f"each of the {n_sources} source languages held out in turn ({n_sources} folds)")


def test_recommendations_leave_out_the_target_itself(tmp_path):
    fit = make_fit(tmp_path / "fit")
    pd.DataFrame({
        "target": ["fin"] * 4,
        "source": ["fin", "est", "hun", "eng"],
        "observed": [99.0, 80.0, 70.0, 75.0],
        "alpha_score": [9.0, 5.0, 4.0, 3.0],
        "alpha_rank": [1, 2, 3, 4],
    }).to_csv(fit / "tables" / "ranking.csv", index=False)
    (fit / "tables" / "ranking_ndcg.csv").unlink(missing_ok=True)
    markdown = FitReport(fit).recommendations()
    line = next(row for row in markdown.splitlines() if row.startswith("| Finnish"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert [re.search(r"\((\w{3})\)", c).group(1) for c in cells[1:5]] == ["est", "hun", "eng", "est"]


def test_wide_figures_scroll_at_natural_size_and_narrow_ones_fit_the_page(tmp_path):
    from xltstats.report import figures as F

    report = FitReport(make_fit(tmp_path / "fit"))
    codes = [f"l{i:02d}" for i in range(70)]
    matrix = pd.DataFrame(np.arange(70 * 60, dtype=float).reshape(60, 70), index=codes[:60], columns=codes)
    fig = F.transfer_heatmap(matrix, title="t", metric="accuracy")
    assert fig.get_size_inches()[0] > F.WIDE_FIGURE_INCHES
    ax = fig.axes[0]
    assert len([t for t in ax.get_xticklabels() if t.get_text()]) == 70  # every language labelled
    wide = report.figure(fig, "wide", "Wide.")
    assert 'overflow-x: auto' in wide and 'max-width: none' in wide
    assert f'width="{round(fig.get_size_inches()[0] * F.PNG_DPI)}"' in wide
    narrow = report.figure(F.transfer_heatmap(matrix.iloc[:4, :5], title="t", metric="accuracy"), "narrow", "N.")
    assert "overflow" not in narrow and narrow.startswith("![N.](")


def test_ols_and_mixed_coefficients_are_plotted_on_one_scale_with_readable_labels(tmp_path, monkeypatch):
    """Both per SD of the feature: the mixed model's raw-unit estimates times the feature's SD in the
    rows the models use; OLS as fitted when it standardised, else scaled the same way."""
    from xltstats.report import figures as F

    fit = make_fit(tmp_path / "fit")
    plotted = {}
    original = F.coefficient_plot

    def spy(coefs, **kwargs):
        plotted[kwargs["title"]] = (coefs.copy(), kwargs)
        return original(coefs, **kwargs)

    monkeypatch.setattr(F, "coefficient_plot", spy)
    results = pd.read_csv(fit / "results.csv")
    mixed = pd.read_csv(fit / "tables" / "coef_mixed.csv").set_index("term")
    ols = pd.read_csv(fit / "tables" / "coef_ols.csv").set_index("term")
    for standardise in (True, False):
        _set_config(fit, ols={"standardise": standardise})
        report = FitReport(fit)
        report.coefficient_section("coef_ols", "OLS")
        text = report.coefficient_section("coef_mixed", "Mixed-model")
        metric = report.metric
        for title in ("OLS coefficients with 95% intervals", "Mixed-model coefficients with 95% intervals"):
            assert plotted[title][1]["xlabel"] == f"coefficient ({metric} points per SD of feature)"
        coefs, kwargs = plotted["Mixed-model coefficients with 95% intervals"]
        assert kwargs["group"] == "estimator" and set(coefs["estimator"]) == {"mixed", "OLS"}
        assert "Syntactic distance" in set(coefs["term"]) and "syntactic_distance" not in set(coefs["term"])
        used = results.dropna(subset=["score", "syntactic_distance", "genetic_distance", "lexical_overlap"])
        sd = used["syntactic_distance"].std(ddof=1)
        row = coefs[(coefs["estimator"] == "mixed") & (coefs["term"] == "Syntactic distance")].iloc[0]
        assert row["estimate"] == pytest.approx(mixed.loc["syntactic_distance", "estimate"] * sd, rel=1e-12)
        ols_row = coefs[(coefs["estimator"] == "OLS") & (coefs["term"] == "Syntactic distance")].iloc[0]
        expected = ols.loc["syntactic_distance", "estimate"] * (1.0 if standardise else sd)
        assert ols_row["estimate"] == pytest.approx(expected, rel=1e-12)
        assert "beside the OLS estimates" in text and "per standard deviation of the feature" in text


def test_variance_components_are_drawn_with_their_intervals():
    from xltstats.report import figures as F

    data = pd.DataFrame({"component": ["source", "target", "Residual"], "variance": [16.0, 91.0, 34.0],
                         "lower": [11.0, 62.0, 32.0], "upper": [24.0, 122.0, 36.0]})
    fig = F.bar_plot(data, x="variance", y="component", title="v", xlabel="x", ylabel="y", low="lower",
                     high="upper")
    segments = [c for c in fig.axes[0].collections if c.__class__.__name__ == "LineCollection"]
    assert segments, "no error bars drawn"
    spans = sorted(tuple(np.round(sorted(seg[:, 0]), 6)) for seg in segments[0].get_segments())
    assert spans == [(11.0, 24.0), (32.0, 36.0), (62.0, 122.0)]


# ---------------------------------------------------------------------------------------------
# Every registry dataset


def _registry_datasets() -> list[str]:
    from xltstats.datasets import list_datasets

    return list_datasets()


def _mirror() -> str:
    mirror = os.environ.get("XLTSTATS_MIRROR")
    if not mirror:
        pytest.skip("XLTSTATS_MIRROR is not set (needs the shared published-data mirror)")
    return str(Path(mirror) if Path(mirror).is_absolute() else REPO / mirror)


@pytest.mark.parametrize("name", _registry_datasets())
def test_data_sections_render_for_each_registry_dataset(name, tmp_path):
    """Fast version of the slow test below: the data sections on a slice of each real dataset
    (two task/model combinations, the eight most frequent sources and targets)."""
    import json

    from xltstats.datasets import dataset_info, load_dataset
    from xltstats.languages import language_name
    from xltstats.results import write_results

    data = load_dataset(name, mirror=_mirror())
    combos = sorted(data.groupby(["task", "model"]).groups)[:2]
    data = data[data.set_index(["task", "model"]).index.isin(combos)]
    single = data[data["source"] != "mul"]
    sources = single["source"].value_counts().sort_index(kind="stable").nlargest(8).index
    targets = single["target"].value_counts().sort_index(kind="stable").nlargest(8).index
    keep = (data["source"].isin(sources) | data["source"].eq("mul")) & data["target"].isin(targets)
    sliced = data[keep].reset_index(drop=True)
    fit = tmp_path / "fit"
    fit.mkdir()
    write_results(sliced, fit / "results.csv")
    info = dataset_info(name)
    (fit / "manifest.json").write_text(json.dumps({"argv": ["xltstats.fit", "--data", name],
                                                   "config": {"data": name},
                                                   "dataset": {"name": name, **info}}))
    report = FitReport(fit)
    text = "\n".join([report.overview(), report.data_summary(), report.transfer_heatmaps(), report.methods()])
    assert "Not available" not in text and "could not be produced" not in text, text[:2000]
    assert f"Dataset: **{name}**" in text
    for code in sorted(set(sliced["target"]))[:3]:
        assert f"{language_name(code)} ({code})" in text
    figures = {p.stem for p in (fit / "figures").glob("heatmap_*.png")}
    scores = {f for f in figures if not f.endswith(("_residuals", "_multisource"))}
    assert len(scores) == sliced[sliced["source"] != "mul"].groupby(["task", "model"]).ngroups >= 1
    # a residual view beside each score heatmap of 3 x 3 pairs or more; multi-source runs get theirs
    assert {f + "_residuals" for f in scores} >= figures - scores - {f for f in figures if f.endswith("_multisource")}
    multi = sliced[sliced["source"] == "mul"]
    if "source_languages" in multi.columns and len(multi):
        assert len([f for f in figures if f.endswith("_multisource")]) == multi.groupby(["task", "model"]).ngroups
    assert "```bibtex" in text


@pytest.mark.slow
@pytest.mark.parametrize("name", _registry_datasets())
def test_full_report_renders_for_each_registry_dataset_within_60_s(name, tmp_path):
    """`python -m xltstats.fit --data NAME` (with its report), then the report alone timed."""
    import time

    mirror = _mirror()
    out = tmp_path / "fit"
    fit = subprocess.run([sys.executable, "-m", "xltstats.fit", "--data", name, "--mirror", mirror,
                          "--out", str(out), "--no-report", "--quiet"], capture_output=True, text=True)
    assert fit.returncode == 0, fit.stderr[-3000:]
    started = time.perf_counter()
    html_path = render_report(out, engine="python")
    seconds = time.perf_counter() - started
    assert seconds < 60, f"{name}: the report took {seconds:.1f} s"
    html = html_path.read_text(encoding="utf-8")
    for section in SECTIONS:
        assert f'id="{section}"' in html, section
    assert "could not be produced" not in html
    assert not re.search(r'<(?:script|link|img)\b[^>]*\b(?:src|href)="(https?:)?//', html)
    images = re.findall(r'<img [^>]*src="data:image/png;base64,', html)
    figures = sorted((out / "figures").glob("*.png"))
    assert len(images) == len(figures) >= 6
    assert not any((out / "figures").glob("*.svg"))  # SVG is opt-in
    for csv in (out / "tables").glob("*.csv"):
        assert csv.with_suffix(".tex").is_file(), csv.name
    assert "**Validation.**" not in html  # Markdown was converted
    assert "Validation." in html and "Data citation." in html


def test_methods_name_the_grouping_factors_of_the_mixed_formula():
    from xltstats.report.sections import _mixed_model_text

    crossed = _mixed_model_text("score ~ x + (1 | source) + (1 | target)")
    assert "random intercepts for source and target" in crossed and "v_t" in crossed
    four = _mixed_model_text("score ~ x + (1 | source) + (1 | target) + (1 | task) + (1 | model)")
    assert "`source`, `target`, `task`, `model`" in four and "grouping factors" in four
    slopes = _mixed_model_text("score ~ x + (1 | source) + (x | target)")
    assert "`source`" in slopes and "`(x | target)`" in slopes


def test_few_shot_sections_explain_why_no_curve_was_fitted(tmp_path):
    fit = make_fit(tmp_path / "fit")
    (fit / "tables" / "fewshot_curves.csv").write_text("\n")
    pd.DataFrame({"task": ["pos", "pos"], "target": ["ara", "deu"], "n_sizes": [1, 1], "a": [np.nan, np.nan],
                  "b": [np.nan, np.nan], "status": ["too_few_sizes"] * 2}).to_csv(
        fit / "tables" / "fewshot_params.csv", index=False)
    demand = pd.read_csv(fit / "tables" / "data_demand.csv")
    demand["n_needed"] = np.nan
    demand.to_csv(fit / "tables" / "data_demand.csv", index=False)
    report = FitReport(fit)
    curves, needed = report.fewshot_curves(), report.data_demand()
    for text in (curves, needed):
        assert "Not available" in text and "2 curve(s) with status `too_few_sizes`" in text
        assert "single number of target-language examples" in text
    assert "cannot be read" not in curves


def test_multi_source_runs_are_summarised(tmp_path):
    fit = make_fit(tmp_path / "fit")
    results = pd.read_csv(fit / "results.csv")
    multi = results.head(3).copy()
    multi["source"] = "mul"
    multi["source_languages"] = ['{"deu": 10, "eng": 5}', '{"deu": 10, "eng": 5}', '{"eng": 1, "fin": 2, "fra": 3}']
    pd.concat([results, multi], ignore_index=True).to_csv(fit / "results.csv", index=False)
    text = FitReport(fit).data_summary()
    assert "**Multi-source runs:** 3 rows" in text
    assert "2 distinct mixtures of 2–3 languages drawn from 4" in text and "(fra)" in text


def test_few_shot_panels_each_keep_their_own_curves_and_metric(tmp_path, monkeypatch):
    from xltstats.report import figures as F

    fit = make_fit(tmp_path / "fit")
    seen = {}
    original = F.fewshot_plot

    def spy(curves, points, **kwargs):
        seen["curves"], seen["panel_metrics"] = curves, kwargs.get("panel_metrics")
        return original(curves, points, **kwargs)

    monkeypatch.setattr(F, "fewshot_plot", spy)
    text = FitReport(fit).fewshot_curves(max_lines=2)
    curves = seen["curves"]
    per_panel = curves.groupby("panel")["hue"].nunique()
    assert len(per_panel) > 1 and (per_panel <= 2).all()
    table = pd.read_csv(fit / "tables" / "fewshot_curves.csv")
    hue_columns = [c for c in ("source", "target") if c in table.columns]
    n_curves = len(table.drop_duplicates([c for c in ("task", "model", *hue_columns) if c in table.columns]))
    assert f"{n_curves - 2 * len(per_panel)} more are in" in text
    results = pd.read_csv(fit / "results.csv")
    assert set(seen["panel_metrics"].values()) <= set(results["metric"])


def test_heatmaps_keep_every_target_when_budgets_differ_between_targets(tmp_path, monkeypatch):
    """langrank-mt: n_target_examples is each target's data size, never zero; no target may vanish."""
    from xltstats.report import figures as F

    fit = make_fit(tmp_path / "fit")
    results = pd.read_csv(fit / "results.csv")
    sizes = {t: 100 * (i + 1) for i, t in enumerate(sorted(results["target"].unique()))}
    results = results[results["n_target_examples"] == 0].copy()
    results["n_target_examples"] = results["target"].map(sizes)
    results.to_csv(fit / "results.csv", index=False)
    matrices = []
    original = F.transfer_heatmap
    monkeypatch.setattr(F, "transfer_heatmap", lambda matrix, **kw: (matrices.append(matrix), original(matrix, **kw))[1])
    FitReport(fit).transfer_heatmaps()
    assert matrices and all(m.shape[1] == len(sizes) for m in matrices)


def test_pooled_few_shot_curves_are_plotted_per_task_with_their_table(tmp_path):
    fit = make_fit(tmp_path / "fit")
    report = FitReport(fit)
    assert report.fewshot_pooled() == ""  # a fit without pooled tables: nothing to add
    rows = []
    for task in ["ner", "pos"]:
        for target in ["(population)", "fin"]:
            for n in [0, 10, 100]:
                fit_value = 50 + 2 * np.log1p(n) + (task == "pos") + (target == "fin")
                rows.append({"model": "xlmr", "task": task, "target": target, "n": n, "fit": fit_value, "se": 1.0,
                             "lower": fit_value - 2, "upper": fit_value + 2})
    pd.DataFrame(rows).to_csv(fit / "tables" / "fewshot_pooled_curves.csv", index=False)
    pd.DataFrame({"model": ["xlmr", "xlmr"], "task": ["ner", "pos"], "n_groups": [7, 7], "a": [50.0, 51.0],
                  "b": [2.0, 2.0], "b_low": [1.0, 1.0], "b_high": [3.0, 3.0], "engine": ["x", "x"],
                  "n_for_0.9": [12.5, 3.0], "status": ["ok", "ok"]}).to_csv(
        fit / "tables" / "fewshot_pooled.csv", index=False)
    text = report.fewshot_pooled()
    assert "fewshot_pooled_curves.png" in text and (fit / "figures" / "fewshot_pooled_curves.png").is_file()
    assert "| n_for_0.9" in text and "engine" not in text.split("\n\n")[1]
    assert "Engine" in (fit / "tables" / "report_fewshot_pooled.tex").read_text(encoding="utf-8")


def test_mixed_model_group_comparison_is_shown(tmp_path):
    fit = make_fit(tmp_path / "fit")
    pd.DataFrame({"group": ["syntax"], "features": ["syntactic_distance"], "n_dropped": [1],
                  "formula_reduced": ["score ~ x + (1 | source)"], "chisq": [12.5], "df": [1], "p_value": [0.0004],
                  "aic_change": [10.5], "r2_marginal_drop": [0.02], "significant": [True], "status": ["ok"]}).to_csv(
        fit / "tables" / "group_comparison_mixed.csv", index=False)
    text = FitReport(fit).group_comparison()
    assert "likelihood-ratio test" in text and "| syntax" in text and "12.5" in text
    assert "formula_reduced" not in text
    assert "Formula reduced" in (fit / "tables" / "report_group_comparison_mixed.tex").read_text(encoding="utf-8")


def test_an_empty_table_does_not_hide_the_rest_of_the_appendix(tmp_path):
    fit = make_fit(tmp_path / "fit")
    (fit / "tables" / "aaa_empty.csv").write_text("\n")
    pd.DataFrame({"x": [1, 2]}).to_csv(fit / "tables" / "zzz_extra.csv", index=False)
    text = FitReport(fit).other_tables()
    assert "**`tables/aaa_empty.csv`** is empty." in text and "**`tables/zzz_extra.csv`**" in text


def _add_notes(fit: Path, *notes: str) -> None:
    import json

    manifest = json.loads((fit / "manifest.json").read_text())
    manifest["notes"] = list(manifest.get("notes") or []) + list(notes)
    (fit / "manifest.json").write_text(json.dumps(manifest))


def test_collinearity_is_flagged_in_the_overview_and_beside_the_vif_table(tmp_path):
    from test_models_collinearity import simulated

    from xltstats.models.collinearity import collinearity_notes, collinearity_table

    fit = make_fit(tmp_path / "fit")
    frame = simulated()
    table = collinearity_table(frame, ["a", "b", "d"])
    table.to_csv(fit / "tables" / "vif.csv", index=False)
    [note] = collinearity_notes(table, frame, ["a", "b", "d"])
    _add_notes(fit, note, "the models use 300 of 400 rows (75.0%); the other 100 (25.0%) were left out")
    report = FitReport(fit)
    overview = report.overview()
    assert "The models use 300 of 400 rows (75.0%)" in overview
    assert "**Read with care.** Collinear features (VIF \\> 10)" in overview
    groups = report.group_comparison()
    assert "**Collinearity.** Collinear features" in groups and "leave " in groups
    assert "VIF above 10 is flagged `collinear`" in groups
    clean = FitReport(make_fit(tmp_path / "clean"))
    assert "Read with care" not in clean.overview() and "**Collinearity.**" not in clean.group_comparison()


def test_a_model_that_fails_cross_validation_is_marked_in_the_report(tmp_path):
    from test_pipeline_design import cv_metrics

    from xltstats.pipeline.run import mark_failed_cv

    fit = make_fit(tmp_path / "fit")
    table, notes = mark_failed_cv(cv_metrics().assign(n=100, n_predicted=100, mae=0.2, coverage=0.9))
    for path in (fit / "cv.csv", fit / "tables" / "cv.csv"):
        table.to_csv(path, index=False)
    _add_notes(fit, *notes)
    report = FitReport(fit)
    assert "**Read with care.** Cross-validation failed\\: ols under leave-one-target-out" in report.overview()
    cv = report.cross_validation()
    assert cv.count("**Failed cross-validation.**") == 2  # ols under two schemes
    assert "A model **fails** a scheme" in cv and "FAILED" in cv
    row = next(line for line in cv.splitlines() if line.startswith("| leave-one-target-out") and "| ols" in line)
    assert "FAILED" in row and "held-out R² -103 \\< 0" in row
    recommendations = report.recommendations()
    assert "`ols` failed leave-one-target-out cross-validation" in recommendations


def test_mixed_table_shows_satterthwaite_df_and_p_values(tmp_path):
    fit = make_fit(tmp_path / "fit")
    path = fit / "tables" / "coef_mixed.csv"
    table = pd.read_csv(path)
    fixed = table["effect"] == "fixed"
    table.insert(table.columns.get_loc("statistic") + 1, "df", np.where(fixed, 6.5, np.nan))
    table.insert(table.columns.get_loc("df") + 1, "p_value", np.where(fixed, 0.0004, np.nan))
    table.to_csv(path, index=False)
    text = FitReport(fit).coefficient_section("coef_mixed", "Mixed-model")
    assert "Satterthwaite's degrees of freedom" in text
    header = next(line for line in text.splitlines() if line.startswith("| term"))
    assert "| df " in header and "| p_value " in header
    import json

    # a fit with mixed.ddf: kenward-roger says so in the caption
    manifest = json.loads((fit / "manifest.json").read_text())
    manifest.setdefault("config", {}).setdefault("mixed", {})["ddf"] = "kenward-roger"
    (fit / "manifest.json").write_text(json.dumps(manifest))
    text = FitReport(fit).coefficient_section("coef_mixed", "Mixed-model")
    assert "Kenward-Roger degrees of freedom" in text and "Satterthwaite" not in text


def test_p_values_and_latex_tables_are_ready_for_a_paper():
    from xltstats.report.labels import format_p, readable
    from xltstats.report.sections import format_frame, latex_table

    assert [format_p(p) for p in (1e-12, 0.00099, 0.001, 0.012345, 0.5, 1.0, float("nan"))] == [
        "< 0.001", "< 0.001", "0.001", "0.0123", "0.5", "1", "–"]
    assert readable("syntactic_distance") == "Syntactic distance" and readable("ldnd").startswith("LDND")
    assert readable("Intercept") == "Intercept" and readable("std_error") == "SE"
    frame = pd.DataFrame({"term": ["Intercept", "char_ngram_similarity"], "estimate": [0.123456, -2.5],
                          "p_value": [2e-9, 0.04321], "df": [7.36421, 194.0], "n": [12.0, 30.0]})
    assert format_frame(frame)["p_value"].tolist() == ["< 0.001", "0.0432"]
    tex = latex_table(frame, caption="Coefficients (`tables/coef_ols.csv`), R² and 95% CI.", label="tab:coef")
    assert "\\begin{tabular}{lrrrr}" in tex
    assert "Term & Estimate & p & df & n \\\\" in tex
    assert "Character n-gram similarity & -2.5 & 0.0432 & 194 & 30 \\\\" in tex
    assert "Intercept & 0.1235 & $<$ 0.001 & 7.364 & 12 \\\\" in tex
    assert "\\caption{Coefficients (\\texttt{tables/coef\\_ols.csv}), $R^2$ and 95\\% CI.}" in tex
    assert "\\label{tab:coef}" in tex and "_" not in tex.replace("\\_", "")


def test_pair_residuals_remove_source_and_target_effects():
    from xltstats.report.figures import pair_residuals

    rng = np.random.default_rng(3)
    rows, cols = rng.normal(size=6), rng.normal(size=5)
    additive = pd.DataFrame(10 + rows[:, None] + cols[None, :], index=list("abcdef"), columns=list("vwxyz"))
    additive.iloc[1, 2] = np.nan  # a missing pair stays missing and does not bias the fit
    residual = pair_residuals(additive)
    assert np.isnan(residual.iloc[1, 2])
    np.testing.assert_allclose(residual.to_numpy()[np.isfinite(residual.to_numpy())], 0.0, atol=1e-8)
    bumped = additive.fillna(10 + rows[1] + cols[2])
    bumped.iloc[3, 4] += 5.0  # one pair transfers better than its source and target predict
    residual = pair_residuals(bumped)
    assert residual.stack().idxmax() == ("d", "z")
    # least squares on a full table: residuals = x - row mean - column mean + grand mean
    x = bumped.to_numpy()
    expected = x - x.mean(axis=1, keepdims=True) - x.mean(axis=0, keepdims=True) + x.mean()
    np.testing.assert_allclose(residual.to_numpy(), expected, atol=1e-8)


def test_heatmaps_by_family_with_one_visible_colour_scale_residuals_and_multi_source(tmp_path, monkeypatch):
    from xltstats.report import figures as F

    fit = make_fit(tmp_path / "fit")
    results = pd.read_csv(fit / "results.csv")
    multi = results[results["source"] == "deu"].copy()
    multi["source"] = "mul"
    multi["source_languages"] = '{"deu": 10, "eng": 5}'
    pd.concat([results, multi], ignore_index=True).to_csv(fit / "results.csv", index=False)
    drawn = []
    original = F.transfer_heatmap
    monkeypatch.setattr(F, "transfer_heatmap",
                        lambda matrix, **kw: (drawn.append((matrix, kw)), original(matrix, **kw))[1])
    text = FitReport(fit).transfer_heatmaps()
    scores = [(m, kw) for m, kw in drawn if "mean score" in kw["title"]]
    residuals = [(m, kw) for m, kw in drawn if "residuals" in kw["title"]]
    multis = [(m, kw) for m, kw in drawn if "multi-source" in kw["title"]]
    assert len(scores) == len(residuals) == len(multis) == 4
    for matrix, kw in drawn:  # labelled by name, grouped by family, by name within a family
        for labels, families in ((matrix.columns, kw["col_groups"]), (matrix.index, kw["row_groups"])):
            keys = [((1, "") if f == "unknown family" else (0, f.casefold()), n.casefold())
                    for n, f in zip(labels, families)]
            assert keys == sorted(keys) and len(families) == len(labels)
        assert "German" in matrix.index
    # one colour scale for every score heatmap (and the multi-source ones), one symmetric for residuals
    # per metric (a scale across accuracy and F1 would mean nothing)
    for metric in {kw["metric"] for _, kw in drawn}:
        same = [(m, kw) for m, kw in scores + multis if kw["metric"] == metric]
        every = pd.concat([m.stack() for m, _ in same])
        assert {(kw["vmin"], kw["vmax"]) for _, kw in same} == {(every.min(), every.max())}
        limits = {(kw["vmin"], kw["vmax"]) for _, kw in residuals if kw["metric"] == metric}
        assert len(limits) == 1 and next(iter(limits))[0] == -next(iter(limits))[1]
    assert "one colour scale for all" in text and "languages grouped by family" in text
    assert multis[0][0].loc["English"].notna().any()  # eng is in the mixture, never a single source here
    fig = original(scores[0][0], **scores[0][1])
    fig.canvas.draw()
    cells = fig.axes[0]
    from matplotlib.axes._secondary_axes import SecondaryAxis

    [colorbar] = [a for a in cells.child_axes if not isinstance(a, SecondaryAxis)]  # not the family names
    bar, box = colorbar.get_window_extent(), cells.get_window_extent()
    # above the cells from their left edge (in view in a scrolled figure), not off to the right
    assert bar.y0 > box.y1 and abs(bar.x0 - box.x0) < 1 and bar.width <= box.width + 1


def test_figures_and_tables_are_numbered_and_cross_referenced():
    from xltstats.report.render import number_crossrefs

    markdown = ("See @fig-a, @tbl-x and @fig-gone; not \\@fig-a.\n\n![A [b] caption](a.png){#fig-a}\n\n"
                "::: {#tbl-x}\n| a |\n|---|\n| 1 |\n\n: The table\n:::\n\n"
                "::: {.figure-scroll}\n![Wide](b.png){#fig-b width=\"2000\"}\n:::\n")
    out = number_crossrefs(markdown)
    assert out.startswith("See [Figure 1](#fig-a), [Table 1](#tbl-x) and ?\\@fig-gone; not \\@fig-a.")
    assert "![Figure 1: A [b] caption](a.png){#fig-a}" in out
    assert ": Table 1: The table\n:::" in out and "![Figure 2: Wide](b.png){#fig-b width=\"2000\"}" in out


def test_the_rendered_report_numbers_its_figures_and_tables(rendered):
    _fit, html = rendered
    text = html.read_text(encoding="utf-8")
    # each caption stands in the figure's alt text and its caption: the numbers in order of first sight
    figures = list(dict.fromkeys(int(n) for n in re.findall(r"Figure (\d+): ", text)))
    tables = list(dict.fromkeys(int(n) for n in re.findall(r"Table (\d+): ", text)))
    assert figures == list(range(1, len(FIGURES) + 1))
    assert len(tables) > 10 and tables == list(range(1, len(tables) + 1))
    assert 'id="tbl-report-cv"' in text and 'id="fig-cv-error"' in text
    assert "?@" not in text.replace("?\\@", "")  # every reference the report makes is resolved


def test_heatmap_languages_are_ordered_by_family_then_name_unknown_last():
    from matplotlib.axes._secondary_axes import SecondaryAxis

    from xltstats.report import figures as F
    from xltstats.report.sections.data import DataSections

    # URIEL: deu/eng Indo-European, jpn Japonic, fin/hun Uralic; eus (an isolate) has no URIEL
    # family and hyw is not in URIEL: both go last, under "unknown family", never guessed
    codes = ["hun", "eus", "jpn", "deu", "hyw", "fin", "eng"]
    matrix = pd.DataFrame(np.arange(49.0).reshape(7, 7), index=codes, columns=codes[::-1])
    ordered, row_families, col_families = DataSections._by_family(matrix)
    expected = ["English", "German", "Japanese", "Finnish", "Hungarian", "Basque", "Western Armenian"]
    families = ["Indo-European"] * 2 + ["Japonic"] + ["Uralic"] * 2 + ["unknown family"] * 2
    assert list(ordered.index) == list(ordered.columns) == expected
    assert row_families == col_families == families
    assert ordered.loc["Basque", "Japanese"] == matrix.loc["eus", "jpn"]  # cells move with their labels
    fig = F.transfer_heatmap(ordered, title="t", metric="accuracy", row_groups=row_families,
                             col_groups=col_families)
    ax = fig.axes[0]
    # a separator between each two families, on both axes (4 families: 3 lines each way)
    assert sorted(line.get_xdata()[0] for line in ax.lines if line.get_xdata()[0] == line.get_xdata()[1]) == [
        1.5, 2.5, 4.5]
    assert sorted(line.get_ydata()[0] for line in ax.lines if line.get_ydata()[0] == line.get_ydata()[1]) == [
        1.5, 2.5, 4.5]
    named = [a for a in ax.child_axes if isinstance(a, SecondaryAxis)]
    fig.canvas.draw()
    names = {t.get_text() for a in named for t in [*a.get_xticklabels(), *a.get_yticklabels()]}
    assert {"Indo-European", "Japonic", "Uralic", "unknown family"} <= names
    assert {a.get_ylabel() for a in named} | {a.get_xlabel() for a in named} >= {"source language", "target language"}
