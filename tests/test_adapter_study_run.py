"""Adapter studies end to end on CPU (slow): the two tiny studies from config to report, and a run
killed (SIGKILL) inside a job of every new job kind, restarted, giving the uninterrupted rows."""
from __future__ import annotations

import json
import os
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
ENV = dict(os.environ, PYTHONPATH=str(REPO), MPLBACKEND="Agg")


def copy_config(name, tmp_path, tag, **changes):
    raw = yaml.safe_load((REPO / "experiments" / f"{name}.yaml").read_text())
    section = raw["adapter_study"]
    for key, value in changes.items():
        if key in raw:
            raw[key] = value
        else:
            section[key] = value
    raw["run_dir"] = str(tmp_path / f"{tag}_run")
    path = tmp_path / f"{tag}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("name, analysis", [("tiny_influence", "influence"),
                                            ("tiny_arithmetic", "arithmetic")])
def test_tiny_study_from_config_to_report(tmp_path, name, analysis):
    path = copy_config(name, tmp_path, name)
    results, out = tmp_path / "results.csv", tmp_path / "report"
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "xltstats.experiments", "run", str(path), "--results",
                    str(results), "--no-progress"], check=True, env=ENV, cwd=REPO, capture_output=True)
    trained = time.monotonic() - start
    cmd = [sys.executable, "-m", f"xltstats.studies.{analysis}", "--data", str(results), "--out",
           str(out), "--n-boot", "200"]
    subprocess.run(cmd, check=True, env=ENV, cwd=REPO, capture_output=True)
    total = time.monotonic() - start
    print(f"{name}: runner {trained:.1f} s, config to report {total:.1f} s")
    assert (out / "report.html").is_file()
    table = pd.read_csv(results)
    assert table["condition"].notna().all()
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    subprocess.run(cmd, check=True, env=ENV, cwd=REPO, capture_output=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first  # byte-identical outputs
    assert total < 120  # under a minute on an idle 2-core machine; shared CI cores are slower


def _journal_lines(run_dir: Path) -> list[dict]:
    rows = []
    for path in sorted((run_dir / "journal").glob("*.jsonl")):
        rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return rows


def _kill_inside_each_kind(path: Path, run_dir: Path, kinds: set[str]) -> list[str]:
    """Run the study, SIGKILL it once inside a job of each kind, restart until it finishes."""
    cmd = [sys.executable, "-m", "xltstats.experiments", "run", str(path), "--no-progress"]
    killed: list[str] = []
    for _attempt in range(len(kinds) + 3):
        proc = subprocess.Popen(cmd, env=ENV, cwd=REPO, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        victim = None
        while proc.poll() is None:
            logs = sorted((run_dir / "logs").glob("*.log"), key=os.path.getmtime) \
                if (run_dir / "logs").is_dir() else []
            for log in logs:
                kind = log.stem.split("-", 1)[0]
                if kind in kinds and kind not in killed:
                    journal = run_dir / "journal" / f"{log.stem}.jsonl"
                    rows = journal.read_bytes().count(b"\n") if journal.is_file() else 0
                    complete = (run_dir / "checkpoints" / log.stem / "COMPLETE").is_file()
                    # rows jobs: killed after their first row; training jobs: before their checkpoint
                    if rows >= 1 or (kind in ("base", "lang_adapter", "task_adapter") and not complete):
                        victim = kind
                        break
            if victim:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                killed.append(victim)
                break
            time.sleep(0.05)
        if victim is None:
            assert proc.returncode == 0, proc.stderr.read().decode()
            return killed
    raise AssertionError("the study did not finish")


@pytest.mark.slow
@pytest.mark.parametrize("name, changes, kinds", [
    ("tiny_influence", {"transfer_languages": ["ita", "por"], "targets": ["eng", "ita", "por", "swe"],
                        "influence": {"mlm_steps": [1, 10], "runs": 1, "seed": 1},
                        "compositions": {"set_sizes": [1, 2], "compose": ["stack", "fuse"],
                                         "fusion_seed": 0}},
     {"base", "lang_adapter", "task_adapter", "mlm", "compose"}),
    ("tiny_arithmetic", {"targets": ["por"], "arithmetic": {
        "pairs": [{"target": "por", "adapters": ["eng", "spa"], "scenario": "zero_shot"}],
        "lambdas": [0.0, 0.25, 0.5, 0.75, 1.0], "select_on": "val_target", "validation_examples": 30}},
     {"base", "lang_adapter", "task_adapter", "sweep"}),
])
def test_kill_and_resume_each_job_kind(tmp_path, name, changes, kinds):
    reference = copy_config(name, tmp_path, "reference", **changes)
    subprocess.run([sys.executable, "-m", "xltstats.experiments", "run", str(reference), "--no-progress"],
                   check=True, env=ENV, cwd=REPO, capture_output=True)
    expected = {r["row_key"]: r for r in _journal_lines(tmp_path / "reference_run")}

    path = copy_config(name, tmp_path, "killed", **changes)
    killed = _kill_inside_each_kind(path, tmp_path / "killed_run", kinds)
    print(f"{name}: killed inside {killed}")
    assert len(killed) >= len(kinds) - 1  # a very short job may finish before it is caught
    rows = _journal_lines(tmp_path / "killed_run")
    keys = [r["row_key"] for r in rows]
    assert len(keys) == len(set(keys))  # nothing duplicated
    assert set(keys) == set(expected)  # nothing lost
    for r in rows:  # the same rows as without the kills (seeded CPU runs)
        assert r["score"] == expected[r["row_key"]]["score"], r["condition"]
        assert r.get("is_selected") == expected[r["row_key"]].get("is_selected")
