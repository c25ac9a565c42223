"""Pieces shared by the adapter-study analyses: scores from per-example counts, Holm's correction,
the condition columns, and a small self-contained HTML page writer (figures embedded)."""
from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from .._io import atomic_write_text
from ..errors import InputError
from ..results import parse_condition


def score_from_counts(metric: str, counts: np.ndarray) -> np.ndarray:
    """Scores from summed per-example counts (last axis): accuracy = correct / total;
    span F1 = 2 tp / (gold + predicted) (1 when both are 0)."""
    counts = np.asarray(counts, dtype=float)
    if metric == "f1":
        tp, gold, pred = counts[..., 0], counts[..., 1], counts[..., 2]
        denominator = gold + pred
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(denominator > 0, 2 * tp / np.where(denominator > 0, denominator, 1), 1.0)
    correct, total = counts[..., 0], counts[..., 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, correct / np.where(total > 0, total, 1), np.nan)


def example_counts(value) -> np.ndarray | None:
    """The ``example_stats`` cell of a row (JSON list of per-example counts) as an array."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    data = json.loads(value) if isinstance(value, str) else value
    array = np.asarray(data, dtype=float)
    return array if array.ndim == 2 and len(array) else None


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN stays NaN)."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    if not len(ok):
        return out
    order = ok[np.argsort(p[ok], kind="mergesort")]
    m = len(order)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        out[index] = running
    return out


def condition_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Structured columns from the ``condition`` column (only keys the table lacks are added)."""
    if "condition" not in df.columns:
        return df
    parsed = df["condition"].map(parse_condition)
    keys = sorted({k for d in parsed for k in d})
    out = df.copy()
    for key in keys:
        if key not in out.columns:
            out[key] = parsed.map(lambda d, k=key: d.get(k))
    return out


def require_columns(df: pd.DataFrame, columns, *, file=None, what: str = "table") -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(f"the {what} lacks column{'s' if len(missing) > 1 else ''} "
                         f"{', '.join(map(repr, missing))}", file=file, column=missing[0])


# --------------------------------------------------------------------------- HTML

def figure_html(fig, alt: str) -> str:
    """A matplotlib figure as an embedded PNG (no timestamp metadata: byte-identical reruns)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    import matplotlib.pyplot as plt

    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def table_html(df: pd.DataFrame, *, digits: int = 3, max_rows: int = 60) -> str:
    if df is None or df.empty:
        return "<p><em>(empty)</em></p>"
    shown = df.head(max_rows)
    more = f"<p><em>{len(df) - max_rows} more rows in the CSV file.</em></p>" if len(df) > max_rows else ""
    return shown.to_html(index=False, float_format=lambda x: f"{x:.{digits}g}", na_rep="–",
                         border=0, classes="t", escape=True) + more


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
line-height:1.4}} table.t{{border-collapse:collapse;font-size:0.85em;margin:0.5em 0}}
table.t td,table.t th{{border-bottom:1px solid #ddd;padding:2px 6px;text-align:right}}
img{{max-width:100%}} .rule{{background:#f5f5f5;padding:0.5em 1em;border-left:3px solid #888}}
</style></head><body>
<h1>{title}</h1>
{body}
</body></html>
"""


def write_page(path: Path, title: str, sections: list[tuple[str, str]]) -> Path:
    body = "\n".join(f"<section><h2>{html.escape(h)}</h2>\n{content}\n</section>" for h, content in sections)
    text = PAGE.format(title=html.escape(title), body=body)
    atomic_write_text(path, text)
    return path


def write_csv(df: pd.DataFrame, path: Path) -> None:
    from ..results import write_results

    write_results(df, path, float_format="%.10g")


def esc(text) -> str:
    return html.escape(str(text))
