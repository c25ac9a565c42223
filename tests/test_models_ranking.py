"""Ranking: LangRank relevance, NDCG@k against scikit-learn, and leave-one-target-out on LangRank tables."""
import os

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import ndcg_score

from xltstats.errors import InputError
from xltstats.models.ranking import ndcg_at_k, rank_candidates, rank_sources, relevance_from_scores
from xltstats.models.validation import OLSEstimator

MIRROR = os.environ.get("XLTSTATS_MIRROR")


def test_relevance_matches_langrank_accuracy_level():
    scores = [0.53, 0.34, 0.32, 0.01, 0.32]
    assert relevance_from_scores(scores).tolist() == [5, 4, 3, 1, 3]


@pytest.mark.parametrize("seed", range(5))
def test_ndcg_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    true = rng.normal(size=12)
    pred = true + rng.normal(size=12)
    rel = relevance_from_scores(true)
    for k in (1, 3, 5):
        assert ndcg_at_k(rel, pred, k) == pytest.approx(ndcg_score([rel], [pred], k=k), rel=1e-12)
    assert ndcg_at_k(rel, true, 3) == 1.0
    # exponential gain against sklearn with transformed relevance
    assert ndcg_at_k(rel, pred, 3, gain="exponential") == pytest.approx(ndcg_score([2.0 ** rel - 1], [pred], k=3))


def synthetic(seed=0, n=12):
    rng = np.random.default_rng(seed)
    langs = [f"l{i:02d}" for i in range(n)]
    df = pd.DataFrame([(s, t) for s in langs for t in langs if s != t], columns=["source", "target"])
    df["distance"] = rng.uniform(size=len(df))
    df["size"] = df["source"].map(dict(zip(langs, rng.normal(size=n))))
    df["score"] = 50 - 20 * df["distance"] + 3 * df["size"] + rng.normal(0, 1, len(df))
    return df


def test_rank_sources_on_synthetic_data():
    df = synthetic()
    res = rank_sources(df, ["distance", "size"], k=3, lambdarank_estimators=20)
    ev = res.evaluation().set_index("method")
    assert set(ev.index) == {"ols", "source_mean", "lambdarank"}
    assert ev.loc["ols", "n_queries"] == 12
    # the linear truth is easy for OLS; random orderings score far lower
    assert ev.loc["ols", "mean_ndcg_at_3"] > 0.9
    rng = np.random.default_rng(0)
    chance = np.mean([ndcg_at_k(relevance_from_scores(g["score"]), rng.normal(size=len(g)), 3)
                      for _, g in df.groupby("target")])
    assert ev.loc["lambdarank", "mean_ndcg_at_3"] > chance + 0.1
    table = res.table()
    assert {"ols_score", "ols_rank", "lambdarank_rank"} <= set(table.columns)
    per = res.per_query()
    first = per[(per.method == "ols")].iloc[0]
    g = table[table.target == first["target"]]
    assert first["ndcg_at_3"] == pytest.approx(ndcg_score([g["relevance"]], [g["ols_score"]], k=3))
    # determinism
    again = rank_sources(df, ["distance", "size"], k=3, lambdarank_estimators=20)
    pd.testing.assert_frame_equal(res.per_query(), again.per_query())
    with pytest.raises(InputError, match="missing column"):
        rank_sources(df, ["nope"])


def test_grouped_targets_still_rank_every_target_with_unseen_models():
    df = synthetic()
    grouped = rank_sources(df, ["distance", "size"], k=3, lambdarank=False, max_folds=4)
    ev = grouped.evaluation().set_index("method")
    assert ev.loc["ols", "n_queries"] == 12
    assert ev.loc["ols", "mean_ndcg_at_3"] > 0.9
    # OLS trained without the held-out group differs from leave-one-out, but only a little
    loo = rank_sources(df, ["distance", "size"], k=3, lambdarank=False).evaluation().set_index("method")
    assert abs(ev.loc["ols", "mean_ndcg_at_3"] - loo.loc["ols", "mean_ndcg_at_3"]) < 0.05


def test_rank_candidates_orders_by_prediction():
    df = synthetic()
    model = OLSEstimator(["distance", "size"]).fit(df).result_
    cand = df[df.target == "l03"]
    ranked = rank_candidates(model, cand)
    assert ranked["rank"].tolist() == list(range(1, len(cand) + 1))
    assert ranked["predicted_score"].is_monotonic_decreasing


def langrank(name):
    from xltstats.datasets import load_dataset
    from xltstats.models.ranking import langrank_features

    return langrank_features(load_dataset(name))


@pytest.mark.skipif(not MIRROR, reason="XLTSTATS_MIRROR is not set (shared published data)")
def test_langrank_el_leave_one_target_out():
    d, feats = langrank("langrank-el")
    res = rank_sources(d, feats, k=3, lambdarank_estimators=100)
    ev = res.evaluation().set_index("method")
    assert ev["n_queries"].tolist() == [9, 9, 9]
    # relevance is exactly LangRank's shipped 'Accuracy level' where scores have no ties
    table = res.table()
    merged = table.merge(d[["source", "target", "langrank_relevance"]], on=["source", "target"])
    untied = merged.groupby("target")["observed"].transform(lambda s: ~s.duplicated(keep=False))
    full = merged.groupby("target")["source"].transform("size") == merged.groupby("target")["langrank_relevance"].transform("max")
    check = merged[untied & full]
    assert len(check) > 0 and (check["relevance"] == check["langrank_relevance"]).all()
    # both learned rankers are far better than chance on entity linking
    assert ev.loc["lambdarank", "mean_ndcg_at_3"] > 0.8


@pytest.mark.slow
@pytest.mark.skipif(not MIRROR, reason="XLTSTATS_MIRROR is not set (shared published data)")
@pytest.mark.parametrize("name", ["langrank-pos", "langrank-dep"])
def test_langrank_pos_dep(name):
    d, feats = langrank(name)
    formula = "score ~ " + " + ".join(feats) + " + (1|source) + (1|target)"
    ev = rank_sources(d, feats, k=3, mixed_formula=formula).evaluation().set_index("method")
    assert ev.loc["lambdarank", "mean_ndcg_at_3"] > 0.75
    assert ev.loc["ols", "mean_ndcg_at_3"] > 0.65
    # measured: pos 0.833 (LambdaRank 0.801), dep 0.864 (LambdaRank 0.898)
    assert ev.loc["mixed", "mean_ndcg_at_3"] > max(0.8, ev.loc["ols", "mean_ndcg_at_3"])


def test_queries_split_by_task_when_there_are_several():
    a = synthetic(seed=1, n=6).assign(task="pos")
    b = synthetic(seed=2, n=6).assign(task="ner")
    res = rank_sources(pd.concat([a, b], ignore_index=True), ["distance", "size"], lambdarank=False)
    assert res.query == ["task", "target"]
    assert res.evaluation().set_index("method").loc["ols", "n_queries"] == 12


def test_mixed_formula_adds_the_crossed_model_ranked_on_unseen_targets():
    from xltstats.models import fit_mixed

    df = synthetic()
    formula = "score ~ distance + size + (1|source) + (1|target)"
    res = rank_sources(df, ["distance", "size"], k=3, lambdarank=False, mixed_formula=formula)
    ev = res.evaluation().set_index("method")
    assert set(ev.index) == {"ols", "mixed", "source_mean"}
    assert ev.loc["mixed", "n_queries"] == 12 and ev.loc["mixed", "mean_ndcg_at_3"] > 0.9
    # the held-out target's candidates are scored by a model that never saw that target
    target = sorted(df["target"].unique())[0]
    train, test = df[df.target != target], df[df.target == target].sort_values("source")
    expected = fit_mixed(formula, train, warn=False).predict(test).to_numpy()
    got = res.table().query("target == @target").sort_values("source")["mixed_score"].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-7)  # same optimum up to the optimiser tolerance


def test_a_target_is_not_ranked_as_its_own_source():
    df = synthetic(seed=3, n=8)
    langs = sorted(df["source"].unique())
    # in-language rows score far above any transfer: ranked, they would always come first
    own = pd.DataFrame({"source": langs, "target": langs, "distance": 0.0, "size": 0.0, "score": 99.0})
    with_self = pd.concat([df, own], ignore_index=True)
    res = rank_sources(with_self, ["distance", "size"], k=3, lambdarank_estimators=20, max_folds=4)
    cands = res.candidates
    assert not (cands["source"] == cands["target"]).any()
    assert len(cands[cands.method == "ols"]) == len(df)
    # the NDCG of the transfer candidates is what ranking the table without self rows gives for them
    without = rank_sources(df, ["distance", "size"], k=3, lambdarank=False, max_folds=4)
    assert set(res.evaluation()["method"]) == {"ols", "source_mean", "lambdarank"}
    got = res.per_query()
    ref = without.per_query()
    merged = got[got.method == "ols"].merge(ref[ref.method == "ols"], on="target")
    assert len(merged) == len(langs)
    # relevance is computed among the candidates only, so the same observed scores give the same relevance
    assert (res.candidates.query("method == 'ols'").sort_values(["target", "source"])["relevance"].to_numpy()
            == without.candidates.query("method == 'ols'").sort_values(["target", "source"])["relevance"].to_numpy()).all()
    # exclude_self=False keeps them as candidates
    kept = rank_sources(with_self, ["distance", "size"], k=3, lambdarank=False, exclude_self=False, max_folds=4)
    top = kept.candidates[(kept.candidates.method == "ols") & (kept.candidates.predicted_rank == 1)]
    assert (kept.candidates["source"] == kept.candidates["target"]).any() and len(top) == len(langs)


def test_vectorised_ranks_follow_the_documented_order():
    from xltstats.models.ranking import _order, predicted_ranks

    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"method": rng.choice(["a", "b"], 60), "target": rng.choice(["x", "y", "z"], 60),
                          "source": [f"s{i % 7}" for i in range(60)],
                          "predicted": np.where(rng.random(60) < 0.1, np.nan, rng.integers(0, 4, 60).astype(float))})
    ranks = predicted_ranks(frame, ["method", "target"])
    for _, g in frame.groupby(["method", "target"]):
        expected = np.empty(len(g), int)
        expected[_order(g["predicted"].to_numpy(), g["source"].to_numpy())] = np.arange(1, len(g) + 1)
        assert ranks[g.index.to_numpy()].tolist() == expected.tolist()


def test_ranking_folds_in_threads_give_the_same_result():
    rng = np.random.default_rng(2)
    langs = [f"l{i}" for i in range(8)]
    df = pd.DataFrame([(s, t) for s in langs for t in langs], columns=["source", "target"])
    df["x"] = rng.normal(size=len(df))
    df["score"] = 50 + 3 * df["x"] + rng.normal(size=len(df))
    one = rank_sources(df, features=["x"], max_folds=4, lambdarank_estimators=20)
    two = rank_sources(df, features=["x"], max_folds=4, lambdarank_estimators=20, n_jobs=2)
    pd.testing.assert_frame_equal(one.candidates, two.candidates)


def test_inner_cv_choice_never_sees_the_held_out_target():
    """select=True: 'best' is, fold by fold, the candidate the inner CV chose; changing a held-out
    target's scores changes neither that fold's inner NDCGs nor its choice."""
    df = synthetic(seed=4, n=10)
    kwargs = dict(k=3, lambdarank_estimators=20, max_folds=3, select=True, inner_folds=2)
    res = rank_sources(df, ["distance", "size"], **kwargs)
    sel = res.selection
    assert len(sel) == 3 and set(sel["chosen"]) <= {"ols", "lambdarank", "ensemble"}
    assert {"inner_ndcg_ols", "inner_ndcg_lambdarank", "inner_ndcg_ensemble"} <= set(sel.columns)
    cands = res.candidates
    for fold, chosen in zip(sel["fold"], sel["chosen"]):
        targets = fold.split("+")
        best = cands[(cands.method == "best") & cands.target.isin(targets)].sort_values(["target", "source"])
        ref = cands[(cands.method == chosen) & cands.target.isin(targets)].sort_values(["target", "source"])
        np.testing.assert_array_equal(best["predicted"].to_numpy(), ref["predicted"].to_numpy())
    fold = sel["fold"].iloc[0]
    changed = df.copy()
    held = changed["target"].isin(fold.split("+"))
    changed.loc[held, "score"] = -changed.loc[held, "score"]  # reverses every held-out relevance
    again = rank_sources(changed, ["distance", "size"], **kwargs).selection
    pd.testing.assert_series_equal(again.iloc[0], sel.iloc[0])
    with pytest.raises(InputError, match="needs lambdarank"):
        rank_sources(df, ["distance", "size"], select=True, lambdarank=False)


def test_choice_keeps_lambdarank_unless_beaten_by_more_than_one_standard_error():
    from xltstats.models.ranking import _choose

    anchor = np.array([0.8, 0.9, 0.7, 0.85])
    noisy = anchor + np.array([0.2, -0.15, 0.1, -0.1])  # higher mean, difference within one SE
    clear = anchor + np.array([0.05, 0.04, 0.06, 0.05])
    assert _choose({"lambdarank": anchor, "noisy": noisy})[0] == "lambdarank"
    chosen, margin = _choose({"lambdarank": anchor, "noisy": noisy, "clear": clear})
    assert chosen == "clear" and margin == pytest.approx(0.05)


def test_stacked_lambdarank_feature_is_cross_fitted_by_target():
    """lambdarank_mixed's feature on a training row is the mixed model fitted without that row's target."""
    from xltstats.models import fit_mixed
    from xltstats.models.ranking import _Rankers
    from xltstats.models.validation import MixedEstimator, group_splits

    df = synthetic(seed=5, n=8)
    df["relevance"] = df.groupby("target")["score"].rank(method="min").astype(int)
    df["_candidate"] = True
    formula = "score ~ distance + size + (1|source) + (1|target)"
    rankers = _Rankers({"mixed": MixedEstimator(formula)}, ["distance", "size"], ["target"], 0, 3, 10, "score",
                       "mixed", "mixed")
    splits = group_splits(df["target"].to_numpy(), 2, 0)
    inner, train = rankers.inner(df, splits)
    assert set(inner) == {"mixed", "lambdarank", "lambdarank_mixed", "ensemble"}
    _, mask = splits[0]
    expected = fit_mixed(formula, df[~mask], warn=False).predict(df[mask]).to_numpy()
    np.testing.assert_allclose(train.loc[mask, "_stack_score"].to_numpy(), expected, rtol=1e-6)


def test_ranking_reuses_the_cross_validation_fits_of_the_same_target_folds(monkeypatch):
    """Folds that hold out the same targets and train on the same rows predict with the
    cross-validation's fitted estimators (no second fit) and give the same scores; a fold whose
    training rows differ (one score changed) fits again."""
    from xltstats.models.validation import cross_validate, default_estimators

    df = synthetic(seed=4, n=10)
    features = ["distance", "size"]
    estimators = {k: v for k, v in default_estimators(features, seed=0, hybrid=False).items() if k in ("ols", "gbt")}
    ranking_estimators = {"ols": OLSEstimator(features)}
    cv = cross_validate(df, estimators=estimators, scheme="leave-one-target-out", max_folds=5, keep_models=True)
    assert len(cv.fold_models) == 5
    plain = rank_sources(df, features, estimators=ranking_estimators, max_folds=5, lambdarank=False)
    fits = []
    original = OLSEstimator.fit
    monkeypatch.setattr(OLSEstimator, "fit", lambda self, data: fits.append(len(data)) or original(self, data))
    reused = rank_sources(df, features, estimators=ranking_estimators, max_folds=5, lambdarank=False,
                          fold_models=cv.fold_models)
    assert fits == []
    pd.testing.assert_frame_equal(plain.candidates, reused.candidates, check_exact=False, rtol=1e-12)
    changed = df.copy()
    changed.loc[changed["target"] == "l00", "score"] += 1.0  # l00 trains every fold but its own
    refit = rank_sources(changed, features, estimators=ranking_estimators, max_folds=5, lambdarank=False,
                         fold_models=cv.fold_models)
    assert len(fits) == 4  # the fold that holds l00 out has the cross-validation's training rows
    expected = rank_sources(changed, features, estimators=ranking_estimators, max_folds=5, lambdarank=False)
    pd.testing.assert_frame_equal(refit.candidates, expected.candidates, check_exact=False, rtol=1e-12)
