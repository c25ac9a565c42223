"""Multi-source aggregation checked by hand."""
import json
import math

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
    with pytest.raises(InputError, match="non-negative"):
        aggregate_multisource(bad, FEATURES)
    with pytest.raises(InputError, match="already have"):
        aggregate_multisource(results().assign(lexical_overlap=1.0), FEATURES)
