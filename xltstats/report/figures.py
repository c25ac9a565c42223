"""Report figures: matplotlib/seaborn plots saved reproducibly as PNG (and SVG when asked for).

Every function takes tidy data and returns a :class:`matplotlib.figure.Figure` built without
``pyplot``, so nothing is shown as a side effect when the report runs inside a Jupyter kernel
(Quarto) and no global figure state is left behind.  :func:`save_figure` writes the PNG (the HTML
report shows it) and, with ``svg=True`` (``report: {svg: true}`` in the fit configuration), an SVG
as well, byte-for-byte reproducibly: no dates or software versions in the metadata and a fixed SVG
hash salt.  Heatmaps are one ``imshow`` image each (no per-cell patches or gridlines).
"""
from __future__ import annotations

import io
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .._io import atomic_write_bytes

# Fixed style so two renders on the same machine produce identical files.
RC = {
    "svg.hashsalt": "xltstats-report",
    "svg.fonttype": "path",
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "figure.dpi": 100,
    "savefig.dpi": 110,
    "path.simplify": True,
}
PNG_DPI = 110
# Figures wider than this are shown at their natural size in a scrolling box instead of being
# shrunk to the page width (where their tick labels would become unreadable).
WIDE_FIGURE_INCHES = 13.0
MAX_FIGURE_INCHES = 30.0


def _style():
    return matplotlib.rc_context(RC)




def save_figure(fig: Figure, figures_dir: str | Path, name: str, *, svg: bool = False) -> tuple[Path, Path | None]:
    """Write ``name.png`` (and ``name.svg`` when ``svg``) under ``figures_dir``; return both paths
    (the SVG's is None when it was not asked for)."""
    figures_dir = Path(figures_dir)
    formats = [("png", {"Software": None})] + ([("svg", {"Date": None, "Creator": None})] if svg else [])
    outputs = []
    with _style():
        if fig.get_layout_engine() is not None:
            # lay the figure out once and fix it: with a layout engine savefig draws a figure twice
            # (a dry draw that runs the layout, then the real one, which runs it again) per format
            fig.get_layout_engine().execute(fig)
            fig.set_layout_engine(None)
        for fmt, metadata in formats:
            buffer = io.BytesIO()
            fig.savefig(buffer, format=fmt, dpi=PNG_DPI, metadata=metadata)
            path = figures_dir / f"{name}.{fmt}"
            atomic_write_bytes(path, buffer.getvalue())
            outputs.append(path)
    return outputs[0], (outputs[1] if svg else None)


def new_figure(width: float, height: float, nrows: int = 1, ncols: int = 1, *, layout: str | None = "constrained",
               **kwargs):
    """A figure and its axes under the report style, detached from pyplot.  ``layout=None``: no
    layout engine (the caller places the axes); matplotlib then draws the figure once when it is
    saved instead of twice (a dry draw for the layout, which measures every tick label)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    with _style():
        fig = Figure(figsize=(width, height), layout=layout)
        # An Agg canvas caches its renderer: without one, every text-extent query (seaborn checks
        # each tick label of a heatmap for overlap) builds a new renderer for the whole figure,
        # which took seconds on the 65 x 105 xpos heatmap.
        FigureCanvasAgg(fig)
        axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    return fig, axes


def _heatmap(ax, matrix: pd.DataFrame, *, cmap: str, vmin=None, vmax=None, annotate: bool, fmt: str,
             colorbar_label: str, shrink: float = 1.0, colorbar_location: str = "right"):
    """One ``imshow`` image of ``matrix`` (NaN cells left blank), every row and column labelled,
    values written in the cells when ``annotate``; the colour bar beside it (``colorbar_location``)."""
    values = matrix.to_numpy(float)
    masked = np.ma.masked_invalid(values)
    if cmap not in matplotlib.colormaps:
        import seaborn  # noqa: F401  (registers its colour maps, e.g. vlag)
    colormap = matplotlib.colormaps[cmap].with_extremes(bad=(0.0, 0.0, 0.0, 0.0))
    if vmin is None or vmax is None:
        finite = values[np.isfinite(values)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        vmin = low if vmin is None else vmin
        vmax = high if vmax is None else vmax
    image = ax.imshow(masked, cmap=colormap, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
    n_rows, n_cols = values.shape
    ax.set_xticks(np.arange(n_cols), [str(c) for c in matrix.columns])
    ax.set_yticks(np.arange(n_rows), [str(r) for r in matrix.index])
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if annotate:
        norm = image.norm
        for i in range(n_rows):
            for j in range(n_cols):
                v = values[i, j]
                if np.isfinite(v):
                    # dark text on light cells, light text on dark ones
                    r, g, b, _ = colormap(norm(v))
                    light = 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.408
                    ax.text(j, i, format(v, fmt), ha="center", va="center", fontsize=7,
                            color="0.15" if light else "white")
    if colorbar_location == "top":
        # a horizontal bar above the cells, from their left edge and at most 4.5 inches long, so that
        # it is in view wherever a wide figure is scrolled to (the title is moved above it)
        width, height = ax.figure.get_size_inches()
        axes_width, axes_height = max(width - 2.0, 1.0), max(height - 2.0, 1.0)
        cax = ax.inset_axes([0.0, 1.0 + 0.25 / axes_height, min(1.0, 4.5 / axes_width), 0.12 / axes_height])
        bar = ax.figure.colorbar(image, cax=cax, orientation="horizontal")
        cax.xaxis.set_ticks_position("top")
        cax.xaxis.set_label_position("top")
        bar.set_label(colorbar_label, fontsize=8)
        cax.tick_params(labelsize=7)
        for title in (ax.title, ax._left_title, ax._right_title):
            title.set_y(1.0 + 1.0 / axes_height)
    else:
        ax.figure.colorbar(image, ax=ax, label=colorbar_label, shrink=shrink)
    return image


def _group_spans(groups) -> list[tuple[str, int, int]]:
    """(group, first position, last position + 1) of each run of equal consecutive labels."""
    spans = []
    for position, group in enumerate(groups):
        if spans and spans[-1][0] == group:
            spans[-1] = (group, spans[-1][1], position + 1)
        else:
            spans.append((group, position, position + 1))
    return spans


# Width of one character of a 7-point tick label, in points (DejaVu Sans averages about 0.6 em).
_TICK_CHAR_POINTS = 4.4


def _mark_groups(ax, matrix: pd.DataFrame, row_groups, col_groups, colour: str = "white") -> None:
    """Separator lines (``colour``) between groups of rows/columns and the group names beyond the
    tick labels (rows on the left, columns below), out past the longest language label."""
    for groups, axis, labels in ((row_groups, "y", matrix.index), (col_groups, "x", matrix.columns)):
        label_points = _TICK_CHAR_POINTS * max((len(str(v)) for v in labels), default=4)
        if groups is None:
            continue
        spans = _group_spans(list(groups))
        for _group, _start, stop in spans[:-1]:
            (ax.axhline if axis == "y" else ax.axvline)(stop - 0.5, color=colour, linewidth=1.6)
        centres = [(start + stop - 1) / 2 for _group, start, stop in spans]
        names = [group for group, _start, _stop in spans]
        if axis == "y":
            secondary = ax.secondary_yaxis("left")
            secondary.set_yticks(centres, names)
            secondary.tick_params(length=0, pad=label_points + 6, labelsize=7)
        else:
            secondary = ax.secondary_xaxis("bottom")
            secondary.set_xticks(centres, names)
            secondary.tick_params(length=0, pad=label_points + 6, labelsize=7, labelrotation=90)
        for spine in secondary.spines.values():
            spine.set_visible(False)
        # the axis title goes outside the family names (it would sit between them and the languages)
        if axis == "y":
            secondary.set_ylabel(ax.get_ylabel())
            ax.set_ylabel("")
        else:
            secondary.set_xlabel(ax.get_xlabel())
            ax.set_xlabel("")
        for label in (secondary.get_yticklabels() if axis == "y" else secondary.get_xticklabels()):
            label.set_fontweight("bold")


def transfer_heatmap(matrix: pd.DataFrame, *, title: str, metric: str, vmin: float | None = None,
                     vmax: float | None = None, residual: bool = False, row_groups=None,
                     col_groups=None, higher_is_better: bool = True) -> Figure:
    """Source (rows) x target (columns) heatmap of mean scores, every language labelled.

    Small matrices get the score written in each cell; large ones get narrower cells and a figure
    wide enough to keep one readable label per row and column (the report shows such a figure at
    its natural size in a horizontally scrolling box, see :data:`WIDE_FIGURE_INCHES`).  The colour
    bar lies above the cells, starting at the left edge, so it is in view however far the box is
    scrolled to.  ``vmin``/``vmax``: a colour scale shared with other heatmaps.  ``residual``: the
    values are residuals around 0 (a diverging colour map, symmetric about 0).  ``row_groups`` /
    ``col_groups``: a group name per row / column (language families, consecutive), drawn as white
    separator lines (dark grey on residuals) with the group names beyond the language labels.
    ``higher_is_better=False`` (a lower-is-better metric): the colour maps are reversed, so that a
    better score has the same colour whatever the metric's direction (bright, or red for residuals).
    """
    n_rows, n_cols = matrix.shape
    annotate = n_rows * n_cols <= 150
    cell = 0.42 if annotate else 0.2
    row_room = 0.075 * max((len(str(v)) for v in matrix.index), default=4)  # the row labels' width
    column_room = 0.075 * max((len(str(v)) for v in matrix.columns), default=4)  # the (rotated) column labels'
    # the family names beyond the language labels (bold 7 pt, and a gap)
    row_room += (0.15 + 0.075 * max(map(len, map(str, row_groups)))
                 if row_groups is not None and len(row_groups) else 0)
    column_room += (0.15 + 0.075 * max(map(len, map(str, col_groups)))
                    if col_groups is not None and len(col_groups) else 0)
    width = min(2.2 + row_room + cell * n_cols, MAX_FIGURE_INCHES)
    height = min(2.2 + column_room + cell * n_rows, MAX_FIGURE_INCHES)
    with _style():
        # Fixed margins in inches (the figure's size already holds them): constrained layout measured
        # every one of the ~170 tick labels in a dry draw before the real one, 1 s of a 65 x 105 map.
        fig, axes = new_figure(width, height, layout=None)
        left, bottom = row_room + 0.55, column_room + 0.55
        fig.subplots_adjust(left=left / width, right=1.0 - 0.3 / width, bottom=bottom / height,
                            top=1.0 - 1.25 / height)
        ax = axes[0, 0]
        # Scores on a 0-1 scale need two decimals to differ in the cells; percentages need one.
        values = matrix.to_numpy(float)
        largest = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 0.0
        fmt = ".2f" if largest <= 1.5 else ".1f"
        if residual and (vmin is None or vmax is None):
            vmax = largest or 1.0
            vmin = -vmax
        label = f"residual ({metric}, source and target effects removed)" if residual else f"score ({metric})"
        if not higher_is_better:
            label = label[:-1] + ", lower is better)"
        cmap = ("vlag" if residual else "viridis") + ("" if higher_is_better else "_r")
        _heatmap(ax, matrix, cmap=cmap, vmin=vmin, vmax=vmax, annotate=annotate,
                 fmt=fmt, colorbar_label=label, shrink=min(1.0, 6.0 / width) if width > 6 else 1.0,
                 colorbar_location="top")
        ax.set_xlabel("target language")
        ax.set_ylabel("source language")
        ax.set_title(title, loc="left")  # at the left, as the colour bar, in view in a scrolled figure
        ax.tick_params(axis="x", labelrotation=90, labelsize=7)
        ax.tick_params(axis="y", labelrotation=0, labelsize=7)
        if row_groups is not None or col_groups is not None:
            # white between families on the viridis scores, dark grey on the near-white residuals
            _mark_groups(ax, matrix, row_groups, col_groups, colour="0.3" if residual else "white")
    return fig


def pair_residuals(matrix: pd.DataFrame, *, iterations: int = 200, tol: float = 1e-10) -> pd.DataFrame:
    """``matrix`` minus its additive fit ``mu + a_source + b_target`` (least squares over the
    observed cells, by alternating row and column means): what is left is pair-specific transfer,
    neither how good a source is in general nor how easy a target is.  Missing cells stay missing."""
    values = matrix.to_numpy(float)
    observed = np.isfinite(values)
    mu = float(values[observed].mean()) if observed.any() else 0.0
    rows = np.zeros(values.shape[0])
    cols = np.zeros(values.shape[1])
    filled = np.where(observed, values, 0.0)
    for _ in range(iterations):
        fitted = mu + rows[:, None] + cols[None, :]
        residual = np.where(observed, filled - fitted, 0.0)
        count_rows = np.maximum(observed.sum(axis=1), 1)
        step_rows = residual.sum(axis=1) / count_rows
        rows = rows + step_rows
        fitted = mu + rows[:, None] + cols[None, :]
        residual = np.where(observed, filled - fitted, 0.0)
        step_cols = residual.sum(axis=0) / np.maximum(observed.sum(axis=0), 1)
        cols = cols + step_cols
        if max(np.abs(step_rows).max(initial=0.0), np.abs(step_cols).max(initial=0.0)) < tol:
            break
    residual = np.where(observed, values - (mu + rows[:, None] + cols[None, :]), np.nan)
    return pd.DataFrame(residual, index=matrix.index, columns=matrix.columns)


def correlation_heatmap(corr: pd.DataFrame) -> Figure:
    """Pairwise Pearson correlations between features (pairwise-complete)."""
    n = len(corr)
    size = min(3.5 + 0.5 * n, 14.0)
    with _style():
        fig, axes = new_figure(size + 1.0, size)
        ax = axes[0, 0]
        _heatmap(ax, corr, cmap="vlag", vmin=-1, vmax=1, annotate=n <= 14, fmt=".2f",
                 colorbar_label="Pearson r (unitless)")
        ax.set_aspect("equal")
        ax.set_xlabel("feature")
        ax.set_ylabel("feature")
        ax.set_title("Correlation between pair features")
        ax.tick_params(axis="x", labelrotation=90, labelsize=7)
        ax.tick_params(axis="y", labelrotation=0, labelsize=7)
    return fig


def coefficient_plot(coefs: pd.DataFrame, *, title: str, group: str | None = None,
                     xlabel: str = "coefficient (score points per SD of feature)") -> Figure:
    """Point estimates with interval bars; ``coefs`` has term, estimate, low, high (and group)."""
    terms = list(dict.fromkeys(coefs["term"]))
    groups = list(dict.fromkeys(coefs[group])) if group else [None]
    height = min(1.5 + 0.32 * len(terms) * max(1, len(groups) ** 0.5), 14.0)
    with _style():
        fig, axes = new_figure(6.5, height)
        ax = axes[0, 0]
        palette = matplotlib.colormaps["tab10"]
        offsets = np.linspace(-0.25, 0.25, len(groups)) if len(groups) > 1 else [0.0]
        for index, (level, offset) in enumerate(zip(groups, offsets)):
            part = coefs if level is None else coefs[coefs[group] == level]
            y = np.array([terms.index(t) for t in part["term"]], dtype=float) + offset
            estimate = part["estimate"].to_numpy(float)
            low = part["low"].to_numpy(float)
            high = part["high"].to_numpy(float)
            error = np.vstack([estimate - low, high - estimate])
            ax.errorbar(estimate, y, xerr=np.where(np.isfinite(error), error, 0.0), fmt="o",
                        color=palette(index % 10), ecolor=palette(index % 10), capsize=2.5,
                        markersize=4, label=None if level is None else str(level))
        ax.axvline(0.0, color="0.5", linewidth=0.8, linestyle="--")
        ax.set_yticks(range(len(terms)), terms)
        ax.invert_yaxis()
        ax.set_xlabel(xlabel)
        ax.set_ylabel("term")
        ax.set_title(title)
        if len(groups) > 1:
            ax.legend(title=group, fontsize=7, title_fontsize=8, loc="best")
    return fig


def bar_plot(data: pd.DataFrame, *, x: str, y: str, title: str, xlabel: str, ylabel: str,
             hue: str | None = None, horizontal: bool = True, low: str | None = None,
             high: str | None = None) -> Figure:
    """A bar chart of precomputed values (no bootstrap intervals, so it is deterministic).

    ``low``/``high``: columns with interval bounds, drawn as error bars (single-series charts only).
    """
    import seaborn as sns

    n = data[y if horizontal else x].nunique()
    with _style():
        if horizontal:
            fig, axes = new_figure(6.5, min(1.6 + 0.32 * n * (1 + (hue is not None)), 12.0))
            sns.barplot(data=data, x=x, y=y, hue=hue, ax=axes[0, 0], errorbar=None, orient="h")
        else:
            fig, axes = new_figure(min(4.5 + 0.6 * n * (1 + (hue is not None)), 12.0), 3.8)
            sns.barplot(data=data, x=x, y=y, hue=hue, ax=axes[0, 0], errorbar=None)
        ax = axes[0, 0]
        if low is not None and high is not None and hue is None:
            value = x if horizontal else y
            centre = data[value].to_numpy(float)
            error = np.vstack([centre - data[low].to_numpy(float), data[high].to_numpy(float) - centre])
            error = np.where(np.isfinite(error), np.clip(error, 0.0, None), 0.0)
            position = np.arange(len(data), dtype=float)
            if horizontal:
                ax.errorbar(centre, position, xerr=error, fmt="none", ecolor="0.15", capsize=3, linewidth=1)
            else:
                ax.errorbar(position, centre, yerr=error, fmt="none", ecolor="0.15", capsize=3, linewidth=1)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        if hue is not None and ax.get_legend() is not None:
            # Outside the axes, so that it never hides a bar.
            ax.legend(title=hue, fontsize=7, title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                      frameon=False)
    return fig


def residual_diagnostics(frame: pd.DataFrame, *, estimator_column: str | None, metric: str) -> Figure:
    """Residual vs fitted and normal QQ plot, one row of panels per estimator."""
    from scipy import stats

    levels = list(dict.fromkeys(frame[estimator_column])) if estimator_column else [None]
    with _style():
        fig, axes = new_figure(8.0, 3.2 * len(levels), nrows=len(levels), ncols=2)
        for row, level in enumerate(levels):
            part = frame if level is None else frame[frame[estimator_column] == level]
            fitted = part["fitted"].to_numpy(float)
            residual = part["residual"].to_numpy(float)
            label = "" if level is None else f" ({level})"
            ax = axes[row, 0]
            ax.scatter(fitted, residual, s=8, alpha=0.6, color="tab:blue", edgecolors="none")
            ax.axhline(0.0, color="0.4", linewidth=0.8, linestyle="--")
            ax.set_xlabel(f"fitted score ({metric})")
            ax.set_ylabel(f"residual ({metric})")
            ax.set_title(f"Residuals vs fitted{label}")
            ax = axes[row, 1]
            (theoretical, ordered), (slope, intercept, _) = stats.probplot(residual, dist="norm")
            ax.scatter(theoretical, ordered, s=8, alpha=0.6, color="tab:blue", edgecolors="none")
            ax.plot(theoretical, slope * theoretical + intercept, color="tab:red", linewidth=1.0)
            ax.set_xlabel("theoretical normal quantile (SD)")
            ax.set_ylabel(f"residual quantile ({metric})")
            ax.set_title(f"Normal QQ plot{label}")
    return fig


def fewshot_plot(curves: pd.DataFrame, points: pd.DataFrame | None, *, metric: str,
                 panel_metrics: dict[str, str] | None = None, title: str = "Few-shot curves") -> Figure:
    """Score against the number of target-language examples (symlog axis), one panel per ``panel``.

    ``curves``: panel, hue, n, fit, lower, upper (fitted curve and band); ``points``: panel, hue, n,
    observed (mean observed scores), or None.  ``panel_metrics``: the metric of each panel (default
    ``metric``).  Each panel's legend sits below it, so that it never hides a curve.
    """
    panels = sorted(curves["panel"].unique())
    ncols = min(3, len(panels))
    nrows = int(np.ceil(len(panels) / ncols))
    n_hues = max((curves.loc[curves["panel"] == p, "hue"].nunique() for p in panels), default=1)
    legend_rows = int(np.ceil(n_hues / 2)) if curves["hue"].astype(bool).any() else 0
    palette = matplotlib.colormaps["tab10"]
    with _style():
        fig, axes = new_figure(3.9 * ncols + 0.6, (3.0 + 0.17 * legend_rows) * nrows, nrows=nrows, ncols=ncols)
        for index, level in enumerate(panels):
            ax = axes[index // ncols, index % ncols]
            part = curves[curves["panel"] == level]
            for colour, hue in enumerate(sorted(part["hue"].unique())):
                line = part[part["hue"] == hue].sort_values("n")
                ax.plot(line["n"], line["fit"], "-", linewidth=1.2, color=palette(colour % 10), label=hue or None)
                if line["lower"].notna().any():
                    ax.fill_between(line["n"], line["lower"], line["upper"], color=palette(colour % 10),
                                    alpha=0.12, linewidth=0)
                if points is not None:
                    dots = points[(points["panel"] == level) & (points["hue"] == hue)]
                    ax.plot(dots["n"], dots["observed"], "o", markersize=3.5, color=palette(colour % 10))
            ax.set_xscale("symlog", linthresh=1.0)
            ax.set_xlabel("target-language training examples (count, symlog)")
            ax.set_ylabel(f"score ({(panel_metrics or {}).get(level, metric)})")
            ax.set_title(title + (f": {level}" if level else ""))
            if part["hue"].astype(bool).any():
                ax.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
        for index in range(len(panels), nrows * ncols):
            axes[index // ncols, index % ncols].set_visible(False)
    return fig
