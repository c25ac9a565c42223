"""The experiment journal against damage and concurrency (issues 16 and 18).

Training is replaced by a stand-in that writes each pending row (the real training is covered by
tests/test_experiments_run.py); everything else -- locks, journals, the run folder, merging, the
command line -- is the real code.
"""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from xltstats.experiments import runner
from xltstats.experiments.__main__ import main as cli
from xltstats.experiments.config import load_study
from xltstats.experiments.journal import journal_dir, read_journal
from xltstats.experiments.plan import expand

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "tasks"


def write_study(tmp_path: Path, name="s", run_dir=None, **hp) -> Path:
    study = {"name": name,
             "model": {"name": "tiny", "config": {"model_type": "bert", "hidden_size": 32,
                                                  "num_hidden_layers": 1, "num_attention_heads": 2,
                                                  "intermediate_size": 64},
                       "tokenizer": {"train": True, "vocab_size": 200}},
             "tasks": [{"name": "xnli", "data": str(FIXTURES / "xnli")}],
             "languages": ["eng", "deu", "fra"], "few_shot": [0], "seeds": [1],
             "hyperparameters": {"learning_rate": 1e-3, **hp}}
    if run_dir is not None:
        study["run_dir"] = str(run_dir)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(study), encoding="utf-8")
    return path


@pytest.fixture
def fake_training(monkeypatch):
    """Rows written as training would write them, slowly enough for two runs to overlap."""
    calls = []

    def fake_run_job(study, job, journal, pending, progress):
        calls.append(job.id)
        for unit in pending:
            time.sleep(0.05)
            journal.append(runner._row(study, job, unit, 0.5, "accuracy", 10, 20))
        return len(pending)

    monkeypatch.setattr(runner, "_run_job", fake_run_job)
    return calls


def run_cli(capsys, *argv):
    code = cli(list(argv))
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return code, out.out, out.err


def all_journal_rows(run_dir: Path) -> list[dict]:
    return [r for p in sorted(journal_dir(run_dir).glob("*.jsonl")) for r in read_journal(p)]


# ---------------------------------------------------------------- corrupt journals

def _complete_run(tmp_path, capsys, fake_training):
    config = write_study(tmp_path)
    results = tmp_path / "r.csv"
    code, out, err = run_cli(capsys, "run", str(config), "--results", str(results), "--no-progress")
    assert code == 0, err
    run_dir = tmp_path / "r.run"
    assert json.loads(out)["rows"] == 9 and (run_dir / "journal").is_dir()
    return config, results, run_dir


CORRUPTIONS = {
    "nul": (b"\x00" * 40, "NUL byte"),
    "array": (b'[1, 2, 3]', "must be a JSON object, got a JSON list"),
    "no_row_key": (json.dumps({"score": 0.5, "task": "xnli"}).encode(), "no 'row_key'"),
    "latin1": ('{"row_key": "x", "model": "caf\xe9"}'.encode("latin-1"), "not UTF-8"),
    "broken": (b'{"row_key": "x", "score": ', "corrupt journal line"),
    "number": (b"42", "got a JSON int"),
}


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_corrupt_line_in_the_middle_is_reported_with_file_and_line(tmp_path, capsys, fake_training, kind):
    config, results, run_dir = _complete_run(tmp_path, capsys, fake_training)
    journal = sorted(journal_dir(run_dir).glob("*.jsonl"))[0]
    lines = journal.read_bytes().split(b"\n")
    bad, reason = CORRUPTIONS[kind]
    journal.write_bytes(b"\n".join(lines[:1] + [bad] + lines[1:]))
    before = results.read_bytes()
    for command in (["status"], ["merge", "--results", str(results)], ["run", "--no-progress"]):
        argv = [command[0], str(config), "--results", str(results)] + command[1:]
        if command[0] == "merge":
            argv = ["merge", str(config), "--results", str(results)]
        code, _out, err = run_cli(capsys, *argv)
        assert code == 2, (command, err)
        assert f"{journal}: line 2: " in err and reason in err and "repair" in err, err
    assert results.read_bytes() == before  # the previous table is intact


def test_conflicting_duplicate_row_key_is_an_error_not_the_first_row(tmp_path, capsys, fake_training):
    config, results, run_dir = _complete_run(tmp_path, capsys, fake_training)
    journal = sorted(journal_dir(run_dir).glob("*.jsonl"))[0]
    first = json.loads(journal.read_bytes().split(b"\n")[0])
    with open(journal, "ab") as fh:
        fh.write(json.dumps(dict(first, score=0.99)).encode() + b"\n")
        fh.write(json.dumps(first).encode() + b"\n")  # an identical copy is harmless
    code, _out, err = run_cli(capsys, "merge", str(config), "--results", str(results))
    assert code == 2 and ": line 4: " in err and "already written on line 1" in err and "0.99" in err


def test_repair_moves_bad_lines_aside_and_the_study_continues(tmp_path, capsys, fake_training):
    config, results, run_dir = _complete_run(tmp_path, capsys, fake_training)
    journal = sorted(journal_dir(run_dir).glob("*.jsonl"))[0]
    good = journal.read_bytes().split(b"\n")
    n_good = len([g for g in good if g])
    journal.write_bytes(good[0] + b"\n\x00\x00\x00\n[1]\n" + b"\n".join(good[1:]) + b'{"row_key": "tor')
    code, out, err = run_cli(capsys, "repair", str(config), "--results", str(results), "--dry-run")
    assert code == 0 and "line 2: would move" in out and "line 3: would move" in out
    assert journal.read_bytes().startswith(good[0] + b"\n\x00")  # dry run: untouched
    code, out, err = run_cli(capsys, "repair", str(config), "--results", str(results))
    assert code == 0, err
    assert f"{journal}: line 2: moved" in out and "NUL" in out and "line 3" in out and "partial last line" in out
    assert len(read_journal(journal)) == n_good
    rejected = journal.with_name(journal.name + ".rejected").read_bytes()
    assert b"\x00\x00\x00" in rejected and b"[1]" in rejected and b'"tor' in rejected
    code, out, err = run_cli(capsys, "merge", str(config), "--results", str(results))
    assert code == 0 and "wrote 9 rows" in out
    code, out, _ = run_cli(capsys, "repair", str(config), "--results", str(results))
    assert "every journal line is good" in out


# ---------------------------------------------------------------- two runs at once

def test_two_concurrent_runs_share_the_jobs_without_losing_or_duplicating_rows(tmp_path, fake_training):
    config = write_study(tmp_path)
    results = tmp_path / "r.csv"
    summaries, errors = [], []

    def one_run():
        try:
            from xltstats.experiments.config import choose_run_dir

            study = choose_run_dir(load_study(config), results=results)
            summaries.append(runner.run_study(study, results, progress=False))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one_run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    rows = all_journal_rows(tmp_path / "r.run")
    keys = [r["row_key"] for r in rows]
    assert len(keys) == 9 and len(set(keys)) == 9           # nothing lost, nothing twice
    assert sorted(fake_training) == sorted(j.id for j in expand(load_study(config)))  # each job trained once
    assert sum(s["ran"] for s in summaries) == 3             # honest counts
    for s in summaries:
        assert s["rows"] == 9 and s["pending"] == 0
        assert s["ran"] + s["done_by_another_process"] + s["already_done"] == 3
    assert len(pd.read_csv(results)) == 9


def test_a_run_waits_for_a_job_another_process_holds(tmp_path, fake_training, capsys):
    config = write_study(tmp_path)
    results = tmp_path / "r.csv"
    from xltstats.experiments.config import choose_run_dir

    study = choose_run_dir(load_study(config), results=results)
    job = expand(study)[0]
    held = runner._try_lock(study, job)
    release = threading.Timer(0.5, held.close)
    release.start()
    summary = runner.run_study(study, results, progress=False)
    release.join()
    assert "is being run by another process; waiting" in capsys.readouterr().err
    # the holder died without writing: this run waited, then ran the job itself
    assert summary["ran"] == 3 and summary["rows"] == 9


# ---------------------------------------------------------------- the run folder

def test_the_run_folder_follows_results_unless_the_config_names_one(tmp_path, capsys, fake_training):
    config = write_study(tmp_path)
    for name in ("a", "b"):
        code, out, err = run_cli(capsys, "run", str(config), "--results", str(tmp_path / f"{name}.csv"),
                                 "--no-progress")
        assert code == 0 and json.loads(out)["ran"] == 3, err  # b did not reuse a's journal
        assert (tmp_path / f"{name}.run" / "journal").is_dir()
    fixed = write_study(tmp_path, name="fixed", run_dir=tmp_path / "shared_run")
    code, out, _ = run_cli(capsys, "run", str(fixed), "--results", str(tmp_path / "c.csv"), "--no-progress")
    assert code == 0 and (tmp_path / "shared_run" / "journal").is_dir() and not (tmp_path / "c.run").exists()
    code, out, _ = run_cli(capsys, "run", str(fixed), "--results", str(tmp_path / "c.csv"),
                           "--run-dir", str(tmp_path / "other_run"), "--no-progress")
    assert code == 0 and json.loads(out)["ran"] == 3 and (tmp_path / "other_run" / "journal").is_dir()


def test_a_run_folder_or_results_file_of_another_config_is_refused(tmp_path, capsys, fake_training):
    config = write_study(tmp_path)
    results = tmp_path / "r.csv"
    assert run_cli(capsys, "run", str(config), "--results", str(results), "--no-progress")[0] == 0
    before = results.read_bytes()
    other = write_study(tmp_path, name="s", learning_rate=5e-4)  # same name, other hyperparameters
    code, _out, err = run_cli(capsys, "run", str(other), "--results", str(results), "--no-progress")
    assert code == 2 and "another configuration" in err and str(results) in err
    assert results.read_bytes() == before
    # another results file, but pointed at the first run's folder
    code, _out, err = run_cli(capsys, "merge", str(other), "--results", str(tmp_path / "x.csv"),
                              "--run-dir", str(tmp_path / "r.run"))
    assert code == 2 and "holds rows of another configuration" in err and not (tmp_path / "x.csv").exists()


@pytest.mark.slow
def test_two_run_processes_on_one_study_and_results_file(tmp_path):
    """The real thing: two `python -m xltstats.experiments run` processes, real (tiny) training."""
    import os
    import subprocess
    import sys

    pytest.importorskip("torch")
    config = write_study(
        tmp_path, epochs=1, batch_size=8, max_length=32, max_train_examples=40, max_test_examples=20,
        num_threads=1)
    results = tmp_path / "r.csv"
    env = dict(os.environ, XLTSTATS_DEVICE="cpu")
    command = [sys.executable, "-m", "xltstats.experiments", "run", str(config), "--results", str(results),
               "--no-progress"]
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err
        assert "Traceback" not in err
    summaries = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert sum(s["ran"] for s in summaries) == 3
    for s in summaries:
        assert s["rows"] == 9 and s["pending"] == 0
        assert s["ran"] + s["done_by_another_process"] + s["already_done"] == 3
    keys = [r["row_key"] for r in all_journal_rows(tmp_path / "r.run")]
    assert len(keys) == 9 and len(set(keys)) == 9
    frame = pd.read_csv(results)
    assert len(frame) == 9 and not frame["row_key"].duplicated().any()
