"""How two fit folders' tables differ: byte for byte, then cell by cell (used by ``reproduce``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

MAX_CELL_REPORTS = 5


@dataclass
class TableDifference:
    """How one table of the rerun differs from the stored one."""

    table: str
    status: str  # "identical", "different", "missing-in-rerun", "missing-in-stored"
    details: list[str] = field(default_factory=list)
    within_tolerance: bool = False

    def lines(self) -> list[str]:
        head = {
            "identical": f"identical   {self.table}",
            "different": f"DIFFERENT   {self.table}" + (" (numerically equal within tolerance)"
                                                      if self.within_tolerance else ""),
            "missing-in-rerun": f"MISSING     {self.table}: stored but not produced by the rerun",
            "missing-in-stored": f"EXTRA       {self.table}: produced by the rerun but not stored",
        }[self.status]
        return [head, *("    " + d for d in self.details)]


def compare_tables(stored: Path, rerun: Path, name: str, *, rtol: float = 1e-6, atol: float = 1e-9) -> TableDifference:
    """Byte comparison, then a cell-by-cell explanation of any difference."""
    a, b = stored / name, rerun / name
    if not b.is_file():
        return TableDifference(name, "missing-in-rerun")
    if not a.is_file():
        return TableDifference(name, "missing-in-stored")
    if a.read_bytes() == b.read_bytes():
        return TableDifference(name, "identical")
    return TableDifference(name, "different", *_explain(a, b, rtol=rtol, atol=atol))


def _explain(a: Path, b: Path, *, rtol: float, atol: float) -> tuple[list[str], bool]:
    import numpy as np
    import pandas as pd

    try:
        left = pd.read_csv(a, keep_default_na=True)
        right = pd.read_csv(b, keep_default_na=True)
    except (ValueError, OSError) as exc:
        return [f"cannot be compared as tables: {exc}"], False
    details = []
    if list(left.columns) != list(right.columns):
        only_left = [c for c in left.columns if c not in right.columns]
        only_right = [c for c in right.columns if c not in left.columns]
        details.append(f"columns differ: stored only {only_left}, rerun only {only_right}"
                       if only_left or only_right else "same columns in another order")
    if len(left) != len(right):
        details.append(f"row count: stored {len(left)}, rerun {len(right)}")
    common = [c for c in left.columns if c in right.columns]
    rows = min(len(left), len(right))
    within = not details
    key = next((c for c in common if not pd.api.types.is_numeric_dtype(left[c])), None)
    for column in common:
        x, y = left[column].iloc[:rows], right[column].iloc[:rows]
        numeric = pd.api.types.is_numeric_dtype(x) and pd.api.types.is_numeric_dtype(y)
        if numeric:
            xv, yv = x.to_numpy(float), y.to_numpy(float)
            both_nan = np.isnan(xv) & np.isnan(yv)
            equal = both_nan | (xv == yv)
            close = both_nan | np.isclose(xv, yv, rtol=rtol, atol=atol)
            bad = np.flatnonzero(~equal)
            if bad.size == 0:
                continue
            one_missing = int((np.isnan(xv) != np.isnan(yv)).sum())
            diff = np.abs(xv - yv)
            diff = diff[np.isfinite(diff)]
            diff = diff[diff > 0]
            if not close.all():
                within = False
            parts = [f"column '{column}': {bad.size} of {rows} value(s) differ"]
            if diff.size:
                parts.append(f"max |diff| {diff.max():.3g}")
            if one_missing:
                parts.append(f"{one_missing} missing on one side only")
            details.append(", ".join(parts)
                           + ("" if close.all() else f" (beyond rtol={rtol:g}, atol={atol:g})"))
        else:
            # Missing on both sides is equal (pandas 3's string dtype keeps NaN through astype(str),
            # and NaN != NaN would list every empty cell as a difference).
            x_missing, y_missing = x.isna().to_numpy(), y.isna().to_numpy()
            xs = np.where(x_missing, "", x.astype(object).astype(str).to_numpy())
            ys = np.where(y_missing, "", y.astype(object).astype(str).to_numpy())
            bad = np.flatnonzero((x_missing != y_missing) | (xs != ys))
            if bad.size == 0:
                continue
            within = False
            details.append(f"column '{column}': {bad.size} of {rows} value(s) differ")
        for index in bad[:MAX_CELL_REPORTS]:
            where = f"row {index + 1}" + (f" ({key}={left[key].iloc[index]})" if key and key != column else "")
            details.append(f"  {where}: stored {_text(x.iloc[index])}, rerun {_text(y.iloc[index])}")
        if bad.size > MAX_CELL_REPORTS:
            details.append(f"  … and {bad.size - MAX_CELL_REPORTS} more")
    if not details:
        details.append("same values, different text (number formatting, quoting or line endings)")
    return details, within


def _text(value) -> str:
    value = value.item() if hasattr(value, "item") else value
    return repr(value)


@dataclass
class ReproduceResult:
    command: list[str]
    seconds: float
    tables: list[TableDifference]
    input_warnings: list[str] = field(default_factory=list)
    paths: dict[str, str] = field(default_factory=dict)

    @property
    def identical(self) -> bool:
        return all(t.status == "identical" for t in self.tables)

    def report(self) -> str:
        lines = [f"reran: python -m {' '.join(self.command[3:])}  ({self.seconds:.1f} s)"]
        lines += [f"  {option} {path}" for option, path in self.paths.items()]
        lines += [f"warning: {w}" for w in self.input_warnings]
        for table in self.tables:
            lines += table.lines()
        different = sum(t.status != "identical" for t in self.tables)
        lines.append("reproduced: all tables byte-identical" if self.identical
                     else f"NOT reproduced: {different} of {len(self.tables)} table(s) differ")
        return "\n".join(lines)


def compare_fit_folders(stored: Path, rerun: Path, *, rtol: float = 1e-6, atol: float = 1e-9) -> list[TableDifference]:
    """Every table of either fit folder, compared (see :func:`compare_tables`)."""
    from .artifacts import FitFolder

    names = sorted(set(FitFolder(stored).table_files()) | set(FitFolder(rerun).table_files()))
    return [compare_tables(stored, rerun, name, rtol=rtol, atol=atol) for name in names]
