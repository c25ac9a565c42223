"""Caches someone else can write: the download cache and the tokenised-data cache of the runner."""
from __future__ import annotations

import hashlib
import pickle
import subprocess
import sys

import numpy as np
import pytest

from xltstats.datasets.fetch import RemoteFile, fetch, remove_stale_downloads
from xltstats.errors import DownloadError


@pytest.fixture
def remote(tmp_path, monkeypatch):
    monkeypatch.setenv("XLTSTATS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("XLTSTATS_MIRROR", raising=False)
    origin = tmp_path / "origin.csv"
    origin.write_bytes(b"a,b\n1,2\n")
    return RemoteFile("published", "demo/origin.csv", origin.as_uri(), hashlib.sha256(origin.read_bytes()).hexdigest())


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_parts_of_killed_downloads_are_removed_and_live_ones_kept(remote):
    target = remote.cache_path
    target.parent.mkdir(parents=True)
    dead = target.with_name(f".{target.name}.abc123.{_dead_pid()}.part")
    dead.write_bytes(b"half a file")
    live = target.with_name(f".{target.name}.def456.{1}.part")  # pid 1 is always alive
    live.write_bytes(b"someone is downloading")
    assert fetch(remote, quiet=True) == target and target.read_bytes() == b"a,b\n1,2\n"
    assert not dead.exists() and live.exists()
    assert sorted(p.name for p in target.parent.iterdir()) == sorted([target.name, live.name])
    assert remove_stale_downloads(target) == []


def test_a_download_killed_outright_leaves_a_part_the_next_download_removes(remote, tmp_path):
    target = remote.cache_path
    code = (
        "import os, signal, urllib.request\n"
        "import importlib; F = importlib.import_module('xltstats.datasets.fetch')\n"
        "def stop(*a, **k):\n"
        "    raise SystemExit(os.kill(os.getpid(), signal.SIGKILL))\n"
        "urllib.request.urlopen = stop\n"
        f"F.download(F.RemoteFile('published', 'demo/origin.csv', {remote.url!r}, {remote.sha256!r}), quiet=True)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert done.returncode == -9
    assert list(target.parent.glob(".*.part"))  # what a SIGKILL leaves
    fetch(remote, quiet=True)
    assert not list(target.parent.glob(".*.part")) and target.is_file()


def test_a_tampered_cache_file_is_refused_with_a_hint(remote):
    fetch(remote, quiet=True)
    target = remote.cache_path
    target.write_bytes(b"a,b\n1,3\n")  # tampered
    with pytest.raises(DownloadError, match=r"checksum mismatch .*run again"):
        fetch(remote, quiet=True)
    assert not target.exists()
    assert fetch(remote, quiet=True).read_bytes() == b"a,b\n1,2\n"  # a fresh copy next time


def test_tokenised_cache_never_unpickles(tmp_path):
    from xltstats.experiments.train import load_features, save_features

    feats = [{"input_ids": [1, 2, 3], "labels": 2}, {"input_ids": [4], "labels": 0}]
    path = tmp_path / "x.npz"
    save_features(feats, path)
    assert load_features(path) == feats
    marker = tmp_path / "PWNED"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    # a pickle planted under the cache's name, and an npz holding an object array
    path.write_bytes(pickle.dumps(Evil()))
    assert load_features(path) is None and not marker.exists()
    np.savez(path, format=np.array("xltstats-tokenized-v1"), n=np.array(1),
             **{"list.input_ids.offsets": np.array([0, 1]), "list.input_ids.values": np.array([Evil()], dtype=object)})
    assert load_features(path) is None and not marker.exists()
    np.savez(path, format=np.array("xltstats-tokenized-v1"), n=np.array(2),
             **{"list.input_ids.offsets": np.array([0, 5, 1]), "list.input_ids.values": np.array([1])})
    assert load_features(path) is None  # inconsistent offsets: rebuilt, not trusted
