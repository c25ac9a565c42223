"""Step-wise progress messages on stderr for the command-line tools."""
from __future__ import annotations

import sys
import threading
import time
from contextlib import contextmanager


class Progress:
    """Prints ``prog: step ...`` when a step starts and its duration when it ends.

    Steps that finish within ``min_seconds`` print one line only (the start), so that quick runs
    stay quiet while steps longer than a second show that they are alive and how long they took.
    """

    def __init__(self, prog: str, quiet: bool = False, stream=None, min_seconds: float = 1.0):
        self.prog = prog
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.min_seconds = min_seconds
        self.timings: dict[str, float] = {}

    def info(self, message: str) -> None:
        if not self.quiet:
            print(f"{self.prog}: {message}", file=self.stream, flush=True)

    @contextmanager
    def step(self, name: str):
        self.info(f"{name} ...")
        start = time.perf_counter()
        yield
        elapsed = time.perf_counter() - start
        self.timings[name] = elapsed
        if elapsed >= self.min_seconds:
            self.info(f"{name}: done in {elapsed:.1f} s")

    def counter(self, name: str, total: int, min_interval: float = 1.0) -> "Counter":
        """A callable to call once per finished unit of work (a fold, say): it prints
        ``name: done/total (label), N s so far, about M s left`` (see :class:`Counter`)."""
        return Counter(self, name, total, min_interval)


def _clock() -> float:
    return time.perf_counter()


class Counter:
    """Counts finished units of a step and estimates the time left from the mean time per unit so far.

    Thread-safe (folds finish in worker threads). A line is printed at most every ``min_interval``
    seconds, and for the last unit when the step took longer than that, so quick steps stay quiet.
    """

    def __init__(self, progress: Progress, name: str, total: int, min_interval: float = 1.0):
        self.progress = progress
        self.name = name
        self.total = max(int(total), 1)
        self.min_interval = min_interval
        self.done = 0
        self.start = _clock()
        self._last = self.start
        self._lock = threading.Lock()

    def __call__(self, label: str = "") -> None:
        with self._lock:
            self.done += 1
            now = _clock()
            if now - self._last < self.min_interval and not (self.done >= self.total and now - self.start >= self.min_interval):
                return
            self._last = now
            elapsed = now - self.start
            left = elapsed / self.done * max(self.total - self.done, 0)
            what = f" ({label})" if label else ""
            self.progress.info(f"  {self.name}: {self.done}/{self.total} done{what}, {elapsed:.0f} s so far, "
                               f"about {left:.0f} s left")
