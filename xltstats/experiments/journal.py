"""Append-only journals of results rows, and the final results table built from them.

Each job appends one JSON line per finished evaluation to its own journal
(``<run_dir>/journal/<job id>.jsonl``), flushed and fsynced before the next evaluation starts.
A process killed while writing leaves at most one partial last line (no newline after it): readers
ignore it and the next writer cuts it off before appending.  Rows carry a ``row_key`` (hash of the
run's config and the grid cell).

Anything else that is wrong with a journal is an error naming the file and the line, never
skipped: a line that is not UTF-8 JSON (NUL bytes from a crashed file system, a hand edit), a line
that is not a JSON object, a row without ``row_key``, and two rows with the same ``row_key`` but
different contents (in one journal or across journals).  The same row written twice is kept once.
``python -m xltstats.experiments repair CONFIG`` (:func:`repair_journals`) moves such lines aside
into ``<journal>.rejected`` and rewrites the journal atomically.
The final table is written to a temporary file in the destination folder and renamed into place.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .._io import atomic_write_bytes
from ..errors import InputError

RESULT_COLUMNS = ["model", "task", "source", "target", "score", "metric", "n_source_examples",
                  "n_target_examples", "seed", "config_hash", "run_id"]
REPAIR_HINT = "run `python -m xltstats.experiments repair CONFIG` to move bad lines aside"


class JournalError(InputError):
    """A journal line that cannot be used; ``file`` and ``line`` say where."""

    def __init__(self, message: str, *, file, line: int | None = None):
        self.line = line
        where = f"line {line}: " if line is not None else ""
        super().__init__(f"{where}{message}", file=file)


@dataclass
class _Problem:
    file: Path
    line: int
    reason: str
    raw: bytes


def _parse_line(raw: bytes):
    """(row, None) or (None, reason) for one complete journal line."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 ({exc.reason} at byte {exc.start + 1} of the line)"
    if "\x00" in text:
        return None, f"holds {text.count(chr(0))} NUL byte(s) (a damaged write)"
    try:
        row = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"corrupt journal line ({exc.msg} at character {exc.pos + 1})"
    if not isinstance(row, dict):
        return None, f"a journal line must be a JSON object, got a JSON {type(row).__name__}"
    key = row.get("row_key")
    if not isinstance(key, str) or not key:
        return None, "row has no 'row_key'"
    return row, None


def _scan(path: Path):
    """Every complete line of ``path``: ([(line number, row)], [problems], torn tail bytes)."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    complete, tail = lines[:-1], lines[-1]  # tail: bytes after the last newline (partial line)
    rows, problems, first_line = [], [], {}
    for number, raw in enumerate(complete, 1):
        if not raw.strip():
            continue
        row, reason = _parse_line(raw)
        if row is None:
            problems.append(_Problem(path, number, reason, raw))
            continue
        key = row["row_key"]
        if key in first_line:
            earlier_line, earlier = first_line[key]
            if not _same(earlier, row):
                problems.append(_Problem(path, number, f"row_key {key} was already written on line "
                                         f"{earlier_line} with other values ({_difference(earlier, row)})",
                                         raw))
            continue  # the same row twice: kept once
        first_line[key] = (number, row)
        rows.append((number, row))
    return rows, problems, tail


def _same(a: dict, b: dict) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _difference(a: dict, b: dict) -> str:
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return "; ".join(f"{k}: {a.get(k)!r} vs {b.get(k)!r}" for k in keys[:3])


def read_journal(path) -> list[dict]:
    """Complete rows of one journal; a partial last line (killed writer) is ignored.

    Raises :class:`JournalError` (file and line) for any other bad line."""
    return [row for _line, row in read_journal_lines(path)]


def read_journal_lines(path) -> list[tuple[int, dict]]:
    path = Path(path)
    if not path.is_file():
        return []
    rows, problems, _tail = _scan(path)
    if problems:
        first = problems[0]
        more = f" ({len(problems) - 1} more bad line(s))" if len(problems) > 1 else ""
        raise JournalError(f"{first.reason}{more}; {REPAIR_HINT}", file=path, line=first.line)
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


def repair_journal(path, *, dry_run: bool = False) -> list[dict]:
    """Move the bad lines (and a torn tail) of one journal into ``<journal>.rejected``.

    The journal is rewritten atomically with its good lines, in their order; the rejected lines
    are appended to the side file as they were.  Returns one entry per line moved
    (``file``, ``line``, ``reason``).  The caller holds the job's lock.
    """
    path = Path(path)
    if not path.is_file():
        return []
    rows, problems, tail = _scan(path)
    moved = [{"file": str(path), "line": p.line, "reason": p.reason} for p in problems]
    if tail:
        moved.append({"file": str(path), "line": path.read_bytes().count(b"\n") + 1,
                      "reason": "partial last line (a killed writer); its row is redone"})
    if dry_run or not moved:
        return moved
    rejected = path.with_name(path.name + ".rejected")
    with open(rejected, "ab") as fh:
        for p in problems:
            fh.write(p.raw + b"\n")
        if tail:
            fh.write(tail + b"\n")
        fh.flush()
        os.fsync(fh.fileno())
    good = b"".join(json.dumps(row, sort_keys=True, ensure_ascii=False).encode("utf-8") + b"\n"
                    for _line, row in rows)
    atomic_write_bytes(path, good, fsync=True)
    return moved


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
    """All rows of all journals of a run folder, one per key.

    The same row in two journals is kept once; two different rows with one key are an error
    naming both places."""
    rows: dict[str, dict] = {}
    where: dict[str, tuple[Path, int]] = {}
    folder = journal_dir(run_dir)
    if folder.is_dir():
        for path in sorted(folder.glob("*.jsonl")):
            for line, row in read_journal_lines(path):
                key = row["row_key"]
                if key in rows:
                    if not _same(rows[key], row):
                        other_file, other_line = where[key]
                        raise JournalError(
                            f"row_key {key} was already written in {other_file}, line {other_line}, "
                            f"with other values ({_difference(rows[key], row)}); {REPAIR_HINT}",
                            file=path, line=line)
                    continue
                rows[key] = row
                where[key] = (path, line)
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
    from ..results import validate_results, write_results

    validate_results(df)  # schema errors surface before anything is written
    return write_results(df, path)
