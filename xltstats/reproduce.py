"""``python -m xltstats.reproduce DIR``: rerun a fit from its manifest and compare every table.

The fit folder's ``manifest.json`` records ``argv``, the arguments after ``python -m`` (for example
``["xltstats.fit", "--data", "xpos", "--out", "fit"]``) and, optionally, ``cwd``, the directory it
ran in (relative paths in ``argv`` are resolved from there; default: the current directory).  The
rerun writes into a temporary folder: the value of ``--out``/``--output``/``-o`` in ``argv`` is
replaced (``--out TMP`` is appended when there is none) and ``--no-report`` is added.

Every table (``results.csv``, ``features.csv``, ``feature_coverage.csv``, ``predictions.csv``,
``cv.csv``, ``tables/*.csv``) is compared byte for byte; a table that differs is then compared
cell by cell (numbers with a tolerance) to say how.  Exit status: 0 when every table is
byte-identical, 1 when any differs or is missing, 2 when the rerun cannot be made.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from xltstats.datasets.fetch import sha256_of
from xltstats.errors import ConfigError, InputError, XltstatsError

ROOT_TABLES = ("results.csv", "features.csv", "feature_coverage.csv", "predictions.csv", "cv.csv")
OUT_OPTIONS = ("--out", "--output", "-o", "--out-dir", "--output-dir")
MAX_CELL_REPORTS = 5


@dataclass
class TableDifference:
    """How one table of the rerun differs from the stored one."""

    table: str
    status: str  # "identical", "different", "missing-in-rerun", "missing-in-stored"
    details: list[str] = field(default_factory=list)
    within_tolerance: bool = False

    def lines(self) -> list[str]:
        head = {
            "identical": f"identical   {self.table}",
            "different": f"DIFFERENT   {self.table}" + (" (numerically equal within tolerance)"
                                                      if self.within_tolerance else ""),
            "missing-in-rerun": f"MISSING     {self.table}: stored but not produced by the rerun",
            "missing-in-stored": f"EXTRA       {self.table}: produced by the rerun but not stored",
        }[self.status]
        return [head, *("    " + d for d in self.details)]


@dataclass
class ReproduceResult:
    command: list[str]
    seconds: float
    tables: list[TableDifference]
    input_warnings: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return all(t.status == "identical" for t in self.tables)

    def report(self) -> str:
        lines = [f"reran: python -m {' '.join(self.command[2:])}  ({self.seconds:.1f} s)"]
        lines += [f"warning: {w}" for w in self.input_warnings]
        for table in self.tables:
            lines += table.lines()
        different = sum(t.status != "identical" for t in self.tables)
        lines.append("reproduced: all tables byte-identical" if self.identical
                     else f"NOT reproduced: {different} of {len(self.tables)} table(s) differ")
        return "\n".join(lines)


def read_manifest(fit_dir: Path) -> dict:
    path = fit_dir / "manifest.json"
    if not path.is_file():
        raise InputError("no manifest.json; is this a fit folder written by python -m xltstats.fit?", file=path)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InputError(f"not valid JSON: {exc}", file=path) from exc
    argv = manifest.get("argv") if isinstance(manifest, dict) else None
    if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
        raise InputError("'argv' must be the list of arguments after `python -m` "
                         '(e.g. ["xltstats.fit", "--data", "xpos"])', file=path, column="argv")
    return manifest


def rerun_command(argv: list[str], out_dir: Path) -> list[str]:
    """``python -m argv`` writing into ``out_dir``, without a report."""
    args = list(argv)
    replaced = False
    for index, arg in enumerate(args):
        if arg in OUT_OPTIONS and index + 1 < len(args):
            args[index + 1] = str(out_dir)
            replaced = True
        elif any(arg.startswith(option + "=") for option in OUT_OPTIONS if option.startswith("--")):
            args[index] = arg.split("=", 1)[0] + "=" + str(out_dir)
            replaced = True
    if not replaced:
        args += ["--out", str(out_dir)]
    if "--no-report" not in args:
        args.append("--no-report")
    return [sys.executable, "-m", *args]


def table_names(fit_dir: Path) -> set[str]:
    names = {name for name in ROOT_TABLES if (fit_dir / name).is_file()}
    if (fit_dir / "tables").is_dir():
        names |= {f"tables/{p.name}" for p in (fit_dir / "tables").glob("*.csv")}
    return names


def check_inputs(manifest: dict, cwd: Path) -> list[str]:
    """Warnings for recorded input files that are now missing or have another SHA-256."""
    inputs = manifest.get("inputs") or {}
    if isinstance(inputs, dict):
        entries = [(p, h if isinstance(h, str) else (h or {}).get("sha256")) for p, h in inputs.items()]
    else:
        entries = [(i.get("path"), i.get("sha256")) for i in inputs if isinstance(i, dict)]
    warnings = []
    for path, expected in entries:
        if not path or not expected or len(str(expected)) != 64:
            continue
        file = Path(path) if Path(path).is_absolute() else cwd / path
        if not file.is_file():
            continue  # a dataset name or a cached download: the fit resolves it itself
        actual = sha256_of(file)
        if actual != expected:
            warnings.append(f"input {path} has changed since the fit (sha256 {actual[:12]}…, recorded {expected[:12]}…)")
    return warnings


def check_versions(manifest: dict) -> list[str]:
    """Warnings for packages (and the xltstats commit) that differ from those recorded in the manifest."""
    import platform
    from importlib import metadata

    warnings = []
    versions = manifest.get("versions") or {}
    for package, recorded in sorted(versions.items()):
        if recorded is None:
            continue
        if package == "python":
            current = platform.python_version()
        else:
            try:
                current = metadata.version(package)
            except metadata.PackageNotFoundError:
                current = "not installed"
        if str(current) != str(recorded):
            warnings.append(f"{package} is {current} now, {recorded} when the fit was made")
    recorded_commit = manifest.get("git_commit") or manifest.get("xltstats_commit")
    if recorded_commit:
        current_commit = _xltstats_commit()
        if current_commit and current_commit != recorded_commit:
            warnings.append(f"xltstats is at commit {current_commit[:12]} now, {str(recorded_commit)[:12]} "
                            "when the fit was made")
    return warnings


def _xltstats_commit() -> str | None:
    """The git commit of the xltstats checkout this module runs from, when it is one."""
    root = Path(__file__).resolve().parent.parent
    try:
        done = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def compare_tables(stored: Path, rerun: Path, name: str, *, rtol: float = 1e-6, atol: float = 1e-9) -> TableDifference:
    """Byte comparison, then a cell-by-cell explanation of any difference."""
    a, b = stored / name, rerun / name
    if not b.is_file():
        return TableDifference(name, "missing-in-rerun")
    if not a.is_file():
        return TableDifference(name, "missing-in-stored")
    if a.read_bytes() == b.read_bytes():
        return TableDifference(name, "identical")
    return TableDifference(name, "different", *_explain(a, b, rtol=rtol, atol=atol))


def _explain(a: Path, b: Path, *, rtol: float, atol: float) -> tuple[list[str], bool]:
    import numpy as np
    import pandas as pd

    try:
        left = pd.read_csv(a, keep_default_na=True)
        right = pd.read_csv(b, keep_default_na=True)
    except (ValueError, OSError) as exc:
        return [f"cannot be compared as tables: {exc}"], False
    details = []
    if list(left.columns) != list(right.columns):
        only_left = [c for c in left.columns if c not in right.columns]
        only_right = [c for c in right.columns if c not in left.columns]
        details.append(f"columns differ: stored only {only_left}, rerun only {only_right}"
                       if only_left or only_right else "same columns in another order")
    if len(left) != len(right):
        details.append(f"row count: stored {len(left)}, rerun {len(right)}")
    common = [c for c in left.columns if c in right.columns]
    rows = min(len(left), len(right))
    within = not details
    key = next((c for c in common if not pd.api.types.is_numeric_dtype(left[c])), None)
    for column in common:
        x, y = left[column].iloc[:rows], right[column].iloc[:rows]
        numeric = pd.api.types.is_numeric_dtype(x) and pd.api.types.is_numeric_dtype(y)
        if numeric:
            xv, yv = x.to_numpy(float), y.to_numpy(float)
            both_nan = np.isnan(xv) & np.isnan(yv)
            equal = both_nan | (xv == yv)
            close = both_nan | np.isclose(xv, yv, rtol=rtol, atol=atol)
            bad = np.flatnonzero(~equal)
            if bad.size == 0:
                continue
            one_missing = int((np.isnan(xv) != np.isnan(yv)).sum())
            diff = np.abs(xv - yv)
            diff = diff[np.isfinite(diff)]
            diff = diff[diff > 0]
            if not close.all():
                within = False
            parts = [f"column '{column}': {bad.size} of {rows} value(s) differ"]
            if diff.size:
                parts.append(f"max |diff| {diff.max():.3g}")
            if one_missing:
                parts.append(f"{one_missing} missing on one side only")
            details.append(", ".join(parts)
                           + ("" if close.all() else f" (beyond rtol={rtol:g}, atol={atol:g})"))
        else:
            # Missing on both sides is equal (pandas 3's string dtype keeps NaN through astype(str),
            # and NaN != NaN would list every empty cell as a difference).
            x_missing, y_missing = x.isna().to_numpy(), y.isna().to_numpy()
            xs = np.where(x_missing, "", x.astype(object).astype(str).to_numpy())
            ys = np.where(y_missing, "", y.astype(object).astype(str).to_numpy())
            bad = np.flatnonzero((x_missing != y_missing) | (xs != ys))
            if bad.size == 0:
                continue
            within = False
            details.append(f"column '{column}': {bad.size} of {rows} value(s) differ")
        for index in bad[:MAX_CELL_REPORTS]:
            where = f"row {index + 1}" + (f" ({key}={left[key].iloc[index]})" if key and key != column else "")
            details.append(f"  {where}: stored {_text(x.iloc[index])}, rerun {_text(y.iloc[index])}")
        if bad.size > MAX_CELL_REPORTS:
            details.append(f"  … and {bad.size - MAX_CELL_REPORTS} more")
    if not details:
        details.append("same values, different text (number formatting, quoting or line endings)")
    return details, within


def _text(value) -> str:
    value = value.item() if hasattr(value, "item") else value
    return repr(value)


def reproduce(fit_dir: str | Path, *, rtol: float = 1e-6, atol: float = 1e-9, keep: str | Path | None = None,
              timeout: float | None = None) -> ReproduceResult:
    """Rerun the fit recorded in ``fit_dir/manifest.json`` and compare its tables with the stored ones."""
    fit_dir = Path(fit_dir).resolve()
    if not fit_dir.is_dir():
        raise InputError("no such fit folder", file=fit_dir)
    manifest = read_manifest(fit_dir)
    cwd = Path(manifest.get("cwd") or os.getcwd())
    if not cwd.is_dir():
        cwd = Path(os.getcwd())
    warnings = check_inputs(manifest, cwd) + check_versions(manifest)
    with tempfile.TemporaryDirectory(prefix="xltstats-reproduce-") as scratch:
        out_dir = Path(keep).resolve() if keep else Path(scratch) / "fit"
        command = rerun_command(manifest["argv"], out_dir)
        started = time.perf_counter()
        try:
            done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise ConfigError(f"the rerun took longer than {timeout} s: {' '.join(command)}") from exc
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-20:])
            raise ConfigError(f"the rerun failed (exit {done.returncode}): python -m {' '.join(command[2:])}\n{tail}")
        names = sorted(table_names(fit_dir) | table_names(out_dir))
        tables = [compare_tables(fit_dir, out_dir, name, rtol=rtol, atol=atol) for name in names]
    return ReproduceResult(command, seconds, tables, warnings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m xltstats.reproduce",
        description="Rerun a fit from DIR/manifest.json and compare every table with the stored one. "
                    "Exit 0: all tables byte-identical; 1: some differ; 2: the rerun could not be made.")
    parser.add_argument("fit_dir", metavar="DIR", help="fit folder written by python -m xltstats.fit")
    parser.add_argument("--rtol", type=float, default=1e-6, help="relative tolerance used to describe differences")
    parser.add_argument("--atol", type=float, default=1e-9, help="absolute tolerance used to describe differences")
    parser.add_argument("--keep", metavar="DIR2", help="write the rerun into DIR2 (kept) instead of a temp folder")
    args = parser.parse_args(argv)
    try:
        result = reproduce(args.fit_dir, rtol=args.rtol, atol=args.atol, keep=args.keep)
    except XltstatsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(result.report())
    return 0 if result.identical else 1


if __name__ == "__main__":
    sys.exit(main())
