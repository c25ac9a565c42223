"""OLS checked against statsmodels (HC3, nonrobust) and hand numpy computations (cluster2, dominance)."""
import itertools
import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.stats.sandwich_covariance import cov_cluster_2groups

from xltstats.errors import InputError
from xltstats.models.ols import fit_ols
from xltstats.models.tables import write_table


def make_pairs(seed=1, n_lang=15):
    rng = np.random.default_rng(seed)
    langs = [f"l{i:02d}" for i in range(n_lang)]
    rows = [(s, t) for s in langs for t in langs if s != t]
    df = pd.DataFrame(rows, columns=["source", "target"])
    n = len(df)
    df["syntactic_distance"] = rng.uniform(0, 1, n)
    df["phonological_distance"] = rng.uniform(0, 1, n) + 0.3 * df["syntactic_distance"]
    df["lexical_overlap"] = rng.beta(2, 5, n)
    df["log_source_size"] = rng.normal(10, 2, n)
    src_eff = dict(zip(langs, rng.normal(0, 3, n_lang)))
    tgt_eff = dict(zip(langs, rng.normal(0, 4, n_lang)))
    df["score"] = (60 - 12 * df["syntactic_distance"] - 3 * df["phonological_distance"] + 8 * df["lexical_overlap"]
                   + 0.8 * df["log_source_size"] + df["source"].map(src_eff) + df["target"].map(tgt_eff)
                   + rng.normal(0, 3 + 4 * df["lexical_overlap"], n))
    return df


FEATURES = ["syntactic_distance", "phonological_distance", "lexical_overlap", "log_source_size"]
GROUPS = {"syntax": ["syntactic_distance"], "phonology": ["phonological_distance"],
          "lexical": ["lexical_overlap"], "data": ["log_source_size"]}


def statsmodels_fit(df, cov_type):
    x = (df[FEATURES] - df[FEATURES].mean()) / df[FEATURES].std(ddof=1)
    return sm.OLS(df["score"], sm.add_constant(x)).fit(cov_type=cov_type)


@pytest.mark.parametrize("cov_type", ["HC3", "nonrobust"])
def test_matches_statsmodels(cov_type):
    df = make_pairs()
    ours = fit_ols(df, features=FEATURES, cov_type=cov_type)
    ref = statsmodels_fit(df, cov_type)
    np.testing.assert_allclose(ours.params.to_numpy(), ref.params.to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(ours.bse.to_numpy(), ref.bse.to_numpy(), rtol=1e-8)
    np.testing.assert_allclose(ours.pvalues.to_numpy(), ref.pvalues.to_numpy(), rtol=1e-6, atol=1e-300)
    np.testing.assert_allclose(ours.conf_int().to_numpy(), ref.conf_int().to_numpy(), rtol=1e-8)
    assert ours.rsquared == pytest.approx(ref.rsquared, rel=1e-12)
    assert ours.rsquared_adj == pytest.approx(ref.rsquared_adj, rel=1e-12)


def test_unstandardised_prediction_interval_matches_statsmodels():
    df = make_pairs()
    ours = fit_ols(df, features=FEATURES, cov_type="nonrobust", standardise=False)
    ref = sm.OLS(df["score"], sm.add_constant(df[FEATURES])).fit()
    new = df.iloc[:7]
    frame = ref.get_prediction(sm.add_constant(new[FEATURES], has_constant="add")).summary_frame(alpha=0.1)
    pi = ours.prediction_interval(new, alpha=0.1)
    np.testing.assert_allclose(pi["prediction"], frame["mean"], rtol=1e-10)
    np.testing.assert_allclose(pi["se_mean"], frame["mean_se"], rtol=1e-8)
    np.testing.assert_allclose(pi["lower"], frame["obs_ci_lower"], rtol=1e-8)
    np.testing.assert_allclose(pi["upper"], frame["obs_ci_upper"], rtol=1e-8)
    # standardising changes coefficients but not predictions
    std = fit_ols(df, features=FEATURES, cov_type="nonrobust", standardise=True)
    np.testing.assert_allclose(std.predict(new), ours.predict(new), rtol=1e-10)


def hand_cluster(x, e, labels):
    n, p = x.shape
    bread = np.linalg.inv(x.T @ x)
    meat = np.zeros((p, p))
    groups = sorted(set(labels))
    for g in groups:
        idx = [i for i, lab in enumerate(labels) if lab == g]
        s = x[idx].T @ e[idx]
        meat += np.outer(s, s)
    c = len(groups) / (len(groups) - 1) * (n - 1) / (n - p)
    return c * bread @ meat @ bread


@pytest.mark.parametrize("seed", [4, 3])
def test_cluster2_matches_hand_computation(seed):
    df = make_pairs(seed=seed)
    ours = fit_ols(df, features=FEATURES, cov_type="cluster2")
    x = np.column_stack([np.ones(len(df)), ((df[FEATURES] - df[FEATURES].mean()) / df[FEATURES].std(ddof=1)).to_numpy()])
    y = df["score"].to_numpy()
    beta = np.linalg.solve(x.T @ x, x.T @ y)
    e = y - x @ beta
    src, tgt = list(df["source"]), list(df["target"])
    pair = [s + "|" + t for s, t in zip(src, tgt)]
    expected = hand_cluster(x, e, src) + hand_cluster(x, e, tgt) - hand_cluster(x, e, pair)
    val, vec = np.linalg.eigh(expected)
    assert ours.cluster_info["psd_fixed"] == bool((val < 0).any())  # seed 3 needs the CGM eigenvalue fix
    expected = vec @ np.diag(np.clip(val, 0, None)) @ vec.T
    np.testing.assert_allclose(ours.cov.to_numpy(), expected, rtol=1e-8, atol=1e-12)
    assert ours.cluster_info["n_source_clusters"] == 15
    # statsmodels' two-group clustering without small-sample factors differs only by those factors
    res = sm.OLS(y, x).fit()
    sm_cov = cov_cluster_2groups(res, pd.factorize(df["source"])[0], pd.factorize(df["target"])[0],
                                 use_correction=False)[0]
    raw = (hand_cluster(x, e, src) / (15 / 14 * (len(y) - 1) / (len(y) - 5))
           + hand_cluster(x, e, tgt) / (15 / 14 * (len(y) - 1) / (len(y) - 5))
           - hand_cluster(x, e, pair) / (len(y) / (len(y) - 1) * (len(y) - 1) / (len(y) - 5)))
    np.testing.assert_allclose(sm_cov, raw, rtol=1e-8)
    # ... and with its per-dimension small-sample factors it is ours exactly (before any PSD fix)
    groups = np.column_stack([pd.factorize(df["source"])[0], pd.factorize(df["target"])[0]])
    sm_two_way = sm.OLS(y, x).fit(cov_type="cluster", cov_kwds={"groups": groups}).cov_params()
    if not ours.cluster_info["psd_fixed"]:
        np.testing.assert_allclose(ours.cov.to_numpy(), sm_two_way, rtol=1e-10, atol=1e-14)
    # two-way clustering is much wider than HC3 here (language effects are strong)
    hc3 = fit_ols(df, features=FEATURES, cov_type="HC3")
    assert ours.bse["Intercept"] > 2 * hc3.bse["Intercept"]


def r2(df, cols):
    if not cols:
        return 0.0
    return sm.OLS(df["score"], sm.add_constant(df[cols])).fit().rsquared


def test_group_comparison_and_dominance_by_brute_force():
    df = make_pairs(seed=5)
    res = fit_ols(df, features=FEATURES, groups=GROUPS, cov_type="nonrobust")
    dom = res.dominance().set_index("group")
    names = list(GROUPS)
    for g in names:
        others = [h for h in names if h != g]
        # Shapley value with the permutation weights
        shap = 0.0
        for k in range(len(others) + 1):
            for s in itertools.combinations(others, k):
                cols = [c for h in s for c in GROUPS[h]]
                w = math.factorial(k) * math.factorial(len(names) - k - 1) / math.factorial(len(names))
                shap += w * (r2(df, cols + GROUPS[g]) - r2(df, cols))
        assert dom.loc[g, "general_dominance"] == pytest.approx(shap, abs=1e-10)
    assert dom["general_dominance"].sum() == pytest.approx(res.rsquared, abs=1e-10)
    comp = res.group_comparison().set_index("group")
    full = statsmodels_fit(df, "nonrobust")
    for g in names:
        reduced_cols = [c for c in FEATURES if c not in GROUPS[g]]
        reduced = sm.OLS(df["score"], sm.add_constant(df[reduced_cols])).fit()
        f, p, _ = full.compare_f_test(reduced)
        assert comp.loc[g, "f_statistic"] == pytest.approx(f, rel=1e-8)
        assert comp.loc[g, "f_p_value"] == pytest.approx(p, rel=1e-6, abs=1e-300)
        assert comp.loc[g, "r2_drop"] == pytest.approx(full.rsquared - reduced.rsquared, abs=1e-10)
        # one-column group: the Wald test is the squared t test
        assert comp.loc[g, "wald_statistic"] == pytest.approx(full.tvalues[GROUPS[g][0]] ** 2, rel=1e-8)


def test_compare_groups_bootstrap_detects_strong_vs_null_group():
    df = make_pairs(seed=7, n_lang=14)
    rng = np.random.default_rng(0)
    df["noise_feature"] = rng.normal(size=len(df))
    groups = {"syntax": ["syntactic_distance"], "noise": ["noise_feature"], "data": ["log_source_size"]}
    res = fit_ols(df, features=["syntactic_distance", "noise_feature", "log_source_size"], groups=groups)
    out = res.compare_groups("syntax", "noise", n_boot=300, seed=1)
    assert out["estimate"] > 0 and out["conf_low"] > 0 and out["p_value"] < 0.05
    # a group against itself: the difference is exactly zero in every draw
    same = res.compare_groups("syntax", "syntax", n_boot=50, statistic="r2_drop")
    assert same["estimate"] == 0 and same["conf_low"] == 0 and same["conf_high"] == 0
    table = res.compare_groups([("syntax", "noise"), ("data", "noise")], n_boot=300, seed=1)
    assert list(table["group_a"]) == ["syntax", "data"]
    assert table.iloc[0]["p_value"] == out["p_value"]
    # reproducible with a seed
    assert res.compare_groups("syntax", "data", n_boot=100, seed=4) == res.compare_groups("syntax", "data", n_boot=100, seed=4)


def test_vif_matches_statsmodels():
    from statsmodels.stats.outliers_influence import variance_inflation_factor
    df = make_pairs()
    res = fit_ols(df, features=FEATURES)
    exog = sm.add_constant(df[FEATURES]).to_numpy()
    expected = [variance_inflation_factor(exog, j + 1) for j in range(len(FEATURES))]
    np.testing.assert_allclose(res.vif()["vif"], expected, rtol=1e-8)


def test_missing_rows_dropped_and_errors_named():
    df = make_pairs()
    df.loc[3, "lexical_overlap"] = np.nan
    res = fit_ols(df, features=FEATURES)
    assert res.nobs == len(df) - 1 and res.n_dropped == 1
    bad = df.astype({"syntactic_distance": object})
    bad.loc[4, "syntactic_distance"] = "far"
    with pytest.raises(InputError, match=r"row 5, column 'syntactic_distance'"):
        fit_ols(bad, features=FEATURES)
    with pytest.raises(InputError, match="missing column"):
        fit_ols(df, features=["nope"])
    df["const"] = 1.0
    with pytest.raises(InputError, match="constant"):
        fit_ols(df, features=["const"])


def test_tables_are_deterministic(tmp_path):
    df = make_pairs()
    res = fit_ols(df, features=FEATURES, groups=GROUPS)
    a = write_table(res.table(), tmp_path / "a", "coef_ols")
    b = write_table(fit_ols(df, features=FEATURES, groups=GROUPS).table(), tmp_path / "b", "coef_ols")
    for ext in ("csv", "md", "tex"):
        assert a[ext].read_bytes() == b[ext].read_bytes()
    back = pd.read_csv(a["csv"])
    np.testing.assert_allclose(back["estimate"], res.params.to_numpy(), rtol=1e-5)
    assert "\\toprule" in a["tex"].read_text() and "Syntactic distance" in a["tex"].read_text()  # for a paper
    assert "syntactic_distance" in a["csv"].read_text()  # the data keeps the column's name
    assert a["md"].read_text().splitlines()[1].startswith("|---")


def test_batched_subset_r2_equals_one_solve_at_a_time_and_singular_draws_fall_back():
    from xltstats.models.dominance import _r2_batch, _r2_from_moments
    from xltstats.models.robust import _group_sums

    rng = np.random.default_rng(3)
    z = np.column_stack([np.ones(40), rng.normal(size=(40, 3)), rng.normal(size=40)])
    stack = np.stack([(z * w[:, None]).T @ z for w in rng.integers(0, 3, (6, 40)).astype(float)])
    singular = z.copy()
    singular[:, 2] = singular[:, 1]  # a draw whose columns 1 and 2 coincide
    stack = np.concatenate([stack, (singular.T @ singular)[None]])
    for columns in ([0], [0, 2], [0, 1, 2]):
        expected = [_r2_from_moments(m, columns) for m in stack]
        np.testing.assert_allclose(_r2_batch(stack, columns), expected, rtol=1e-9)
    codes = np.array([2, 0, 2, 2, 0])
    np.testing.assert_allclose(_group_sums(np.arange(10.0).reshape(5, 2), codes, 4),
                               [[10, 12], [0, 0], [10, 13], [0, 0]])


def test_dyadic_covariance_is_the_sum_over_rows_sharing_a_language():
    """The dyadic meat against its O(n^2) definition (Aronow, Samii & Assenova 2015): every pair
    of rows that share at least one language, rows of the same pair and same-language rows
    included, counted once."""
    from xltstats.models.ols import dyadic_covariance

    rng = np.random.default_rng(3)
    langs = list("abcdefgh")
    rows = [(a, b) for i, a in enumerate(langs) for b in langs[i + 1:]] * 2 + [("a", "a"), ("c", "c")]
    source = np.array([r[0] for r in rows])
    target = np.array([r[1] for r in rows])
    x = np.column_stack([np.ones(len(rows)), rng.normal(size=(len(rows), 2))])
    resid = rng.normal(size=len(rows))
    share = np.array([[len({s1, t1} & {s2, t2}) > 0 for s2, t2 in rows] for s1, t1 in rows], float)
    scores = x * resid[:, None]
    bread = np.linalg.inv(x.T @ x)
    expected = bread @ (scores.T @ share @ scores) @ bread
    eigval, eigvec = np.linalg.eigh(expected)
    if eigval.min() < 0:  # not positive semi-definite: negative eigenvalues clipped, as for cluster2
        expected = (eigvec * np.clip(eigval, 0, None)) @ eigvec.T
    cov, info = dyadic_covariance(x, resid, source, target, small_sample=False)
    assert info["psd_fixed"] == bool(eigval.min() < 0)
    np.testing.assert_allclose(cov, expected, rtol=1e-10, atol=1e-14)
    assert info["n_language_clusters"] == 8 and info["n_pair_clusters"] == 28
    fitted = fit_ols(pd.DataFrame({"source": source, "target": target, "x1": x[:, 1], "x2": x[:, 2],
                                   "score": x[:, 1] + resid}), features=["x1", "x2"], cov_type="dyadic",
                     min_clusters=8)  # 8 languages: below the default floor of 10, which would use HC3
    assert fitted.df_inference == 7 and fitted.cluster_info["n_language_clusters"] == 8
