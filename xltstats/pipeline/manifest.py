"""Provenance of a fit (``manifest.json``), shared by ``fit`` and ``reproduce``.

One place looks up package versions (:func:`package_versions`), the xltstats commit
(:func:`xltstats_commit`) and the inputs' sha256 (:func:`input_files`); ``reproduce`` compares a
stored manifest against the same functions.
"""
from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from .. import __version__
from ..errors import XltstatsError

TOOL = "xltstats.fit"
PACKAGES = ["xltstats", "numpy", "scipy", "pandas", "statsmodels", "scikit-learn", "lightgbm",
            "langcodes", "lang2vec", "matplotlib", "seaborn"]
#: Options left out of the recorded command (they change what is printed, not what is computed).
UNRECORDED_OPTIONS = ("--quiet",)


def package_versions() -> dict[str, str | None]:
    """Python's and each package's version (None when a package is not installed)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for package in PACKAGES:
        versions[package] = installed_version(package)
    return versions


def installed_version(package: str) -> str | None:
    if package == "python":
        return platform.python_version()
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return __version__ if package == "xltstats" else None


def xltstats_commit() -> str | None:
    """The git commit of the xltstats checkout this module runs from, when it is one."""
    root = Path(__file__).resolve().parent.parent.parent
    try:
        done = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def dataset_provenance(name: str, mirror=None) -> tuple[dict | None, list[dict]]:
    """(dataset description, input files with sha256) of a registry dataset or a results file."""
    from ..datasets import dataset_files, dataset_info, list_datasets
    from ..datasets.fetch import fetch, sha256_of

    if name not in list_datasets():
        path = Path(name)
        return None, [{"path": str(path), "sha256": sha256_of(path)}] if path.is_file() else []
    info = dataset_info(name)
    dataset = {"name": name, "title": info.get("title"), "citation": info.get("citation"),
               "licence": info.get("licence"), "origin": info.get("origin"), "commit": info.get("commit")}
    inputs = []
    for remote in dataset_files(name):
        try:
            local = fetch(remote, mirror, quiet=True)
        except XltstatsError:
            continue
        inputs.append({"path": f"{remote.collection}/{remote.path}", "url": remote.url, "sha256": sha256_of(local)})
    return dataset, inputs


def build_manifest(fit, *, argv: list[str] | None = None, mirror=None, in_memory: bool = False) -> dict:
    """The manifest of ``fit`` (a :class:`~xltstats.pipeline.run.Fit`).

    ``argv`` is the fit command's arguments (without ``python -m xltstats.fit``); a fit run from
    Python has none, and ``reproduce`` then says so.  ``in_memory``: the data was given as a DataFrame.
    """
    config = fit.config
    if in_memory:
        dataset, inputs = None, []
    else:
        dataset, inputs = dataset_provenance(config.data, mirror)
    recorded = None if argv is None else [TOOL] + [a for a in argv if a not in UNRECORDED_OPTIONS]
    return {
        "tool": TOOL,
        "xltstats_version": __version__,
        "argv": recorded,
        "command": None if recorded is None else "python -m " + " ".join(recorded),
        "cwd": os.getcwd(),  # relative paths in argv are relative to this
        "git_commit": xltstats_commit(),  # None when xltstats is not run from a git checkout
        "config": config.to_dict(),
        "seed": config.seed,
        "dataset": dataset,
        "inputs": inputs,
        "rows": int(len(fit.data)),
        "features_used": fit.used,
        "formulas": {"ols": "score ~ " + " + ".join(fit.used), "mixed": fit.formula},
        "estimators": {
            "ols": f"OLS on standardised features, {config.ols.cov_type} standard errors",
            "mixed": ("linear mixed model, crossed random intercepts, "
                      f"{'REML' if config.mixed.reml else 'ML'}, profiled deviance (lme4's formulation), "
                      "features in their own units"),
        },
        "score": fit.scale.to_dict() if getattr(fit, "scale", None) is not None else None,
        "notes": fit.notes,
        **({"morphology_imputation": fit.imputation} if fit.imputation else {}),
        "versions": package_versions(),
    }


def version_warnings(manifest: dict) -> list[str]:
    """Packages (and the xltstats commit) that differ now from those recorded in ``manifest``."""
    warnings = []
    versions = manifest.get("versions") or {}
    if not isinstance(versions, dict):
        return ["the manifest's 'versions' is not a mapping; package versions were not compared"]
    for package, recorded in sorted(versions.items()):
        if recorded is None:
            continue
        current = installed_version(str(package)) or "not installed"
        if str(current) != str(recorded):
            warnings.append(f"{package} is {current} now, {recorded} when the fit was made")
    recorded_commit = manifest.get("git_commit") or manifest.get("xltstats_commit")
    if recorded_commit:
        current_commit = xltstats_commit()
        if current_commit and current_commit != recorded_commit:
            warnings.append(f"xltstats is at commit {current_commit[:12]} now, {str(recorded_commit)[:12]} "
                            "when the fit was made")
    return warnings


def input_warnings(manifest: dict, cwd: Path) -> list[str]:
    """Warnings for recorded input files that are now missing or have another SHA-256."""
    from xltstats.datasets.fetch import sha256_of

    inputs = manifest.get("inputs") or {}
    if isinstance(inputs, dict):
        entries = [(p, h if isinstance(h, str) else (h or {}).get("sha256")) for p, h in inputs.items()]
    else:
        entries = [(i.get("path"), i.get("sha256")) for i in inputs if isinstance(i, dict)]
    warnings = []
    for path, expected in entries:
        if not isinstance(path, str) or not isinstance(expected, str) or len(expected) != 64:
            continue
        file = Path(path) if Path(path).is_absolute() else cwd / path
        if not file.is_file():
            continue  # a dataset name or a cached download: the fit resolves it itself
        actual = sha256_of(file)
        if actual != expected:
            warnings.append(f"input {path} has changed since the fit (sha256 {actual[:12]}…, recorded {expected[:12]}…)")
    return warnings
