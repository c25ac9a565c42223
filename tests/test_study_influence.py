"""Influence study analysis: neg_inf loader (0,0 missing, code map), planted effects recovered
(categories, fixed effects, the seen-vs-unseen contrast), Holm, the CLI."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xltstats.errors import InputError
from xltstats.studies._common import holm
from xltstats.studies.influence import (categories, influence_matrix, influence_model,
                                        influence_rows, read_neg_inf)

REPO = Path(__file__).resolve().parents[1]
NEG_INF = REPO / "tests" / "fixtures" / "studies" / "neg_inf_pos.csv"


def test_neg_inf_lines_failed_evaluations_are_missing_not_zero():
    runs = read_neg_inf(NEG_INF, model="mbert", task_languages={"en": 100, "fr": 50})
    r = runs.results
    assert (r["score"] > 0).all()  # no 0,0 line became a score
    assert runs.failed[["line", "lang"]].values.tolist() == [[3, "jap"], [19, "fre"]]
    # jap is Japanese here (ISO 639-3 'jap' is Jaruára), fre -> fra, gn -> grn
    assert {"jpn", "fra", "grn"} <= set(r["target"]) and "jap" not in set(r["target"])
    mlm = r[(r["method"] == "mlm") & (r["source"] == "ita") & (r["target"] == "jpn")]
    assert mlm["seed"].tolist() == [2]  # run 1 failed: missing, run 2 kept
    assert mlm["influence"].round(4).tolist() == [0.01]  # 0.54 - baseline 0.53 (accuracy = m2)
    assert set(r[r["method"] == "baseline"]["condition"]) == {"method=baseline;mlm_steps=1",
                                                              "method=baseline;mlm_steps=10"}
    pair = r[r["source"] == "mul"]
    assert pair["condition"].tolist()[0] == "compose=fuse;method=adapter"
    rows = influence_rows(r)
    assert rows["influence"].notna().all()
    assert (rows["target"] != "grn").all()  # no baseline for grn: left out, counted
    assert rows.attrs["n_without_baseline"] == 1


def test_neg_inf_bad_lines(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("ita_1_1,pos,en,0.9,0.91\nita_1_1,pos,xx-klingon,0.9,0.91\n")
    with pytest.raises(InputError) as caught:
        read_neg_inf(path, model="mbert")
    assert caught.value.row == 2 and caught.value.column == "lang" and "bad.csv" in str(caught.value)
    path.write_text("ita_1_1,pos,en,0.9\n")
    with pytest.raises(InputError, match="expected 5 fields"):
        read_neg_inf(path, model="mbert")
    path.write_text("ita_1_1,sentiment,en,0.9,0.8\n")
    with pytest.raises(InputError, match="unknown neg_inf task") as caught:
        read_neg_inf(path, model="mbert")
    assert caught.value.column == "task"


def test_holm_matches_the_step_down_formula():
    p = np.array([0.01, 0.04, 0.03, np.nan, 0.005])
    # sorted 0.005, 0.01, 0.03, 0.04 -> 4*0.005, 3*0.01, 2*0.03, 1*0.04, running max
    assert np.allclose(holm(p)[[4, 0, 2, 1]], [0.02, 0.03, 0.06, 0.06])
    assert np.isnan(holm(p)[3])


def planted(seed=0):
    """Influence = +0.04 for targets unseen in pre-training (beneficiary), -0.04 for four seen
    targets (interference-prone), 0 for four seen (neutral), - 0.03 x centred syntactic distance,
    + a small donor effect and run noise; baseline 0.7."""
    rng = np.random.default_rng(seed)
    sources = [f"s{i}" for i in range(8)]
    groups = {"beneficiary": 0.04, "interference-prone": -0.04, "neutral": 0.0}
    targets = {f"t{g[0]}{i}": (g, effect) for g, effect in groups.items() for i in range(4)}
    donor = dict(zip(sources, rng.normal(0, 0.002, len(sources))))
    rows = []
    for t, (group, effect) in targets.items():
        rows.append(dict(source="mul", target=t, seed=1, condition="method=baseline", score=0.7,
                         source_languages='{"eng": 100}'))
        for s in sources:
            syn = rng.uniform(0, 1)
            for run in (1, 2, 3):
                value = effect - 0.03 * (syn - 0.5) + donor[s] + rng.normal(0, 0.002)
                rows.append(dict(source=s, target=t, seed=run, condition="compose=stack;method=adapter",
                                 score=0.7 + value, syntactic_distance=syn,
                                 target_in_pretraining=0.0 if group == "beneficiary" else 1.0))
    df = pd.DataFrame(rows).assign(model="m", task="pos", metric="accuracy", n_source_examples=100,
                                   n_target_examples=0)
    return df, {t: g for t, (g, _) in targets.items()}


def test_planted_effects_are_recovered():
    df, truth = planted()
    rows = influence_rows(df)
    matrix = influence_matrix(rows)
    assert len(matrix) == 8 * 12 and (matrix["n_runs"] == 3).all()
    assert matrix["p_holm"].ge(matrix["p_value"]).all()
    cats = categories(rows, n_boot=200, seed=1)
    receivers = cats[cats["role"] == "receiver"].set_index("language")["category"].to_dict()
    assert receivers == truth
    donors = cats[cats["role"] == "donor"]["category"]
    assert (donors == "neutral").all()  # no donor helps or hurts all targets
    assert "interference-prone when the whole interval" in cats.attrs["rule"]
    table, notes = influence_model(rows, ["syntactic_distance", "target_in_pretraining"])
    fixed = table[table["effect"] == "fixed"].set_index("term")
    low, high = fixed.loc["syntactic_distance", ["conf_low", "conf_high"]]
    assert low < -0.03 < high and high < 0
    contrast = table[table["effect"] == "contrast"].iloc[0]
    # unseen minus seen: 0.04 - mean(-0.04, 0) = 0.06
    assert contrast["conf_low"] < 0.06 < contrast["conf_high"] and contrast["conf_low"] > 0


def test_cli_on_neg_inf_lines(tmp_path, capsys):
    from xltstats.studies.influence.__main__ import main

    out = tmp_path / "out"
    assert main(["--neg-inf", str(NEG_INF), "--model", "mbert", "--out", str(out), "--n-boot", "100",
                 "--features", "syntactic_distance"]) == 0
    assert {"report.html", "influence_matrix.csv", "categories.csv", "failed.csv"} <= \
        {p.name for p in out.iterdir()}
    assert "Failed evaluations" in (out / "report.html").read_text()
    assert main(["--neg-inf", str(NEG_INF), "--out", str(out)]) == 2
    assert "--model" in capsys.readouterr().err
