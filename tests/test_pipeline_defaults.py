"""The default feature set per table (no default fit drops more than 10% of its rows without
saying so) and ``feature_aliases`` (a dataset's own columns under xltstats' names)."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from xltstats.errors import ConfigError
from xltstats.pipeline import FitConfig
from xltstats.pipeline.config import DEFAULT_COVARIATES, DEFAULT_FEATURES
from xltstats.pipeline.design import DEFAULT_DROP_LIMIT, apply_aliases, prune_default_columns



def _table(n=200, missing=None, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"score": rng.normal(size=n)})
    for column, share in (missing or {}).items():
        values = rng.normal(size=n)
        values[: int(round(share * n))] = np.nan
        frame[column] = rng.permutation(values)
    return frame


def test_a_default_feature_that_costs_more_than_ten_percent_is_left_out_with_a_note():
    data = _table(missing={"syntactic_distance": 0.02, "morphological_distance": 0.45,
                           "char_ngram_similarity": 0.08, "genetic_distance": 0.0, "ldnd": 0.30})
    used = ["syntactic_distance", "morphological_distance", "char_ngram_similarity", "genetic_distance", "ldnd"]
    notes = []
    kept = prune_default_columns(data, used, FitConfig(), notes)
    assert kept == ["syntactic_distance", "char_ngram_similarity", "genetic_distance"]
    assert data[kept].isna().any(axis=1).mean() <= DEFAULT_DROP_LIMIT
    assert notes[0].startswith("default feature morphological_distance is missing for 90 of the 200 rows "
                               "with a score (45%)") and "list it in 'features'" in notes[0]
    assert notes[1].startswith("default covariate ldnd") and "list it in 'covariates'" in notes[1]


def test_the_union_is_bounded_too():
    """Three features each missing 6% of different rows: together 18%; the greedy rule drops until
    the union is within 10%."""
    n = 300
    data = pd.DataFrame({"score": np.ones(n), "syntactic_distance": 1.0, "genetic_distance": 1.0,
                         "geographic_distance": 1.0})
    for i, column in enumerate(["syntactic_distance", "genetic_distance", "geographic_distance"]):
        data.loc[i * 18:(i + 1) * 18 - 1, column] = np.nan
    notes = []
    kept = prune_default_columns(data, ["syntactic_distance", "genetic_distance", "geographic_distance"],
                                 FitConfig(), notes)
    # one out: 36 rows (12%) still lost; a second out: 18 rows (6%)
    assert len(kept) == 1 and data[kept].isna().any(axis=1).mean() == pytest.approx(18 / 300)
    assert len(notes) == 2


def test_features_asked_for_by_name_are_never_dropped():
    data = _table(missing={"morphological_distance": 0.45, "ldnd": 0.3})
    config = FitConfig(features=("morphological_distance",))
    notes = []
    assert prune_default_columns(data, ["morphological_distance", "ldnd"], config, notes) == \
        ["morphological_distance"]  # ldnd: a default covariate, still pruned
    both = FitConfig(features=("morphological_distance",), covariates=("ldnd",))
    assert prune_default_columns(data, ["morphological_distance", "ldnd"], both, []) == \
        ["morphological_distance", "ldnd"]
    assert tuple(FitConfig().features) == DEFAULT_FEATURES and tuple(FitConfig().covariates) == DEFAULT_COVARIATES


@pytest.mark.needs_mirror
def test_registry_default_fits_drop_at_most_ten_percent():
    from xltstats.datasets import load_dataset
    from xltstats.pipeline.design import model_table

    mirror = os.environ["XLTSTATS_MIRROR"]
    data = load_dataset("xpos", mirror=mirror)
    table = model_table(data, FitConfig())
    assert 1 - len(table.complete) / len(data) <= DEFAULT_DROP_LIMIT
    assert "morphological_distance" not in table.used
    assert any(n.startswith("default feature morphological_distance is missing for 3325 of the 6825") for n in table.notes)
    # any list other than the default one is used as given (xpos ships pre-training sizes, so the
    # shares of the default list are not used anyway)
    forced = model_table(data, FitConfig(features=DEFAULT_FEATURES[:-2]))
    assert "morphological_distance" in forced.used and "char_ngram_similarity" in forced.used


def test_aliases_config_checks():
    assert FitConfig(feature_aliases={"genetic": "genetic_distance"}).feature_aliases == {"genetic": "genetic_distance"}
    with pytest.raises(ConfigError, match="'feature_aliases.genetic' must name another column than itself"):
        FitConfig(feature_aliases={"genetic": "genetic"})
    with pytest.raises(ConfigError, match="'feature_aliases' gives 'genetic_distance' to more than one column"):
        FitConfig(feature_aliases={"a": "genetic_distance", "b": "genetic_distance"})
    with pytest.raises(ConfigError, match="'feature_aliases.genetic' must be a non-empty string"):
        FitConfig(feature_aliases={"genetic": 3})
    with pytest.raises(ConfigError, match="'feature_aliases' must be a mapping"):
        FitConfig(feature_aliases=["genetic"])


def test_aliases_rename_and_refuse():
    data = pd.DataFrame({"source": ["a"], "target": ["b"], "genetic": [0.3], "syntactic": [0.1]})
    config = FitConfig(feature_aliases={"genetic": "genetic_distance"})
    notes = []
    out = apply_aliases(data, config, notes)
    assert out["genetic_distance"].tolist() == [0.3] and "genetic" not in out.columns
    assert notes == ["the dataset's column genetic is used as genetic_distance (feature_aliases)"]
    with pytest.raises(ConfigError, match="'feature_aliases.gen': the data has no column 'gen'"):
        apply_aliases(data, FitConfig(feature_aliases={"gen": "genetic_distance"}))
    with pytest.raises(ConfigError, match="already has a column 'syntactic'"):
        apply_aliases(data, FitConfig(feature_aliases={"genetic": "syntactic"}))
    assert apply_aliases(data.drop(columns="genetic"), config, required=False).columns.tolist() == \
        ["source", "target", "syntactic"]


def test_a_fit_uses_the_dataset_column_under_its_alias():
    from xltstats.models.simulate import UnorderedSimulator
    from xltstats.pipeline import run_fit

    table = UnorderedSimulator(["afr", "deu", "eng", "fin", "fra", "hin", "ita", "jpn", "rus", "spa", "tur", "zho"],
                               {"genetic": -2.0, "syntactic": 0.0}, sd_language=1.0, sd_residual=0.5).draw(1)
    data = table.assign(model="m", metric="accuracy", n_source_examples=0, n_target_examples=0)
    both = pd.concat([data, data.rename(columns={"source": "target", "target": "source"})], ignore_index=True)
    config = FitConfig.from_dict({
        "features": ["genetic_distance"], "covariates": [], "feature_aliases": {"genetic": "genetic_distance"},
        "groups": {}, "compare": [], "cv": {"schemes": ["random"], "k": 3}, "report": False})
    fit = run_fit(config, data=both)
    assert fit.used == ["genetic_distance"]
    merged = fit.design.complete.merge(both, on=["source", "target", "seed"], suffixes=("", "_given"))
    np.testing.assert_array_equal(merged["genetic_distance"], merged["genetic"])
    assert abs(fit.mixed.params["genetic_distance"] + 2.0) < 0.15
    notes = " | ".join(fit.notes)
    assert "the dataset's column genetic is used as genetic_distance (feature_aliases)" in notes
    assert ("the dataset's column(s) syntactic (syntactic_distance) look like xltstats features but are not "
            "used; to use them instead of xltstats' own, set 'feature_aliases: {syntactic: syntactic_distance}'") in notes
