"""Custom metrics (issue 13, item 3): declared in the fit config with range, direction and label;
validation, ranking, clipping, the report and the planner follow them (xltstats.results.metrics)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from xltstats.errors import ConfigError, InputError
from xltstats.results.metrics import ScoreScale, declared_from_config, metric_options
from xltstats.models.ranking import rank_sources
from xltstats.models.simulate import CrossedSimulator
from xltstats.pipeline.config import FitConfig
from xltstats.results import validate_results

LANGS = ["eng", "deu", "fra", "spa", "rus", "fin", "tur", "hin", "jpn", "ara"]
GH = {"gh_distance": {"range": [0, None], "higher_is_better": False, "label": "Gromov-Hausdorff distance"}}
CONFIG = """features: []
covariates: [x1, x2]
groups: {}
compare: []
cv: {schemes: [leave-one-target-out, random], max_folds: 4, k: 3}
ranking: {max_folds: 4}
ols: {n_boot: 5}
"""
GH_YAML = 'metrics:\n  gh_distance: {range: [0, null], higher_is_better: false, label: "Gromov-Hausdorff distance"}\n'


def _accuracy_table(seed: int = 0) -> pd.DataFrame:
    """A crossed-model table near the top of a 0-100 scale (so that intervals pass 100)."""
    rng = np.random.default_rng(3)
    pairs = pd.DataFrame([(s, t) for s in LANGS for t in LANGS if s != t], columns=["source", "target"])
    pairs["x1"], pairs["x2"] = rng.normal(size=len(pairs)), rng.normal(size=len(pairs))
    sim = CrossedSimulator(pairs=pairs, coefficients={"x1": 4.0, "x2": -2.0}, intercept=88.0, sd_source=3.0,
                           sd_target=4.0, n_seeds=2)
    table = sim.draw(seed)
    return table.assign(model="m", task="t", n_source_examples=1000, n_target_examples=0)


def gh_table() -> pd.DataFrame:
    """A lower-is-better distance on [0, inf): (100 - accuracy) / 10, some of it exactly 0."""
    table = _accuracy_table()
    return table.assign(score=np.maximum(0.0, (100 - table["score"]) / 10), metric="gh_distance")


def _results(score, metric="gh_distance", n=3) -> pd.DataFrame:
    return pd.DataFrame({"model": "m", "task": "t", "source": LANGS[:n], "target": LANGS[1:n + 1], "score": score,
                         "metric": metric, "n_source_examples": 1, "n_target_examples": 0, "seed": 0})


# ---------------------------------------------------------------------- configuration

@pytest.mark.parametrize("entry, key, message", [
    ({"range": [1, 0], "higher_is_better": True}, "metrics.x.range", "must be ordered, low < high"),
    ({"range": [0, 0], "higher_is_better": True}, "metrics.x.range", "must be ordered"),
    ({"range": [0, "a"], "higher_is_better": True}, "metrics.x.range[1]", "must be a finite number or null"),
    ({"range": [float("inf"), None], "higher_is_better": True}, "metrics.x.range[0]", "finite number or null"),
    ({"range": [True, 1], "higher_is_better": True}, "metrics.x.range[0]", "finite number"),
    ({"range": 5, "higher_is_better": True}, "metrics.x.range", "must be a list [low, high]"),
    ({"range": [0, 1, 2], "higher_is_better": True}, "metrics.x.range", "must be a list [low, high]"),
    ({"higher_is_better": "no"}, "metrics.x.higher_is_better", "must be true or false"),
    ({"range": [0, 1]}, "metrics.x.higher_is_better", "must be given"),
    ({"higher_is_better": True, "label": ""}, "metrics.x.label", "non-empty string"),
    ({"higher_is_better": True, "colour": "red"}, "metrics.x", "unknown setting(s) 'colour'"),
    ({"higher_is_better": True, "override": True}, "metrics.x.override", "only for a built-in metric"),
    ([1, 2], "metrics.x", "must be a mapping of settings"),
])
def test_bad_metric_declarations_name_the_file_and_key(entry, key, message):
    with pytest.raises(ConfigError) as info:
        FitConfig.from_dict({"metrics": {"x": entry}}, source="my.yaml")
    assert str(info.value).startswith(f"my.yaml: '{key}'") and message in str(info.value)


def test_a_built_in_name_must_say_it_overrides():
    for name, alias in (("accuracy", ""), ("acc", "an alias of 'accuracy'"), ("BLEU", "")):
        with pytest.raises(ConfigError, match=rf"'metrics.{name}' is a built-in metric.*override: true") as info:
            FitConfig.from_dict({"metrics": {name: {"higher_is_better": True}}}, source="c.yaml")
        assert alias in str(info.value)
    config = FitConfig(metrics={"accuracy": {"range": [0, 1], "higher_is_better": True, "override": True}})
    assert config.metrics["accuracy"]["override"] is True
    with metric_options(declared_from_config(config.metrics)):  # the declaration's range only: no 0-100 scale
        with pytest.raises(InputError, match=r"outside the range \[0, 1\] declared for metric 'accuracy'"):
            validate_results(_results([0.5, 0.7, 55.0], metric="accuracy"))


def test_declarations_are_normalised_and_survive_the_round_trip():
    config = FitConfig.from_dict({"metrics": {"GH_Distance": {"range": [0, None], "higher_is_better": False}}})
    assert config.metrics == {"gh_distance": {"range": [0.0, None], "higher_is_better": False, "label": None,
                                              "override": False}}
    assert FitConfig.from_dict(config.to_dict()) == config
    assert "metrics" not in FitConfig().to_dict()  # unset by default: the saved configuration is unchanged
    with pytest.raises(ConfigError, match="declares 'gh' twice"):
        FitConfig(metrics={"gh": {"higher_is_better": True}, "GH": {"higher_is_better": True}})


@pytest.mark.parametrize("yaml_text, key", [
    ("metrics: {gh: {range: [5, 1], higher_is_better: false}}\n", "metrics.gh.range"),
    ("metrics: {gh: {range: [0, null]}}\n", "metrics.gh.higher_is_better"),
    ("metrics: {f1: {higher_is_better: true}}\n", "metrics.f1"),
    ("metrics: [gh]\n", "metrics"),
])
def test_bad_metrics_configs_exit_2_from_the_cli(tmp_path, capsys, yaml_text, key):
    from xltstats.fit import main

    gh_table().to_csv(tmp_path / "gh.csv", index=False)
    (tmp_path / "bad.yaml").write_text(CONFIG + yaml_text, encoding="utf-8")
    code = main(["--data", str(tmp_path / "gh.csv"), "--config", str(tmp_path / "bad.yaml"),
                 "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and f"bad.yaml: '{key}'" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------- validation and scales

def test_an_undeclared_metric_says_how_to_declare_one():
    with pytest.raises(InputError, match=r"unknown metric 'gh_distance'.*declare it in the fit config: metrics:"):
        validate_results(_results([0.1, 0.2, 0.3]))


def test_declared_metrics_are_checked_against_their_range_and_keep_one_scale():
    with metric_options(declared_from_config(GH)):
        table = validate_results(_results([0.5, 3.0, 250.0]))  # above 1 and above 100: no 0-1/0-100 question
        assert table.attrs["score_scales"] == {"gh_distance": "[0, inf]"}
        with pytest.raises(InputError, match=r"row 2, column 'score'.*-1 is outside the range \[0, inf\] declared "
                                             r"for metric 'gh_distance' in the fit config"):
            validate_results(_results([0.5, -1.0, 2.0]))
        # beside a built-in metric, whose scale is decided as before (and rescaled on its own)
        mixed = _results([0.5, 3.0, 12.0]).assign(metric=["gh_distance", "gh_distance", "accuracy"])
        assert validate_results(mixed).attrs["score_scales"] == {"gh_distance": "[0, inf]", "accuracy": "0-100"}
        rescaled = validate_results(mixed, rescale=True)
        assert rescaled["score"].tolist() == [0.5, 3.0, 0.12] and rescaled.attrs["rescaled"] == {"accuracy": 1}
    with pytest.raises(InputError, match="unknown metric"):  # outside the block: unknown again
        validate_results(_results([0.5, 3.0, 2.0]))


def test_score_scale_of_built_in_and_declared_metrics():
    assert ScoreScale.of(validate_results(_results([0.2, 0.5, 0.9], metric="f1"))).range_text() == "[0, 1]"
    percent = ScoreScale.of(validate_results(_results([20.0, 50.0, 90.0], metric="acc")))
    assert (percent.low, percent.high, percent.higher_is_better, percent.label) == (0.0, 100.0, True, "accuracy")
    bleu = ScoreScale.of(validate_results(_results([0.2, 0.5, 0.9], metric="bleu")))
    assert (bleu.low, bleu.high) == (0.0, 1.0)  # BLEU given on 0-1 (validation's rule: every score <= 1)
    declared = declared_from_config(GH)
    with metric_options(declared):
        gh = ScoreScale.of(validate_results(_results([0.2, 5.0, 9.0])))
    assert (gh.low, gh.high, gh.higher_is_better, gh.label) == (0.0, None, False, "Gromov-Hausdorff distance")
    with metric_options(declared):
        both = validate_results(_results([0.2, 5.0, 90.0]).assign(metric=["gh_distance"] * 2 + ["accuracy"]))
    with pytest.raises(ConfigError, match=r"pools metrics of opposite directions.*subset: \{metric: gh_distance\}"):
        ScoreScale.of(both, declared)


def test_clipping_counts_what_it_moves_and_keeps_missing_values():
    scale = ScoreScale(("accuracy",), 0.0, 100.0)
    frame = pd.DataFrame({"prediction": [50.0, 101.0, np.nan], "lower": [-3.0, 90.0, np.nan],
                          "upper": [120.0, 130.0, 99.0], "se": [200.0, 1.0, 1.0]})
    clipped, changed = scale.clip(frame, ("prediction", "lower", "upper"))
    assert changed == 4 and clipped["se"].tolist() == frame["se"].tolist()
    assert clipped["prediction"].tolist()[:2] == [50.0, 100.0] and np.isnan(clipped["prediction"].iat[2])
    assert clipped["lower"].tolist()[:2] == [0.0, 90.0] and clipped["upper"].tolist() == [100.0, 100.0, 99.0]
    assert ScoreScale(("m",), None, None).clip(frame, ["prediction"]) == (frame, 0)


# ---------------------------------------------------------------------- ranking direction

def _rank(table, higher_is_better):
    return rank_sources(table, features=["x1", "x2"], k=3, seed=0, mixed_formula="score ~ x1 + x2 + (1 | source)",
                        max_folds=4, higher_is_better=higher_is_better)


def test_lower_is_better_ranks_as_the_negated_score_declared_higher_is_better():
    table = gh_table()
    lower = _rank(table, higher_is_better=False)
    negated = _rank(table.assign(score=-table["score"]), higher_is_better=True)
    pd.testing.assert_frame_equal(lower.evaluation(), negated.evaluation())
    a, b = lower.table(), negated.table()
    ranks = [c for c in a.columns if c.endswith("_rank")]
    pd.testing.assert_frame_equal(a[["target", "source", "relevance", *ranks]], b[["target", "source", "relevance", *ranks]])
    np.testing.assert_array_equal(a["observed"], -b["observed"])  # shown in the metric's own units
    np.testing.assert_allclose(a["mixed_score"], -b["mixed_score"])
    # the best source is the lowest distance: relevance n for the minimum of each target
    for _, g in a.groupby("target"):
        assert g.loc[g["observed"].idxmin(), "relevance"] == len(g)
    assert (lower.per_query()["top1_regret"] >= 0).all()


def test_the_same_scores_ranked_in_the_other_direction_reverse_the_order():
    table = gh_table()
    lower, higher = _rank(table, higher_is_better=False).table(), _rank(table, higher_is_better=True).table()
    for method in ("ols", "mixed"):
        for target, g in lower.groupby("target"):
            h = higher[higher["target"] == target]
            down = g.sort_values(f"{method}_rank")["source"].tolist()
            up = h.sort_values(f"{method}_rank")["source"].tolist()
            assert down == up[::-1], (method, target)
    both = lower.merge(higher, on=["target", "source"], suffixes=("_lower", "_higher"))
    np.testing.assert_allclose(both["ols_score_lower"], both["ols_score_higher"])  # the same predicted distances
    np.testing.assert_array_equal(both["observed_lower"], both["observed_higher"])


# ---------------------------------------------------------------------- end to end through the CLI

@pytest.fixture(scope="module")
def gh_fit(tmp_path_factory):
    from xltstats.fit import main

    folder = tmp_path_factory.mktemp("gh")
    gh_table().to_csv(folder / "gh.csv", index=False)
    (folder / "gh.yaml").write_text(CONFIG + GH_YAML, encoding="utf-8")
    assert main(["--data", str(folder / "gh.csv"), "--config", str(folder / "gh.yaml"),
                 "--out", str(folder / "fit"), "--quiet"]) == 0
    return folder


def test_a_lower_is_better_metric_fits_end_to_end(gh_fit):
    fit = gh_fit / "fit"
    manifest = json.loads((fit / "manifest.json").read_text())
    assert manifest["score"] == {"metrics": ["gh_distance"], "low": 0.0, "high": None, "higher_is_better": False,
                                 "label": "Gromov-Hausdorff distance"}
    assert json.loads((fit / "model.json").read_text())["score"] == manifest["score"]
    predictions = pd.read_csv(fit / "predictions.csv")
    bounds = [c for c in predictions.columns if c.endswith(("_prediction", "_lower", "_upper"))]
    assert len(bounds) == 9 and (predictions[bounds].min() >= 0).all()
    assert (predictions[bounds] == 0).any().any()  # some were past 0: clipped, and the notes count them
    assert any(n.startswith("predictions.csv: predictions and interval bounds clipped to the range [0, inf] of "
                            "Gromov-Hausdorff distance") for n in manifest["notes"])
    assert any(n.startswith("cross-validation random: held-out predictions") for n in manifest["notes"])
    ranking = pd.read_csv(fit / "tables" / "ranking.csv")
    assert (ranking["mixed_score"] >= 0).all()
    for _, g in ranking.groupby("target"):  # the best source is the lowest distance
        assert g.loc[g["observed"].idxmin(), "relevance"] == len(g)
        assert g.loc[g["mixed_rank"].idxmin(), "mixed_score"] == g["mixed_score"].min()
    report = (fit / "report.html").read_text(encoding="utf-8")
    assert "Transfer scores (Gromov-Hausdorff distance)" in report
    assert "lower Gromov-Hausdorff distance is better, so the colours are reversed" in report
    assert "Lower Gromov-Hausdorff distance is better: the best source has the lowest score" in report
    assert "gh_distance points per SD" not in report


def test_cv_intervals_of_the_fit_never_leave_the_range():
    from xltstats.models.validation import CLIPPED_COLUMNS
    from xltstats.pipeline import run_fit

    config = FitConfig.from_dict({"features": [], "covariates": ["x1", "x2"], "groups": {}, "compare": [],
                                  "cv": {"schemes": ["random"], "k": 3, "select": True}, "ranking": {"enabled": False},
                                  "report": False, "ols": {"n_boot": 5}, "metrics": GH})
    fit = run_fit(config, data=gh_table())
    predictions = fit.cv["random"].predictions
    columns = [c for c in CLIPPED_COLUMNS if c in predictions.columns]
    assert {"conformal_lower", "chosen"} <= set(columns) | set(predictions["estimator"])
    assert (predictions[columns].min() >= 0).all() and fit.cv["random"].clipped > 0
    new = pd.DataFrame({"source": ["eng", "fin"], "target": ["deu", "eng"], "x1": [6.0, 0.0], "x2": [-6.0, 0.0],
                        "model": "m", "task": "t"})
    for model in ("mixed", "ols", "gbt"):
        predicted = fit.predict(new, model=model)
        assert (predicted[["prediction", "lower", "upper"]].min() >= 0).all()
    assert fit.predict(new, model="ols")["prediction"].iat[0] == 0.0  # far past 0 on the linear scale


def test_predict_cli_clips_and_says_so(gh_fit, tmp_path, capsys):
    from xltstats.predict import main

    pd.DataFrame({"source": ["eng", "fin"], "target": ["deu", "eng"], "x1": [6.0, 0.0], "x2": [-6.0, 0.0],
                  "model": "m", "task": "t"}).to_csv(tmp_path / "pairs.csv", index=False)
    assert main(["--fit", str(gh_fit / "fit"), "--pairs", str(tmp_path / "pairs.csv"), "--out",
                 str(tmp_path / "p.csv"), "--model", "ols"]) == 0
    out = pd.read_csv(tmp_path / "p.csv")
    assert (out[["prediction", "lower", "upper"]].min() >= 0).all() and out["prediction"].iat[0] == 0
    assert "clipped to the range [0, inf] of Gromov-Hausdorff distance" in capsys.readouterr().err


def test_a_hand_edited_score_range_in_model_json_is_an_error_naming_the_key(gh_fit, tmp_path):
    from xltstats.models.nested import SavedModels

    document = json.loads((gh_fit / "fit" / "model.json").read_text())
    for bad, message in (({"low": 5, "high": 1}, "must be below"), ({"low": "0"}, "'low' must be a finite number"),
                         ({"higher_is_better": "yes"}, "'higher_is_better' must be true or false"), ([0, 1], "expected")):
        path = tmp_path / "model.json"
        path.write_text(json.dumps({**document, "score": bad}))
        with pytest.raises(InputError, match=f"key 'score': .*{message}"):
            SavedModels.load(path)


def test_heatmap_colours_follow_the_direction_and_the_axis_carries_the_label():
    from xltstats.report import figures as F

    matrix = pd.DataFrame([[0.1, 2.0], [1.5, 0.3]], index=["eng", "deu"], columns=["fra", "spa"])
    for residual, cmap in ((False, "viridis"), (True, "vlag")):
        for higher in (True, False):
            fig = F.transfer_heatmap(matrix, title="t", metric="Gromov-Hausdorff distance", residual=residual,
                                     higher_is_better=higher)
            image = fig.axes[0].images[0]
            assert image.cmap.name == cmap + ("" if higher else "_r")
            bars = [child for ax in fig.axes for child in ax.child_axes]  # the colour bar above the cells
            labels = " ".join(ax.get_xlabel() + ax.get_ylabel() for ax in [*fig.axes, *bars])
            assert "(Gromov-Hausdorff distance" in labels and ("lower is better)" in labels) is not higher


# ---------------------------------------------------------------------- the planner

class _Toy:
    """Predicted score of a target: 10 minus 2 sqrt(thousands of examples of its own language) minus 0.5
    per thousand English ones (a distance: lower is better)."""

    higher_is_better = False
    interval = "toy"

    def predict(self, targets, configurations):
        return np.array([[10.0 - 2 * np.sqrt(conf.get(t, 0.0) / 1000) - 5e-4 * conf.get("eng", 0.0) for t in targets]
                         for conf in configurations])

    def gain(self, targets, configuration, base, alpha=0.05):
        diff = float(np.mean(self.predict(targets, [configuration]) - self.predict(targets, [base])))
        return {"gain": diff, "lower": diff, "upper": diff, "interval": self.interval}


def test_the_planner_minimises_a_lower_is_better_score():
    from xltstats.models.planner import plan_annotation

    plan = plan_annotation(_Toy(), ["deu", "fra"], ["deu", "fra", "eng"], budget=1000, step=500)
    assert plan.allocation == {"deu": 500.0, "fra": 500.0, "eng": 0.0}  # own-language data lowers it most
    assert plan.gain < 0 and plan.objective < plan.base_objective
    assert "lower is better: the plan minimises" in plan.summary()
    higher = _Toy()
    higher.higher_is_better = True  # the same scores read as higher-is-better: spend nothing
    assert plan_annotation(higher, ["deu", "fra"], ["deu", "fra", "eng"], budget=1000, step=500).allocation == \
        {"deu": 0.0, "fra": 0.0, "eng": 0.0}


# ---------------------------------------------------------------------- mixed.scale: logit

def _logit_config(**extra) -> FitConfig:
    return FitConfig.from_dict({"features": [], "covariates": ["x1", "x2"], "groups": {"x": ["x1", "x2"]},
                                "compare": [], "cv": {"schemes": ["random"], "k": 3}, "ranking": {"max_folds": 3},
                                "report": False, "ols": {"n_boot": 5}, "mixed": {"scale": "logit"}, **extra})


def test_logit_scale_mixed_model_through_the_fit(tmp_path):
    from xltstats.models.bounded import LogitMixedResults, fit_logit_mixed
    from xltstats.models.nested import SavedModels
    from xltstats.pipeline import FitFolder, run_fit

    data = _accuracy_table().assign(metric="accuracy")
    data["score"] = data["score"].clip(0, 100)  # accuracy in percent, some exactly 100
    fit = run_fit(_logit_config(), data=data)
    assert isinstance(fit.mixed, LogitMixedResults) and (fit.mixed.scale.low, fit.mixed.scale.high) == (0.0, 100.0)
    assert any(n.startswith("mixed model on the logit scale (mixed.scale: logit)") for n in fit.notes)
    # the tables are the logit-scale model's, as fitting it directly gives them
    direct = fit_logit_mixed(fit.formula, fit.design.complete, 0.0, 100.0)
    np.testing.assert_allclose(fit.tables["coef_mixed"]["estimate"], direct.inner.table()["estimate"], rtol=1e-6)
    assert "group_comparison_mixed" in fit.tables
    # model.json transforms back exactly as the in-memory model, and stays inside 0-100 without clipping
    FitFolder(tmp_path / "fit").write(fit)
    saved = SavedModels.load(tmp_path / "fit").predict(fit.design.complete, "mixed")
    own = fit.mixed.prediction_interval(fit.design.complete)
    np.testing.assert_allclose(saved[["prediction", "lower", "upper"]].to_numpy(),
                               own[["prediction", "lower", "upper"]].to_numpy(), rtol=1e-9)
    assert saved.attrs["clipped"] == 0 and own["upper"].max() <= 100 and own["lower"].min() >= 0
    assert ((own["upper"] - own["prediction"]) - (own["prediction"] - own["lower"])).abs().max() > 1  # asymmetric
    # the cross-validated mixed model is the logit one too: asymmetric held-out intervals
    cv = fit.cv["random"].predictions
    mixed = cv[cv["estimator"] == "mixed"]
    assert ((mixed["upper"] - mixed["prediction"]) - (mixed["prediction"] - mixed["lower"])).abs().max() > 1
    # the planner: predictions on the score scale; the gain is their difference, without a linear-contrast interval
    from xltstats.models.planner import LinearPredictor

    planner = LinearPredictor.from_fit(fit, "mixed")
    scores = planner.predict(["deu"], [{"eng": 1000}, {"fra": 1000}])
    gain = planner.gain(["deu"], {"eng": 1000}, {"fra": 1000})
    assert 0 <= scores.min() and scores.max() <= 100
    assert gain["gain"] == pytest.approx(scores[0, 0] - scores[1, 0]) and np.isnan(gain["lower"])
    assert "logit scale" in gain["note"]


def test_logit_scale_needs_a_finite_range(tmp_path, capsys):
    from xltstats.fit import main

    gh_table().to_csv(tmp_path / "gh.csv", index=False)
    (tmp_path / "c.yaml").write_text(CONFIG + GH_YAML + "mixed: {scale: logit}\n", encoding="utf-8")
    code = main(["--data", str(tmp_path / "gh.csv"), "--config", str(tmp_path / "c.yaml"),
                 "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "'mixed.scale' is logit, which needs a metric with a finite range on both sides" in err
    assert "[0, inf]" in err and not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match="'mixed.scale' must be one of gaussian, logit"):
        FitConfig.from_dict({"mixed": {"scale": "probit"}})
