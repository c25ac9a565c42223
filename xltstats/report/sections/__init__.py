"""The sections of the report, each rendered as Markdown from one fit folder.

The report template (``templates/report.qmd``) calls one method of :class:`FitReport` per section
in a cell whose output is Markdown (``#| output: asis``).  Keeping the logic here (rather than in
the template) makes it testable and keeps the template short.  Every section reads the fit folder
through :class:`xltstats.pipeline.FitFolder`; when a section's inputs are absent it says so instead
of failing, and a bug raises.  One module per group of sections: :mod:`.data`, :mod:`.models`,
:mod:`.fewshot`, :mod:`.validation`, :mod:`.methods`; :mod:`._base` holds the shared helpers.
"""
from __future__ import annotations

from ._base import (BASELINES, MAX_HEATMAPS, MAX_TABLE_ROWS, ReportBase, SectionUnavailable, _mixed_model_text,
                    _references_text, find_column, format_frame, language_label, latex_table, markdown_table)
from .data import DataSections
from .fewshot import FewshotSections
from .methods import MethodsSections
from .models import ModelSections
from .validation import ValidationSections


class FitReport(DataSections, ModelSections, FewshotSections, ValidationSections, MethodsSections):
    """Markdown for each report section, read from the fit folder ``fit_dir``."""


__all__ = ["FitReport", "ReportBase", "SectionUnavailable", "find_column", "format_frame", "language_label",
           "latex_table", "markdown_table", "BASELINES", "MAX_HEATMAPS", "MAX_TABLE_ROWS", "_mixed_model_text", "_references_text"]
