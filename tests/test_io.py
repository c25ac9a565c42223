"""The one atomic writer: files, folders, interrupted writers, stale partial folders."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from xltstats import _io
from xltstats._io import AtomicDir, atomic_write_bytes, atomic_write_text, atomic_write_with, remove_stale_partials


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_atomic_file_writes_replace_and_leave_nothing_on_failure(tmp_path):
    target = tmp_path / "a.txt"
    atomic_write_text(target, "one\n")
    atomic_write_bytes(target, b"two\n")
    assert target.read_bytes() == b"two\n"
    assert oct(target.stat().st_mode & 0o777) == oct(_io.file_mode())

    def broken(tmp):
        Path(tmp).write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write_with(target, broken)
    assert target.read_bytes() == b"two\n" and hidden(tmp_path) == []


def test_atomic_dir_commit_replaces_and_error_keeps_the_old_folder(tmp_path):
    out = tmp_path / "fit"
    with AtomicDir(out) as work:
        (work.path / "a").write_text("1")
        work.commit()
    assert (out / "a").read_text() == "1"
    with pytest.raises(KeyError):
        with AtomicDir(out) as work:
            (work.path / "a").write_text("2")
            raise KeyError("boom")
    assert (out / "a").read_text() == "1" and hidden(tmp_path) == []
    with AtomicDir(out) as work:
        (work.path / "b").write_text("3")
        work.commit()
    assert sorted(p.name for p in out.iterdir()) == ["b"] and hidden(tmp_path) == []


CHILD = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from xltstats import _io
    out = Path(sys.argv[1]); mode = sys.argv[2]
    if mode == "no-exchange":
        _io.exchange = lambda a, b: False
    with _io.AtomicDir(out) as work:
        (work.path / "new").write_text("new")
        if mode in ("after-exchange", "no-exchange"):
            real = os.replace
            calls = []
            def replace(a, b):
                real(a, b)
                calls.append(1)
                if mode == "no-exchange" and len(calls) == 1:
                    os.kill(os.getpid(), 9)   # between the two renames
            os.replace = replace
            work.commit()
            if mode == "after-exchange":
                os.kill(os.getpid(), 9)       # swapped, old copy not yet removed
        print("ready", flush=True)
        time.sleep(60)
        work.commit()
""")


def start_child(tmp_path, out, mode):
    script = tmp_path / "child.py"
    script.write_text(CHILD, encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(Path(_io.__file__).resolve().parent.parent))
    return subprocess.Popen([sys.executable, str(script), str(out), mode], stdout=subprocess.PIPE, text=True, env=env)


def previous_output(out: Path) -> None:
    out.mkdir()
    (out / "old").write_text("old")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_sigint_and_sigterm_remove_the_partial_folder(tmp_path, signum):
    out = tmp_path / "fit"
    previous_output(out)
    child = start_child(tmp_path, out, "wait")
    assert child.stdout.readline().strip() == "ready"
    assert any(n.startswith(".fit.partial-") for n in hidden(tmp_path))
    child.send_signal(signum)
    child.wait(timeout=30)
    assert child.returncode != 0
    assert hidden(tmp_path) == []
    assert sorted(p.name for p in out.iterdir()) == ["old"]


def test_sigkill_leaves_a_partial_that_the_next_writer_removes_but_never_a_live_one(tmp_path):
    out = tmp_path / "fit"
    previous_output(out)
    dead = start_child(tmp_path, out, "wait")
    assert dead.stdout.readline().strip() == "ready"
    dead.kill()
    dead.wait(timeout=30)
    stale = [n for n in hidden(tmp_path) if not n.endswith(".lock")]
    assert len(stale) == 1  # SIGKILL cannot clean up
    live = start_child(tmp_path, out, "wait")
    assert live.stdout.readline().strip() == "ready"
    try:
        with AtomicDir(out) as work:
            names = hidden(tmp_path)
            assert stale[0] not in names  # the dead writer's folder is gone
            assert sum(n.startswith(f".fit.partial-{live.pid}-") and not n.endswith(".lock") for n in names) == 1
            (work.path / "mine").write_text("x")
            work.commit()
        assert remove_stale_partials(out) == []  # the live writer's folder is not stale
        assert any(n.startswith(f".fit.partial-{live.pid}-") for n in hidden(tmp_path))
    finally:
        live.kill()
        live.wait(timeout=30)
    assert sorted(p.name for p in out.iterdir()) == ["mine"]


@pytest.mark.parametrize("mode", ["after-exchange", "no-exchange"])
def test_a_kill_during_the_final_swap_loses_no_output(tmp_path, mode):
    out = tmp_path / "fit"
    previous_output(out)
    child = start_child(tmp_path, out, mode)
    child.wait(timeout=30)
    assert child.returncode == -9
    # either the new folder is in place, or the next writer puts the previous one back
    remove_stale_partials(out)
    assert hidden(tmp_path) == []
    names = sorted(p.name for p in out.iterdir())
    assert names == (["new"] if mode == "after-exchange" else ["old"])


# --------------------------------------------------------------------------- permissions follow the umask

@pytest.fixture(params=[0o022, 0o077, 0o002])
def umask(request):
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def modes(folder: Path) -> dict[str, str]:
    """Every file and folder below ``folder``, with its permission bits."""
    found = {}
    for path in sorted(folder.rglob("*")):
        found[str(path.relative_to(folder))] = oct(path.stat().st_mode & 0o777)
    return found


def test_outputs_get_the_users_umask_not_mkstemps_0600(tmp_path, umask):
    """mkstemp/mkdtemp create 0600/0700; every writer gives what open() and mkdir would."""
    from xltstats.studies._common import write_page

    assert _io.current_umask() == umask
    files, folders = oct(0o666 & ~umask), oct(0o777 & ~umask)
    atomic_write_text(tmp_path / "a.txt", "a\n")
    atomic_write_bytes(tmp_path / "b.bin", b"b", fsync=True)
    atomic_write_with(tmp_path / "c.txt", lambda tmp: Path(tmp).write_text("c"))
    write_page(tmp_path / "study.html", "study", [("results", "<p>study</p>")])
    with AtomicDir(tmp_path / "fit") as work:
        (work.path / "tables").mkdir()
        atomic_write_text(work.path / "tables" / "t.csv", "x\n1\n")
        work.commit()
    found = modes(tmp_path)
    expected = {name: (folders if (tmp_path / name).is_dir() else files) for name in found}
    assert found == expected
    assert {"fit", "fit/tables"} <= set(found)
    if umask == 0o022:  # collaborators on a shared server can read the results
        assert found["fit/tables/t.csv"] == "0o644" and found["fit"] == "0o755"


def test_journal_rewrite_and_feature_cache_follow_the_umask(tmp_path, umask):
    """The experiment code's own writers: the journal's repair rewrite and the features cache."""
    from xltstats.experiments.journal import repair_journal
    from xltstats.experiments.train import save_features

    journal = tmp_path / "journal.jsonl"
    journal.write_text('{"a": 1}\n{"a": 2', encoding="utf-8")  # a torn last line is repaired
    repair_journal(journal)
    save_features([{"input_ids": [1, 2, 3]}], tmp_path / "features.npz")
    for name in ("journal.jsonl", "features.npz"):
        assert oct((tmp_path / name).stat().st_mode & 0o777) == oct(0o666 & ~umask), name


def test_atomic_write_dir_hands_a_folder_to_a_writer_and_keeps_the_old_one_on_failure(tmp_path):
    from xltstats._io import atomic_write_dir

    out = tmp_path / "ckpt"

    def write(folder: Path) -> None:
        assert folder.parent == tmp_path and folder.name.startswith(".ckpt.partial-")
        (folder / "weights.bin").write_bytes(b"\x00\x01")

    assert atomic_write_dir(out, write) == out
    assert (out / "weights.bin").read_bytes() == b"\x00\x01" and hidden(tmp_path) == []

    def broken(folder: Path) -> None:
        (folder / "weights.bin").write_bytes(b"half")
        raise RuntimeError("disk full")

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(RuntimeError):
        atomic_write_dir(out, broken, handle_signals=False)
    assert signal.getsignal(signal.SIGTERM) is before
    assert (out / "weights.bin").read_bytes() == b"\x00\x01" and hidden(tmp_path) == []
