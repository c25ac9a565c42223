"""The one atomic writer: files and folders appear complete or not at all.

* :func:`atomic_write_text` / :func:`atomic_write_bytes` write a file;
  :func:`atomic_write_with` hands a temporary path to a writer (``df.to_parquet``, ``np.save``, ...).
  All three write into a hidden temporary file beside the target and rename it over the target.
* :class:`AtomicDir` builds a folder in a hidden ``.NAME.partial-PID-XXXX`` sibling and swaps it
  into place at the end.  While it runs, the writer holds an ``flock`` on
  ``.NAME.partial-PID-XXXX.lock``; a later writer of the same output removes the partial folders
  whose lock nobody holds (their writer is gone), never one a live run is writing.  SIGINT and
  SIGTERM remove the partial folder.  The final step exchanges the two folders in one system call
  (``renameat2(RENAME_EXCHANGE)`` on Linux), so a kill at any moment leaves either the previous
  output or the new one under ``NAME``, never nothing.
* :func:`atomic_write_dir` hands such a partial folder to a writer (``save_pretrained``, ``torch.save``).

Permissions follow the user's umask, as ``open()`` and ``mkdir`` would give them (``0o666 & ~umask``
for files, ``0o777 & ~umask`` for folders): ``tempfile.mkstemp``/``mkdtemp`` create ``0600``/``0700``,
so every temporary file and folder is set to :func:`file_mode` / :func:`dir_mode` before it is
renamed into place; under umask 022 collaborators can read a fit, under 077 nobody else can.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from typing import Callable

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process's umask, read without changing it where Linux says it (``/proc/self/status``);
    elsewhere set and restored at once under a lock."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode ``open()`` gives a new file under the current umask."""
    return 0o666 & ~current_umask()


def dir_mode() -> int:
    """The mode ``mkdir`` gives a new folder under the current umask."""
    return 0o777 & ~current_umask()


def atomic_write_with(path, write: Callable[[str], None], *, suffix: str = ".tmp") -> Path:
    """Call ``write(temporary_path)`` and rename the result over ``path``.

    The temporary file lives in ``path``'s folder (so the rename is atomic) and is removed when
    ``write`` fails or the process is interrupted; it gets the umask's mode (:func:`file_mode`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_bytes(path, data: bytes, *, fsync: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (``fsync``: on disk before the rename)."""
    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())

    return atomic_write_with(path, write)


def atomic_write_text(path, text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (``\\n`` line endings, as given)."""
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding=encoding, newline="") as fh:
            fh.write(text)

    return atomic_write_with(path, write)


# --------------------------------------------------------------------------- folders

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _renameat2():
    """libc's ``renameat2`` (Linux, glibc >= 2.28), or None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        function = libc.renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_RENAMEAT2 = _renameat2()


def exchange(a: Path, b: Path) -> bool:
    """Swap the names of ``a`` and ``b`` in one system call; False when the system cannot."""
    if _RENAMEAT2 is None:
        return False
    if _RENAMEAT2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # file system or kernel without it
        return False
    raise OSError(code, os.strerror(code), str(a))


def partial_prefix(out: Path) -> str:
    return f".{out.name}.partial-"


def _lock_is_free(lock: Path) -> bool:
    """True when nobody holds ``lock`` (its writer is gone); False when a live process holds it."""
    try:
        fd = os.open(lock, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    finally:
        os.close(fd)  # closing releases the lock we may have taken
    return True


def remove_stale_partials(out: Path) -> list[Path]:
    """Remove ``out``'s partial folders (and their lock files) whose writer is gone.

    A partial folder counts as stale only when its lock file exists and no process holds it; a
    folder without a lock file (written by an older xltstats, or being created right now) is left.
    """
    out = Path(out)
    removed = []
    if not out.parent.is_dir():
        return removed
    prefix = partial_prefix(out)
    for lock in sorted(out.parent.glob(f"{prefix}*.lock")):
        if not _lock_is_free(lock):
            continue
        folder = lock.with_name(lock.name[: -len(".lock")])
        previous = folder.with_name(folder.name + ".old")
        if previous.is_dir() and not out.exists() and not out.is_symlink():
            # killed between the two renames of a system without an atomic exchange
            os.replace(previous, out)
        elif previous.is_dir():
            shutil.rmtree(previous, ignore_errors=True)
        if folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder, ignore_errors=True)
        elif folder.exists() or folder.is_symlink():
            folder.unlink()
        lock.unlink(missing_ok=True)
        removed.append(folder)
    return removed


class AtomicDir:
    """Build the folder ``out`` in a hidden partial folder; ``commit()`` swaps it into place.

    Use as a context manager::

        with AtomicDir(out) as work:
            ... write files under work ...
            work_dir.commit()

    Leaving the block without ``commit()`` (an error, Ctrl-C, SIGTERM) removes the partial folder;
    ``out`` stays as it was.
    """

    def __init__(self, out, *, handle_signals: bool = True):
        self.out = Path(out)
        self.handle_signals = handle_signals
        self.path: Path | None = None
        self.lock_path: Path | None = None
        self._lock_fd: int | None = None
        self._previous_handlers: dict[int, object] = {}
        self.committed = False
        self.removed_stale: list[Path] = []

    # -- life cycle
    def __enter__(self) -> "AtomicDir":
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.removed_stale = remove_stale_partials(self.out)
        self._install_signal_handlers()
        token = tempfile.mkdtemp(prefix=f"{partial_prefix(self.out)}{os.getpid()}-", dir=self.out.parent)
        # the lock first (named after the folder), then the folder is known as ours
        self.lock_path = Path(token + ".lock")
        self._lock_fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o666)  # open() applies the umask
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        os.write(self._lock_fd, f"{os.getpid()}\n".encode())
        self.path = Path(token)
        os.chmod(self.path, dir_mode())
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if self.path is not None and self.path.exists():
                shutil.rmtree(self.path, ignore_errors=True)
        finally:
            self._release()
            self._restore_signal_handlers()

    def commit(self) -> None:
        """Put the new folder at ``out``; the previous content of ``out`` (if any) is removed."""
        assert self.path is not None
        blocked = self._block_signals()
        try:
            if self.out.exists():
                if exchange(self.path, self.out):
                    # self.path now holds the previous output; __exit__ removes it
                    pass
                else:
                    old = self.path.with_name(self.path.name + ".old")
                    os.replace(self.out, old)
                    os.replace(self.path, self.out)
                    self.path = old
            else:
                os.replace(self.path, self.out)
                self.path = None
            self.committed = True
        finally:
            self._unblock_signals(blocked)

    # -- helpers
    def _release(self) -> None:
        if self._lock_fd is not None:
            try:
                if self.lock_path is not None:
                    self.lock_path.unlink(missing_ok=True)
            finally:
                os.close(self._lock_fd)
                self._lock_fd = None

    def _install_signal_handlers(self) -> None:
        if not self.handle_signals or threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(signal.SIGTERM)
        if previous in (signal.SIG_DFL, None):
            self._previous_handlers[signal.SIGTERM] = previous
            signal.signal(signal.SIGTERM, _raise_terminated)

    def _restore_signal_handlers(self) -> None:
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers.clear()

    @staticmethod
    def _block_signals():
        if threading.current_thread() is not threading.main_thread():
            return None
        return signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})

    @staticmethod
    def _unblock_signals(previous) -> None:
        if previous is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def atomic_write_dir(out, write: Callable[[Path], None], *, handle_signals: bool = True) -> Path:
    """Call ``write(folder)`` on a fresh partial folder and swap it into place as ``out``.

    The folder counterpart of :func:`atomic_write_with`, for writers that produce a folder
    (``model.save_pretrained``, ``torch.save`` of several files): files keep their final names
    inside the partial folder.  When ``write`` fails or the process is interrupted, ``out`` stays
    as it was.  ``handle_signals=False`` leaves SIGTERM to whatever the process does with it
    (a killed writer's partial folder is removed by the next writer of ``out``).
    """
    with AtomicDir(out, handle_signals=handle_signals) as work:
        write(work.path)
        work.commit()
    return Path(out)


def raise_on_sigterm() -> None:
    """From now on SIGTERM raises :class:`Terminated` in the main thread (when nothing else handles it)."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) in (
            signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _raise_terminated)


class Terminated(BaseException):
    """SIGTERM arrived: unwinds like KeyboardInterrupt so partial outputs are removed."""


def _raise_terminated(signum, frame):
    raise Terminated(f"terminated by signal {signum}")
