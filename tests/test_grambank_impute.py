"""morphology_imputation: softImpute as URIEL+ runs it, checked on planted low-rank data, and its
account in a fit (tables, note, manifest); off, the fit is as before."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from xltstats.features import grambank_impute as gi


def planted(n=300, p=60, rank=3, noise=0.0, missing=0.4, seed=1):
    rng = np.random.default_rng(seed)
    truth = np.clip(rng.uniform(0, 1, (n, rank)) @ rng.uniform(0, 1, (rank, p)) / rank, 0, 1)
    noisy = np.clip(truth + rng.normal(0, noise, truth.shape), 0, 1) if noise else truth
    X = noisy.copy()
    X[rng.uniform(size=X.shape) < missing] = np.nan
    return truth, X


def test_svd_step_is_the_soft_thresholded_thin_svd():
    _, X = planted(missing=0.0)
    u, s, vt = np.linalg.svd(X, full_matrices=False)
    lam = s[2] * 0.9  # keeps three singular values
    expected = np.clip((u[:, :3] * (s[:3] - lam)) @ vt[:3], 0, 1)
    got, rank = gi._svd_step(X, lam)
    assert rank == 3
    np.testing.assert_allclose(got, expected, atol=1e-10)


@pytest.mark.parametrize("noise", [0.0, 0.02, 0.05, 0.1])
def test_planted_low_rank_matrix_is_recovered_to_the_noise_level(noise):
    truth, X = planted(noise=noise)
    gap = np.isnan(X)
    completed, rank, iters = gi.soft_impute(X, gi.max_singular_value(X) / 50)
    rmse = np.sqrt(np.mean((completed[gap] - truth[gap]) ** 2))
    column_means = np.nanmean(X, axis=0)
    mean_rmse = np.sqrt(np.mean((np.broadcast_to(column_means, X.shape)[gap] - truth[gap]) ** 2))
    # error grows with the noise (measured 0.011, 0.013, 0.025, 0.047; the zero-noise floor is the
    # shrinkage's bias) and stays well below filling column means (0.097)
    assert rmse < 0.015 + 0.5 * noise
    assert rmse < 0.5 * mean_rmse
    if noise == 0:
        assert rank == 3  # the planted rank
    assert np.array_equal(completed[~gap], X[~gap])  # observed cells untouched
    assert iters < gi.MAX_ITERS


def test_shrinkage_choice_is_seeded_and_prefers_what_recovers_hidden_cells():
    truth, X = planted(noise=0.02)
    binary = np.where(np.isnan(X), np.nan, np.round(X))
    first = gi.choose_shrinkage(binary, np.arange(X.shape[1]))
    again = gi.choose_shrinkage(binary, np.arange(X.shape[1]))
    assert first == again
    assert np.array_equal(gi.holdout_cells(binary), gi.holdout_cells(binary))
    assert not np.array_equal(gi.holdout_cells(binary), gi.holdout_cells(binary, seed=1))
    assert first["accuracy"] == max(t["accuracy"] for t in first["trials"])
    assert first["accuracy"] > 0.85  # rounded rank-3 data: far above the ~0.5 of a coin
    assert set(first["per_column"]) <= set(range(X.shape[1]))


@pytest.fixture()
def small_matrix(monkeypatch, tmp_path):
    """The real typological matrix cut to the tiny fit's languages and 400 others (seconds, not a minute)."""
    from test_reproduce import LANGS

    codes, columns, X, too_little = gi.typological_matrix()
    keep = sorted({codes.index(c) for c in LANGS if c in codes} | set(range(0, len(codes), len(codes) // 400)))
    small = ([codes[i] for i in keep], columns, X[keep], too_little)
    monkeypatch.setattr(gi, "typological_matrix", lambda: small)
    monkeypatch.setenv("XLTSTATS_CACHE", str(tmp_path / "cache"))
    gi.compute_imputation.cache_clear()
    yield small
    gi.compute_imputation.cache_clear()


@pytest.mark.skipif(not os.environ.get("XLTSTATS_MIRROR"), reason="XLTSTATS_MIRROR is not set")
def test_a_small_fit_lists_the_pairs_it_filled(small_matrix, tmp_path):
    from test_reproduce import TINY_CONFIG, tiny_results

    from xltstats import read_results
    from xltstats.pipeline import run_fit
    from xltstats.pipeline.config import FitConfig, load_config

    data = read_results(tiny_results(tmp_path / "tiny.csv"))
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_CONFIG.replace("syntactic_distance,", "syntactic_distance, morphological_distance,"),
                      encoding="utf-8")
    off = run_fit(load_config(config), data=data)
    on = run_fit(load_config(config).replace(morphology_imputation="softimpute"), data=data)
    assert FitConfig().morphology_imputation == "none"
    assert "morphology_imputed" not in off.tables and off.imputation is None
    # deu has no Grambank description: its pairs have no distance unless imputed
    assert off.design.features.query("source == 'deu'")["morphological_distance"].isna().all()
    table = on.tables["morphology_imputed"].set_index("language")
    assert table.loc["deu", "observed_features"] == 0 and table.loc["deu", "imputed_features"] == 75
    assert 0.5 < table.loc["deu", "mean_confidence"] <= 1
    assert table.loc["deu", "pairs_filled"] == 2 * (len(table) - 1) + 1  # with everyone, both ways, and itself
    pairs = on.tables["morphology_imputed_pairs"]
    filled = pairs[pairs["filled"]]
    assert filled["observed_distance"].isna().all() and filled["distance"].notna().all()
    assert set(zip(filled["source"], filled["target"])) >= {("deu", "eng"), ("eng", "deu")}
    assert "deu" in on.tables["morphology_imputed_pairs"]["source"].tolist()
    note = next(n for n in on.notes if n.startswith("morphology_imputation softimpute"))
    assert f"filled for {len(filled)} pairs" in note and "deu" in note
    assert on.imputation["pairs_filled"] == len(filled) and on.imputation["method"] == "softimpute"
    # pairs both observed and complete keep a distance from the completed vectors
    assert on.design.features["morphological_distance"].notna().sum() > off.design.features[
        "morphological_distance"].notna().sum()
    # the same imputation again (a fresh computation, then the disk cache): the same values
    gi.compute_imputation.cache_clear()
    fresh = gi.compute_imputation("softimpute")
    cached = gi.impute_grambank("softimpute")
    assert fresh["parameters"] == cached["parameters"]
    for code in fresh["values"]:
        assert np.array_equal(fresh["values"][code], cached["values"][code])


def test_off_leaves_the_features_as_they_were():
    from xltstats.features import build_pair_features, grambank

    pairs = [("eng", "deu"), ("fin", "tur"), ("deu", "deu")]
    default = build_pair_features(pairs, features=["morphological_distance"], cache=False)
    assert list(default.columns) == ["source", "target", "morphological_distance", "morphological_distance_coverage"]
    direct = grambank.morphological_pair_features(default["source"].tolist(), default["target"].tolist())
    np.testing.assert_array_equal(default["morphological_distance"].to_numpy(), direct["morphological_distance"])


def test_a_bad_value_exits_2_naming_the_key(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("morphology_imputation: knn\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "xltstats.fit", "--data", "xpos", "--config", str(config),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert "morphology_imputation" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()
