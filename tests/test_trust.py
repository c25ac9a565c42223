"""Trust boundaries (issue 16): what a fit folder, a config, a mirror or a cache can and cannot make us do.

Each test is one boundary: YAML is read with safe loaders only; nothing a user hands in is
unpickled or evaluated; ``model.json`` is data; registry and mirror paths cannot leave the cache;
a tampered mirrored or cached file fails its sha256; a partial download never stays in the cache;
an interrupted fit leaves no partial folder.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from xltstats.datasets.fetch import RemoteFile, download, fetch, remove_stale_downloads
from xltstats.errors import ConfigError, DownloadError, InputError

PACKAGE = Path(__file__).resolve().parents[1] / "xltstats"


def sources() -> dict[str, str]:
    return {str(p.relative_to(PACKAGE)): p.read_text(encoding="utf-8") for p in PACKAGE.rglob("*.py")}


def test_no_unsafe_loader_pickle_or_eval_in_the_package():
    """Static audit: YAML only through safe_load, no pickle/marshal/shelve, no eval, exec only on the
    packaged report template, numpy archives never with allow_pickle=True."""
    problems = []
    for name, text in sources().items():
        for pattern, why in [(r"yaml\.(load|unsafe_load|full_load)\(", "YAML without the safe loader"),
                             (r"Loader\s*=", "a custom YAML loader"),
                             (r"^\s*(import|from)\s+(pickle|cPickle|dill|marshal|shelve|joblib)\b", "unpickling module"),
                             (r"(?<![.\w])eval\(", "eval"), (r"allow_pickle\s*=\s*True", "numpy unpickling"),
                             (r"shell\s*=\s*True|os\.system\(", "a shell command")]:
            for match in re.finditer(pattern, text, flags=re.M):
                problems.append(f"{name}:{text[:match.start()].count(chr(10)) + 1}: {why}")
        if "exec(" in text and name != "report/render.py":
            problems.append(f"{name}: exec")
    assert problems == []
    render = (PACKAGE / "report" / "render.py").read_text(encoding="utf-8")
    assert "template_path()" in render  # exec runs the packaged template's cells, never a fit folder's


def test_a_yaml_config_cannot_construct_python_objects(tmp_path):
    from xltstats.pipeline.config import load_config

    marker = tmp_path / "PWNED"
    config = tmp_path / "evil.yaml"
    config.write_text(f'seed: !!python/object/apply:os.system ["touch {marker}"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="evil.yaml, line 1.*not valid YAML"):
        load_config(config)
    assert not marker.exists()


def test_model_json_is_data_only(tmp_path):
    """A hand-made model.json cannot make predict evaluate a term: unknown terms are refused."""
    import pandas as pd

    from xltstats.models.persist import load_model

    marker = tmp_path / "PWNED"
    term = f"__import__('os').system('touch {marker}')"
    document = {"format": "xltstats-model", "version": 1, "default": "ols", "features": ["x"], "formula": "score ~ x",
                "config": {}, "models": {"ols": {
                    "kind": "ols", "response": "score", "terms": ["Intercept", term], "coefficients": [1.0, 2.0],
                    "covariance": [[1.0, 0.0], [0.0, 1.0]], "residual_variance": 1.0, "df_inference": None,
                    "means": {term: 0.0}, "sds": {term: 1.0}}}}
    (tmp_path / "model.json").write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(InputError):
        load_model(tmp_path).prediction_interval(pd.DataFrame({"x": [1.0], "source": ["eng"], "target": ["deu"]}))
    assert not marker.exists()


@pytest.mark.parametrize("path", ["../outside.csv", "a/../../outside.csv", "/etc/passwd", "a//b.csv", "./a.csv"])
def test_a_registry_path_cannot_leave_the_cache_or_mirror(path):
    with pytest.raises(DownloadError, match="relative path without"):
        RemoteFile("published", path, "https://example.invalid/x")
    with pytest.raises(DownloadError, match="plain folder name"):
        RemoteFile("../published", "a.csv", "https://example.invalid/x")


def test_a_symlink_in_the_cache_leading_outside_is_refused(tmp_path, monkeypatch):
    cache, outside = tmp_path / "cache", tmp_path / "outside"
    (cache / "published").mkdir(parents=True)
    outside.mkdir()
    (cache / "published" / "repo").symlink_to(outside)
    monkeypatch.setenv("XLTSTATS_CACHE", str(cache))
    remote = RemoteFile("published", "repo/file.csv", "https://example.invalid/file.csv")
    with pytest.raises(DownloadError, match="leads outside the cache"):
        fetch(remote, mirror="")


def _registered_file():
    from xltstats.datasets import dataset_files

    return next(r for r in dataset_files("langrank-pos") if r.sha256)


def test_a_tampered_mirrored_file_fails_its_checksum(tmp_path):
    remote = _registered_file()
    copy = tmp_path / remote.path
    copy.parent.mkdir(parents=True)
    copy.write_text("model,task\nevil,evil\n", encoding="utf-8")
    with pytest.raises(DownloadError, match=f"checksum mismatch for published/{re.escape(remote.path)} in the mirror"):
        fetch(remote, mirror=str(tmp_path))


def test_a_tampered_cached_file_is_refused_and_removed(tmp_path, monkeypatch):
    monkeypatch.setenv("XLTSTATS_CACHE", str(tmp_path))
    remote = _registered_file()
    remote.cache_path.parent.mkdir(parents=True)
    remote.cache_path.write_text("tampered\n", encoding="utf-8")
    with pytest.raises(DownloadError, match="checksum mismatch.*damaged copy was removed from the cache"):
        fetch(remote, mirror="")
    assert not remote.cache_path.exists()


class _Response:
    def __init__(self, blocks, fail_after=None):
        self.blocks, self.fail_after = list(blocks), fail_after

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def read(self, size):
        if self.fail_after is not None and not self.blocks:
            raise TimeoutError("connection reset")
        return self.blocks.pop(0) if self.blocks else b""


def test_a_failed_or_wrong_download_leaves_nothing_in_the_cache(tmp_path, monkeypatch):
    import urllib.request

    monkeypatch.setenv("XLTSTATS_CACHE", str(tmp_path))
    content = b"a,b\n1,2\n"
    remote = RemoteFile("published", "repo/t.csv", "https://example.invalid/t.csv", hashlib.sha256(content).hexdigest())
    folder = remote.cache_path.parent
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: _Response([b"a,b\n"], fail_after=1))
    with pytest.raises(DownloadError, match="could not download"):
        download(remote, quiet=True)
    assert list(folder.iterdir()) == []
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: _Response([b"a,b\n9,9\n"]))
    with pytest.raises(DownloadError, match="checksum mismatch.*not kept"):
        download(remote, quiet=True)
    assert list(folder.iterdir()) == []
    # a download killed with SIGKILL leaves its partial file; the next download of the file removes it
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = folder / f".t.csv.abc123.{dead.pid}.part"
    live = folder / f".t.csv.def456.{os.getpid()}.part"
    stale.write_bytes(b"a,")
    live.write_bytes(b"a,")
    assert remove_stale_downloads(remote.cache_path) == [stale]
    live.unlink()
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: _Response([content]))
    assert download(remote, quiet=True).read_bytes() == content
    assert sorted(p.name for p in folder.iterdir()) == ["t.csv"]


@pytest.mark.skipif(not os.environ.get("XLTSTATS_MIRROR"), reason="XLTSTATS_MIRROR is not set")
@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_fit_keeps_the_previous_output_and_leaves_nothing_beside_it(tmp_path, signum, code):
    from test_reproduce import TINY_CONFIG, tiny_results

    tiny_results(tmp_path / "tiny.csv")
    (tmp_path / "tiny.yaml").write_text(TINY_CONFIG, encoding="utf-8")
    out = tmp_path / "fit"
    out.mkdir()
    (out / "manifest.json").write_text("{}\n")  # a previous fit
    child = subprocess.Popen([sys.executable, "-m", "xltstats.fit", "--data", "tiny.csv", "--config", "tiny.yaml",
                              "--out", "fit"], cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    # signal once the fit is at work (its imports done and its handlers installed): a signal during the
    # interpreter's own start-up is Python's to handle, and a fixed sleep raced it on a loaded machine
    seen = []
    for line in child.stderr:
        seen.append(line)
        if "computing pair features" in line:
            break
    child.send_signal(signum)
    _, err = child.communicate(timeout=300)
    err = "".join(seen) + err
    if child.returncode == 0:  # finished before the signal: the new fit is complete
        assert (out / "model.json").is_file()
    else:
        assert child.returncode == code, err
        assert "was left as it was before this run" in err and "Traceback" not in err
        assert sorted(p.name for p in out.iterdir()) == ["manifest.json"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
