"""The sections of the report, each rendered as Markdown from one fit folder.

The report template (``templates/report.qmd``) calls one method of :class:`FitReport` per section
in a cell whose output is Markdown (``#| output: asis``).  Keeping the logic here (rather than in
the template) makes it testable and keeps the template short.  Every section reads only the files
of the fit folder; when a section's inputs are absent it says so instead of failing.  Figures are
written to ``DIR/figures/<name>.png|.svg`` and every table shown is also written as LaTeX under
``DIR/tables/`` (the fit's own ``tables/*.csv`` get a ``.tex`` when they lack one).
"""
from __future__ import annotations

import json
import math
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from ..._io import atomic_write_text
from ...errors import InputError
from ...pipeline.artifacts import FitFolder
from ...results import read_table
from .. import figures as F
from ..escape import md_code, md_code_block, md_escape
from ..labels import format_p, readable
from ..latex import _format_value, _integer_valued, format_frame, latex_table, latex_text

MAX_HEATMAPS = 12
MAX_TABLE_ROWS = 40

# Column names the report accepts for each role, in order of preference.
ESTIMATE = ("estimate", "coef", "coefficient", "beta", "Coef.", "value")
CI_LOW = ("ci_low", "conf_low", "lower", "ci_lower", "[0.025", "low")
CI_HIGH = ("ci_high", "conf_high", "upper", "ci_upper", "0.975]", "high")
STD_ERROR = ("std_error", "std_err", "se", "bse", "Std.Err.")
TERM = ("term", "feature", "name", "variable", "parameter")
PREDICTED = ("predicted", "prediction", "predicted_score", "fitted", "yhat", "pred")
ESTIMATOR = ("estimator", "predictor", "method", "model_type", "fit")
SCHEME = ("scheme", "cv_scheme", "split")
SOURCE_COLUMN = ("source", "source_language")
RANK = ("rank",)


# Notes of the fit (manifest['notes']) that the report's overview repeats as warnings, by their start.
WARNING_NOTES = ("collinear features", "cross-validation failed")

# What each cross-validation baseline of xltstats.models.validation predicts.
BASELINES = {
    "mean": "`mean`, the target's mean score in training (the source's mean when the target is held out, "
            "the overall mean when both are)",
    "gbt": "`gbt`, LightGBM gradient-boosted trees on the same features (the predictor of LITMUS and ProxyLM)",
    "hybrid": "`hybrid`, boosted trees on the same features with the mixed model's random intercepts fitted "
              "together (GPBoost's design; a language not seen in training gets a random effect of 0)",
}


class SectionUnavailable(Exception):
    """A section (or part of one) cannot be shown; the message says why."""


def find_column(frame: pd.DataFrame, candidates, *, required: bool = False, what: str = "", file=None):
    """The first of ``candidates`` that ``frame`` has (case-insensitive), else None (or raise)."""
    lower = {str(c).lower(): c for c in frame.columns}
    for name in candidates:
        if name.lower() in lower:
            return lower[name.lower()]
    if required:
        raise SectionUnavailable(
            f"{file or 'table'} has no {what or 'expected'} column (looked for {', '.join(candidates)}; "
            f"found {', '.join(map(str, frame.columns))})")
    return None


def _shorten(text: str, limit: int = 110) -> str:
    """Long cells (lists of folds, feature lists) are cut in the HTML; the LaTeX table keeps them."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def markdown_table(frame: pd.DataFrame, *, max_rows: int = MAX_TABLE_ROWS, caption: str | None = None,
                   label: str | None = None) -> str:
    """A pipe table with its caption; with ``label``, inside a ``::: {#tbl-LABEL}`` div, Quarto's
    cross-reference syntax (numbered "Table N", referenced as ``@tbl-LABEL``; see
    :func:`xltstats.report.render.number_crossrefs` for the engine without Quarto)."""
    shown = format_frame(frame.head(max_rows)).map(_shorten).map(md_escape)
    shown.columns = [md_escape(c) for c in shown.columns]
    text = shown.to_markdown(index=False, tablefmt="pipe", disable_numparse=True)
    more = (f"\n\n*First {max_rows} of {len(frame)} rows; the full table is in the fit folder.*"
            if len(frame) > max_rows else "")
    if caption:
        text += f"\n\n: {caption}"
    if label:
        text = f"::: {{#{table_id(label)}}}\n{text}\n:::"
    return text + more


def table_id(name: str) -> str:
    """The cross-reference id of the report table ``name`` (``report_vif`` -> ``tbl-report-vif``)."""
    return "tbl-" + str(name).replace("_", "-")


def figure_id(name: str) -> str:
    """The cross-reference id of the figure ``name`` (``cv_error`` -> ``fig-cv-error``)."""
    return "fig-" + str(name).replace("_", "-")


def language_label(code) -> str:
    """English name of a language code, falling back to the code itself."""
    code = str(code)
    from xltstats.languages import language_name

    try:
        name = language_name(code)
    except Exception:  # an unknown code is shown as it is
        return code
    return str(name) if name else code


#: The group of languages whose family URIEL does not give (isolates, unclassified, codes URIEL lacks).
UNKNOWN_FAMILY = "unknown family"
#: What the captions of the heatmaps say about their order.
FAMILY_ORDER = ("languages grouped by family (URIEL's top-level Glottolog family, lang2vec's `fam` features; "
                "white lines and the bold names at the left and bottom mark the families), families in "
                "alphabetical order and languages by name within each; languages for which URIEL has no family "
                "(isolates such as Basque, languages it leaves unclassified, codes it lacks) come last, under "
                f"\"{UNKNOWN_FAMILY}\"")


def language_family_name(code) -> str | None:
    """The top-level family URIEL gives the language ``code`` (ISO 639-3), or None: an isolate or an
    unclassified language (URIEL has no family for them) or a code URIEL does not have."""
    return _family_name(str(code))


@lru_cache(maxsize=None)
def _family_name(code: str) -> str | None:
    from xltstats.features.uriel import language_family, uriel_languages

    # not in URIEL: no family known, never guessed (checked first: the error language_family raises
    # searches for near codes, 5 ms a code; the heatmaps sort 170 languages by family)
    if code not in _uriel_codes(uriel_languages()):
        return None
    return language_family(code)


@lru_cache(maxsize=1)
def _uriel_codes(codes: tuple[str, ...]) -> frozenset[str]:
    return frozenset(codes)


def _family_key(family: str | None) -> tuple[int, str]:
    """Sort key of a family: alphabetical, the unknown family last."""
    return (1, "") if family is None else (0, family.casefold())


def _sentence(text: str) -> str:
    """``text`` with its first letter capitalised (a note of the fit starts in lower case)."""
    return text[:1].upper() + text[1:]


def _note(text: str) -> str:
    return f"::: {{.callout-note}}\n{text}\n:::\n"


def _guard(function):
    """Render a part of a section; an input the fit folder lacks (or holds without the columns of its
    schema) becomes a note naming it.  Anything else is a bug and raises."""
    def wrapper(self, *args, **kwargs):
        try:
            return function(self, *args, **kwargs)
        except (SectionUnavailable, InputError) as exc:
            return _note(f"Not available: {exc}")
    wrapper.__name__ = function.__name__
    wrapper.__doc__ = function.__doc__
    return wrapper


def _fitted_rows(table: pd.DataFrame, value_columns) -> tuple[pd.DataFrame, str]:
    """The rows of a few-shot table that have an estimate, and a sentence about those left out."""
    column = next((c for c in value_columns if c in table.columns), None)
    if column is None:
        return table, ""
    fitted = table[table[column].notna()]
    left_out = len(table) - len(fitted)
    if left_out == 0 or fitted.empty:
        return table, ""
    reasons = ""
    if "status" in table.columns:
        counts = table.loc[table[column].isna(), "status"].astype(str).value_counts().sort_index()
        reasons = " (" + ", ".join(f"{n} `{status}`" for status, n in counts.items()) + ")"
    return fitted, f" {left_out} row(s) without an estimate{reasons} are left out here."


def _mixed_model_text(formula: str) -> str:
    """The mixed model in words and MathML-ready TeX, with the grouping factors of its formula."""
    import re

    if re.search(r"\|\s*mm\(\s*source\s*,\s*target\s*\)", formula):
        others = [f"`{t.strip()}`" for t in re.findall(r"\([^()|]*\|\s*[^()]+?\s*\)", formula)]
        return ("The pairs are unordered, so the mixed-effects model (features in their own units) adds one "
                "random intercept per language, which both languages of a pair share (a multi-membership "
                "effect, `(1 | mm(source, target))`),\n\n"
                "$$y_{ab} = \\beta_0 + \\sum_k \\beta_k x_{k,ab} + u_a + u_b + \\varepsilon_{ab}, \\quad "
                "u_a \\sim N(0, \\sigma_u^2),\\ \\varepsilon_{ab} \\sim N(0, \\sigma^2).$$\n"
                + (f"\nIt also has the random effects {', '.join(others)}.\n" if others else ""))
    random_terms = re.findall(r"\(([^()|]*)\|\s*([^()]+?)\s*\)", formula)
    factors = [factor for effect, factor in random_terms if effect.strip() == "1"]
    others = [f"({effect.strip()} | {factor})" for effect, factor in random_terms if effect.strip() != "1"]
    if not factors:
        return "The mixed-effects model has the random effects written in its formula below.\n"
    if factors == ["source", "target"] and not others:
        return ("The crossed mixed-effects model (features in their own units) adds random intercepts for "
                "source and target,\n\n"
                "$$y_{st} = \\beta_0 + \\sum_k \\beta_k x_{k,st} + u_s + v_t + \\varepsilon_{st}, \\quad "
                "u_s \\sim N(0, \\sigma_u^2),\\ v_t \\sim N(0, \\sigma_v^2),\\ "
                "\\varepsilon_{st} \\sim N(0, \\sigma^2).$$\n")
    names = ", ".join(md_code(f) for f in factors)
    text = ("The mixed-effects model (features in their own units) adds crossed random intercepts for "
            f"{names}: for observation $i$,\n\n"
            "$$y_i = \\beta_0 + \\sum_k \\beta_k x_{k,i} + \\sum_{g} u^{(g)}_{g[i]} + \\varepsilon_i, \\quad "
            "u^{(g)}_j \\sim N(0, \\sigma_g^2),\\ \\varepsilon_i \\sim N(0, \\sigma^2),$$\n\n"
            f"where $g$ runs over the grouping factor{'s' if len(factors) > 1 else ''} and $g[i]$ is the level of "
            "observation $i$ (its source language, target language, ...).")
    if others:
        text += (" It also has the random effects " + ", ".join(f"`{o}`" for o in others)
                 + " (intercepts and slopes that vary by the factor after the bar).")
    return text + "\n"


def _wide_prediction_columns(frame: pd.DataFrame) -> list[str]:
    """Prediction columns named per estimator, e.g. ``ols_prediction`` or ``predicted_mixed``."""
    return [c for c in frame.columns
            if any(str(c).lower().startswith(p + "_") or str(c).lower().endswith("_" + p) for p in PREDICTED)]


def _estimator_label(column) -> str:
    label = str(column)
    for p in PREDICTED:
        if label.lower().endswith("_" + p):
            return label[: -len(p) - 1]
        if label.lower().startswith(p + "_"):
            return label[len(p) + 1:]
    return label


def _slug(text) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in str(text).lower()).strip("_") or "x"


def _shell_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


class ReportBase:
    """The fit folder, its tables and manifest, and how a section writes figures and tables."""

    def __init__(self, fit_dir: str | Path):
        self.fit_dir = Path(fit_dir).resolve()
        self.folder = FitFolder(self.fit_dir)
        if not self.fit_dir.is_dir():
            raise SectionUnavailable(f"{self.fit_dir}: not a fit folder (no such directory)")
        self.figures_dir = self.fit_dir / "figures"
        self.tables_dir = self.fit_dir / "tables"
        self.figure_count = 0
        self.tables_read: set[str] = set()

    # ------------------------------------------------------------------ inputs

    def read_table(self, relative: str) -> pd.DataFrame:
        """A table of the fit folder, read through :class:`FitFolder` (its schema checked); an absent
        table is :class:`SectionUnavailable`, a table without its schema's columns an InputError."""
        self.tables_read.add(relative)
        try:
            table = self.folder.read_table(relative)
        except KeyError:  # a table outside the fit folder's schema (written by another tool)
            path = self.fit_dir / relative
            table = read_table(path, what=f"`{relative}`", allow_empty=True) if path.is_file() else None
        if table is None:
            raise SectionUnavailable(f"the fit folder has no `{relative}`")
        return table

    def optional_table(self, relative: str) -> pd.DataFrame | None:
        try:
            return self.read_table(relative)
        except SectionUnavailable:
            return None

    @cached_property
    def manifest(self) -> dict:
        try:
            return self.folder.manifest
        except InputError:  # an unreadable manifest: the sections that need it say so
            return {}

    def fit_notes(self, *starts: str) -> list[str]:
        """The fit's notes (``manifest['notes']``) that begin with one of ``starts``."""
        notes = self.manifest.get("notes") or []
        return [n for n in notes if isinstance(n, str) and n.startswith(starts)]

    @cached_property
    def svg(self) -> bool:
        """Whether figures are also saved as SVG (``report: {svg: true}`` in the fit configuration)."""
        report = (self.manifest.get("config") or {}).get("report")
        return isinstance(report, dict) and bool(report.get("svg", False))

    @cached_property
    def fit_config(self):
        """The fit's configuration (the manifest's ``config`` over the defaults of :class:`FitConfig`)."""
        from xltstats.pipeline.config import FitConfig

        return FitConfig.from_dict(self.manifest.get("config") or {}, source=f"{self.fit_dir / 'manifest.json'}: config")

    @cached_property
    def results(self) -> pd.DataFrame:
        return self.read_table("results.csv")

    @cached_property
    def metric(self) -> str:
        """The scores' label: the fit's metrics by name, or by the labels the fit config declares."""
        try:
            metrics = sorted(set(self.results["metric"].astype(str))) if "metric" in self.results else []
        except SectionUnavailable:
            metrics = []
        return self.metric_label(metrics) if metrics else "score units"

    @cached_property
    def score_scale(self):
        """The fit's :class:`~xltstats.results.metrics.ScoreScale` (range, direction; ``manifest.json``'s
        ``score``), None for a fit folder that records none."""
        from xltstats.results.metrics import ScoreScale

        return ScoreScale.from_dict(self.manifest.get("score"), file=self.fit_dir / "manifest.json", key="score")

    @property
    def higher_is_better(self) -> bool:
        return self.score_scale is None or self.score_scale.higher_is_better

    def metric_label(self, names) -> str:
        """``names`` (metric names) as the report writes them: a declared metric's ``label``."""
        declared = self.fit_config.metrics or {}
        return "/".join((declared.get(name) or {}).get("label") or name for name in names)

    # ------------------------------------------------------------------ outputs

    def figure(self, fig, name: str, caption: str) -> str:
        """Save ``fig`` as PNG (and SVG with ``report: {svg: true}``); return the Markdown that shows the PNG.

        A figure wider than :data:`figures.WIDE_FIGURE_INCHES` is shown at its natural size in a
        horizontally scrolling box (inline styles, so Quarto's page keeps them too), not shrunk to
        the page width where its labels would be unreadable.
        """
        width = float(fig.get_size_inches()[0])
        png, _svg = F.save_figure(fig, self.figures_dir, name, svg=self.svg)
        self.figure_count += 1
        attributes = f"#{figure_id(name)}"
        if width <= F.WIDE_FIGURE_INCHES:
            return f"![{caption}]({png.as_posix()}){{{attributes}}}\n"
        pixels = int(round(width * F.PNG_DPI))
        return (f"::: {{.figure-scroll style=\"overflow-x: auto;\"}}\n"
                f"![{caption} (Wide figure: scroll sideways.)]({png.as_posix()}){{{attributes} "
                f"width=\"{pixels}\" style=\"max-width: none;\"}}\n:::\n")

    def table(self, frame: pd.DataFrame, name: str, caption: str, *, max_rows: int = MAX_TABLE_ROWS) -> str:
        """Markdown for ``frame``; the whole table also goes to ``tables/<name>.tex``."""
        atomic_write_text(self.tables_dir / f"{name}.tex",
                          latex_table(frame, caption=caption, label=f"tab:{name.replace('_', '-')}"))
        return markdown_table(frame, max_rows=max_rows, caption=caption, label=name) + "\n"

    def ensure_latex_tables(self) -> list[str]:
        """Write ``tables/<name>.tex`` for every ``tables/<name>.csv`` that lacks one."""
        written = []
        if self.tables_dir.is_dir():
            for csv in sorted(self.tables_dir.glob("*.csv")):
                tex = csv.with_suffix(".tex")
                if not tex.exists():
                    try:
                        frame = pd.read_csv(csv)
                    except (ValueError, OSError):
                        continue
                    atomic_write_text(tex, latex_table(frame))
                    written.append(tex.name)
        return written

    # ------------------------------------------------------------------ sections


def _references_text(manifest: dict) -> str:
    """The methods section's list of the sources the fit used (xltstats.references)."""
    from ...references import citation_text, references, used_keys

    keys = manifest.get("references")
    if not isinstance(keys, list):
        keys = used_keys(manifest)
    keys = [k for k in keys if isinstance(k, str) and k in references()]
    if not keys:
        return ""
    lines = ["\n**References.** The data and methods this fit used (BibTeX entries in "
             "`references.bib` in the fit folder):\n"]
    lines += [f"- {md_escape(citation_text(key))} [`{key}`]" for key in keys]
    return "\n".join(lines) + "\n"


__all__ = ['_references_text', 'UNKNOWN_FAMILY', 'FAMILY_ORDER', 'language_family_name', '_family_key', 'BASELINES', 'WARNING_NOTES', 'CI_HIGH', 'CI_LOW', 'ESTIMATE', 'ESTIMATOR', 'F', 'FitFolder', 'InputError', 'MAX_HEATMAPS', 'MAX_TABLE_ROWS', 'PREDICTED', 'Path', 'RANK', 'ReportBase', 'SCHEME', 'SOURCE_COLUMN', 'STD_ERROR', 'SectionUnavailable', 'TERM', '_estimator_label', '_fitted_rows', '_format_value', '_guard', '_integer_valued', '_mixed_model_text', '_note', '_sentence', '_shell_quote', '_shorten', '_slug', '_wide_prediction_columns', 'atomic_write_text', 'cached_property', 'find_column', 'format_frame', 'json', 'language_label', 'latex_table', 'latex_text', 'markdown_table', 'table_id', 'figure_id', 'readable', 'format_p', 'math', 'md_code', 'md_code_block', 'md_escape', 'np', 'pd', 'read_table']
