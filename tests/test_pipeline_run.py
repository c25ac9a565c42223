"""The pipeline as a library: run_fit in memory equals the CLI's folder; FitFolder reads what it wrote."""
from __future__ import annotations

import os

import pandas as pd
import pytest

from xltstats.errors import ConfigError

pytestmark = pytest.mark.skipif(not os.environ.get("XLTSTATS_MIRROR"), reason="XLTSTATS_MIRROR is not set")


def tiny(tmp_path):
    from test_reproduce import TINY_CONFIG, tiny_results

    data = tiny_results(tmp_path / "tiny.csv")
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_CONFIG, encoding="utf-8")
    return data, config


def test_the_same_fit_in_memory_and_through_the_cli_gives_equal_tables(tmp_path, monkeypatch, capsys):
    from xltstats import read_results
    from xltstats.fit import main
    from xltstats.models.tables import table_to_csv
    from xltstats.pipeline import FitFolder, load_config, run_fit

    data, config = tiny(tmp_path)
    monkeypatch.chdir(tmp_path)
    fit = run_fit(load_config(config), data=read_results(data))  # nothing written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.csv", "tiny.yaml"]
    capsys.readouterr()
    assert main(["--data", "tiny.csv", "--config", "tiny.yaml", "--out", "cli"]) == 0
    # the fit ends with the rows its models use (and the notes), then the folder it wrote
    printed = capsys.readouterr().err.splitlines()
    assert printed[-1] == "xltstats.fit: wrote cli/"
    closing = printed[-1 - len(fit.closing_lines()):-1]
    assert closing == [f"xltstats.fit: {line}" for line in fit.closing_lines()]
    assert closing[0] == f"xltstats.fit: the models use all {len(fit.design.complete)} rows"
    folder = FitFolder(tmp_path / "cli")
    assert {"coef_ols", "coef_mixed", "variance_components", "cv"} <= set(fit.tables)
    for name, table in fit.tables.items():
        assert (folder.path / "tables" / f"{name}.csv").read_text(encoding="utf-8") == table_to_csv(table), name
    assert (folder.path / "predictions.csv").read_text(encoding="utf-8") == table_to_csv(fit.predictions)
    assert (folder.path / "features.csv").read_text(encoding="utf-8") == table_to_csv(fit.design.features)
    # what the folder says about itself
    assert folder.manifest["features_used"] == fit.used == ["syntactic_distance", "genetic_distance", "same_language"]
    assert folder.config == fit.config.replace(data="tiny.csv") and folder.manifest["formulas"]["mixed"] == fit.formula
    coef = folder.read_table("coef_ols")
    assert coef["term"].tolist() == fit.tables["coef_ols"]["term"].tolist()
    assert folder.read_table("ranking") is None  # ranking disabled: absent, not an error
    # predictions in memory equal predict on the saved model
    pairs = pd.DataFrame({"source": ["eng", "fin"], "target": ["deu", "eng"]})
    in_memory = fit.predict(pairs, model="mixed")
    from xltstats.models.persist import load_model

    saved = load_model(folder.path).prediction_interval(in_memory)
    pd.testing.assert_series_equal(in_memory["prediction"], saved["prediction"], rtol=1e-9, check_names=False)
    # auto: the estimator with the lowest cross-validated RMSE, as recorded in model.json
    best = fit.cv_table[fit.cv_table["estimator"].isin(["ols", "mixed", "gbt"])].sort_values("rmse").iloc[0]
    assert fit.predict(pairs)["model_used"].tolist() == [best["estimator"]] * 2


def test_a_formula_naming_a_missing_column_fails_before_any_fitting(tmp_path, monkeypatch):
    from xltstats import read_results
    from xltstats.pipeline import load_config, run_fit
    from xltstats.pipeline import run as run_module

    data, config = tiny(tmp_path)
    called = []
    monkeypatch.setattr(run_module, "_fit_ols", lambda fit: called.append("ols"))
    cfg = load_config(config).replace(mixed={"formula": "score ~ syntactic_distance + typo_distance + (1 | source)"})
    with pytest.raises(ConfigError, match="'mixed.formula'.*unknown column 'typo_distance'"):
        run_fit(cfg, data=read_results(data))
    assert called == []


def test_a_table_without_its_schema_columns_is_an_error_naming_the_file(tmp_path):
    from xltstats.errors import InputError
    from xltstats.pipeline import FitFolder

    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "coef_ols.csv").write_text("name,value_x\na,1\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"coef_ols.csv, column 'term': lacks column\(s\) term, estimate"):
        FitFolder(tmp_path).read_table("coef_ols")


def test_ranking_with_inner_cv_selection_writes_its_choices(tmp_path):
    from xltstats import read_results
    from xltstats.pipeline import FitFolder, load_config, run_fit

    data, config = tiny(tmp_path)
    cfg = load_config(config).replace(ranking={"enabled": True, "select": True, "max_folds": 3, "inner_folds": 2})
    fit = run_fit(cfg, data=read_results(data))
    methods = set(fit.tables["ranking_ndcg"]["method"])
    assert {"best", "lambdarank", "lambdarank_mixed", "ensemble", "mixed", "ols", "gbt"} <= methods
    selection = fit.tables["ranking_selection"]
    assert len(selection) == 3 and set(selection["chosen"]) <= methods
    FitFolder(tmp_path / "fit").write(fit)
    assert FitFolder(tmp_path / "fit").read_table("ranking_selection")["chosen"].tolist() == selection["chosen"].tolist()


def test_the_fit_runs_under_one_blas_thread_and_restores_the_setting(tmp_path, monkeypatch):
    """run_fit holds BLAS to one thread (its folds run in threads of their own) and gives the
    setting back afterwards, also when the fit fails."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from xltstats import read_results
    from xltstats.pipeline import load_config, run_fit
    from xltstats.pipeline import run as run_module

    def blas_threads():  # BLAS libraries loaded so far (a fit may load another one) -> threads
        return {i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}

    data, config = tiny(tmp_path)
    seen = []
    original = run_module._fit_ols
    monkeypatch.setattr(run_module, "_fit_ols", lambda fit: seen.append(blas_threads()) or original(fit))
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        run_fit(load_config(config), data=read_results(data))
        assert seen and set(seen[0].values()) == {1}
        assert {k: v for k, v in blas_threads().items() if k in before} == before and set(before.values()) == {2}

        def fail(fit):
            raise ConfigError("stop")

        monkeypatch.setattr(run_module, "_fit_ols", fail)
        with pytest.raises(ConfigError):
            run_fit(load_config(config), data=read_results(data))
        assert {k: v for k, v in blas_threads().items() if k in before} == before


def test_writing_the_report_names_the_final_folder_never_the_hidden_partial_one(tmp_path, capsys):
    from xltstats import read_results
    from xltstats.pipeline import FitFolder, load_config, run_fit

    data, config = tiny(tmp_path)
    fit = run_fit(load_config(config), data=read_results(data))
    capsys.readouterr()
    FitFolder(tmp_path / "fit").write(fit, report=True, quiet=False)
    printed = capsys.readouterr().err
    assert printed == f"wrote {tmp_path / 'fit' / 'report.html'}\n" and ".partial" not in printed
    assert (tmp_path / "fit" / "report.html").is_file()
