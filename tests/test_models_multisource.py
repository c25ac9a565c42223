"""Multi-source aggregation checked by hand."""
import json
import math
import os

import numpy as np
import pandas as pd
import pytest

from xltstats.errors import InputError
from xltstats.models.multisource import aggregate_multisource

FEATURES = pd.DataFrame({
    "source": ["eng", "deu", "fra", "eng", "deu"],
    "target": ["swe", "swe", "swe", "tur", "tur"],
    "syntactic_distance": [0.4, 0.2, 0.5, 0.7, np.nan],
    "lexical_overlap": [0.1, 0.3, 0.05, 0.02, 0.01],
})


def results():
    return pd.DataFrame({
        "source": ["mul", "eng", "mul", "mul"],
        "target": ["swe", "swe", "tur", "swe"],
        "n_source_examples": [1500, 800, 1200, 100],
        "source_languages": [json.dumps({"deu": 500, "eng": 1000}), None,
                             json.dumps({"deu": 200, "eng": 1000}), json.dumps({"fra": 100, "deu": 0})],
        "score": [80.0, 78.0, 60.0, 70.0],
    })


def test_weighted_mean_min_max_entropy():
    out = aggregate_multisource(results(), FEATURES)
    r0 = out.iloc[0]
    assert r0["syntactic_distance"] == pytest.approx((1000 * 0.4 + 500 * 0.2) / 1500)
    assert r0["syntactic_distance_min"] == 0.2 and r0["syntactic_distance_max"] == 0.4
    assert r0["lexical_overlap_max"] == 0.3
    p = np.array([2 / 3, 1 / 3])
    assert r0["source_entropy"] == pytest.approx(-(p * np.log(p)).sum())
    assert r0["n_sources"] == 2 and r0["total_source_examples"] == 1500
    # single source row: the feature itself, entropy 0
    r1 = out.iloc[1]
    assert r1["syntactic_distance"] == 0.4 and r1["source_entropy"] == 0 and r1["n_sources"] == 1
    # a source with a missing feature is left out and the weights renormalised
    r2 = out.iloc[2]
    assert r2["syntactic_distance"] == pytest.approx(0.7)
    assert r2["lexical_overlap"] == pytest.approx((1000 * 0.02 + 200 * 0.01) / 1200)
    # zero-count sources do not count
    r3 = out.iloc[3]
    assert r3["n_sources"] == 1 and r3["syntactic_distance"] == 0.5


def test_errors_name_row_and_column():
    bad = results()
    bad.loc[2, "source_languages"] = "{eng: 5"
    with pytest.raises(InputError, match="row 3, column 'source_languages'"):
        aggregate_multisource(bad, FEATURES)
    bad.loc[2, "source_languages"] = json.dumps({"eng": -4})
    with pytest.raises(InputError, match="whole number >= 0"):
        aggregate_multisource(bad, FEATURES)
    with pytest.raises(InputError, match="already have"):
        aggregate_multisource(results().assign(lexical_overlap=1.0), FEATURES)


@pytest.mark.skipif(not os.environ.get("XLTSTATS_MIRROR"), reason="XLTSTATS_MIRROR is not set (shared published data)")
def test_sumeval_multisource_rows_get_model_ready_features():
    from xltstats.datasets import load_dataset
    from xltstats.features import build_pair_features
    from xltstats.models.ols import fit_ols

    df = load_dataset("sumeval")
    df = df[(df.task == "udpos") & (df.split == "train")]
    df = df[df["config_id"].isin(sorted(df["config_id"].unique())[:60])].reset_index(drop=True)
    langs = sorted(set(df.target) | {s for v in df.source_languages for s in json.loads(v)})
    features = build_pair_features(langs, features=["syntactic_distance", "genetic_distance"], on_unknown="nan")
    out = aggregate_multisource(df, features, features=["syntactic_distance", "genetic_distance"])
    counts = df.source_languages.map(lambda v: sum(1 for c in json.loads(v).values() if c > 0))
    assert (out["n_sources"] == counts).all()
    # hand check of one row's weighted mean
    row = out.iloc[0]
    weights = {k: v for k, v in json.loads(row.source_languages).items() if v > 0}
    table = features.set_index(["source", "target"])["syntactic_distance"]
    vals = {k: table.get((k, row.target), np.nan) for k in weights}
    known = {k: w for k, w in weights.items() if not math.isnan(vals[k])}
    expected = sum(vals[k] * w for k, w in known.items()) / sum(known.values())
    assert row["syntactic_distance"] == pytest.approx(expected)
    res = fit_ols(out, features=["syntactic_distance", "genetic_distance", "source_entropy"], cov_type="cluster2",
                  source="config_id")
    assert res.nobs > 1000 and np.isfinite(res.bse).all()
