"""HTML report section of the language-arithmetic study: lambda curves with bands, lambda*,
gains with paired-bootstrap intervals."""
from __future__ import annotations

from pathlib import Path

from .._common import esc, figure_html, table_html, write_page
from .analysis import PAIR


def curve_figure(curves, selected, *, title: str):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    keys = PAIR + (["scenario"] if "scenario" in curves.columns else [])
    groups = list(curves.groupby(keys, sort=True))
    fig = Figure(figsize=(5.5, 3.2))
    ax = fig.subplots()
    for key, group in groups:
        label = f"{key[2]} <- {key[3]}/{key[4]}" + (f" ({key[5]})" if len(key) > 5 else "")
        line, = ax.plot(group["lambda"], group["mean_score"], marker="o", markersize=3, label=label)
        if group["band_low"].notna().any():
            ax.fill_between(group["lambda"], group["band_low"], group["band_high"], alpha=0.2,
                            color=line.get_color())
        sel = selected.merge(group[PAIR].drop_duplicates(), on=PAIR)
        for lam in sorted(sel["selected_lambda"].unique()):
            ax.axvline(lam, color=line.get_color(), linestyle=":", linewidth=1)
    ax.set_xlabel("lambda (weight of the first adapter)")
    ax.set_ylabel("test score")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="best")
    return fig


def write_report(path: Path, *, curves, selected, gains, notes) -> Path:
    sections = []
    intro = ("<p>The target's adapter is lambda x A1 + (1 - lambda) x A2 over every adapter tensor "
             "(invertible parts included). Curves: mean test score per lambda over seeds, bands: "
             "t-interval over seeds, or a bootstrap over test examples with one seed. Dotted lines: "
             "lambda selected on validation data only.</p>")
    figs = []
    for (model, task), group in curves.groupby(["model", "task"], sort=True):
        title = f"{model} / {task}"
        sel = selected[(selected["model"] == model) & (selected["task"] == task)]
        figs.append(figure_html(curve_figure(group, sel, title=title), title))
    sections.append(("Lambda curves", intro + "".join(figs) + table_html(curves, max_rows=80)))
    sections.append(("Selected lambda (validation only)", table_html(selected)))
    if gains is not None and len(gains):
        by = gains.groupby("scenario")["gain"].agg(["size", "mean", "median"]).reset_index() \
            if "scenario" in gains.columns else None
        text = ("<p>Gain = test score at the selected lambda minus the test score at the baseline "
                "lambda (the first adapter alone), with a paired bootstrap over seeds and test "
                "examples.</p>")
        sections.append(("Gains", text + (table_html(by) if by is not None else "") + table_html(gains)))
    if notes:
        sections.append(("Notes", "<ul>" + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>"))
    return write_page(path, "Language arithmetic", sections)
