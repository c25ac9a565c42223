"""Ctrl-C while a command-line tool starts up (importing numpy, pandas, ...) ends it with a
one-line message and exit status 130, not a traceback of whatever module was being imported.

Installed by ``xltstats/__init__.py`` only when Python runs one of xltstats' modules with ``-m``
(``sys.argv[0] == "-m"`` while the package is imported); library use is untouched.  Each
command's ``main()`` still handles an interrupt of its own work (cleaning up what it wrote); this
hook only sees an interrupt that escaped every handler, after every ``finally`` block ran.
"""
from __future__ import annotations

import os
import sys


def _hook(kind, value, traceback, previous=sys.excepthook):
    if issubclass(kind, KeyboardInterrupt):
        try:
            sys.stderr.write("xltstats: interrupted (nothing was written)\n")
            sys.stderr.flush()
        finally:
            os._exit(130)
    previous(kind, value, traceback)


def install_for_command_line() -> None:
    if sys.argv[:1] == ["-m"]:
        sys.excepthook = _hook
