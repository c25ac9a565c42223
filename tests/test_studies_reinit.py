"""Re-initialisation drops and their mixed model on a table with planted effects."""
import numpy as np
import pandas as pd
import pytest

from xltstats.errors import InputError
from xltstats.studies.reinit import drops, paired_deltas, reinit_model

LANGS = ["eng", "fra", "deu", "spa", "ita", "por"]
PLANTED = {"none": (0.0, 0.0), "0-1": (-0.02, -0.20), "10-11": (-0.01, -0.01)}  # (in-language, zero-shot)


def _table(seeds=(1, 2, 3)):
    rng = np.random.default_rng(0)
    rows = []
    for source in LANGS[:3]:
        for seed in seeds:
            base = {t: 0.7 + 0.05 * rng.normal() for t in LANGS}
            for block, (d_in, d_zs) in PLANTED.items():
                for target in LANGS:
                    delta = d_in if target == source else d_zs
                    rows.append({"model": "m", "task": "pos", "source": source, "target": target,
                                 "score": base[target] + delta + 0.003 * rng.normal(), "metric": "accuracy",
                                 "n_source_examples": 100, "n_target_examples": 0, "seed": seed,
                                 "condition": f"reinit={block}"})
    return pd.DataFrame(rows)


def test_drops_recover_planted_effects():
    d = drops(_table(), n_boot=300).set_index("block")
    assert list(d.index) == ["0-1", "10-11"]  # numeric order
    assert d.loc["0-1", "zero_shot_delta"] == pytest.approx(-0.20, abs=0.01)
    assert d.loc["0-1", "in_language_delta"] == pytest.approx(-0.02, abs=0.01)
    assert d.loc["0-1", "zero_shot_ci_low"] < -0.20 + 0.01 < d.loc["0-1", "zero_shot_ci_high"] + 0.01
    assert d.loc["0-1", "relative_gap_change"] == pytest.approx(-0.18, abs=0.015)
    assert d.loc["10-11", "zero_shot_n"] == 3 * 3 * 5


def test_mixed_model_interaction():
    table, notes = reinit_model(_table())
    est = table.set_index("term")["estimate"]
    assert est["zero_shot"] == pytest.approx(-0.18, abs=0.01)  # reference block 0-1
    assert est["C(block)[T.10-11]:zero_shot"] == pytest.approx(0.18, abs=0.01)
    assert "(1|seed)" in table["formula"].iloc[0]


def test_missing_baseline_is_an_error():
    t = _table()
    t = t[~((t["condition"] == "reinit=none") & (t["target"] == "spa") & (t["seed"] == 2))]
    with pytest.raises(InputError, match="no reinit=none row.*target spa, seed 2"):
        paired_deltas(t)
