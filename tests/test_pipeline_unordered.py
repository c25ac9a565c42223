"""Unordered (symmetric) pairs: ``pairs: unordered`` (xltstats.pipeline.pairs) -- canonical pairs,
symmetric features, one effect per language, CV by held-out language, no source ranking."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xltstats.errors import ConfigError
from xltstats.models.simulate import UnorderedSimulator
from xltstats.models.validation import MeanBaseline, make_splits, training_mask
from xltstats.pipeline import FitConfig
from xltstats.pipeline.pairs import (canonicalise, directional_stem, looks_unordered, partner, resolve_pairs,
                                     symmetrise, unordered_formula)

#: languages the CC-100 table (pre-training shares) partly covers: wol, quz and yor are not in it
LANGUAGES = ["afr", "amh", "ara", "deu", "eng", "fin", "fra", "hin", "ita", "jpn", "quz", "rus", "spa", "tur",
             "wol", "yor", "zho", "kor"]


def results(sim: UnorderedSimulator, seed=0) -> pd.DataFrame:
    table = sim.draw(seed)
    return table.assign(model="xlm-roberta-base", metric="accuracy", n_source_examples=0,
                        n_target_examples=0)


def test_detection_asks_for_confirmation_and_ignores_ordered_tables():
    table = results(UnorderedSimulator(LANGUAGES, {"x": 1.0}))
    assert "none of its 153 language pairs appears in both orders" in looks_unordered(table)
    with pytest.raises(ConfigError, match="set 'pairs: unordered'.*'pairs: ordered'"):
        resolve_pairs(FitConfig(), table)
    assert resolve_pairs(FitConfig(pairs="ordered"), table) == "ordered"
    both = pd.concat([table, table.rename(columns={"source": "target", "target": "source"})])
    assert looks_unordered(both) is None and resolve_pairs(FitConfig(), both) == "ordered"
    english_centric = table[table["source"] == "afr"]  # one source: an ordered design
    assert looks_unordered(english_centric) is None
    with pytest.raises(ConfigError, match="'pairs' must be one of auto, ordered, unordered"):
        FitConfig(pairs="symmetric")


def test_directional_names():
    assert directional_stem("target_in_pretraining") == ("target", "in_pretraining")
    assert directional_stem("feats_per_token_source") == ("source", "feats_per_token")
    assert directional_stem("n_source_examples") == ("source", "n_examples")
    assert directional_stem("genetic_distance") is None and directional_stem("source") is None
    assert partner("source_pretrain_share") == "target_pretrain_share"
    assert partner("feats_per_token_target") == "feats_per_token_source"


def test_canonical_pairs_swap_side_columns_and_average_both_orders():
    rows = pd.DataFrame({
        "model": "m", "task": "t", "seed": 0, "n_source_examples": [5, 7, 0], "n_target_examples": [1, 2, 0],
        "source": ["fra", "deu", "eng"], "target": ["deu", "fra", "spa"], "score": [10.0, 14.0, 3.0],
        "source_size": [2.0, 1.0, 5.0], "target_size": [1.0, 2.0, 6.0]})
    out = canonicalise(rows, [])
    # (fra, deu) with n_source 5 / n_target 1 is (deu, fra) with n_source 1 / n_target 5: not the
    # key of the (deu, fra) row (7 / 2), so the two stay apart
    assert out[["source", "target"]].values.tolist() == [["deu", "fra"], ["deu", "fra"], ["eng", "spa"]]
    assert out[["n_source_examples", "n_target_examples", "source_size", "target_size"]].values.tolist() == [
        [1, 5, 1.0, 2.0], [7, 2, 1.0, 2.0], [0, 0, 5.0, 6.0]]
    same = rows.assign(n_source_examples=0, n_target_examples=0)
    notes = []
    out = canonicalise(same, notes)
    deu_fra = out[out["source"] == "deu"].iloc[0]
    assert deu_fra["score"] == 12.0 and deu_fra["source_size"] == 1.0 and deu_fra["target_size"] == 2.0
    assert "1 pair(s) were given in both orders" in notes[0] and "largest difference between the orders: 4" in notes[0]
    with pytest.raises(ConfigError, match="multi-source"):
        canonicalise(rows.assign(source="mul"), [])


def test_canonical_keys_swap_counts_too():
    rows = pd.DataFrame({"model": "m", "task": "t", "seed": 0, "source": ["fra", "deu"], "target": ["deu", "fra"],
                         "n_source_examples": [5, 1], "n_target_examples": [1, 5], "score": [1.0, 3.0]})
    notes = []
    out = canonicalise(rows, notes)  # the same experiment written both ways: one pair, averaged
    assert len(out) == 1 and out["score"].iat[0] == 2.0
    assert out[["n_source_examples", "n_target_examples"]].values.tolist() == [[1, 5]]


def test_symmetrise_min_max_from_the_partner_or_the_reversed_pair():
    data = pd.DataFrame({"source": ["a", "a", "b"], "target": ["b", "c", "c"],
                         "source_share": [1.0, 1.0, 2.0], "target_share": [2.0, 3.0, 3.0],
                         "target_flag": [0.0, 1.0, 1.0], "target_lone": [4.0, 5.0, 6.0], "x": [1.0, 2.0, 3.0]})
    reversed_flag = pd.Series([1.0, 1.0, 0.0])  # the source side of target_flag
    notes = []
    out, used, renamed = symmetrise(data, ["x", "source_share", "target_share", "target_flag", "target_lone"], notes,
                                    reversed_values=lambda c: reversed_flag, computed={"target_flag"})
    assert used == ["x", "share_min", "share_max", "flag_min", "flag_max"]
    assert out["share_min"].tolist() == [1.0, 1.0, 2.0] and out["share_max"].tolist() == [2.0, 3.0, 3.0]
    assert out["flag_min"].tolist() == [0.0, 1.0, 0.0] and out["flag_max"].tolist() == [1.0, 1.0, 1.0]
    assert renamed == {"source_share": ["share_min", "share_max"], "target_share": ["share_min", "share_max"],
                       "target_flag": ["flag_min", "flag_max"]}
    assert any("target_lone belongs to the target language" in n and "left out" in n for n in notes)


def test_unordered_formula():
    assert unordered_formula("score ~ a + b + (1 | source) + (1 | target) + (1 | task)") == \
        "score ~ a + b + (1 | mm(source, target)) + (1 | task)"


@pytest.mark.parametrize("max_folds", [None, 4])
def test_leave_one_language_out_holds_out_every_pair_of_a_language(max_folds):
    table = UnorderedSimulator(LANGUAGES[:9], {"x": 1.0}, n_seeds=2).draw(0)
    splits = make_splits(table, "leave-one-language-out", max_folds=max_folds, seed=3)
    tested = np.sum([test for _, test in splits], axis=0)
    assert (tested == 1).all()  # every row predicted exactly once
    for label, test in splits:
        held = set(label.split("+"))
        train = training_mask(table, "leave-one-language-out", label, test)
        seen = set(table.loc[train, "source"]) | set(table.loc[train, "target"])
        assert not held & seen  # a held-out language is never seen in training
        assert not (train & test).any()
        rows = table[test]
        assert (rows["source"].isin(held) | rows["target"].isin(held)).all()
    if max_folds:
        assert len(splits) == max_folds


def test_symmetric_mean_baseline():
    train = pd.DataFrame({"source": ["a", "a", "b"], "target": ["b", "c", "c"], "score": [1.0, 3.0, 5.0]})
    fitted = MeanBaseline(symmetric=True).fit(train)
    assert fitted.language_mean_ == {"a": 2.0, "b": 3.0, "c": 4.0}
    pi = fitted.predict_interval(pd.DataFrame({"source": ["a", "c", "x"], "target": ["b", "z", "y"]}))
    assert pi["prediction"].tolist() == [2.5, 4.0, 3.0]
    # same as (b, a): the baseline does not care about the order
    flipped = fitted.predict_interval(pd.DataFrame({"source": ["b"], "target": ["a"]}))
    assert flipped["prediction"].iat[0] == 2.5


@pytest.fixture(scope="module")
def unordered_fit():
    from xltstats.pipeline import run_fit

    sim = UnorderedSimulator(LANGUAGES, {"x": 2.0}, intercept=40.0, sd_language=3.0, sd_residual=1.0, n_seeds=2)
    data = results(sim, seed=5)
    # half of the pairs written the other way round, with both orders of three pairs
    flip = np.arange(len(data)) % 2 == 1
    data.loc[flip, ["source", "target"]] = data.loc[flip, ["target", "source"]].to_numpy()
    config = FitConfig.from_dict(dict(
        pairs="unordered", features=["x", "source_pretrain_share", "target_pretrain_share"],
        covariates=["target_in_pretraining", "same_language"],
        groups={"data": ["source_pretrain_share", "target_pretrain_share", "target_in_pretraining"], "other": ["x"]},
        compare=[], cv={"k": 3, "max_folds": 6, "n_jobs": 1}, ols={"n_boot": 20}, report=False))
    return sim, run_fit(config, data=data)


def test_fit_of_unordered_pairs(unordered_fit):
    sim, fit = unordered_fit
    design = fit.design
    assert design.pairs == "unordered"
    assert (design.complete["source"] < design.complete["target"]).all()
    assert design.used == ["pretrain_share_min", "pretrain_share_max", "in_pretraining_min",
                           "in_pretraining_max", "x"]
    assert design.groups["data"] == ["pretrain_share_min", "pretrain_share_max", "in_pretraining_min",
                                     "in_pretraining_max"]
    assert fit.formula == ("score ~ pretrain_share_min + pretrain_share_max + in_pretraining_min + "
                           "in_pretraining_max + x + (1 | mm(source, target))")
    # one effect per language, recovered (truth 9 from 18 languages: within a factor 2.5)
    variance = fit.mixed.variance_components
    assert 9 / 2.5 < variance["mm(source, target)"] < 9 * 2.5 and abs(variance["Residual"] - 1) < 0.2
    assert abs(fit.mixed.params["x"] - 2.0) < 0.1
    assert fit.ols.cov_type == "dyadic" and fit.ols.df_inference == len(LANGUAGES) - 1
    assert "ranking" not in fit.tables and fit.ranking is None
    assert set(fit.tables["cv"]["scheme"]) == {"leave-one-language-out", "random"}
    notes = " | ".join(fit.notes)
    assert "source ranking skipped: the pairs are unordered" in notes
    assert "leave-one-target-out and leave-one-source-out replaced by leave-one-language-out" in notes
    assert "clustered by language (cov_type dyadic)" in notes
    assert "source_pretrain_share -> pretrain_share_min and pretrain_share_max" in notes
    # the mixed model beats the symmetric mean baseline on held-out languages
    cv = fit.tables["cv"].set_index(["scheme", "estimator"])
    assert cv.loc[("leave-one-language-out", "mixed"), "rmse"] < cv.loc[("leave-one-language-out", "mean"), "rmse"]


def test_prediction_does_not_depend_on_the_order(unordered_fit):
    _, fit = unordered_fit
    pairs = pd.DataFrame({"source": ["fin", "yor", "deu"], "target": ["afr", "eng", "wol"], "x": [0.5, -1.0, 0.0]})
    flipped = pairs.rename(columns={"source": "target", "target": "source"})
    ours, theirs = fit.predict(pairs), fit.predict(flipped)
    pd.testing.assert_frame_equal(ours, theirs, check_like=True)
    assert (ours["source"] < ours["target"]).all()
    blups = fit.mixed.random_effects["mm(source, target)"]["(Intercept)"]
    fixed = fit.mixed.predict(ours, include_random=False)
    expected = fixed + ours["source"].map(blups).to_numpy() + ours["target"].map(blups).to_numpy()
    np.testing.assert_allclose(ours["prediction"], expected, rtol=1e-9)
    assert ours.loc[ours["target"] == "yor", "in_pretraining_min"].iat[0] == 0  # yor is not in CC-100
    assert ours.loc[ours["target"] == "yor", "in_pretraining_max"].iat[0] == 1  # eng is


def test_a_formula_that_uses_the_order_is_refused():
    from xltstats.pipeline import run_fit

    data = results(UnorderedSimulator(LANGUAGES[:10], {"x": 1.0}))
    base = dict(pairs="unordered", features=["x"], covariates=[], report=False, groups={}, compare=[])
    with pytest.raises(ConfigError, match=r"\(1 \| source\) depends on which language"):
        run_fit(FitConfig.from_dict(dict(base, mixed={"formula": "score ~ x + (1 | source) + (1 | target)"})),
                data=data)
    with pytest.raises(ConfigError, match="n_source_examples belongs to one language"):
        run_fit(FitConfig.from_dict(dict(base, mixed={
            "formula": "score ~ x + n_source_examples + (1 | mm(source, target))"})), data=data)


def test_fit_folder_and_report_say_why_there_is_no_ranking(unordered_fit, tmp_path):
    from xltstats.pipeline import FitFolder
    from xltstats.report.sections import FitReport

    _, fit = unordered_fit
    folder = FitFolder(tmp_path / "fit").write(fit)
    assert FitFolder(folder).manifest["config"]["pairs"] == "unordered"
    report = FitReport(folder)
    text = report.recommendations()
    assert "the pairs are unordered" in text and "no sources to recommend" in text
    assert not (folder / "tables" / "ranking.csv").exists()
    from xltstats.models.persist import load_model

    new = fit.predict(pd.DataFrame({"source": ["eng"], "target": ["deu"], "x": [0.1]}))
    saved = load_model(folder).prediction_interval(new)
    assert saved["prediction"].iat[0] == pytest.approx(new["prediction"].iat[0], rel=1e-9)


def test_the_fit_command_stops_on_a_table_that_looks_unordered(tmp_path, capsys):
    """exit 2, one line naming the setting, nothing written; with 'pairs: unordered' it fits."""
    from xltstats.fit import main

    data = results(UnorderedSimulator(LANGUAGES[:8], {"x": 1.0}), seed=2).drop(columns=["x"])
    path = tmp_path / "bitext.csv"
    data.to_csv(path, index=False)
    code = main(["--data", str(path), "--out", str(tmp_path / "fit"), "--quiet", "--no-report"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "looks like unordered (symmetric) pairs: none of its 28 language pairs appears in both orders" in err
    assert "set 'pairs: unordered'" in err and not (tmp_path / "fit").exists()
