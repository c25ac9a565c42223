"""The fit report: one self-contained HTML file rendered from a fit folder.

``render_report(fit_dir, out=None)`` renders ``templates/report.qmd`` (with Quarto when it is on
PATH, else by running its Python cells and converting with pandoc).  Command line::

    python -m xltstats.report --fit DIR [--out FILE] [--engine auto|quarto|python|kernel]
"""
from __future__ import annotations

__all__ = ["render_report", "template_path", "RenderError"]


def __getattr__(name: str):
    if name in __all__:
        from . import render

        return getattr(render, name)
    raise AttributeError(f"module 'xltstats.report' has no attribute {name!r}")
