"""Rerunning a fit from its folder's manifest (:mod:`xltstats.reproduce` is the command): the recorded
arguments checked against the fit CLI's own parser, the ``python -P -m xltstats.fit`` command of the
rerun with absolute paths, and :func:`reproduce`, which runs it in an empty folder and compares every
table (:func:`xltstats.pipeline.compare.compare_fit_folders`).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..errors import ConfigError, InputError
from .artifacts import FitFolder
from .compare import ReproduceResult, compare_fit_folders
from .manifest import TOOL, input_warnings, version_warnings

__all__ = ["reproduce", "read_manifest", "validated_arguments", "rerun_command", "check_versions"]

#: Options of the fit command whose value is a path (resolved and shown before the rerun).
PATH_OPTIONS = ("--data", "--config", "--mirror")
#: Options of the fit command a recorded command may not use.
REFUSED_OPTIONS = ("--list-datasets",)


class _Refused(Exception):
    pass


class _StrictParser(argparse.ArgumentParser):
    """The fit CLI's parser, raising instead of exiting on a bad argument list."""

    def error(self, message):
        raise _Refused(message)


def read_manifest(fit_dir: Path) -> dict:
    folder = FitFolder(fit_dir)
    path = folder.path / "manifest.json"
    if not path.is_file():
        raise InputError("no manifest.json; is this a fit folder written by python -m xltstats.fit?", file=path)
    manifest = folder.manifest
    argv = manifest.get("argv")
    if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
        raise InputError("'argv' must be the list of arguments after `python -m` "
                         '(e.g. ["xltstats.fit", "--data", "xpos"]); a fit made from Python has none and cannot '
                         "be rerun", file=path, column="argv")
    return manifest


def validated_arguments(argv: list[str], *, manifest_path: Path | str = "manifest.json") -> argparse.Namespace:
    """The recorded fit arguments, parsed by the fit CLI's own parser; anything else is refused."""
    from xltstats.fit import build_parser

    if argv[0] != TOOL:
        raise ConfigError(f"{manifest_path}: refusing to run {argv[0]!r}: reproduce runs only xltstats' own fit "
                          f"(the manifest's argv must start with {TOOL!r}); nothing was run")
    refused = [a for a in argv[1:] if a.split("=", 1)[0] in REFUSED_OPTIONS]
    if refused:
        raise ConfigError(f"{manifest_path}: refusing the recorded option {refused[0]}; nothing was run")
    template = build_parser()
    parser = _StrictParser(prog=template.prog, add_help=False)
    for action in template._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        kwargs = {"dest": action.dest, "default": action.default, "help": action.help}
        if isinstance(action, argparse._StoreTrueAction):
            parser.add_argument(*action.option_strings, action="store_true", **kwargs)
        else:
            parser.add_argument(*action.option_strings, type=action.type, **kwargs)
    try:
        return parser.parse_args(argv[1:])
    except _Refused as exc:
        raise ConfigError(f"{manifest_path}: the recorded fit arguments are not those of python -m {TOOL}: "
                          f"{exc}; nothing was run") from None


def rerun_command(args: argparse.Namespace, out_dir: Path, base: Path) -> tuple[list[str], dict[str, str]]:
    """``python -P -m xltstats.fit`` with the recorded settings, absolute paths, ``--out out_dir``, no report."""
    from xltstats.datasets import list_datasets

    command = [sys.executable, "-P", "-m", TOOL]
    paths: dict[str, str] = {}
    for option in PATH_OPTIONS:
        value = getattr(args, option.lstrip("-"))
        if value is None:
            continue
        if option == "--data" and value in list_datasets():
            command += [option, value]
            continue
        resolved = str((base / Path(value).expanduser()).resolve())
        paths[option] = resolved
        command += [option, resolved]
    if args.seed is not None:
        command += ["--seed", str(args.seed)]
    command += ["--out", str(out_dir), "--no-report", "--quiet"]
    return command, paths


def check_versions(manifest: dict) -> list[str]:
    """Warnings for packages (and the xltstats commit) that differ from those recorded in the manifest."""
    return version_warnings(manifest)


def _environment() -> dict[str, str]:
    """This process's environment, with this xltstats first on the import path of the rerun."""
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])  # the folder holding this xltstats
    env["PYTHONPATH"] = os.pathsep.join([package_root, *filter(None, [env.get("PYTHONPATH")])])
    env.pop("PYTHONSTARTUP", None)
    return env


def reproduce(fit_dir: str | Path, *, rtol: float = 1e-6, atol: float = 1e-9, keep: str | Path | None = None,
              timeout: float | None = None) -> ReproduceResult:
    """Rerun the fit recorded in ``fit_dir/manifest.json`` and compare its tables with the stored ones."""
    folder = FitFolder(Path(fit_dir).resolve())
    if not folder.path.is_dir():
        raise InputError("no such fit folder", file=folder.path)
    manifest = read_manifest(folder.path)
    args = validated_arguments(manifest["argv"], manifest_path=folder.path / "manifest.json")
    recorded_cwd = manifest.get("cwd")
    base = Path(recorded_cwd) if isinstance(recorded_cwd, str) and Path(recorded_cwd).is_dir() else Path.cwd()
    warnings = input_warnings(manifest, base) + check_versions(manifest)
    with tempfile.TemporaryDirectory(prefix="xltstats-reproduce-") as scratch:
        out_dir = Path(keep).resolve() if keep else Path(scratch) / "fit"
        command, paths = rerun_command(args, out_dir, base)
        started = time.perf_counter()
        empty = Path(scratch) / "cwd"
        empty.mkdir()
        try:
            done = subprocess.run(command, cwd=empty, capture_output=True, text=True, timeout=timeout,
                                  env=_environment())
        except subprocess.TimeoutExpired as exc:
            raise ConfigError(f"the rerun took longer than {timeout} s: {' '.join(command)}") from exc
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-20:])
            raise ConfigError(f"the rerun failed (exit {done.returncode}): python -m {' '.join(command[3:])}\n{tail}")
        tables = compare_fit_folders(folder.path, out_dir, rtol=rtol, atol=atol)
    return ReproduceResult(command, seconds, tables, warnings, paths)
