"""Annotation planner: the search equals brute force on toy problems, the gain's interval against
statsmodels' contrast and the pooled few-shot curves, and the CLI's errors."""
from __future__ import annotations

import itertools
import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from xltstats.errors import InputError
from xltstats.models.planner import FewShotPredictor, LinearPredictor, plan_annotation

TARGETS = ["fin", "tur", "swa"]
CANDIDATES = ["eng", "fin", "tur", "hin"]


class ConcaveToy:
    """score_t = c_t + sum_l w[t, l] log(1 + n_l / 100): a sum of concave functions of each count."""

    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        self.w = {(t, c): float(rng.uniform(0, 3)) for t in TARGETS for c in CANDIDATES}
        self.c = {t: float(rng.uniform(40, 60)) for t in TARGETS}

    def score(self, target, conf):
        return self.c[target] + sum(self.w[target, lang] * math.log1p(n / 100) for lang, n in conf.items()
                                    if (target, lang) in self.w)

    def predict(self, targets, configurations):
        return np.array([[self.score(t, conf) for t in targets] for conf in configurations])

    def gain(self, targets, configuration, base, alpha=0.05):
        g = float(np.mean([self.score(t, configuration) - self.score(t, base) for t in targets]))
        return {"gain": g, "lower": g - 1, "upper": g + 1, "interval": "toy", "note": ""}


class SharesToy(ConcaveToy):
    """Not separable: the share-weighted quality of the sources plus a concave total, minus a cost of
    mixing (as count-weighted features make a multi-source model)."""

    def score(self, target, conf):
        total = sum(conf.values())
        if total == 0:
            return self.c[target]
        quality = sum(n / total * self.w[target, lang] for lang, n in conf.items() if (target, lang) in self.w)
        return self.c[target] + 4 * quality + 0.8 * math.log1p(total / 100) - 0.5 * len([n for n in conf.values() if n])


def brute_force(toy, targets, candidates, budget, step, base=None):
    """Every allocation of the grid, written out independently of the planner."""
    base = base or {}
    units = int(budget // step)
    best, best_value = None, -np.inf
    for combo in itertools.product(range(units + 1), repeat=len(candidates)):
        if sum(combo) > units:
            continue
        conf = dict(base)
        for lang, u in zip(candidates, combo):
            if u:
                conf[lang] = conf.get(lang, 0) + u * step
        value = np.mean([toy.score(t, conf) for t in targets])
        if value > best_value + 1e-12:
            best, best_value = combo, value
    return {c: float(u * step) for c, u in zip(candidates, best)}, best_value


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("search", ["greedy", "exact", "auto"])
def test_plan_equals_brute_force_on_separable_concave_toy(seed, search):
    toy = ConcaveToy(seed)
    expected, value = brute_force(toy, TARGETS, CANDIDATES, 1000, 100)
    plan = plan_annotation(toy, TARGETS, CANDIDATES, 1000, 100, search=search)
    assert plan.allocation == expected
    assert plan.objective == pytest.approx(value, abs=1e-12)
    assert plan.search == ("greedy" if search == "greedy" else "exact")
    assert sum(plan.allocation.values()) <= 1000
    assert plan.gain == pytest.approx(plan.objective - plan.base_objective)


@pytest.mark.parametrize("seed", range(4))
def test_exact_search_equals_brute_force_on_a_non_separable_toy_with_base_data(seed):
    toy = SharesToy(seed)
    base = {"eng": 300.0}
    expected, value = brute_force(toy, TARGETS, CANDIDATES, 600, 100, base=base)
    plan = plan_annotation(toy, TARGETS, CANDIDATES, 600, 100, base=base)
    assert plan.search == "exact" and plan.allocation == expected
    assert plan.objective == pytest.approx(value, abs=1e-12)
    greedy = plan_annotation(toy, TARGETS, CANDIDATES, 600, 100, base=base, search="greedy")
    assert greedy.objective <= plan.objective + 1e-12  # a local search never beats the optimum
    table = plan.table()
    assert table["language"].tolist() == CANDIDATES and table["examples"].sum() == sum(expected.values())
    assert set(plan.per_target["target"]) == set(TARGETS)


def test_nothing_is_annotated_when_nothing_helps_and_inputs_are_checked():
    toy = ConcaveToy(0)
    toy.w = {k: -1.0 for k in toy.w}
    plan = plan_annotation(toy, TARGETS, CANDIDATES, 500, 100)
    assert all(v == 0 for v in plan.allocation.values()) and plan.gain == 0
    assert "nothing" in plan.summary()
    for kwargs, message in [({"budget": -1}, "budget"), ({"budget": 100, "step": 200}, "step"),
                            ({"budget": 100, "search": "smart"}, "search"), ({"budget": 100, "alpha": 2}, "alpha")]:
        args = {"budget": 100, **kwargs}
        budget = args.pop("budget")
        with pytest.raises(InputError, match=message):
            plan_annotation(toy, TARGETS, CANDIDATES, budget, **args)
    with pytest.raises(InputError, match="candidates repeat eng"):
        plan_annotation(toy, TARGETS, ["eng", "eng"], 100)
    with pytest.raises(InputError, match="cannot plan with"):
        plan_annotation(object(), TARGETS, CANDIDATES, 100)


def _linear_setup(seed=0):
    """Synthetic runs: score = 50 + 4 log1p(n_target) + 2 log1p(n_source) - 10 distance + noise."""
    from xltstats.models import fit_ols
    from xltstats.models.persist import PortableModel, model_spec

    rng = np.random.default_rng(seed)
    distance = {(s, t): float(rng.uniform()) for s in CANDIDATES for t in TARGETS}

    def design(rows):
        rows = rows.copy()
        confs = [{} if not isinstance(c, str) else __import__("json").loads(c) for c in rows["source_languages"]]
        rows["log_target"] = np.log1p(rows["n_target_examples"].to_numpy(float))
        rows["log_source"] = np.log1p(rows["n_source_examples"].to_numpy(float))
        rows["distance"] = [sum(n * distance.get((s, t), 0.0) for s, n in conf.items()) / max(sum(conf.values()), 1)
                            for conf, t in zip(confs, rows["target"])]
        return rows

    n = 200
    frame = pd.DataFrame({"target": rng.choice(TARGETS, n), "n_target_examples": rng.choice([0, 100, 1000], n),
                          "n_source_examples": rng.choice([100, 1000, 10000], n)})
    frame["source_languages"] = [__import__("json").dumps({str(rng.choice(CANDIDATES)): int(m)})
                                 for m in frame["n_source_examples"]]
    frame = design(frame)
    frame["score"] = (50 + 4 * frame["log_target"] + 2 * frame["log_source"] - 10 * frame["distance"]
                      + rng.normal(0, 2, n))
    features = ["log_target", "log_source", "distance"]
    res = fit_ols(frame, response="score", features=features, cov_type="nonrobust")
    return PortableModel(model_spec(res), name="ols"), design, frame, features


def test_linear_gain_interval_is_the_contrast_of_statsmodels():
    import statsmodels.api as sm

    model, design, frame, features = _linear_setup()
    predictor = LinearPredictor(model, design, multi_source=True)
    plan = plan_annotation(predictor, TARGETS, CANDIDATES, 2000, 500, base={"eng": 1000})
    assert plan.gain_lower < plan.gain < plan.gain_upper
    # reference: statsmodels OLS on the raw features, the contrast of the mean design difference
    ref = sm.OLS(frame["score"], sm.add_constant(frame[features])).fit()
    planned = {"eng": 1000.0, **{k: v for k, v in plan.allocation.items() if v}}
    planned["eng"] = 1000.0 + plan.allocation["eng"]
    rows_new = design(predictor.rows(TARGETS, [planned]))
    rows_old = design(predictor.rows(TARGETS, [{"eng": 1000.0}]))
    d = np.r_[0.0, (rows_new[features].to_numpy() - rows_old[features].to_numpy()).mean(axis=0)]
    test = ref.t_test(d[None, :])
    assert plan.gain == pytest.approx(float(np.squeeze(test.effect)), rel=1e-9)
    crit = __import__("scipy.stats", fromlist=["t"]).t.ppf(0.975, ref.df_resid)
    half = crit * float(np.squeeze(test.sd))
    assert plan.gain_upper - plan.gain == pytest.approx(half, rel=1e-6)
    # the gain's interval is narrower than treating the two predictions as independent would make it
    pi = model.prediction_interval(pd.concat([rows_new, rows_old], ignore_index=True))
    independent = crit * math.sqrt((pi["se_mean"][:3].mean()) ** 2 + (pi["se_mean"][3:].mean()) ** 2)
    assert half < independent
    # no allocation: no gain, an interval of zero width
    none = predictor.gain(TARGETS, {"eng": 1000.0}, {"eng": 1000.0})
    assert none["gain"] == 0 and none["lower"] == 0 and none["upper"] == 0
    # without base data the base run has no prediction: the gain is missing and says why
    empty = plan_annotation(predictor, TARGETS, CANDIDATES, 1000, 500)
    assert np.isnan(empty.gain) and "base" in empty.note


def test_fewshot_gain_follows_the_pooled_curves():
    from xltstats.models.fewshot import fit_fewshot

    rng = np.random.default_rng(3)
    rows = []
    for t in ["fin", "tur", "swa", "hin", "ara"]:
        a, b = rng.normal(40, 5), rng.normal(5, 1)
        for n in [0, 10, 100, 1000]:
            for seed in range(2):
                rows.append({"task": "pos", "target": t, "n_target_examples": n,
                             "score": a + b * math.log1p(n) + rng.normal(0, 1)})
    curves = fit_fewshot(pd.DataFrame(rows))
    predictor = FewShotPredictor(curves)
    targets = ["fin", "tur", "swa"]
    plan = plan_annotation(predictor, targets, ["eng", "fin", "tur", "swa"], 900, 100)
    assert plan.allocation["eng"] == 0  # English examples move no target's few-shot curve
    expected, _ = brute_force(type("T", (), {"score": lambda self, t, c: predictor.predict([t], [c])[0, 0]})(),
                              targets, ["eng", "fin", "tur", "swa"], 900, 100)
    assert plan.allocation == expected
    # one target's gain is the difference of its shrunken curve at the two sizes
    band = curves.pooled_curves(n_values=[0.0, plan.allocation["fin"]])
    fin = band[band["target"] == "fin"]["fit"].to_numpy()
    g = predictor.gain(["fin"], {"fin": plan.allocation["fin"]}, {})
    assert g["gain"] == pytest.approx(fin[1] - fin[0], rel=1e-9)
    # its interval: the intercepts cancel, the slope's variance (shared b and fin's mode) times dL^2
    pooled = next(iter(curves.pooled.values()))
    slope_se = pooled["result"].random_effects_se["group"].loc["fin", "log1p_n"]
    d_log = math.log1p(plan.allocation["fin"])
    expected_half = 1.959963984540054 * d_log * math.sqrt(pooled["cov"][1, 1] + slope_se ** 2)
    assert g["upper"] - g["gain"] == pytest.approx(expected_half, rel=1e-9)
    # an unseen target has the slope's full variance: a wider interval for the same examples
    unseen = predictor.gain(["xho"], {"xho": plan.allocation["fin"]}, {})
    assert unseen["gain"] == pytest.approx(pooled["b"] * d_log) and unseen["upper"] - unseen["gain"] > expected_half
    assert plan.gain_lower < plan.gain < plan.gain_upper


def run_plan(*args, cwd=None):
    """The real entry point in a subprocess (exit status, no traceback)."""
    return subprocess.run([sys.executable, "-m", "xltstats.plan", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


@pytest.mark.parametrize("args, message", [
    (["--budget", "many"], "--budget must be a number"),
    (["--budget", "-5"], "--budget must be a positive number"),
    (["--step", "0"], "--step must be a positive number"),
    (["--step", "5000"], "--step: step (5000) is larger than the budget"),
    (["--targets", "xx-not-a-language"], "--targets"),
    (["--candidates", " , "], "--candidates names no language"),
    (["--base", "eng"], "--base: 'eng' is not LANG=N"),
    (["--base", "eng=-3"], "--base eng must be >= 0"),
    (["--alpha", "1.5"], "--alpha must be between 0 and 1"),
    (["--fit", "MISSING"], "--fit: "),
])
def test_cli_errors_name_the_argument(tmp_path, capsys, args, message):
    from xltstats.plan import main

    fit = tmp_path / "fit"
    fit.mkdir()
    (fit / "model.json").write_text("{}", encoding="utf-8")
    (fit / "manifest.json").write_text("{}", encoding="utf-8")
    given = {"--fit": str(fit), "--targets": "fin", "--candidates": "eng,fin", "--budget": "1000",
             "--out": str(tmp_path / "plan.csv")}
    for key, value in zip(args[::2], args[1::2]):
        given[key] = str(tmp_path / value) if value == "MISSING" else value
    assert main([x for kv in given.items() for x in kv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xltstats.plan: error:") and message in err, err
    assert not (tmp_path / "plan.csv").exists()


def test_cli_entry_point_exits_2_without_a_traceback(tmp_path):
    done = run_plan("--fit", str(tmp_path), "--targets", "fin", "--candidates", "eng", "--budget", "10",
                    "--out", str(tmp_path / "plan.csv"))
    assert done.returncode == 2 and "--fit" in done.stderr and "model.json" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "plan.csv").exists()
    from xltstats.cli import main

    assert main(["plan", "--fit", str(tmp_path), "--targets", "fin", "--candidates", "eng", "--budget", "10"]) == 2


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("XLTSTATS_MIRROR"), reason="XLTSTATS_MIRROR is not set")
def test_cli_plans_from_a_multi_source_fit_folder(tmp_path):
    """A real fit of synthetic multi-source runs; the CLI's plan equals the Python API's and brute force."""
    import json

    from xltstats.pipeline import FitConfig, FitFolder, run_fit

    langs = ["eng", "deu", "fin", "tur", "hin", "spa"]
    rng = np.random.default_rng(0)
    rows = []
    for run in range(40):
        chosen = rng.choice(langs, size=rng.integers(1, 4), replace=False)
        conf = {str(c): int(rng.choice([100, 1000, 5000])) for c in chosen}
        for t in langs:
            n_t = conf.get(t, 0)
            rows.append({"model": "m", "task": "t", "source": "mul", "target": t, "metric": "f1", "seed": run,
                         "source_languages": json.dumps(conf), "n_source_examples": sum(conf.values()),
                         "n_target_examples": n_t, "score": 40 + 3 * math.log1p(n_t) + rng.normal(0, 2)})
    config = FitConfig(data="synthetic", features=("syntactic_distance", "genetic_distance"),
                       covariates=("n_target_examples",), report=False).replace(
        cv={"schemes": ["random"]}, ranking={"enabled": False}, fewshot={"enabled": False}, ols={"cov_type": "HC3"})
    fit = run_fit(config, data=pd.DataFrame(rows))
    FitFolder(tmp_path / "fit").write(fit)
    args = ["--fit", str(tmp_path / "fit"), "--targets", "fin,tur", "--candidates", "eng,fin,tur",
            "--budget", "2000", "--step", "500", "--base", "eng=1000", "--out", str(tmp_path / "plan.csv"),
            "--per-target", str(tmp_path / "targets.csv")]
    done = run_plan(*args)
    assert done.returncode == 0, done.stderr
    assert "gain" in done.stdout and "interval" in done.stdout
    table = pd.read_csv(tmp_path / "plan.csv")
    assert table["language"].tolist() == ["eng", "fin", "tur"]
    plan = plan_annotation(fit, ["fin", "tur"], ["eng", "fin", "tur"], 2000, 500, base={"eng": 1000})
    assert table["examples"].tolist() == [plan.allocation[c] for c in ["eng", "fin", "tur"]]
    predictor = LinearPredictor.from_fit(fit)
    predictor.prepare(["fin", "tur"], ["eng", "fin", "tur"])  # the pairs plan_annotation computes

    class Wrap:
        def score(self, t, conf):
            return predictor.predict([t], [conf])[0, 0]

    expected, value = brute_force(Wrap(), ["fin", "tur"], ["eng", "fin", "tur"], 2000, 500, base={"eng": 1000})
    assert plan.allocation == expected and plan.objective == pytest.approx(value, abs=1e-9)
    assert plan.gain_lower <= plan.gain <= plan.gain_upper
    assert len(pd.read_csv(tmp_path / "targets.csv")) == 2
