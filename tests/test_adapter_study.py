"""Adapter study configs (influence, compositions, language arithmetic): validation before any
training, job expansion and keys, published-scale plans, the continued-MLM stage."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from xltstats.errors import ConfigError
from xltstats.experiments.config import load_study
from xltstats.experiments.plan import expand, row_key

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "experiments" / "tiny_influence.yaml"


def variant(tmp_path, base=TINY, **changes):
    raw = yaml.safe_load(base.read_text())
    section = raw["adapter_study"]
    for key, value in changes.items():
        if key.startswith("adapter_study."):
            parts = key.split(".")[1:]
            target = section
            for part in parts[:-1]:
                target = target.setdefault(part, {})
            target[parts[-1]] = value
        else:
            raw[key] = value
    raw["run_dir"] = str(tmp_path / "run")
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_tiny_influence_jobs_and_keys():
    study = load_study(TINY)
    jobs = expand(study)
    kinds = [j.kind for j in jobs]
    assert kinds.count("base") == 1 and kinds.count("lang_adapter") == 3
    assert kinds.count("mlm") == 3 * 2 * 2  # transfer languages x k x runs
    assert kinds.count("compose") == 3 + 3 * 3  # singles stacked + pairs x (fuse, outavg, paramavg)
    assert [j.stage for j in jobs] == sorted(j.stage for j in jobs)  # training stages first
    keys = [row_key(study, j, u) for j in jobs for u in j.units]
    assert len(keys) == len(set(keys)) == 5 + 12 * 5 + 12 * 5
    mlm = next(j for j in jobs if j.kind == "mlm")
    assert mlm.units[0].condition_text == "method=mlm;mlm_steps=1"
    assert "task_adapter-udpos-seed1" in mlm.needs
    pair = next(j for j in jobs if j.kind == "compose" and j.source == "mul")
    assert pair.units[0].condition_text.startswith("compose=fuse;method=adapter")


def test_adapter_hyperparameters_change_the_hash(tmp_path):
    a = load_study(variant(tmp_path))
    b = load_study(variant(tmp_path, **{"adapter_study.language_adapter.reduction_factor": 8}))
    assert a.config_hash != b.config_hash
    c = load_study(variant(tmp_path, **{"adapter_study.transfer_languages": ["ita", "por"]}))
    assert c.config_hash == a.config_hash  # the grid is not part of the hash


@pytest.mark.parametrize("changes, field, message", [
    ({"adapter_study.compositions.compose": ["stack", "concat"]}, "adapter_study.compositions.compose[1]",
     "unknown composition 'concat'"),
    ({"adapter_study.compositions.compose": ["stack", "fuse", "fuse"]}, "adapter_study.compositions.compose",
     "conflicting conditions"),
    ({"adapter_study.transfer_languages": ["ita", "gub"]}, "adapter_study.transfer_languages",
     "'gub' has no text in the UDHR corpus"),
    ({"adapter_study.text": "webcrawl"}, "adapter_study.text.source", "unknown text source"),
    ({"adapter_study.language_adapter.non_linearity": "mish"},
     "adapter_study.language_adapter.non_linearity", "unknown activation"),
    ({"adapter_study.influence.mlm_steps": [0]}, "adapter_study.influence.mlm_steps[0]", "integer >= 1"),
    ({"adapter_study.fusion": True}, "adapter_study.fusion", "unknown field"),
])
def test_bad_configs_name_file_and_field(tmp_path, changes, field, message):
    path = variant(tmp_path, **changes)
    with pytest.raises(ConfigError) as caught:
        load_study(path)
    assert str(path) in str(caught.value) and f"field '{field}'" in str(caught.value)
    assert message in str(caught.value)


ARITH = REPO / "experiments" / "tiny_arithmetic.yaml"


@pytest.mark.parametrize("changes, field, message", [
    ({"adapter_study.arithmetic.select_on": "test"}, "adapter_study.arithmetic.select_on",
     "never on the test data"),
    ({"adapter_study.arithmetic.lambdas": [0.0, 0.5, 0.5]}, "adapter_study.arithmetic.lambdas[2]",
     "listed twice"),
    ({"adapter_study.arithmetic.pairs": [{"target": "por", "adapters": ["por", "spa"],
                                          "scenario": "zero_shot"}]},
     "adapter_study.arithmetic.pairs[0].scenario", "has no adapter of its own"),
])
def test_bad_arithmetic_configs(tmp_path, changes, field, message):
    path = variant(tmp_path, base=ARITH, **changes)
    with pytest.raises(ConfigError) as caught:
        load_study(path)
    assert f"field '{field}'" in str(caught.value) and message in str(caught.value)


def test_cli_exits_2_before_any_training(tmp_path, capsys):
    from xltstats.experiments.__main__ import main

    path = variant(tmp_path, base=ARITH, **{"adapter_study.arithmetic.select_on": "test"})
    assert main(["run", str(path)]) == 2
    assert "select_on" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_sweep_units_validation_then_test():
    study = load_study(ARITH)
    sweep = next(j for j in expand(study) if j.kind == "sweep")
    splits = [u.split for u in sweep.units]
    assert splits == ["validation"] * 11 + ["test"] * 11
    assert sweep.units[0].condition_text == "la=eng:0+spa:1;split=validation"
    assert sweep.units[-1].condition_text == "la=eng:1+spa:0;split=test"


@pytest.mark.parametrize("name, counts", [
    ("neg_inf_mbert", {"lang_adapter": 38, "task_adapter": 1, "mlm": 1520, "compose": 8617}),
    ("langarith_xlmr", {"lang_adapter": 14, "task_adapter": 3, "sweep": 507}),
])
def test_published_scale_plans(name, counts):
    from collections import Counter

    study = load_study(REPO / "experiments" / f"{name}.yaml")
    jobs = expand(study)
    assert dict(Counter(j.kind for j in jobs)) == counts
    if name.startswith("neg_inf"):
        assert len(study.adapter_study.transfer_languages) == 38
        assert {"jpn", "fra"} <= set(study.adapter_study.transfer_languages)
        pairs = [j for j in jobs if j.kind == "compose" and j.param["members"].count("+") == 1]
        assert len(pairs) == 703  # all pairs i < j of 38


def test_one_mlm_step_changes_the_base_and_not_the_task_adapter(tmp_path):
    torch = pytest.importorskip("torch")
    from transformers import BertConfig, BertForMaskedLM, BertForTokenClassification

    from xltstats.experiments import adapters as A
    from xltstats.experiments.adapter_runner import load_encoder, mlm_blocks, mlm_train
    from xltstats.experiments.train import load_tokenizer, train_tokenizer

    lines = ["the cat sat on the mat", "a dog ran in the park", "birds sing in the morning"] * 4
    tokenizer = load_tokenizer(str(train_tokenizer(lines, tmp_path / "tok", 200)))
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, num_labels=3)
    torch.manual_seed(0)
    base = BertForMaskedLM(config)
    base.save_pretrained(tmp_path / "base")
    before = {k: v.clone() for k, v in base.bert.state_dict().items()}
    task_model = BertForTokenClassification.from_pretrained(tmp_path / "base", num_labels=3)
    A.add_adapter(task_model, "task", A.AdapterConfig(reduction_factor=4), seed=1)
    saved = A.adapter_state(task_model, "task")

    mlm = BertForMaskedLM.from_pretrained(tmp_path / "base")
    blocks = mlm_blocks(tokenizer, lines, 16)
    stats = mlm_train(mlm, tokenizer, blocks, steps=1, learning_rate=1e-3, batch_size=4, seed=3,
                      probability=0.5, params=mlm.parameters(), device=torch.device("cpu"))
    assert stats["steps"] == 1 and stats["sequences"] == 4
    after = mlm.bert.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(changed) > len(before) // 2  # the whole model is updated, not a part

    fresh = BertForTokenClassification.from_pretrained(tmp_path / "base", num_labels=3)
    load_encoder(fresh, {k: v for k, v in after.items()})
    A.load_adapter_state(fresh, saved)
    for key, value in A.adapter_state(fresh, "task").tensors.items():
        assert torch.equal(value, saved.tensors[key])  # the task adapter is untouched
    for key in changed:
        assert torch.equal(fresh.bert.state_dict()[key], after[key])
    # seeded: the same step again gives the same weights
    again = BertForMaskedLM.from_pretrained(tmp_path / "base")
    mlm_train(again, tokenizer, blocks, steps=1, learning_rate=1e-3, batch_size=4, seed=3,
              probability=0.5, params=again.parameters(), device=torch.device("cpu"))
    assert all(torch.equal(again.bert.state_dict()[k], after[k]) for k in before)
