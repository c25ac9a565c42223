"""Study configs: validation before any training, grid expansion, no torch on import."""
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from xltstats.errors import ConfigError
from xltstats.experiments.config import load_study
from xltstats.experiments.plan import expand, row_key, sample_indices

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "tasks"
TINY_MODEL = {"name": "tiny", "config": {"model_type": "bert", "hidden_size": 32},
              "tokenizer": {"train": True, "vocab_size": 500}}


def write(tmp_path, **fields):
    study = {"model": TINY_MODEL, "tasks": [{"name": "xnli", "data": str(FIXTURES / "xnli")}],
             "languages": ["eng", "deu"], "few_shot": [0, 10], "seeds": [1, 2],
             "run_dir": str(tmp_path / "run")}
    study.update(fields)
    study = {k: v for k, v in study.items() if v is not None}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def test_import_does_not_load_torch():
    """Importing the package, the experiment planning modules and the adapter studies loads neither
    torch nor transformers (only running a job does)."""
    code = ("import sys, xltstats, xltstats.experiments, xltstats.experiments.config, "
            "xltstats.experiments.plan, xltstats.experiments.journal, xltstats.experiments.tasks, "
            "xltstats.experiments.adapter_study, xltstats.studies.influence, xltstats.studies.arithmetic\n"
            "xltstats.experiments.list_tasks()\n"
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_grid_expansion(tmp_path):
    study = load_study(write(tmp_path))
    jobs = expand(study)
    # 2 sources x 2 seeds; each: zero-shot on both targets (in-language included) + 1 few-shot
    assert [j.id for j in jobs] == ["xnli-eng-seed1", "xnli-eng-seed2", "xnli-deu-seed1", "xnli-deu-seed2"]
    assert all(len(j.zero_shot) == 2 and len(j.few_shot) == 1 for j in jobs)
    keys = {row_key(study, j, u) for j in jobs for u in j.units}
    assert len(keys) == 12
    study.sources.append("fra")  # adding a language keeps every earlier row's key
    study.targets.append("fra")
    keys2 = {row_key(study, j, u) for j in expand(study) for u in j.units}
    assert keys < keys2


def test_config_hash_tracks_hyperparameters(tmp_path):
    a = load_study(write(tmp_path))
    b = load_study(write(tmp_path, hyperparameters={"learning_rate": 1e-4}))
    assert a.config_hash != b.config_hash
    assert b.hyperparameters["learning_rate"] == 1e-4


@pytest.mark.parametrize("fields, message", [
    ({"tasks": ["xnli", "sentiment"]}, "field 'tasks[1]': unknown task 'sentiment'; available: pawsx, udpos, wikiann, xnli"),
    ({"seeds": None}, "field 'seeds': missing"),
    ({"model": None}, "field 'model': missing"),
    ({"languages": ["eng", "swa"]}, "field 'sources': language 'swa' has no train data for task xnli"),
    ({"languages": ["eng", "notalanguage"]}, "field 'languages[1]'"),
    ({"hyperparameters": {"learning_rte": 1}}, "field 'hyperparameters.learning_rte': unknown hyperparameter"),
    ({"hyperparameters": {"batch_size": 0}}, "field 'hyperparameters.batch_size': must be a positive integer"),
    ({"few_shot": [0, -5]}, "field 'few_shot[1]'"),
    ({"tasks": [{"name": "xnli", "data": "/nonexistent/dir"}]}, "field 'tasks[0].data'"),
    ({"tasks": [{"name": "xnli", "metric": "f1"}]}, "field 'tasks[0].metric'"),
    ({"epochs": 3}, "field 'epochs': unknown field"),
    ({"tasks": None}, "field 'tasks': missing"),
    ({"languages": None}, "field 'languages': missing: give 'languages'"),
    ({"languages": None, "sources": ["eng"], "targets": ["eng", "tha"]},
     "field 'targets': language 'tha' has no test data for task xnli"),
    ({"model": {"name": "x", "config": {"hidden_size": 8}, "tokenizer": {"train": True}}},
     "field 'model.config': must be a mapping with a 'model_type'"),
])
def test_bad_configs_are_rejected_naming_the_field(tmp_path, fields, message):
    path = write(tmp_path, **fields)
    with pytest.raises(ConfigError) as info:
        load_study(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_few_shot_larger_than_target_training_data_rejected_before_training(tmp_path):
    from xltstats.experiments.runner import preflight

    study = load_study(write(tmp_path, few_shot=[0, 1000]))
    with pytest.raises(ConfigError, match="few_shot.*1000 exceeds the 48 training examples"):
        preflight(study)
    assert not (tmp_path / "run").exists()  # nothing trained, nothing written


def test_hub_languages_checked_without_network(tmp_path):
    path = write(tmp_path, tasks=["pawsx"], languages=["eng", "hin"])
    with pytest.raises(ConfigError, match="'hin' has no train data for task pawsx in the hub configs"):
        load_study(path)


def test_shipped_study_configs_validate():
    big = load_study(REPO / "experiments" / "mt5_90pairs.yaml")
    assert big.model["pretrained"] == "google/mt5-base"
    assert len(big.sources) == 10 and len(big.targets) == 10
    jobs = expand(big)
    for spec in big.tasks:
        task_jobs = [j for j in jobs if j.task == spec.name and j.seed == big.seeds[0]]
        pairs = {(j.source, u.target) for j in task_jobs for u in j.zero_shot if u.target != j.source}
        in_lang = {(j.source, u.target) for j in task_jobs for u in j.zero_shot if u.target == j.source}
        assert len(pairs) == 90 and len(in_lang) == 10
    gpu = load_study(REPO / "experiments" / "gpu_small_grid.yaml", check_data=False)
    assert expand(gpu)


def test_few_shot_samples_reproducible_nested_and_language_specific():
    a = sample_indices(1000, 100, 7, "xnli", "deu", "few-shot")
    assert a == sample_indices(1000, 100, 7, "xnli", "deu", "few-shot")
    assert set(sample_indices(1000, 10, 7, "xnli", "deu", "few-shot")) <= set(a)
    assert a != sample_indices(1000, 100, 8, "xnli", "deu", "few-shot")
    assert a != sample_indices(1000, 100, 7, "xnli", "fra", "few-shot")
    assert len(set(a)) == 100 and max(a) < 1000
    with pytest.raises(ValueError):
        sample_indices(5, 6, 1)


@pytest.mark.parametrize("name", ["xnli", "pawsx", "wikiann"])
def test_fixture_tasks_load_and_seq2seq_targets_round_trip(name):
    from xltstats.experiments.tasks import get_task

    task = get_task(name)
    examples = task.load(str(FIXTURES / name), "fra", "train")
    assert len(examples) == 48
    for e in examples:
        target = task.seq2seq_target(e)
        expected = e["label"] if task.kind == "classification" else e["tags"]
        assert task.parse_seq2seq_output(target, e) == expected
        assert task.seq2seq_input(e)
    if task.kind == "tagging":  # word-level decoders split "B-PER" into "B - PER"
        e = examples[0]
        spaced = " ".join(task.labels[t].replace("-", " - ") for t in e["tags"])
        assert task.parse_seq2seq_output(spaced, e) == e["tags"]
        assert task.parse_seq2seq_output("O", e) == [0] + [-1] * (len(e["tags"]) - 1)
    else:
        assert task.parse_seq2seq_output("banana", examples[0]) == -1


def test_bad_label_in_local_file_names_file_row_column(tmp_path):
    from xltstats.errors import InputError
    from xltstats.experiments.tasks import get_task

    (tmp_path / "eng").mkdir()
    (tmp_path / "eng" / "train.jsonl").write_text(
        '{"premise": "a", "hypothesis": "b", "label": "entailment"}\n'
        '{"premise": "a", "hypothesis": "b", "label": "maybe"}\n')
    with pytest.raises(InputError, match=r"train.jsonl, row 2, column 'label': unknown label 'maybe'"):
        get_task("xnli").load(str(tmp_path), "eng", "train")


def test_registering_a_task_is_enough_to_use_it(tmp_path):
    from xltstats.experiments.tasks import TASKS, Task, register

    register(Task(name="toy_sentiment", kind="classification", labels=("neg", "pos"),
                  metric="accuracy", text_fields=("text",), prompt="sentiment: {text}"))
    try:
        (tmp_path / "data" / "eng").mkdir(parents=True)
        for split in ("train", "test"):
            (tmp_path / "data" / "eng" / f"{split}.jsonl").write_text('{"text": "good", "label": "pos"}\n')
        study = load_study(write(tmp_path, tasks=[{"name": "toy_sentiment", "data": str(tmp_path / "data")}],
                                 languages=["en"], few_shot=[0]))
        assert [j.id for j in expand(study)] == ["toy_sentiment-eng-seed1", "toy_sentiment-eng-seed2"]
    finally:
        TASKS.remove("toy_sentiment")


def test_hub_loader_maps_class_label_ids_through_their_names(monkeypatch):
    datasets = pytest.importorskip("datasets")
    from xltstats.experiments.tasks import get_task

    fake = {
        ("facebook/xnli", "de"): datasets.Dataset.from_dict(
            {"premise": ["a", "b"], "hypothesis": ["c", "d"], "label": [2, 0]},
            features=datasets.Features({"premise": datasets.Value("string"),
                                        "hypothesis": datasets.Value("string"),
                                        "label": datasets.ClassLabel(names=["entailment", "neutral", "contradiction"])})),
        # hub tag order differs from ours: ids must go through the names
        ("universal_dependencies", "de_gsd"): datasets.Dataset.from_dict(
            {"tokens": [["zum", "zu", "dem", "Haus"]], "upos": [[2, 0, 1, 3]]},
            features=datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                        "upos": datasets.Sequence(datasets.ClassLabel(names=["ADP", "DET", "_", "NOUN"]))})),
    }
    calls = []

    def load_dataset(path, name, split):
        calls.append((path, name, split))
        return fake[(path, name)]

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    xnli = get_task("xnli").load("hub", "deu", "test")
    assert xnli == [{"text": ["a", "c"], "label": 2}, {"text": ["b", "d"], "label": 0}]
    upos = get_task("udpos")
    pos = upos.load("hub", "deu", "train")
    assert pos == [{"tokens": ["zu", "dem", "Haus"], "tags": [upos.labels.index(t) for t in ("ADP", "DET", "NOUN")]}]
    assert calls == [("facebook/xnli", "de", "test"), ("universal_dependencies", "de_gsd", "train")]


@pytest.mark.parametrize("fields, message", [
    ({"tasks": ["xnli", "sentiment"]}, "unknown task 'sentiment'"),
    ({"languages": ["eng", "swa"]}, "language 'swa' has no train data for task xnli"),
    ({"seeds": None}, "field 'seeds': missing"),
])
def test_cli_rejects_bad_config_before_any_training(tmp_path, capsys, fields, message):
    from xltstats.experiments.__main__ import main as cli

    path = write(tmp_path, **fields)
    assert cli(["run", str(path), "--results", str(tmp_path / "out.csv"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"xltstats.experiments: error: {path}: field '") and message in err
    assert not (tmp_path / "run").exists() and not (tmp_path / "out.csv").exists()


def test_mt5_90pairs_plan_counts():
    """10 languages, 3 tasks: 90 ordered pairs + 10 in-language per task and seed, few-shot sizes."""
    study = load_study(REPO / "experiments" / "mt5_90pairs.yaml")
    assert [t.name for t in study.tasks] == ["xnli", "wikiann", "udpos"] and study.seeds == [1, 2, 3]
    assert study.few_shot == [0, 10, 100, 1000] and study.few_shot_sizes("udpos") == [0, 10, 100, 500]
    jobs = expand(study)
    assert len(jobs) == 3 * 10 * 3  # one fine-tuning run per (task, source, seed)
    for job in jobs:  # 9 other targets + itself zero-shot, 9 targets x 3 few-shot sizes
        assert len(job.zero_shot) == 10 and len(job.few_shot) == 27
        assert {u.target for u in job.few_shot} == set(study.targets) - {job.source}
    assert sum(len(j.units) for j in jobs) == 3330
