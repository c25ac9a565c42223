"""HTML report section of the influence study: heatmaps of the influence matrix per level,
categories with their rule, the mixed model, interference of adapter sets."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .._common import esc, figure_html, table_html, write_page


def heatmap(cells: pd.DataFrame, *, title: str):
    """Transfer language (rows) x target (columns), mean influence; '*' marks Holm-significant cells."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    mat = cells.pivot(index="source", columns="target", values="mean_influence")
    sig = cells.pivot(index="source", columns="target", values="significant").reindex_like(mat)
    fig = Figure(figsize=(1.2 + 0.45 * mat.shape[1], 1.0 + 0.35 * mat.shape[0]))
    ax = fig.subplots()
    limit = float(np.nanmax(np.abs(mat.to_numpy()))) or 1.0
    image = ax.imshow(mat.to_numpy(dtype=float), cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(range(mat.shape[1]), mat.columns, rotation=90, fontsize=7)
    ax.set_yticks(range(mat.shape[0]), mat.index, fontsize=7)
    ax.set_xlabel("target")
    ax.set_ylabel("transfer language")
    ax.set_title(title, fontsize=9)
    for i in range(mat.shape[0]):
        for j in range(mat.shape[1]):
            if sig.iat[i, j] is True or sig.iat[i, j] == 1:
                ax.text(j, i, "*", ha="center", va="center", fontsize=8)
    fig.colorbar(image, ax=ax, label="influence (score - baseline)")
    return fig


def write_report(path: Path, *, matrix, categories, model, interference, failed, notes, alpha) -> Path:
    sections = []
    intro = ("<p>Influence of a transfer language L on a target t: the score of the model with L "
             "injected (k steps of continued MLM on L's text, or L's language adapter stacked under "
             "the task adapter) minus the score of the model with the task adapter alone. Cells give "
             f"the mean over runs; '*' marks cells whose one-sample t-test against 0 is significant at "
             f"{alpha:g} after Holm's correction over the cells of the level.</p>")
    figures = []
    for key, cells in matrix.groupby(["model", "task", "method", "level"], sort=True):
        title = f"{key[0]} / {key[1]}: {key[2]} {key[3]}"
        figures.append(f"<h3>{esc(title)}</h3>" + figure_html(heatmap(cells, title=title), title))
        shown = cells.sort_values("p_holm").head(15)[["source", "target", "mean_influence", "sd_runs",
                                                       "n_runs", "p_value", "p_holm"]]
        figures.append("<p>Cells with the smallest adjusted p-values:</p>" + table_html(shown))
    sections.append(("Influence matrix", intro + "\n".join(figures)))
    if len(categories):
        rule = categories.attrs.get("rule", "")
        counts = categories.groupby(["method", "level", "role", "category"]).size().rename("n").reset_index()
        sections.append(("Categories", f'<p class="rule">{esc(rule)}</p>' + table_html(counts) +
                         table_html(categories, max_rows=80)))
    if model is not None and len(model):
        text = ("<p>Crossed mixed model of per-cell influence on pair features, REML, with random "
                "intercepts for transfer language (donor) and target (receiver); their variances say "
                "whether donors or receivers dominate. The <code>contrast</code> row is the "
                "unseen-minus-seen difference for targets outside pre-training.</p>")
        sections.append(("Which pair features predict influence", text + table_html(model)))
    if interference is not None and len(interference):
        summary = interference.groupby(["compose", "n_languages"]).agg(
            n=("delta_vs_best", "size"), mean_delta_vs_best=("delta_vs_best", "mean"),
            share_below_best=("delta_vs_best", lambda s: float((s < 0).mean())),
            mean_delta_vs_baseline=("delta_vs_baseline", "mean")).reset_index()
        sections.append(("Negative interference of adapter sets",
                         "<p>A set's score minus the best stacked score of its members (negative: the "
                         "set interferes).</p>" + table_html(summary) + table_html(interference)))
    if failed is not None and len(failed):
        sections.append(("Failed evaluations", f"<p>{len(failed)} lines were 0,0 (failed "
                         "evaluations in neg_inf) and are missing, not zero.</p>" + table_html(failed)))
    if notes:
        sections.append(("Notes", "<ul>" + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>"))
    return write_page(path, "Transfer-language influence and interference", sections)
