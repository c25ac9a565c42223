"""Step-wise progress messages on stderr for the command-line tools."""
from __future__ import annotations

import sys
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
