"""Model families -> pre-training tables; no borrowing for unknown models (issue 13 point 7)."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pandas as pd
import pytest

from xltstats.features import build_pair_features, data_sizes


@pytest.mark.parametrize("models, table", [
    (["xlm-roberta-base"], "xlm-r"), (["FacebookAI/xlm-roberta-large"], "xlm-r"), (["xlmr"], "xlm-r"),
    (["google/mt5-base", "mt5-small"], "mt5"), (["xltstats-tiny-mt5"], "mt5"),
    (["bert-base-multilingual-cased"], "mbert"), (["mbert"], "mbert"),
    (["aya"], "none"), (["llama3"], "none"), (["meta-llama/Meta-Llama-3-8B"], "none"),
    (["bloomz-560m"], "none"), (["LaBSE"], "none"), (["langrank-pos"], "none"),
    (["xlm-roberta-large", "t-ulrv6-large"], "none"),     # sumeval pools an unknown model
    (["xlm-roberta-base", "mt5-base"], "none"),            # two corpora: no single table
    (["umt5-base"], "none"), (["infoxlm-base"], "none"),   # other corpora, not mC4/CC-100 as such
])
def test_family_to_table(models, table):
    assert data_sizes.pretraining_model_for(models) == table
    note = data_sizes.pretraining_note(models)
    if table in data_sizes.PRETRAINING_TABLES:
        assert note is None
    else:
        assert "left out" in note


def test_note_names_unknown_models_and_never_cc100():
    note = data_sizes.pretraining_note(["aya", "llama3", "xlm-roberta-base"])
    assert "aya, llama3" in note and "xlm-roberta-base" not in note
    assert "rather than taken from another model's corpus" in note
    assert "different corpora" in data_sizes.pretraining_note(["xlmr", "mt5-base"])


def test_no_table_gives_missing_pretraining_features_but_keeps_the_rest():
    features = ["target_pretrain_share", "target_in_pretraining", "same_script"]
    none = build_pair_features([("eng", "deu"), ("eng", "hin")], features, model="none", cache=False)
    assert none[["target_pretrain_share", "target_in_pretraining"]].isna().all().all()
    assert none["same_script"].tolist() == [1.0, 0.0]
    xlmr = build_pair_features([("eng", "deu")], features, model="xlm-r", cache=False)
    assert xlmr["target_in_pretraining"].tolist() == [1.0]
    assert not math.isnan(xlmr["target_pretrain_share"][0])


@pytest.mark.skipif(not os.environ.get("XLTSTATS_MIRROR"), reason="XLTSTATS_MIRROR is not set")
def test_fit_of_an_unknown_model_leaves_pretraining_out_with_a_note(tmp_path):
    import numpy as np
    import yaml

    langs = ["eng", "fra", "fin", "tur", "jpn", "hin", "rus"]
    rng = np.random.default_rng(0)
    rows = [{"model": "aya-101", "task": "t", "source": s, "target": t,
             "score": float(rng.uniform(20, 90)), "metric": "accuracy", "n_source_examples": 1000,
             "n_target_examples": 0, "seed": 1} for s in langs for t in langs]
    data = tmp_path / "results.csv"
    pd.DataFrame(rows).to_csv(data, index=False)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({
        "features": ["syntactic_distance", "target_pretrain_share"],
        "covariates": ["target_in_pretraining"], "groups": {"syntax": ["syntactic_distance"]},
        "compare": [], "cv": {"schemes": []}, "ranking": {"enabled": False},
        "ols": {"n_boot": 1}, "fewshot": {"enabled": False},
        "report": False}), encoding="utf-8")
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, "-m", "xltstats.fit", "--data", str(data), "--config",
                           str(config), "--out", str(tmp_path / "fit"), "--quiet"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((tmp_path / "fit" / "manifest.json").read_text())
    assert any("no pre-training table is known for model(s) aya-101" in n for n in manifest["notes"])
    assert manifest["features_used"] == ["syntactic_distance"]


def test_multisource_pretraining_size_is_not_borrowed():
    from xltstats.errors import InputError
    from xltstats.studies.multisource import score_sets

    sets = [["deu", "fra"], ["fin", "tur"]]
    known = score_sets(sets, heuristics=["pretraining_size"], model="xlm-r")
    assert known["pretraining_size"].notna().all()
    missing = score_sets(sets, heuristics=["pretraining_size"], model="none", missing="nan")
    assert missing["pretraining_size"].isna().all()
    with pytest.raises(InputError, match="needs a model with a pre-training table"):
        score_sets(sets, heuristics=["pretraining_size"], model="none")
    assert "pretraining_size" not in score_sets(sets, model="none").columns
