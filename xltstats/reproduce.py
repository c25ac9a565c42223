"""``python -m xltstats.reproduce DIR``: rerun a fit from its manifest and compare every table.

A fit folder may come from someone else, so nothing in it is trusted to name code: the rerun is
always ``python -m xltstats.fit`` of *this* xltstats (started with ``-P`` in an empty working
folder, so no module is imported from the fit folder or the recorded working directory).  The
manifest's ``argv`` must start with ``xltstats.fit`` and its options must parse with the fit
CLI's own parser (unknown options are refused); paths in it (``--data``, ``--config``,
``--mirror``) are resolved against the recorded ``cwd`` when that folder exists, else against the
current folder, and printed before the rerun.  The rerun writes into a temporary folder
(``--out`` replaced) without a report.

Every table (``results.csv``, ``features.csv``, ``feature_coverage.csv``, ``predictions.csv``,
``cv.csv``, ``tables/*.csv``) is compared byte for byte; a table that differs is then compared
cell by cell (numbers with a tolerance) to say how.  Exit status: 0 when every table is
byte-identical, 1 when any differs or is missing, 2 when the rerun cannot be made.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from xltstats.errors import ConfigError, InputError, XltstatsError, report_error
from xltstats.pipeline.artifacts import FitFolder
from xltstats.pipeline.compare import ReproduceResult, compare_fit_folders, compare_tables  # noqa: F401
from xltstats.pipeline.manifest import TOOL, input_warnings, version_warnings

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
    package_root = str(Path(__file__).resolve().parent.parent)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m xltstats.reproduce",
        description="Rerun a fit from DIR/manifest.json and compare every table with the stored one. "
                    "Only xltstats' own fit is run, with the recorded options checked against its parser. "
                    "Exit 0: all tables byte-identical; 1: some differ; 2: the rerun could not be made.")
    parser.add_argument("fit_dir", metavar="DIR", help="fit folder written by python -m xltstats.fit")
    parser.add_argument("--rtol", type=float, default=1e-6, help="relative tolerance used to describe differences")
    parser.add_argument("--atol", type=float, default=1e-9, help="absolute tolerance used to describe differences")
    parser.add_argument("--keep", metavar="DIR2", help="write the rerun into DIR2 (kept) instead of a temp folder")
    args = parser.parse_args(argv)
    try:
        result = reproduce(args.fit_dir, rtol=args.rtol, atol=args.atol, keep=args.keep)
    except XltstatsError as exc:
        return report_error("xltstats.reproduce", exc)
    print(result.report())
    return 0 if result.identical else 1


if __name__ == "__main__":
    sys.exit(main())
