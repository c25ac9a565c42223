"""Multi-source sets, layer re-initialisation and representation dumps in the runner."""
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from xltstats.errors import ConfigError
from xltstats.experiments.__main__ import main as cli
from xltstats.experiments.config import load_study
from xltstats.experiments.journal import journal_dir, read_journal
from xltstats.experiments.plan import expand, run_id

pytest.importorskip("torch")
pytest.importorskip("transformers")

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "tasks"
BERT = {"model_type": "bert", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 64, "max_position_embeddings": 128}


def write(tmp_path, name="study", **fields):
    study = {"name": name, "model": {"name": "tiny-bert", "config": BERT,
                                     "tokenizer": {"train": True, "vocab_size": 300}},
             "tasks": [{"name": "xnli", "data": str(FIXTURES / "xnli")}],
             "sources": ["eng", ["eng", "deu"]], "targets": ["eng", "deu", "fra"], "seeds": [1],
             "source_budget": 40, "few_shot": [0],
             "hyperparameters": {"learning_rate": 3e-3, "batch_size": 8, "epochs": 1, "max_length": 32,
                                 "num_threads": 1, "eval_batch_size": 64},
             "run_dir": str(tmp_path / f"{name}_run")}
    study.update(fields)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


# ---- config -----------------------------------------------------------------------------------
def test_generated_sets_and_job_ids(tmp_path):
    path = write(tmp_path, sources=["all 3-sets of [ara, deu, eng, spa, fra, rus, zho]",
                                    {"sizes": [1, 3], "of": ["eng", "spa", "deu"]}],
                 targets=["eng"], tasks=[{"name": "xnli"}])
    study = load_study(path, check_data=False)
    triples = [s for s in study.source_sets if len(s) == 3]
    assert len(triples) == 35 and triples[0] == ("ara", "deu", "eng")
    assert study.source_sets[35:] == [("eng",), ("eng", "spa")]  # the prefix triple is already listed
    jobs = expand(study)
    assert jobs[0].id == "xnli-ara+deu+eng-seed1" and jobs[0].source == "mul"
    assert jobs[-1].id == "xnli-eng+spa-seed1"
    assert len({run_id(study, j) for j in jobs}) == len(jobs)


@pytest.mark.parametrize("fields,match", [
    ({"sources": [["eng", "deu"], []]}, r"sources\[1\]'.*empty source set"),
    ({"source_budget": 1}, r"'source_budget'.*cannot be split over the 2 sources of deu\+eng"),
    ({"sources": ["all 4-sets of [eng, deu]"]}, r"sources\[0\]'.*set sizes 4..4"),
    ({"sources": [["eng", "eng"]]}, r"sources\[0\]'.*twice"),
    ({"model": {"name": "m", "config": BERT, "tokenizer": {"train": True}, "reinit_layers": [0, 2]}},
     r"'model.reinit_layers'.*block index 2 out of range: the model has 2 blocks"),
    ({"model": {"name": "m", "config": BERT, "tokenizer": {"train": True}, "reinit_layers": ["layer.1"]}},
     r"regexes are not accepted"),
    ({"representations": {"languages": ["eng", "xho"]}}, r"representations.languages\[1\]'.*no PUD"),
    ({"representations": {"cka": {"kernels": ["rbf-silverman"]}}}, r"cka.kernels\[0\]"),
    ({"representations": {}, "keep_checkpoints": False}, r"'keep_checkpoints'"),
])
def test_bad_config_names_field(tmp_path, fields, match, capsys):
    path = write(tmp_path, **fields)
    with pytest.raises(ConfigError, match=match):
        load_study(path)
    assert cli(["plan", str(path)]) == 2
    assert str(path) in capsys.readouterr().err


def test_budget_larger_than_data_is_caught_before_training(tmp_path):
    from xltstats.experiments.runner import preflight

    study = load_study(write(tmp_path, source_budget=200))  # the fixtures have 48 per language
    with pytest.raises(ConfigError, match=r"'source_budget': eng needs 200 training examples of task xnli"):
        preflight(study)
    study = load_study(write(tmp_path, source_budget=100, sources=[["eng", "deu"]]))
    with pytest.raises(ConfigError, match=r"'source_budget': deu needs 50 .* for deu\+eng but has 48"):
        preflight(study)


def test_budget_samples_nested_across_sets_budgets_and_reproducible(tmp_path):
    from xltstats.experiments.multisource import source_examples

    data = {lang: [{"lang": lang, "i": i} for i in range(1000)] for lang in ("deu", "eng", "spa")}
    picked = {}
    for seed in (1, 2):
        for budget, sources in ((1000, ["eng"]), (1000, ["eng", "spa"]), (1000, ["deu", "eng", "spa"]),
                                (100, ["deu", "eng", "spa"])):
            path = write(tmp_path, name=f"s{seed}{budget}{len(sources)}", source_budget=budget,
                         sources=[sources] if len(sources) > 1 else sources, seeds=[seed],
                         targets=["eng"], tasks=[{"name": "xnli"}])
            study = load_study(path, check_data=False)
            job = expand(study)[0]
            examples, counts = source_examples(study, job, lambda lang: data[lang])
            assert sum(counts.values()) == budget == len(examples)
            picked[seed, budget, len(sources)] = {lang: {e["i"] for e in examples if e["lang"] == lang}
                                                  for lang in counts}
            again, _ = source_examples(study, job, lambda lang: data[lang])
            assert again == examples
        p = {k[1:]: v for k, v in picked.items() if k[0] == seed}
        assert [len(p[1000, 3][x]) for x in ("deu", "eng", "spa")] == [334, 333, 333]
        assert p[1000, 3]["eng"] <= p[1000, 2]["eng"] <= p[1000, 1]["eng"]
        assert p[100, 3]["spa"] <= p[1000, 3]["spa"] <= p[1000, 2]["spa"]
    assert picked[1, 1000, 2]["eng"] != picked[2, 1000, 2]["eng"]


# ---- re-initialisation --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    import torch
    from transformers import BertConfig, BertForTokenClassification

    torch.manual_seed(0)
    model = BertForTokenClassification(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=3,
                                                  num_attention_heads=2, intermediate_size=32, num_labels=3))
    with torch.no_grad():  # move every tensor off its init value, as pre-training would
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    folder = tmp_path_factory.mktemp("pretrained")
    model.save_pretrained(folder)
    return folder


def test_reinit_after_from_pretrained_touches_exactly_the_blocks(saved_model):
    import torch
    from transformers import BertForTokenClassification

    from xltstats.experiments.reinit import reinitialize

    fresh = BertForTokenClassification.from_pretrained(saved_model)
    model = BertForTokenClassification.from_pretrained(saved_model)
    info = reinitialize(model, [0, 1], seed=3)
    a, b = fresh.state_dict(), model.state_dict()
    changed = {k for k in a if not torch.equal(a[k], b[k])}
    assert changed == {k for k in a if k.startswith(("bert.encoder.layer.0.", "bert.encoder.layer.1."))}
    assert info["changed"] == len(changed) and info["untouched"] == len(a) - len(changed)
    again = BertForTokenClassification.from_pretrained(saved_model)
    reinitialize(again, [0, 1], seed=3)
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in b.items())  # seeded
    other = BertForTokenClassification.from_pretrained(saved_model)
    reinitialize(other, [0, 1], seed=4)
    assert not torch.equal(other.state_dict()["bert.encoder.layer.0.output.dense.weight"],
                           b["bert.encoder.layer.0.output.dense.weight"])
    ln = b["bert.encoder.layer.1.output.LayerNorm.weight"]
    assert torch.equal(ln, torch.ones_like(ln))  # the model's own init: LayerNorm weight 1


def test_reinit_block_0_leaves_embedding_layer_unchanged(saved_model):
    import torch
    from transformers import BertForTokenClassification

    from xltstats.experiments.reinit import reinitialize

    x = torch.randint(0, 50, (2, 6))
    fresh = BertForTokenClassification.from_pretrained(saved_model).eval()
    model = BertForTokenClassification.from_pretrained(saved_model).eval()
    reinitialize(model, [0], seed=1)
    with torch.no_grad():
        h0, h1 = fresh(x, output_hidden_states=True).hidden_states, model(x, output_hidden_states=True).hidden_states
    assert torch.equal(h0[0], h1[0])
    assert all(not torch.allclose(p, q) for p, q in zip(h0[1:], h1[1:]))
    with pytest.raises(ConfigError, match="block 3 out of range"):
        reinitialize(model, [3], seed=1)


# ---- end to end: sets + re-init + dumps, killed and resumed ------------------------------------
@pytest.mark.skipif(not os.environ.get("XLTSTATS_MIRROR"), reason="PUD sentences need XLTSTATS_MIRROR")
def test_sets_reinit_and_dumps_resume_without_loss_or_duplicates(tmp_path):
    from xltstats.experiments.runner import run_study
    from xltstats.results import validate_results
    from xltstats.studies.cka import read_dump

    fields = dict(model={"name": "tiny-bert", "config": BERT, "tokenizer": {"train": True, "vocab_size": 300},
                         "reinit_layers": [[0]]},
                  representations={"languages": ["eng", "deu"], "n_sentences": 12, "batch_size": 5,
                                   "cka": {"n_boot": 20, "reference": "eng"}, "tsne": False})
    fields["sources"] = ["eng", "deu", ["eng", "deu"], ["eng", "fra"]]
    ref_path = write(tmp_path, name="ref", **fields)
    summary = run_study(load_study(ref_path), tmp_path / "ref.csv", progress=False)
    assert summary["rows"] == 4 * 2 * 3 and summary["pending"] == 0  # 4 sets x 2 conditions x 3 targets
    ref = pd.read_csv(tmp_path / "ref.csv")
    validate_results(ref)
    mul = ref[ref["source"] == "mul"]
    assert set(mul["source_languages"]) == {json.dumps({"deu": 20, "eng": 20}), json.dumps({"eng": 20, "fra": 20})}
    assert set(ref["condition"]) == {"reinit=none", "reinit=0"} and (ref["n_source_examples"] == 40).all()
    dump = read_dump(tmp_path / "ref_run" / "representations")
    assert len(dump.checkpoints) == 9 and dump.hidden("pretrained", "eng").shape == (3, 12, 32)

    # the same study, interrupted: one job half-written with a torn line, a dump entry lost
    path = write(tmp_path, name="cut", **fields)
    study = load_study(path)
    jobs = expand(study)
    run_study(study, None, jobs=jobs[:2], progress=False)
    j = journal_dir(study.run_dir) / f"{jobs[1].id}.jsonl"
    lines = j.read_bytes().split(b"\n")
    j.write_bytes(lines[0] + b"\n" + lines[1][:25])
    folder = study.run_dir / "representations"
    (folder / "pretrained" / "deu.npz").unlink()
    assert cli(["run", str(path), "--results", str(tmp_path / "cut.csv"), "--no-progress"]) == 0
    cut = pd.read_csv(tmp_path / "cut.csv")
    keep = ["row_key", "source", "target", "score", "condition", "source_languages"]
    pd.testing.assert_frame_equal(ref[keep], cut[keep])
    assert sum(len(read_journal(p)) for p in journal_dir(study.run_dir).glob("*.jsonl")) == len(ref)
    again = read_dump(folder)
    assert again.checkpoints == dump.checkpoints
    assert np.array_equal(again.hidden("pretrained", "deu"), dump.hidden("pretrained", "deu"))
    cka = pd.read_csv(folder / "cka.csv")
    assert set(cka["comparison"]) == {"languages", "checkpoints"} and (cka["n_sentences"] == 12).all()
    per = pd.read_csv(folder / "mingling_languages.csv")
    row = per[(per["checkpoint"] == "xnli-eng+fra-reinitnone-seed1") & (per["layer"] == 1)].set_index("language")
    assert not row.loc["deu", "in_source_set"] and row.loc["eng", "in_source_set"]

    # and from config to report
    from xltstats.studies.report import build

    report = build(path, tmp_path / "cut.csv", tmp_path / "report", n_boot=50)
    text = report.read_text()
    for name in ("set_size", "reinit_drops", "cka_by_layer_linear", "cka_before_after", "mingling"):
        assert name in text
    assert (tmp_path / "report" / "tables" / "reinit_drops.csv").is_file()


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("XLTSTATS_MIRROR"), reason="PUD needs XLTSTATS_MIRROR")
@pytest.mark.parametrize("config", ["tiny_multisource.yaml", "tiny_reinit.yaml"])
def test_shipped_tiny_study_config_to_report(tmp_path, config):
    import time

    from xltstats.results import validate_results
    from xltstats.studies.report import build

    raw = yaml.safe_load((REPO / "experiments" / config).read_text())
    raw["run_dir"] = str(tmp_path / "run")
    path = tmp_path / config
    path.write_text(yaml.safe_dump(raw))
    start = time.perf_counter()
    assert cli(["run", str(path), "--results", str(tmp_path / "results.csv"), "--no-progress"]) == 0
    report = build(path, tmp_path / "results.csv", tmp_path / "report", n_boot=200)
    seconds = time.perf_counter() - start
    validate_results(pd.read_csv(tmp_path / "results.csv"))
    assert "cka_by_layer" in report.read_text()
    print(f"{config}: config to report in {seconds:.1f} s")
