"""The registry of published result sets (``xltstats/data/datasets.yaml``).

Each entry names an upstream repository pinned to a commit, the files xltstats reads from it
with their sha256, and the paper to cite.  Files are reached through
:func:`xltstats.datasets.fetch.fetch`: a local mirror (``mirror=`` or ``$XLTSTATS_MIRROR``), the
download cache, or a verified download from the pinned raw URL.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

from ..errors import ConfigError
from ..paths import package_data
from .fetch import RemoteFile, fetch

COLLECTION = "published"


@functools.lru_cache(maxsize=1)
def _registry() -> dict:
    import yaml

    path = package_data("datasets.yaml")
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    entries = data.get("datasets") if isinstance(data, dict) else None
    if not isinstance(entries, dict) or not entries:
        raise ConfigError(f"{path}: no 'datasets' mapping")
    return entries


def list_datasets() -> list[str]:
    """Names of the registered datasets, in registry order (``xpos`` first: the default)."""
    return list(_registry())


def _entry(name: str) -> dict:
    entries = _registry()
    if name not in entries:
        from ..registry import Registry

        known = Registry("dataset")
        for entry in entries:
            known.add(entry, entries[entry])
        raise ConfigError(known.unknown_message(name))
    return entries[name]


def dataset_info(name: str) -> dict:
    """Title, citation (BibTeX), licence, origin URL, commit and file list of a dataset."""
    e = _entry(name)
    return {
        "name": name,
        "title": e["title"],
        "description": e.get("description", ""),
        "task": e.get("task"),
        "metric": e.get("metric"),
        "model": e.get("model"),
        "citation": e["citation"].strip() + "\n",
        "licence": e["licence"],
        "repo": e["repo"],
        "origin": e["origin_url"],
        "origin_url": e["origin_url"],
        "commit": e["commit"],
        "raw_url": e["raw_url"],
        "mirror_prefix": e["mirror_prefix"],
        "main_file": e.get("main_file"),
        "files": dict(e["files"]),
    }


def _remote(entry: dict, repo_path: str) -> RemoteFile:
    return RemoteFile(
        collection=COLLECTION,
        path=f"{entry['mirror_prefix']}/{repo_path}",
        url=entry["raw_url"].format(path=repo_path),
        sha256=entry["files"][repo_path],
    )


def dataset_files(name: str) -> list[RemoteFile]:
    """Every file registered for ``name`` as a :class:`RemoteFile` (pinned URL + sha256)."""
    e = _entry(name)
    return [_remote(e, p) for p in e["files"]]


def remote_file(name: str, repo_path: str) -> RemoteFile:
    """The :class:`RemoteFile` of one registered file (path relative to the upstream repo)."""
    e = _entry(name)
    if repo_path not in e["files"]:
        raise ConfigError(
            f"dataset {name!r} has no registered file {repo_path!r}; registered files: "
            + ", ".join(e["files"])
        )
    return _remote(e, repo_path)


def get_dataset_file(name: str, repo_path: str, mirror: str | os.PathLike | None = None) -> Path:
    """Local, checksum-verified path of one file of a dataset (e.g. an auxiliary table).

    ``repo_path`` is the path inside the upstream repository, e.g.
    ``get_dataset_file("xpos", "results/ldnd.csv")``.  Raises :class:`~xltstats.errors.DownloadError`
    when the file is missing from the mirror, fails its checksum or cannot be downloaded.
    """
    return fetch(remote_file(name, repo_path), mirror)


def verify(mirror: str | os.PathLike | None = None, names: list[str] | None = None) -> list[str]:
    """Fetch every registered file (from ``mirror``, the cache or its URL) and check its sha256.

    Returns one problem description per file that is missing or fails its checksum (empty when
    all is well).  For maintainers bumping a pinned commit.
    """
    from ..errors import DownloadError

    problems = []
    for name in names or list_datasets():
        for remote in dataset_files(name):
            try:
                fetch(remote, mirror, quiet=True)
            except DownloadError as exc:
                problems.append(f"{name}: {exc}")
    return problems


def main(argv: list[str] | None = None) -> int:
    """``python -m xltstats.datasets [--mirror DIR] [NAME ...]``: verify registered files."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m xltstats.datasets",
                                     description="Check every registered dataset file against its sha256, "
                                                 "or list the datasets and their citations.")
    parser.add_argument("names", nargs="*", help="datasets to check (default: all)")
    parser.add_argument("--mirror", help="local copy of the published data (default: $XLTSTATS_MIRROR)")
    parser.add_argument("--list", action="store_true", help="list the datasets with origin and licence, then exit")
    parser.add_argument("--cite", action="store_true", help="print the BibTeX of the datasets (default: all), then exit")
    args = parser.parse_args(argv)
    names = args.names or list_datasets()
    unknown = [n for n in names if n not in list_datasets()]
    if unknown:
        print(f"xltstats: unknown dataset(s) {', '.join(unknown)}; available: {', '.join(list_datasets())}",
              file=sys.stderr)
        return 2
    if args.list:
        for name in names:
            info = dataset_info(name)
            print(f"{name}\t{info.get('title', '')}\n    origin: {info.get('origin', '')} @ {info.get('commit', '')}"
                  f"\n    licence: {info.get('licence', '')}")
        return 0
    if args.cite:
        seen = set()
        for name in names:
            bib = (dataset_info(name).get("citation") or "").strip()
            if bib and bib not in seen:
                seen.add(bib)
                print(bib + "\n")
        return 0
    try:
        problems = verify(args.mirror, args.names or None)
    except ConfigError as exc:
        print(f"xltstats: {exc}", file=sys.stderr)
        return 2
    for problem in problems:
        print(problem, file=sys.stderr)
    checked = sum(len(dataset_files(n)) for n in (args.names or list_datasets()))
    print(f"{checked - len(problems)} of {checked} files verified")
    return 2 if problems else 0

