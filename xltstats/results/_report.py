"""How validation problems are located (the file's row numbers) and how values are shown in them."""
from __future__ import annotations

import numpy as np
import pandas as pd

from xltstats.errors import InputError


class _Reporter:
    """Raises InputErrors, turning table positions into the file's row numbers."""

    def __init__(self, file, rows: np.ndarray):
        self.file = file
        self.rows = rows

    def row(self, position: int) -> int:
        return int(self.rows[position])

    def __call__(self, message: str, position: int, column: str):
        raise InputError(message, file=self.file, row=self.row(position), column=column)


def _first(mask) -> int:
    return int(np.flatnonzero(np.asarray(mask))[0])


def _plain(value) -> str:
    """A number as a user wrote it (``1.5``, ``3``), never numpy's ``np.float64(1.5)``."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return str(int(number)) if number.is_integer() and abs(number) < 1e16 else repr(number)
    return repr(value)


def _kind_of(value) -> str:
    if isinstance(value, (list, tuple, np.ndarray)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (bytes, bytearray)):
        return "bytes"
    if isinstance(value, (pd.Timestamp, np.datetime64)) or hasattr(value, "isoformat"):
        return "a date/time"
    return f"a {type(value).__name__}"


def _show(value) -> str:
    return repr(value) if isinstance(value, str) else str(value)
