"""Fit registry datasets with this checkout and diff the folders against reference fits.

    python benchmarks/compare_fit_folders.py --reference /work/baseline_fits [--out /tmp/new] [DATASET ...]

For each dataset ``D`` (default: every registry dataset) this runs ``python -m xltstats.fit --data D
--out OUT/D --quiet`` with the current ``PYTHONPATH`` and compares every file of ``OUT/D`` with
``REFERENCE/D`` byte for byte, except figures and the HTML report (``*.html``, ``*.png``,
``*.svg``).  ``manifest.json`` is compared as JSON without the fields that name where and when the
fit ran (``argv``, ``command``, ``cwd``, ``git_commit``).  A file present on one side only counts
as a difference.  ``--existing`` compares folders already in ``OUT`` without refitting.

Exit status 0 when every dataset matches, 1 otherwise; the last line says how many files were
compared and how many differ.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

SKIPPED_SUFFIXES = (".html", ".png", ".svg")
RUN_FIELDS = ("argv", "command", "cwd", "git_commit")
DATASETS = ("xpos", "langrank-pos", "langrank-dep", "langrank-el", "langrank-mt", "proxylm-intent", "sumeval")


def compared_files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")
            if p.is_file() and not p.name.endswith(SKIPPED_SUFFIXES)}


def manifest_without_run_fields(path: Path) -> dict:
    manifest = json.loads(path.read_text(encoding="utf-8"))
    return {k: v for k, v in manifest.items() if k not in RUN_FIELDS}


def differences(reference: Path, new: Path, names, *, sides=("the reference", "the new fit")) -> list[tuple[str, str]]:
    """(name, how it differs) for each of ``names`` (relative paths) that differs between the two
    folders: ``only in <side>`` (``sides`` names the reference and the new folder), ``bytes
    differ``, or for ``manifest.json`` the fields that differ besides the run fields."""
    out = []
    for name in names:
        a, b = reference / name, new / name
        if not a.is_file() or not b.is_file():
            out.append((name, f"only in {sides[1] if b.is_file() else sides[0]}"))
            continue
        if name == "manifest.json":
            left, right = manifest_without_run_fields(a), manifest_without_run_fields(b)
            if left != right:
                keys = sorted(k for k in set(left) | set(right) if left.get(k) != right.get(k))
                out.append((name, f"fields differ: {', '.join(keys)}"))
        elif a.read_bytes() != b.read_bytes():
            out.append((name, "bytes differ"))
    return out


def compare_folders(reference: Path, new: Path) -> tuple[int, list[str]]:
    """(files compared, descriptions of differences)."""
    names = sorted(compared_files(reference) | compared_files(new))
    return len(names), [f"{name}: {what}" for name, what in differences(reference, new, names)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("datasets", nargs="*", default=list(DATASETS))
    parser.add_argument("--reference", type=Path, required=True, help="folder of reference fits, one per dataset")
    parser.add_argument("--out", type=Path, default=Path("/tmp/xltstats-compare"), help="where the new fits go")
    parser.add_argument("--existing", action="store_true", help="compare fits already in --out, do not refit")
    args = parser.parse_args(argv)
    total_files, total_problems = 0, 0
    for dataset in args.datasets:
        new = args.out / dataset
        if not args.existing:
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "xltstats.fit", "--data", dataset, "--out", str(new),
                                   "--quiet"], capture_output=True, text=True, env=dict(os.environ))
            seconds = time.perf_counter() - started
            if done.returncode != 0:
                print(f"{dataset}: the fit failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
                total_problems += 1
                continue
        else:
            seconds = float("nan")
        count, problems = compare_folders(args.reference / dataset, new)
        total_files += count
        total_problems += len(problems)
        status = "identical" if not problems else f"{len(problems)} difference(s)"
        print(f"{dataset}: {count} files, {status} ({seconds:.1f} s)")
        for problem in problems:
            print(f"    {problem}")
        sys.stdout.flush()
    print(f"compared {total_files} files over {len(args.datasets)} dataset(s): {total_problems} difference(s)")
    return 0 if total_problems == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
