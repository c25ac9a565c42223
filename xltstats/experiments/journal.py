"""Append-only journals of results rows, and the final results table built from them.

Each job appends one JSON line per finished evaluation to its own journal
(``<run_dir>/journal/<job id>.jsonl``), flushed and fsynced before the next evaluation starts.
A process killed while writing leaves at most one partial last line: readers ignore it and the
next writer cuts it off before appending.  Rows carry a ``row_key`` (hash of the run's config
and the grid cell); reading keeps the first row per key, so nothing is ever counted twice.
The final table is written to a temporary file in the destination folder and renamed into place.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from ..errors import InputError

RESULT_COLUMNS = ["model", "task", "source", "target", "score", "metric", "n_source_examples",
                  "n_target_examples", "seed", "config_hash", "run_id"]


def read_journal(path) -> list[dict]:
    """Complete rows of one journal; a partial last line (killed writer) is ignored."""
    path = Path(path)
    if not path.is_file():
        return []
    data = path.read_bytes()
    lines = data.split(b"\n")
    complete, tail = lines[:-1], lines[-1]  # tail: bytes after the last newline (partial line)
    rows = []
    for i, line in enumerate(complete, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise InputError(f"corrupt journal line ({exc.msg})", file=path, row=i) from None
    del tail
    return rows


def repair_tail(path) -> None:
    """Cut a partial last line off ``path`` so that appends start on a fresh line."""
    path = Path(path)
    if not path.is_file():
        return
    with open(path, "r+b") as fh:
        data = fh.read()
        end = data.rfind(b"\n") + 1
        if end != len(data):
            fh.truncate(end)
            fh.flush()
            os.fsync(fh.fileno())


class Journal:
    """Appends rows durably to one journal file."""

    def __init__(self, path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        repair_tail(self.path)
        self.keys = {row["row_key"] for row in read_journal(self.path)}

    def append(self, row: dict) -> None:
        if row["row_key"] in self.keys:
            return
        line = json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n"
        with open(self.path, "ab") as fh:
            fh.write(line.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        self.keys.add(row["row_key"])


def journal_dir(run_dir) -> Path:
    return Path(run_dir) / "journal"


def read_all(run_dir) -> dict[str, dict]:
    """All rows of all journals of a run folder, first row per key."""
    rows: dict[str, dict] = {}
    folder = journal_dir(run_dir)
    if folder.is_dir():
        for path in sorted(folder.glob("*.jsonl")):
            for row in read_journal(path):
                rows.setdefault(row["row_key"], row)
    return rows


def write_table(rows: list[dict], path) -> Path:
    """Write the results table atomically; format from the extension (.csv .tsv .jsonl .parquet)."""
    import pandas as pd

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = sorted({k for r in rows for k in r} - set(RESULT_COLUMNS))
    df = pd.DataFrame(rows, columns=RESULT_COLUMNS + extra)
    if len(df):
        df = df.sort_values(["task", "source", "target", "n_target_examples", "seed"], kind="mergesort")
    df = df.reset_index(drop=True)
    try:
        from ..results import validate_results, write_results
    except ImportError:  # the shared results module is optional here
        validate_results = write_results = None
    if write_results is not None:
        validate_results(df)  # schema errors surface before anything is written
        return write_results(df, path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        if path.suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        elif path.suffix == ".jsonl":
            df.to_json(tmp, orient="records", lines=True, force_ascii=False)
        else:
            df.to_csv(tmp, index=False, sep="\t" if path.suffix == ".tsv" else ",",
                      lineterminator="\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
