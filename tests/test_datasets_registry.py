"""The published-dataset registry and its download-or-mirror access, tested offline.

Downloads are exercised against a temporary folder served over ``http.server`` on 127.0.0.1, with
``XLTSTATS_CACHE`` pointing at a temporary directory and no mirror set.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import os
import re
import socket
import threading
from pathlib import Path

import pytest

from xltstats.datasets import (DownloadError, RemoteFile, dataset_files, dataset_info, fetch,
                               get_dataset_file, list_datasets)
from xltstats.datasets import registry
from xltstats.errors import ConfigError

CONTRACT_NAMES = ["xpos", "langrank-pos", "langrank-dep", "langrank-el", "langrank-mt",
                  "proxylm-intent", "sumeval"]


#: Read once at import: some tests below unset the variable to force downloads.
_MIRROR_ENV = os.environ.get("XLTSTATS_MIRROR")


def _mirror() -> Path:
    value = _MIRROR_ENV
    if not value:
        pytest.skip("XLTSTATS_MIRROR is not set (point it at shared/data/published)")
    return Path(value.split(os.pathsep)[0])


@contextlib.contextmanager
def serve(folder: Path):
    """Serve ``folder`` over HTTP on 127.0.0.1; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    """No mirror, an empty download cache under tmp_path."""
    monkeypatch.delenv("XLTSTATS_MIRROR", raising=False)
    cache = tmp_path / "cache"
    monkeypatch.setenv("XLTSTATS_CACHE", str(cache))
    return cache


def _files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# --- the registry itself -------------------------------------------------------------------------

def test_registry_names_follow_the_contract():
    assert list_datasets() == CONTRACT_NAMES
    assert list_datasets()[0] == "xpos"  # the default comes first


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_dataset_info_is_complete(name):
    info = dataset_info(name)
    for key in ("title", "citation", "licence", "origin", "commit", "raw_url", "mirror_prefix", "files"):
        assert info[key], f"{name}: empty {key}"
    assert re.fullmatch(r"[0-9a-f]{40}", info["commit"])
    assert info["citation"].lstrip().startswith("@") and info["citation"].rstrip().endswith("}")
    assert info["origin"] == f"https://github.com/{info['repo']}"
    assert info["raw_url"] == f"https://raw.githubusercontent.com/{info['repo']}/{info['commit']}/{{path}}"
    for sha in info["files"].values():
        assert re.fullmatch(r"[0-9a-f]{64}", sha)
    if info["main_file"]:
        assert info["main_file"] in info["files"]


def test_dataset_files_are_pinned_remote_files():
    files = dataset_files("xpos")
    main = [f for f in files if f.path == "xpos/results/udpos-ft-10000.csv"]
    assert len(main) == 1
    remote = main[0]
    assert remote.collection == "published"
    assert remote.url == ("https://raw.githubusercontent.com/wietsedv/xpos/"
                          "4edb3a9163a653c58e3e42fcf0895de8596ae45b/results/udpos-ft-10000.csv")
    assert remote.sha256 == dataset_info("xpos")["files"]["results/udpos-ft-10000.csv"]


def test_unknown_dataset_and_file_are_clear_errors():
    with pytest.raises(ConfigError, match=r"unknown dataset 'xpso'; did you mean 'xpos'"):
        dataset_info("xpso")
    with pytest.raises(ConfigError, match="has no registered file 'results/nope.csv'"):
        get_dataset_file("xpos", "results/nope.csv")


def test_commits_match_the_mirror_provenance():
    """Each entry's commit is the one recorded in the mirror's SOURCE.md for its folder."""
    mirror = _mirror()
    for name in CONTRACT_NAMES:
        info = dataset_info(name)
        source_md = (mirror / info["mirror_prefix"] / "SOURCE.md").read_text(encoding="utf-8")
        assert f"`{info['commit']}`" in source_md, name
        assert info["repo"] in source_md, name


def test_every_registered_file_matches_its_sha256_in_the_mirror():
    mirror = _mirror()
    for name in CONTRACT_NAMES:
        info = dataset_info(name)
        for repo_path, sha in info["files"].items():
            local = mirror / info["mirror_prefix"] / repo_path
            assert hashlib.sha256(local.read_bytes()).hexdigest() == sha, f"{name}: {repo_path}"


def test_get_dataset_file_reads_the_mirror():
    mirror = _mirror()
    path = get_dataset_file("xpos", "results/ldnd.csv", mirror=mirror)
    assert path == mirror / "xpos" / "results" / "ldnd.csv"


def test_mirror_missing_a_file_is_a_clear_error(tmp_path):
    empty_mirror = tmp_path / "mirror"
    empty_mirror.mkdir()
    with pytest.raises(DownloadError, match=r"published/xpos/results/ldnd.csv is not in the mirror"):
        get_dataset_file("xpos", "results/ldnd.csv", mirror=empty_mirror)


# --- downloads, offline --------------------------------------------------------------------------

def test_download_into_an_empty_cache(tmp_path, offline_cache):
    served = tmp_path / "served"
    served.mkdir()
    payload = b"source,target,score\nen,nl,90.0\n"
    (served / "table.csv").write_bytes(payload)
    with serve(served) as base:
        remote = RemoteFile("published", "demo/table.csv", f"{base}/table.csv",
                            hashlib.sha256(payload).hexdigest())
        path = fetch(remote, quiet=True)
        assert path == offline_cache / "published" / "demo" / "table.csv"
        assert path.read_bytes() == payload
        # Second call: served from the cache, no temporary files left behind.
        assert fetch(remote, quiet=True) == path
    assert _files_under(offline_cache) == [path]


def test_checksum_mismatch_leaves_nothing_in_the_cache(tmp_path, offline_cache):
    served = tmp_path / "served"
    served.mkdir()
    (served / "table.csv").write_bytes(b"tampered\n")
    with serve(served) as base:
        remote = RemoteFile("published", "demo/table.csv", f"{base}/table.csv", "0" * 64)
        with pytest.raises(DownloadError, match="checksum mismatch.*expected sha256 0{64}"):
            fetch(remote, quiet=True)
    assert _files_under(offline_cache) == []


def test_unreachable_url_is_a_clear_error(offline_cache):
    with socket.socket() as sock:  # a port nobody listens on once the socket is closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    remote = RemoteFile("published", "demo/table.csv", f"http://127.0.0.1:{port}/table.csv", "0" * 64)
    with pytest.raises(DownloadError, match=r"could not download http://127\.0\.0\.1:\d+/table\.csv.*XLTSTATS_MIRROR"):
        fetch(remote, quiet=True)
    assert _files_under(offline_cache) == []


def test_missing_file_on_the_server_is_a_clear_error(tmp_path, offline_cache):
    served = tmp_path / "served"
    served.mkdir()
    with serve(served) as base:
        remote = RemoteFile("published", "demo/none.csv", f"{base}/none.csv", "0" * 64)
        with pytest.raises(DownloadError, match="could not download.*404"):
            fetch(remote, quiet=True)
    assert _files_under(offline_cache) == []


def test_registry_file_downloads_from_its_pinned_url(tmp_path, offline_cache, monkeypatch):
    """get_dataset_file without a mirror downloads the registered path and checks its sha256."""
    info = dataset_info("xpos")
    repo_path = "results/udpos-sizes-train.csv"
    served = tmp_path / "served"
    content = (_mirror() / "xpos" / repo_path).read_bytes()
    (served / "xpos" / "results").mkdir(parents=True)
    (served / "xpos" / repo_path).write_bytes(content)
    with serve(served) as base:
        entries = dict(registry._registry())
        entries["xpos"] = {**entries["xpos"], "raw_url": base + "/xpos/{path}"}
        monkeypatch.setattr(registry, "_registry", lambda: entries)
        path = get_dataset_file("xpos", repo_path)
    assert path == offline_cache / "published" / "xpos" / repo_path
    assert hashlib.sha256(path.read_bytes()).hexdigest() == info["files"][repo_path]


def test_verify_reports_every_missing_file(tmp_path, capsys):
    assert registry.verify(_mirror()) == []
    empty = tmp_path / "mirror"
    empty.mkdir()
    problems = registry.verify(empty, ["langrank-el", "proxylm-intent"])
    assert len(problems) == 2 and all("is not in the mirror" in p for p in problems)
    assert registry.main(["--mirror", str(empty), "langrank-el"]) == 2
    assert "0 of 1 files verified" in capsys.readouterr().out


def test_cli_lists_and_cites_the_datasets(capsys):
    assert registry.main(["--cite", "langrank-pos", "langrank-dep", "sumeval"]) == 0
    out = capsys.readouterr().out
    # the two LangRank tables share one paper: printed once
    assert out.count("@inproceedings{lin-etal-2019-choosing") == 1
    assert "@inproceedings{ahuja-etal-2022-beyond" in out
    assert registry.main(["--list", "xpos"]) == 0
    out = capsys.readouterr().out
    assert "https://github.com/wietsedv/xpos @ 4edb3a9163a653c58e3e42fcf0895de8596ae45b" in out
    assert registry.main(["--cite", "nope"]) == 2
    assert "unknown dataset(s) nope" in capsys.readouterr().err
