"""A run killed (SIGKILL) at random moments and restarted gives the uninterrupted results."""
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

pytest.importorskip("torch")

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "tasks"


def write_study(tmp_path, name):
    study = {
        "name": name,
        "model": {"name": "tiny-bert", "tokenizer": {"train": True, "vocab_size": 400},
                  "config": {"model_type": "bert", "hidden_size": 32, "num_hidden_layers": 2,
                             "num_attention_heads": 2, "intermediate_size": 64,
                             "max_position_embeddings": 64}},
        "tasks": [{"name": "xnli", "data": str(FIXTURES / "xnli")},
                  {"name": "wikiann", "data": str(FIXTURES / "wikiann")}],
        "languages": ["eng", "deu", "fra"], "few_shot": [0, 4, 12], "seeds": [1],
        "hyperparameters": {"learning_rate": 3e-3, "batch_size": 8, "epochs": 10, "max_length": 48,
                            "num_threads": 1},
        "few_shot_hyperparameters": {"epochs": 3, "batch_size": 4},
        "run_dir": str(tmp_path / f"{name}_run"),
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def run_cli(path, results):
    return [sys.executable, "-m", "xltstats.experiments", "run", str(path), "--results", str(results),
            "--no-progress"]


@pytest.mark.slow
def test_sigkill_at_random_points_then_restart(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    ref_path, ref_out = write_study(tmp_path, "reference"), tmp_path / "reference.csv"
    subprocess.run(run_cli(ref_path, ref_out), check=True, env=env, cwd=REPO,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    start = time.monotonic()
    subprocess.run([sys.executable, "-c", "import torch, transformers, xltstats.experiments.runner"],
                   check=True, env=env, cwd=REPO)
    startup = time.monotonic() - start  # imports: a kill before this point tests nothing

    path, out = write_study(tmp_path, "killed"), tmp_path / "killed.csv"
    journal = tmp_path / "killed_run" / "journal"

    def rows():
        return sum(p.read_bytes().count(b"\n") for p in journal.glob("*.jsonl"))

    rng = random.Random(20261122)
    kills, rows_at_kill = 0, []
    for _attempt in range(30):
        proc = subprocess.Popen(run_cli(path, out), env=env, cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if kills < 8:
            # let it get past the imports, then wait for 0-2 more rows (training, evaluating,
            # writing in between) and a random fraction of a second more, then SIGKILL
            time.sleep(startup * rng.uniform(0.7, 1.2))
            want = rows() + rng.randint(0, 2)
            while proc.poll() is None and rows() < want:
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.5))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                kills += 1
                rows_at_kill.append(rows())
                continue
        assert proc.wait(timeout=600) == 0
        break
    else:
        pytest.fail("the run never finished")
    assert kills >= 3, f"only {kills} kills"
    ref, got = pd.read_csv(ref_out), pd.read_csv(out)
    print(f"{kills} kills; journal rows at each kill: {rows_at_kill}")
    assert any(0 < n < len(ref) for n in rows_at_kill), "no kill landed in the middle of the grid"
    assert len(got) == 3 * 2 * (3 + 2 * 2)  # task x source x (3 zero-shot + 2 targets x 2 sizes)
    pd.testing.assert_frame_equal(ref, got)
    journals = list((tmp_path / "killed_run" / "journal").glob("*.jsonl"))
    keys = [line for p in journals for line in p.read_text().splitlines()]
    assert len(keys) == len(got)  # nothing written twice
