"""Errors that reach users.

Every problem with a user's input is an :class:`InputError` that names the file, the row and the
column where it was found, so that the message alone is enough to fix the input.  Command-line
entry points catch :class:`XltstatsError`, print it to stderr and exit with status 2.
"""
from __future__ import annotations


class XltstatsError(Exception):
    """Base class of the errors xltstats raises on purpose."""


class InputError(XltstatsError, ValueError):
    """Bad input data.

    ``row`` is the 1-based data row as a user counts it in the file (the header is not counted);
    for tables that were not read from a file it is the 1-based position in the table.
    """

    def __init__(self, message: str, *, file=None, row=None, column=None):
        self.message = message
        self.file = None if file is None else str(file)
        self.row = row
        self.column = column
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.file:
            where.append(self.file)
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        return (": ".join([", ".join(where), self.message]) if where else self.message)


class ConfigError(XltstatsError, ValueError):
    """A configuration (YAML or arguments) that cannot be run."""


class DownloadError(XltstatsError, OSError):
    """A dataset could not be fetched or failed its checksum."""


def report_error(prog: str, exc: BaseException) -> int:
    """What a command-line tool does with an error the user can fix: one line
    ``PROG: error: MESSAGE`` on standard error (no traceback), then exit status 2."""
    import sys

    print(f"{prog}: error: {exc}", file=sys.stderr)
    return 2


def run_command(prog: str, action, *args) -> int:
    """The exit status of ``action(*args)`` for a command-line tool: 0, or 2 through
    :func:`report_error` when it raises an :class:`XltstatsError`."""
    try:
        action(*args)
    except XltstatsError as exc:
        return report_error(prog, exc)
    return 0
