"""Few-shot curves: recovery of known curves, delta-method coverage, and real SumEval / xpos data."""
import glob
import os
import re

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

from xltstats.errors import InputError
from xltstats.models.fewshot import data_demand, fit_curve, fit_fewshot

MIRROR = os.environ.get("XLTSTATS_MIRROR")
SIZES = [0, 10, 100, 1000, 10000]


def simulate(n_targets=20, seeds=3, a=50.0, b=4.0, sd_a=3.0, sd_b=0.8, noise=2.0, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    truth = {}
    for t in range(n_targets):
        at, bt = a + rng.normal(0, sd_a), b + rng.normal(0, sd_b)
        truth[f"t{t:02d}"] = (at, bt)
        for n in SIZES:
            for s in range(seeds):
                rows.append({"task": "sim", "target": f"t{t:02d}", "source": "eng", "n_target_examples": n,
                             "seed": s, "score": at + bt * np.log1p(n) + rng.normal(0, noise)})
    return pd.DataFrame(rows), truth


def test_recovers_known_curves_and_pooled_fit_matches_statsmodels():
    df, truth = simulate()
    res = fit_fewshot(df)
    curves = res.table().set_index("target")
    z = []
    for t, (at, bt) in truth.items():
        z += [(curves.loc[t, "a"] - at) / curves.loc[t, "se_a"], (curves.loc[t, "b"] - bt) / curves.loc[t, "se_b"]]
        sub = df[df.target == t]
        ref = sm.OLS(sub["score"], sm.add_constant(np.log1p(sub["n_target_examples"]))).fit()
        assert curves.loc[t, "a"] == pytest.approx(ref.params.iloc[0], rel=1e-10)
        assert curves.loc[t, "se_b"] == pytest.approx(ref.bse.iloc[1], rel=1e-8)
    z = np.asarray(z)
    assert np.abs(z).max() < 4.5 and abs(z.mean()) < 0.6
    pooled = res.pooled_table().iloc[0]
    assert pooled["a"] == pytest.approx(np.mean([v[0] for v in truth.values()]), abs=3 * pooled["se_a"])
    assert pooled["b"] == pytest.approx(np.mean([v[1] for v in truth.values()]), abs=3 * pooled["se_b"])
    assert pooled["vc_group:log1p_n_sd"] == pytest.approx(0.8, rel=0.5)
    df2 = df.assign(log1p_n=np.log1p(df["n_target_examples"]))
    ref = smf.mixedlm("score ~ log1p_n", df2, groups=df2["target"], re_formula="~log1p_n").fit(reml=True)
    assert pooled["a"] == pytest.approx(ref.fe_params["Intercept"], rel=1e-4)
    assert pooled["b"] == pytest.approx(ref.fe_params["log1p_n"], rel=1e-3)
    assert pooled["se_b"] == pytest.approx(ref.bse_fe["log1p_n"], rel=2e-2)


def test_data_demand_formula_and_delta_interval_coverage():
    a, b, noise = 40.0, 5.0, 3.0
    goal = 70.0
    true_n = np.expm1((goal - a) / b)
    rng = np.random.default_rng(3)
    n = np.repeat(SIZES, 4).astype(float)
    hits, estimates = 0, []
    reps = 300
    for _ in range(reps):
        y = a + b * np.log1p(n) + rng.normal(0, noise, len(n))
        f = fit_curve(n, y)
        from scipy import stats
        d = data_demand(f["a"], f["b"], f["cov"], goal, stats.t.ppf(0.975, f["df"]), f["max_n"])
        hits += d["n_lower"] <= true_n <= d["n_upper"]
        estimates.append(np.log1p(d["n_needed"]))
    assert 0.91 <= hits / reps <= 0.99
    assert np.median(estimates) == pytest.approx(np.log1p(true_n), abs=0.1)
    # edge cases
    cov = np.eye(2) * 0.01
    assert data_demand(50, 2, cov, 40, 2.0)["status"] == "reached_at_zero"
    near = data_demand(50, 2, cov, 49.9, 2.0)
    assert near["n_needed"] == 0 and near["n_lower"] == 0 and near["n_upper"] == pytest.approx(np.expm1(-0.05 + 2 * np.sqrt(0.01 * (0.25 + 0.025 ** 2))))
    assert data_demand(50, -1, cov, 60, 2.0)["status"] == "not_reached"
    assert np.isnan(data_demand(50, -1, cov, 60, 2.0)["n_needed"])


def test_reference_and_bands():
    df, _ = simulate(n_targets=4, seeds=2)
    two_models = fit_fewshot(pd.concat([df.assign(model="m1"), df.assign(model="m2")]), pooled=False)
    assert two_models.by == ["model", "task", "target"] and len(two_models.table()) == 8
    inlang = pd.DataFrame({"task": "sim", "target": "t00", "source": "t00", "n_target_examples": 20000,
                           "seed": [0, 1], "score": [99.0, 101.0]})
    res = fit_fewshot(pd.concat([df, inlang], ignore_index=True), pooled=False)
    curves = res.table().set_index("target")
    assert curves.loc["t00", "reference_kind"] == "in_language" and curves.loc["t00", "reference_score"] == 100
    assert curves.loc["t01", "reference_kind"] == "max_n"
    band = res.curves(n_values=[0, 100])
    row0 = band[(band.target == "t01") & (band.n == 0)].iloc[0]
    assert row0["fit"] == pytest.approx(curves.loc["t01", "a"])
    assert row0["lower"] == pytest.approx(curves.loc["t01", "zero_shot_low"])
    demand = res.data_demand(shares=(0.9,), scores=(55.0,))
    assert set(demand["goal"]) == {"share", "score"}
    boot = fit_fewshot(df, pooled=False, interval="bootstrap", n_boot=4000, seed=1).data_demand(shares=(0.9,))
    delta = res.data_demand(shares=(0.9,))
    merged = boot.merge(delta, on="target", suffixes=("_boot", "_delta"))
    ok = merged[(merged.status_boot == "ok") & (merged.target != "t00")]
    np.testing.assert_allclose(np.log1p(ok["n_lower_boot"]), np.log1p(ok["n_lower_delta"]), atol=0.6)
    again = fit_fewshot(df, pooled=False, interval="bootstrap", n_boot=4000, seed=1).data_demand(shares=(0.9,))
    pd.testing.assert_frame_equal(boot, again)
    with pytest.raises(InputError, match="n_target_examples"):
        fit_fewshot(df.assign(n_target_examples=-df["n_target_examples"] - 1))
    with pytest.raises(InputError, match="missing column"):
        fit_fewshot(df.drop(columns="task"))


def sumeval_rows(tasks):
    from xltstats.datasets import load_dataset

    df = load_dataset("sumeval")
    df = df[(df["model"] == "xlm-roberta-large") & (df["split"] == "train") & df["task"].isin(tasks)]
    return df.reset_index(drop=True)


@pytest.mark.skipif(not MIRROR, reason="XLTSTATS_MIRROR is not set (shared published data)")
def test_sumeval_few_shot_curves():
    df = sumeval_rows(["xnli", "tydiqa", "udpos", "wikiann"])
    res = fit_fewshot(df)
    curves = res.table()
    ok = curves[curves.status == "ok"]
    sizes = df.groupby(["task", "target"])["n_target_examples"].nunique()
    assert len(ok) == (sizes >= 2).sum() and len(curves) == len(sizes)
    assert (curves.loc[curves.status != "ok", "n_sizes"] < 2).all()
    # more target-language data helps on average in every task
    assert (ok.groupby("task")["b"].median() > 0).all()
    # zero-shot estimate lies below the max-n reference in most groups
    assert (ok["zero_shot"] < ok["reference_score"]).mean() > 0.8
    pooled = res.pooled_table().set_index("task")
    assert set(pooled.index) == {"xnli", "tydiqa", "udpos", "wikiann"}
    assert (pooled["b"] > 0).all()
    # target-language data clearly helps POS tagging, NER and QA; for XNLI the slope is near zero
    assert (pooled.loc[["tydiqa", "udpos", "wikiann"], "b_low"] > 0).all()
    assert pooled.loc["xnli", "b"] < 0.1 * pooled.loc["udpos", "b"]
    # UDPOS: XLM-R zero-shot POS accuracy around 0.8 on this benchmark
    assert 0.7 < pooled.loc["udpos", "a"] < 0.9
    demand = res.data_demand(shares=(0.95,))
    assert (demand["n_lower"].fillna(0) <= demand["n_needed"].fillna(0)).all()
    bands = res.pooled_curves(n_values=[0, 1000])
    population = bands[bands.target == "(population)"].set_index(["task", "n"])
    for task in ("xnli", "tydiqa", "udpos", "wikiann"):
        assert population.loc[(task, 0.0), "fit"] == pytest.approx(pooled.loc[task, "a"], rel=1e-12)
    assert set(bands["target"]) - {"(population)"} == set(df["target"])
    assert (bands["lower"] < bands["fit"]).all() and (bands["fit"] < bands["upper"]).all()


@pytest.mark.skipif(not MIRROR, reason="XLTSTATS_MIRROR is not set (shared published data)")
def test_xpos_training_length_curves():
    frames = []
    for path in sorted(glob.glob(os.path.join(MIRROR, "xpos", "results", "udpos-ft-*.csv"))):
        m = re.search(r"udpos-ft-(\d+)\.csv$", path)
        if not m:
            continue  # the epoch-based files have no fixed training length
        d = pd.read_csv(path)
        d = d[d["lang_train"].isin(["en", "de", "ru", "zh"])]
        frames.append(pd.DataFrame({"task": "udpos", "source": d["lang_train"], "target": d["lang_pred"],
                                    "n": int(m.group(1)), "score": d["score"]}))
    df = pd.concat(frames, ignore_index=True)
    assert df["n"].nunique() >= 5
    res = fit_fewshot(df, by=("source", "target"), n_col="n", pooled=False)
    curves = res.table().set_index(["source", "target"])
    # in-language training: longer training helps, and the reference is the in-language score
    for lang in ["en", "de", "ru", "zh"]:
        assert curves.loc[(lang, lang), "b"] > 0
        assert curves.loc[(lang, lang), "reference_kind"] == "in_language"


def test_pooled_curves_with_bands_and_shrunken_target_curves():
    df, truth = simulate(n_targets=12, seed=3)
    # one target observed at a single size only: no per-target curve, but a pooled (shrunken) one
    df = df[~((df.target == "t00") & (df.n_target_examples != 100))].reset_index(drop=True)
    res = fit_fewshot(df)
    assert res.table().set_index("target").loc["t00", "status"] == "too_few_sizes"
    curves = res.pooled_curves(n_values=[0, 10, 1000])
    assert set(curves["target"]) == {"(population)", *truth}
    pop = curves[curves.target == "(population)"].set_index("n")
    pooled = res.pooled_table().iloc[0]
    # population curve: fixed effects, its band at n = 0 is the zero-shot interval of pooled_table
    assert pop.loc[0, "fit"] == pytest.approx(pooled["a"], rel=1e-12)
    assert pop.loc[1000, "fit"] == pytest.approx(pooled["a"] + pooled["b"] * np.log1p(1000), rel=1e-12)
    assert pop.loc[0, "lower"] == pytest.approx(pooled["zero_shot_low"], rel=1e-10)
    # target curves equal the mixed model's own conditional predictions (fixed + BLUP)
    mixed = res.pooled[("sim",)]["result"]
    new = pd.DataFrame({"log1p_n": np.log1p([0, 10, 1000]), "group": "t05", "score": 0.0})
    t05 = curves[curves.target == "t05"]
    np.testing.assert_allclose(t05["fit"], mixed.predict(new).to_numpy(), rtol=1e-10)
    # a target's band adds its BLUP uncertainty: wider than the population band, and widest for
    # the target seen at one size only
    width = curves.assign(w=curves.upper - curves.lower).pivot(index="n", columns="target", values="w")
    assert (width["t05"] > width["(population)"]).all()
    assert width.loc[1000, "t00"] > width.loc[1000, "t05"]
    # at its one observed size t00's band covers its true curve; the other targets' bands cover
    # their true zero-shot scores (95% bands: allow one miss in 11)
    t00 = res.pooled_curves(n_values=[100]).set_index("target").loc["t00"]
    assert t00["lower"] < truth["t00"][0] + truth["t00"][1] * np.log1p(100) < t00["upper"]
    zero = curves[curves.n == 0].set_index("target")
    covered = [zero.loc[t, "lower"] < a < zero.loc[t, "upper"] for t, (a, _) in truth.items() if t != "t00"]
    assert sum(covered) >= len(covered) - 1
