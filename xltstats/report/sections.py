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
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from .._io import atomic_write_text
from . import figures as F
from .escape import md_code, md_code_block, md_escape

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


# What each cross-validation baseline of xltstats.models.validation predicts.
BASELINES = {
    "mean": "`mean`, the target's mean score in training (the source's mean when the target is held out, "
            "the overall mean when both are)",
    "gbt": "`gbt`, LightGBM gradient-boosted trees on the same features (the predictor of LITMUS and ProxyLM)",
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


def _format_value(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "–"
    if isinstance(value, (float, np.floating)):
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
            return f"{value:.3g}"
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:.1f}"
    return str(value)


def _integer_valued(column: pd.Series) -> bool:
    """A float column whose every value is a whole number (counts read back from CSV as floats)."""
    if not pd.api.types.is_float_dtype(column):
        return False
    values = column.dropna().to_numpy(float)
    return values.size > 0 and bool(np.all(np.isfinite(values))) and bool(np.all(values == np.round(values))) \
        and bool(np.all(np.abs(values) < 1e15))


def format_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Every cell as a fixed-precision string (the same text in Markdown and LaTeX).

    Float columns holding only whole numbers (counts such as ``n`` after a CSV round trip) are
    written as integers, not as ``2180.0``.
    """
    columns = {}
    for c in frame.columns:
        if _integer_valued(frame[c]):
            columns[str(c)] = ["–" if pd.isna(v) else str(int(v)) for v in frame[c].tolist()]
        else:
            columns[str(c)] = [_format_value(v) for v in frame[c].tolist()]
    return pd.DataFrame(columns, index=range(len(frame)))


def _shorten(text: str, limit: int = 110) -> str:
    """Long cells (lists of folds, feature lists) are cut in the HTML; the LaTeX table keeps them."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def markdown_table(frame: pd.DataFrame, *, max_rows: int = MAX_TABLE_ROWS, caption: str | None = None) -> str:
    shown = format_frame(frame.head(max_rows)).map(_shorten).map(md_escape)
    shown.columns = [md_escape(c) for c in shown.columns]
    text = shown.to_markdown(index=False, tablefmt="pipe", disable_numparse=True)
    if len(frame) > max_rows:
        text += f"\n\n*First {max_rows} of {len(frame)} rows; the full table is in the fit folder.*"
    if caption:
        text += f"\n\n: {caption}"
    return text


def latex_table(frame: pd.DataFrame) -> str:
    return format_frame(frame).to_latex(index=False, escape=True)


def language_label(code) -> str:
    """English name of a language code, falling back to the code itself."""
    code = str(code)
    from xltstats.languages import language_name

    try:
        name = language_name(code)
    except Exception:  # an unknown code is shown as it is
        return code
    return str(name) if name else code


def _note(text: str) -> str:
    return f"::: {{.callout-note}}\n{text}\n:::\n"


def _guard(function):
    """Render a part of a section; a missing or unreadable input becomes a note, not a failure."""
    def wrapper(self, *args, **kwargs):
        try:
            return function(self, *args, **kwargs)
        except SectionUnavailable as exc:
            return _note(f"Not available: {exc}")
        except (KeyError, ValueError, TypeError, IndexError) as exc:
            # A table laid out other than expected should not cost the whole report.
            return _note(f"This part could not be produced from the fit's tables "
                         f"({type(exc).__name__}: {exc}).")
    wrapper.__name__ = function.__name__
    wrapper.__doc__ = function.__doc__
    return wrapper


class FitReport:
    """Markdown for each report section, read from the fit folder ``fit_dir``."""

    def __init__(self, fit_dir: str | Path):
        self.fit_dir = Path(fit_dir).resolve()
        if not self.fit_dir.is_dir():
            raise SectionUnavailable(f"{self.fit_dir}: not a fit folder (no such directory)")
        self.figures_dir = self.fit_dir / "figures"
        self.tables_dir = self.fit_dir / "tables"
        self.figure_count = 0
        self.tables_read: set[str] = set()

    # ------------------------------------------------------------------ inputs
    def read_table(self, relative: str) -> pd.DataFrame:
        self.tables_read.add(relative)
        path = self.fit_dir / relative
        if not path.is_file():
            raise SectionUnavailable(f"the fit folder has no `{relative}`")
        try:
            return pd.read_csv(path, keep_default_na=True)
        except (ValueError, OSError) as exc:
            raise SectionUnavailable(f"`{relative}` cannot be read: {exc}") from exc

    def optional_table(self, relative: str) -> pd.DataFrame | None:
        try:
            return self.read_table(relative)
        except SectionUnavailable:
            return None

    @cached_property
    def manifest(self) -> dict:
        path = self.fit_dir / "manifest.json"
        if not path.is_file():
            return {}
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, OSError):
            return {}

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
        try:
            metrics = sorted(set(self.results["metric"].astype(str))) if "metric" in self.results else []
        except SectionUnavailable:
            metrics = []
        return "/".join(metrics) if metrics else "score units"

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
        attributes = f"#fig-{name.replace('_', '-')}"
        if width <= F.WIDE_FIGURE_INCHES:
            return f"![{caption}]({png.as_posix()}){{{attributes}}}\n"
        pixels = int(round(width * F.PNG_DPI))
        return (f"::: {{.figure-scroll style=\"overflow-x: auto;\"}}\n"
                f"![{caption} (Wide figure: scroll sideways.)]({png.as_posix()}){{{attributes} "
                f"width=\"{pixels}\" style=\"max-width: none;\"}}\n:::\n")

    def table(self, frame: pd.DataFrame, name: str, caption: str, *, max_rows: int = MAX_TABLE_ROWS) -> str:
        """Markdown for ``frame``; the whole table also goes to ``tables/<name>.tex``."""
        atomic_write_text(self.tables_dir / f"{name}.tex", latex_table(frame))
        return markdown_table(frame, max_rows=max_rows, caption=caption) + "\n"

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
    def overview(self) -> str:
        manifest = self.manifest
        dataset = manifest.get("dataset") or {}
        name = dataset.get("name") or (manifest.get("config") or {}).get("data") or "unknown"
        lines = [f"Dataset: **{md_escape(name)}**"
                 + (f" ({md_escape(dataset['title'])})" if dataset.get("title") else "") + "."]
        try:
            results = self.results
            lines.append(
                f"The results table has {len(results)} rows: {results['model'].nunique()} model(s), "
                f"{results['task'].nunique()} task(s), {results['source'].nunique()} source and "
                f"{results['target'].nunique()} target languages.")
        except (SectionUnavailable, KeyError):
            lines.append("The fit folder has no readable `results.csv`.")
        if not manifest:
            lines.append("There is no readable `manifest.json`, so the methods section is incomplete.")
        return "\n\n".join(lines) + "\n"

    @_guard
    def data_summary(self) -> str:
        results = self.results
        needed = ["model", "task", "source", "target", "score"]
        missing = [c for c in needed if c not in results.columns]
        if missing:
            raise SectionUnavailable(f"`results.csv` lacks column(s) {', '.join(missing)}")
        group = results.groupby(["task", "model"], sort=True)
        counts = pd.DataFrame({
            "rows": group.size(),
            "sources": group["source"].nunique(),
            "targets": group["target"].nunique(),
            "pairs": group.apply(lambda g: len(g[["source", "target"]].drop_duplicates()), include_groups=False),
            "mean score": group["score"].mean(),
        }).reset_index()
        if "metric" in results:
            counts["metric"] = group["metric"].agg(lambda s: "/".join(sorted(set(map(str, s))))).to_numpy()
        if "n_target_examples" in results:
            counts["target-example budgets"] = group["n_target_examples"].agg(
                lambda s: ", ".join(str(int(v)) for v in sorted(set(s.dropna())))).to_numpy()
        out = [self.table(counts, "report_data_counts", "Rows, languages and scores per task and model.")]
        sources = results["source"].astype(str).value_counts()
        targets = results["target"].astype(str).value_counts()
        codes = sorted(set(sources.index) | set(targets.index))
        languages = pd.DataFrame({
            "code": codes,
            "language": [language_label(c) for c in codes],
            "rows as source": [int(sources.get(c, 0)) for c in codes],
            "rows as target": [int(targets.get(c, 0)) for c in codes],
        })
        atomic_write_text(self.tables_dir / "report_languages.tex", latex_table(languages))
        for role, counts in (("Source", sources), ("Target", targets)):
            names = ", ".join(f"{language_label(c)} ({c})" for c in sorted(counts.index))
            out.append(f"**{role} languages ({len(counts)}):** {names}.\n")
        multi = self._multi_source_summary(results)
        if multi:
            out.append(multi)
        return "\n".join(out)

    def _multi_source_summary(self, results: pd.DataFrame) -> str:
        """One paragraph on the multi-source runs (``source`` = ``mul``, ``source_languages`` JSON)."""
        rows = results[results["source"].astype(str) == "mul"]
        if rows.empty:
            return ""
        text = f"**Multi-source runs:** {len(rows)} rows train on several source languages at once (`mul`)"
        if "source_languages" in rows.columns:
            mixes = []
            from xltstats.results import parse_source_languages

            for value in rows["source_languages"].dropna().astype(str).unique():
                mixes.append(parse_source_languages(value, file=self.fit_dir / "results.csv"))
            if mixes:
                languages = sorted({code for mix in mixes for code in mix})
                sizes = [len(mix) for mix in mixes]
                names = ", ".join(f"{language_label(c)} ({c})" for c in languages)
                text += (f", in {len(mixes)} distinct mixtures of {min(sizes)}–{max(sizes)} languages drawn from "
                         f"{len(languages)}: {names}")
        return text + ". They have no single source, so the heatmaps below leave them out.\n"

    @_guard
    def transfer_heatmaps(self) -> str:
        results = self.results
        if not {"model", "task", "source", "target", "score"} <= set(results.columns):
            raise SectionUnavailable("`results.csv` lacks model/task/source/target/score columns")
        data = results[results["source"].astype(str) != "mul"]
        if "n_target_examples" in data:
            # Each target at its own smallest budget: in some datasets (langrank-mt) the number of
            # target examples is a property of the target, so a global minimum would keep one target.
            smallest = data.groupby(["task", "model", "target"])["n_target_examples"].transform("min")
            data = data[data["n_target_examples"] == smallest]
        combos = sorted(data.groupby(["task", "model"]).groups)
        out = []
        for task, model in combos[:MAX_HEATMAPS]:
            part = data[(data["task"] == task) & (data["model"] == model)]
            matrix = part.pivot_table(index="source", columns="target", values="score", aggfunc="mean")
            matrix = matrix.sort_index().sort_index(axis=1)
            matrix.index = [language_label(c) for c in matrix.index]
            matrix.columns = [language_label(c) for c in matrix.columns]
            metric = "/".join(sorted(set(map(str, part["metric"])))) if "metric" in part else "score"
            fig = F.transfer_heatmap(matrix, title=f"{task}, {model}: mean score over seeds", metric=metric)
            name = f"heatmap_{_slug(task)}_{_slug(model)}"
            out.append(self.figure(fig, name, f"Transfer scores ({md_escape(metric)}) for {md_escape(task)} "
                                              f"with {md_escape(model)}, "
                                              "source language (rows) by target language (columns)."))
        everything = sorted(results.groupby(["task", "model"]).groups)
        only_multi = [f"{md_escape(task)} with {md_escape(model)}" for task, model in everything if (task, model) not in set(combos)]
        if only_multi:
            out.append(_note(f"No heatmap for {', '.join(only_multi)}: every run there is multi-source."))
        if len(combos) > MAX_HEATMAPS:
            out.append(_note(f"{len(combos) - MAX_HEATMAPS} further task/model heatmaps were left out."))
        if not out:
            raise SectionUnavailable("no single-source rows to plot")
        return "\n".join(out)

    @_guard
    def feature_correlations(self) -> str:
        """Correlations between the model's predictors (``manifest.json`` ``features_used``, read from
        ``results.csv``, one value per language pair), else between the columns of ``features.csv``."""
        used = [str(c) for c in self.manifest.get("features_used") or []]
        results = self.optional_table("results.csv")
        if used and results is not None and set(used) <= set(results.columns) \
                and {"source", "target"} <= set(results.columns):
            # Pair-level values: a pair repeated over seeds, models or budgets counts once.
            numeric = results.drop_duplicates(subset=["source", "target", *used])[used]
            numeric = numeric.apply(pd.to_numeric, errors="coerce")
            where = "the predictors of the models, over language pairs"
        else:
            features = self.read_table("features.csv")
            numeric = features.drop(columns=[c for c in ("source", "target") if c in features]).select_dtypes("number")
            # Bookkeeping columns (how much data a feature was computed from) are not features.
            numeric = numeric.loc[:, [c for c in numeric.columns
                                      if not str(c).endswith(("_coverage", "_units", "_n"))]]
            where = "the pair features of `features.csv`"
        numeric = numeric.loc[:, numeric.notna().sum() >= 3]
        numeric = numeric.loc[:, numeric.std(skipna=True) > 0]
        if numeric.shape[1] < 2:
            raise SectionUnavailable("fewer than two varying numeric features")
        corr = numeric.corr(method="pearson", min_periods=3)
        return self.figure(F.correlation_heatmap(corr), "feature_correlation",
                           f"Pearson correlation between {where} (pairwise-complete observations).")

    @_guard
    def feature_coverage(self) -> str:
        coverage = self.optional_table("feature_coverage.csv")
        if coverage is None:
            features = self.read_table("features.csv")
            columns = [c for c in features.columns if c not in ("source", "target")]
            coverage = pd.DataFrame({
                "feature": columns,
                "n_pairs": len(features),
                "n_missing": [int(features[c].isna().sum()) for c in columns],
            })
            coverage["coverage"] = 1 - coverage["n_missing"] / max(len(features), 1)
            caption = "Feature coverage computed from `features.csv` (no `feature_coverage.csv`)."
        else:
            caption = "Feature coverage: language pairs with a value for each feature."
        return self.table(coverage, "report_feature_coverage", caption)

    def _coefficients(self, name: str) -> pd.DataFrame:
        relative = f"tables/{name}.csv"
        table = self.read_table(relative)
        if "effect" in table.columns:  # mixed-model tables also list variance parameters
            table = table[table["effect"].astype(str) == "fixed"].reset_index(drop=True)
            table = table.drop(columns=[c for c in ("effect", "group") if c in table.columns])
        term = find_column(table, TERM, required=True, what="term", file=relative)
        estimate = find_column(table, ESTIMATE, required=True, what="estimate", file=relative)
        low = find_column(table, CI_LOW)
        high = find_column(table, CI_HIGH)
        coefs = pd.DataFrame({"term": table[term].astype(str), "estimate": table[estimate].astype(float)})
        if low is not None and high is not None:
            coefs["low"] = table[low].astype(float)
            coefs["high"] = table[high].astype(float)
        else:
            se = find_column(table, STD_ERROR, required=True, what="interval or standard error", file=relative)
            coefs["low"] = coefs["estimate"] - 1.959964 * table[se].astype(float)
            coefs["high"] = coefs["estimate"] + 1.959964 * table[se].astype(float)
        for extra in ("task", "model", "group"):
            if extra in table.columns and table[extra].nunique() > 1:
                coefs[extra] = table[extra].astype(str)
        return coefs, table

    @_guard
    def coefficient_section(self, name: str, label: str) -> str:
        coefs, table = self._coefficients(name)
        shown = coefs[~coefs["term"].str.lower().isin(["intercept", "(intercept)", "const"])]
        if shown.empty:
            raise SectionUnavailable(f"`tables/{name}.csv` has only an intercept")
        group = next((c for c in ("task", "model", "group") if c in shown.columns), None)
        # fit_ols standardises the features when so configured; the mixed model uses raw feature units.
        standardised = name == "coef_ols" and self.fit_config.ols.standardise
        xlabel = (f"coefficient ({self.metric} points per SD of feature)" if standardised
                  else f"coefficient ({self.metric} points per unit of feature)")
        fig = F.coefficient_plot(shown, title=f"{label} coefficients with 95% intervals", group=group,
                                 xlabel=xlabel)
        out = [self.figure(fig, f"coefficients_{name}", f"{label} coefficients and 95% confidence intervals "
                                                        "(intercept omitted).")]
        out.append(self.table(table, f"report_{name}", f"{label} coefficients (`tables/{name}.csv`)."))
        return "\n".join(out)

    @_guard
    def group_comparison(self) -> str:
        out = []
        comparison = self.optional_table("tables/group_comparison.csv")
        if comparison is not None:
            out.append(self.table(comparison, "report_group_comparison",
                                  "Feature-group comparison (`tables/group_comparison.csv`)."))
        mixed = self.optional_table("tables/group_comparison_mixed.csv")
        if mixed is not None:
            atomic_write_text(self.tables_dir / "report_group_comparison_mixed.tex", latex_table(mixed))
            compact = [c for c in ("group", "features", "n_dropped", "chisq", "df", "p_value", "aic_change",
                                   "r2_marginal_drop", "significant", "status") if c in mixed.columns]
            out.append(markdown_table(mixed[compact] if compact else mixed,
                                      caption="Feature groups in the mixed model: likelihood-ratio test of "
                                              "dropping each group (maximum likelihood), change in AIC and in "
                                              "marginal R² (`tables/group_comparison_mixed.csv`, with the "
                                              "reduced formulas).") + "\n")
        dominance = self.optional_table("tables/dominance.csv")
        if dominance is not None:
            label = find_column(dominance, ("group", "feature", "term", "predictor", "name"))
            numeric = [c for c in dominance.select_dtypes("number").columns if c != label]
            value = find_column(dominance, ("general_dominance", "dominance", "share", "r2", *numeric[:1]))
            if label is not None and value is not None:
                data = (dominance[[label, value]].dropna().astype({label: str, value: float})
                        .sort_values(value, ascending=False))
                fig = F.bar_plot(data, x=value, y=label, title="Dominance analysis",
                                 xlabel=f"{value} (share of R², unitless)", ylabel=label)
                out.append(self.figure(fig, "dominance", "General dominance of each feature group: its "
                                                         "average contribution to R²."))
            out.append(self.table(dominance, "report_dominance", "Dominance analysis (`tables/dominance.csv`)."))
        tests = self.optional_table("tables/group_tests.csv")
        if tests is not None:
            out.append(self.table(tests, "report_group_tests", "Paired bootstrap tests between feature groups "
                                                               "(`tables/group_tests.csv`)."))
        vif = self.optional_table("tables/vif.csv")
        if vif is not None:
            out.append(self.table(vif, "report_vif", "Variance inflation factors (`tables/vif.csv`)."))
        if not out:
            raise SectionUnavailable("the fit folder has no `tables/group_comparison.csv`, "
                                     "`tables/dominance.csv` or `tables/vif.csv`")
        return "\n".join(out)

    @_guard
    def variance_components(self) -> str:
        table = self.read_table("tables/variance_components.csv")
        label = find_column(table, ("component", "group", "grp", "term", "name"), required=True,
                            what="component", file="tables/variance_components.csv")
        value = find_column(table, ("variance", "var", "vcov", "estimate"), required=True,
                            what="variance", file="tables/variance_components.csv")
        low, high = find_column(table, CI_LOW), find_column(table, CI_HIGH)
        columns = [label, value, *([low, high] if low and high else [])]
        data = (table[columns].dropna(subset=[label, value]).astype({c: float for c in columns if c != label})
                .astype({label: str}).reset_index(drop=True))
        fit_stats = self.optional_table("tables/mixed_fit.csv")
        fig = F.bar_plot(data, x=value, y=label, title="Variance components of the mixed model",
                         xlabel=f"variance ({self.metric}²)", ylabel="component", low=low, high=high)
        interval = " with their confidence intervals" if low and high else ""
        return "\n".join([
            self.figure(fig, "variance_components", f"Estimated variance of the random effects and residual"
                                                    f"{interval}."),
            self.table(table, "report_variance_components", "Variance components."),
            *([] if fit_stats is None else [self.table(fit_stats, "report_mixed_fit",
                                                       "Mixed-model fit statistics (`tables/mixed_fit.csv`).")]),
        ])

    @_guard
    def residual_diagnostics(self) -> str:
        predictions = self.read_table("predictions.csv")
        observed = find_column(predictions, ("score", "observed", "y"), required=True, what="observed score",
                               file="predictions.csv")
        estimator = find_column(predictions, ESTIMATOR)
        predicted = find_column(predictions, PREDICTED)
        if predicted is not None:
            frame = pd.DataFrame({"fitted": predictions[predicted].astype(float),
                                  "observed": predictions[observed].astype(float)})
            if estimator is not None:
                frame["estimator"] = predictions[estimator].astype(str)
        else:  # wide layout: one prediction column per estimator, e.g. predicted_ols
            columns = _wide_prediction_columns(predictions)
            if not columns:
                raise SectionUnavailable("`predictions.csv` has no prediction column")
            frame = pd.concat([pd.DataFrame({"fitted": predictions[c].astype(float),
                                             "observed": predictions[observed].astype(float),
                                             "estimator": _estimator_label(c)}) for c in columns],
                              ignore_index=True)
            estimator = "estimator"
        frame["residual"] = frame["observed"] - frame["fitted"]
        frame = frame.dropna(subset=["fitted", "residual"])
        if len(frame) < 3:
            raise SectionUnavailable("fewer than three predictions")
        fig = F.residual_diagnostics(frame, estimator_column="estimator" if estimator else None,
                                     metric=self.metric)
        return self.figure(fig, "residual_diagnostics", "Residuals against fitted scores and normal QQ plots "
                                                        "of the residuals (`predictions.csv`).")

    @_guard
    def fewshot_curves(self, max_lines: int = 8) -> str:
        relative = "tables/fewshot_curves.csv"
        if not (self.fit_dir / relative).is_file():
            try:
                budgets = self.results["n_target_examples"].nunique()
            except (SectionUnavailable, KeyError):
                budgets = None
            if budgets == 1:
                raise SectionUnavailable("few-shot curves were not fitted: every result in the data uses the "
                                         "same number of target-language examples")
        if (self.fit_dir / relative).is_file() and not (self.fit_dir / relative).read_text(encoding="utf-8").strip():
            raise SectionUnavailable("no few-shot curve could be fitted" + self._fewshot_status())
        table = self.read_table(relative)
        n = find_column(table, ("n", "n_target_examples", "n_target", "shots"), required=True,
                        what="number of target examples", file=relative)
        fitted = find_column(table, ("fit", "fitted", "predicted", "prediction"))
        observed = find_column(table, ("observed", "mean_score", "score"))
        if fitted is None and observed is None:
            raise SectionUnavailable(f"`{relative}` has neither fitted nor observed scores")
        keys = [c for c in ("task", "model", "source", "target") if c in table.columns]
        panel_keys = [c for c in keys if c in ("task", "model") and table[c].nunique() > 1]
        hue_keys = [c for c in keys if c in ("source", "target")]
        curves = pd.DataFrame({"n": table[n].astype(float)})
        curves["panel"] = table[panel_keys].astype(str).agg(", ".join, axis=1) if panel_keys else ""
        curves["hue"] = (table[hue_keys].astype(str).map(language_label).agg(" → ".join, axis=1)
                         if hue_keys else "")
        curves["fit"] = table[fitted].astype(float) if fitted else np.nan
        for bound, names in (("lower", CI_LOW), ("upper", CI_HIGH)):
            column = find_column(table, names)
            curves[bound] = table[column].astype(float) if column else np.nan
        if observed:
            curves["observed"] = table[observed].astype(float)
            points = curves.dropna(subset=["observed"])
        else:
            points = self._observed_means(keys, panel_keys, hue_keys)
        # Too many lines make a panel unreadable: keep the first curves of each panel in sorted order.
        shown = set()
        for panel, part in curves.groupby("panel", sort=True):
            shown |= {(panel, hue) for hue in sorted(part["hue"].unique())[:max_lines]}
        all_curves = set(zip(curves["panel"], curves["hue"]))
        left_out = len(all_curves - shown)
        curves = curves[[key in shown for key in zip(curves["panel"], curves["hue"])]]
        if points is not None:
            points = points[[key in shown for key in zip(points["panel"], points["hue"])]]
        fig = F.fewshot_plot(curves, points, metric=self.metric, panel_metrics=self._panel_metrics(panel_keys))
        caption = ("Score against the number of target-language training examples: the fitted curve "
                   "$a + b \\log(1 + n)$ with its 95% band, and observed mean scores (points).")
        out = [self.figure(fig, "fewshot_curves", caption)]
        if left_out > 0:
            out.append(_note(f"The plot shows at most {max_lines} curves per panel; "
                             f"{left_out} more are in `{relative}`."))
        params = self.optional_table("tables/fewshot_params.csv")
        if params is not None:
            atomic_write_text(self.tables_dir / "report_fewshot_params.tex", latex_table(params))
            shown_params, note = _fitted_rows(params, ("n_needed", "b"))
            compact = [c for c in ("model", "task", "source", "target", "n_obs", "n_sizes", "max_n", "zero_shot",
                                   "b", "b_low", "b_high", "r2", "reference_score", "status")
                       if c in shown_params.columns]
            out.append(markdown_table(shown_params[compact] if compact else shown_params,
                                      caption="Few-shot curve parameters: zero-shot score $a$ and slope $b$ "
                                              "per unit of $\\log(1 + n)$ with its 95% interval; "
                                              f"all columns in `tables/fewshot_params.csv`.{note}") + "\n")
        return "\n".join(out)

    @_guard
    def fewshot_pooled(self) -> str:
        """The pooled (random-effects) few-shot curve of each task and model, with its table."""
        table = self.optional_table("tables/fewshot_pooled.csv")
        curves = self.optional_table("tables/fewshot_pooled_curves.csv")
        if table is None and curves is None:
            return ""  # an older fit, or no few-shot data: the section above already says why
        out = []
        if curves is not None and {"n", "fit"} <= set(curves.columns):
            if "target" in curves.columns:
                curves = curves[curves["target"].astype(str) == "(population)"]
            panel_keys = [c for c in ("task",) if c in curves.columns]
            hue_keys = [c for c in ("model",) if c in curves.columns]
            frame = pd.DataFrame({"n": curves["n"].astype(float), "fit": curves["fit"].astype(float)})
            frame["panel"] = curves[panel_keys].astype(str).agg(", ".join, axis=1) if panel_keys else ""
            frame["hue"] = curves[hue_keys].astype(str).agg(", ".join, axis=1) if hue_keys else ""
            for bound, names in (("lower", CI_LOW), ("upper", CI_HIGH)):
                column = find_column(curves, names)
                frame[bound] = curves[column].astype(float) if column else np.nan
            if not frame.empty:
                fig = F.fewshot_plot(frame, None, metric=self.metric, panel_metrics=self._panel_metrics(panel_keys),
                                     title="Pooled few-shot curve")
                out.append(self.figure(fig, "fewshot_pooled_curves",
                                       "Pooled few-shot curves: the population curve $a + b \\log(1 + n)$ of a "
                                       "mixed model with random intercepts and slopes per target, one panel per "
                                       "task, with its 95% confidence band (`tables/fewshot_pooled_curves.csv`)."))
        if table is not None:
            atomic_write_text(self.tables_dir / "report_fewshot_pooled.tex", latex_table(table))
            compact = [c for c in table.columns if c in ("model", "task", "n_groups", "n_obs", "a", "zero_shot_low",
                                                        "zero_shot_high", "b", "b_low", "b_high", "status")
                       or str(c).startswith("n_for_")]
            out.append(markdown_table(table[compact] if compact else table,
                                      caption="Pooled few-shot curves: zero-shot score $a$, slope $b$ per unit of "
                                              "$\\log(1 + n)$ with 95% intervals, and the target-language examples "
                                              "needed for the given share of the reference score (`n_for_*`); all "
                                              "columns in `tables/fewshot_pooled.csv`.") + "\n")
        return "\n".join(out)

    def _panel_metrics(self, panel_keys) -> dict[str, str]:
        """The metric of each few-shot panel (a task's own metric rather than all of them)."""
        try:
            results = self.results
        except SectionUnavailable:
            return {}
        if not panel_keys or "metric" not in results or not set(panel_keys) <= set(results.columns):
            return {}
        metrics = {}
        for key, part in results.groupby(panel_keys, sort=True):
            key = key if isinstance(key, tuple) else (key,)
            metrics[", ".join(map(str, key))] = "/".join(sorted(set(map(str, part["metric"]))))
        return metrics

    def _fewshot_status(self) -> str:
        """Why curves are missing, from the ``status`` column of ``tables/fewshot_params.csv``."""
        params = self.optional_table("tables/fewshot_params.csv")
        if params is None or "status" not in params.columns:
            return ""
        counts = params["status"].astype(str).value_counts().sort_index()
        text = "; ".join(f"{count} curve(s) with status `{status}`" for status, count in counts.items())
        if "too_few_sizes" in counts.index and "n_sizes" in params.columns and params["n_sizes"].max() <= 1:
            text += (" — every target was observed at a single number of target-language examples, so "
                     "`n_target_examples` varies between targets but not within one")
        return f" (`tables/fewshot_params.csv`: {text})"

    def _observed_means(self, keys, panel_keys, hue_keys) -> pd.DataFrame | None:
        """Mean observed score per curve and number of target examples, from ``results.csv``."""
        try:
            results = self.results
        except SectionUnavailable:
            return None
        if "n_target_examples" not in results or not set(keys) <= set(results.columns):
            return None
        means = results.groupby([*keys, "n_target_examples"], as_index=False)["score"].mean()
        points = pd.DataFrame({"n": means["n_target_examples"].astype(float), "observed": means["score"]})
        points["panel"] = means[panel_keys].astype(str).agg(", ".join, axis=1) if panel_keys else ""
        points["hue"] = (means[hue_keys].astype(str).map(language_label).agg(" → ".join, axis=1)
                         if hue_keys else "")
        return points

    @_guard
    def data_demand(self) -> str:
        if not (self.fit_dir / "tables/data_demand.csv").is_file():
            try:
                if self.results["n_target_examples"].nunique() == 1:
                    raise SectionUnavailable("no data-demand estimates without few-shot curves")
            except KeyError:
                pass
        table = self.read_table("tables/data_demand.csv")
        needed = find_column(table, ("n_needed",))
        if needed is not None and table[needed].isna().all():
            raise SectionUnavailable("no data-demand estimate: no few-shot curve could be fitted"
                                     + self._fewshot_status())
        atomic_write_text(self.tables_dir / "report_data_demand.tex", latex_table(table))
        shown, note = _fitted_rows(table, ("n_needed",))
        return markdown_table(shown, caption="Data demand: target-language examples needed to reach the given "
                                             f"share of in-language performance.{note}") + "\n"

    def cv_folds(self) -> dict[str, list[str]]:
        """Fold labels per cross-validation scheme, from ``tables/cv_comparison.csv`` (the folds each
        model was compared on; a fold label such as ``ara+ces+kor`` lists the languages held out together)."""
        comparison = self.optional_table("tables/cv_comparison.csv")
        if comparison is None or "scheme" not in comparison.columns:
            return {}
        lists = [c for c in comparison.columns if str(c).startswith("folds_") and str(c).endswith("_list")]
        folds: dict[str, set] = {}
        for _, row in comparison.iterrows():
            labels = folds.setdefault(str(row["scheme"]), set())
            for column in lists:
                if isinstance(row[column], str):
                    labels.update(label for label in row[column].split() if label not in ("–", "-"))
        return {scheme: sorted(labels) for scheme, labels in sorted(folds.items()) if labels}

    def cv_design(self) -> dict[str, str]:
        """One sentence per cross-validation scheme saying what each fold holds out.

        Read from the fold labels when the fit wrote them, else from the configuration
        (``cv.max_folds``, ``cv.k``) and the languages in ``results.csv``.
        """
        config = (self.manifest.get("config") or {}).get("cv") or {}
        folds = self.cv_folds()
        schemes = list(config.get("schemes") or folds)
        cv = self.optional_table("cv.csv")
        if cv is None:
            cv = self.optional_table("tables/cv.csv")
        column = None if cv is None else find_column(cv, SCHEME)
        if column is not None:  # a scheme the fit skipped (too few languages) is not described
            ran = set(cv[column].astype(str))
            schemes = [scheme for scheme in schemes if scheme in ran] or sorted(ran)
        seed = self.manifest.get("seed", (self.manifest.get("config") or {}).get("seed"))
        design = {}
        for scheme in schemes:
            role = {"leave-one-target-out": "target", "leave-one-source-out": "source"}.get(scheme)
            labels = folds.get(scheme)
            if role is None:
                k = len(labels) if labels else config.get("k", 5)
                design[scheme] = (f"rows dealt at random{'' if seed is None else f' (seed {seed})'} into "
                                  f"{k} folds, each held out once")
                continue
            if labels:
                languages = sorted({code for label in labels for code in label.split("+")})
                n_languages, n_folds = len(languages), len(labels)
            else:
                try:
                    n_languages = int(self.results[role].nunique())
                except (SectionUnavailable, KeyError):
                    design[scheme] = f"{role} languages held out"
                    continue
                max_folds = config.get("max_folds")
                n_folds = min(n_languages, int(max_folds)) if max_folds else n_languages
            if n_folds >= n_languages:
                design[scheme] = (f"each of the {n_languages} {role} languages held out in turn "
                                  f"({n_folds} folds)")
            else:
                size = n_languages / n_folds
                sizes = (f"{math.floor(size)}" if size == int(size)
                         else f"{math.floor(size)}–{math.ceil(size)}")
                design[scheme] = (f"the {n_languages} {role} languages dealt at random"
                                  f"{'' if seed is None else f' (seed {seed})'} into {n_folds} groups of {sizes}, "
                                  f"each group held out together ({n_folds} folds; a fold's label, e.g. "
                                  f"`{(labels or ['ara+ces+kor'])[0]}`, lists its held-out languages), so every "
                                  f"{role} is predicted by models that never saw it")
        return design

    @_guard
    def cross_validation(self) -> str:
        relative = "cv.csv" if (self.fit_dir / "cv.csv").is_file() else "tables/cv.csv"
        self.tables_read.add("tables/cv.csv")  # the fit writes the same table in both places
        table = self.read_table(relative)
        scheme = find_column(table, SCHEME)
        predictor = find_column(table, ESTIMATOR + ("model",), required=True, what="predictor", file=relative)
        numeric = [c for c in table.select_dtypes("number").columns if c not in ("fold", "seed", "k")]
        metric = find_column(table, ("rmse", "mae", "error", *numeric[:1]), required=True, what="error metric",
                             file=relative)
        keys = [c for c in (scheme, predictor) if c is not None]
        summary = table.groupby(keys, sort=True, as_index=False)[numeric].mean()
        comparison = self.optional_table("tables/cv_comparison.csv")
        design = self.cv_design() if scheme else {}
        out = []
        if design:
            out.append("Each scheme splits the rows the models were fitted on into folds; every fold is "
                       "predicted by models fitted on the other folds:\n")
            out.extend(f"- **{name}**: {text}." for name, text in design.items())
            out.append("")
        plotted = summary.copy()
        if scheme:
            counts = {name: len(labels) for name, labels in self.cv_folds().items()}
            plotted[scheme] = [f"{value}\n({counts[value]} folds)" if value in counts else str(value)
                               for value in plotted[scheme].astype(str)]
        fig = F.bar_plot(plotted, x=scheme or predictor, y=metric, hue=predictor if scheme else None,
                         horizontal=False, title="Cross-validated prediction error",
                         xlabel="cross-validation scheme" if scheme else "predictor",
                         ylabel=f"{metric} ({self.metric}, lower is better)" if metric in ("rmse", "mae")
                         else metric)
        out.append(self.figure(fig, "cv_error", f"Cross-validated {metric} of each predictor against the "
                                                "baselines, per scheme (mean over folds)."))
        out.append(self.table(summary, "report_cv", f"Cross-validation, mean over folds (`{relative}`)."))
        if comparison is not None:
            # The per-fold label lists are long; the HTML shows the counts, the LaTeX and CSV keep them.
            lists = [c for c in comparison.columns if str(c).endswith("_list")]
            ordered = comparison[[c for c in ("scheme",) if c in comparison.columns]
                                 + [c for c in comparison.columns if c != "scheme"]]
            atomic_write_text(self.tables_dir / "report_cv_comparison.tex", latex_table(ordered))
            note = (" The lists of folds won and lost are in `tables/cv_comparison.csv`." if lists else "")
            out.append(markdown_table(ordered.drop(columns=lists),
                                      caption="Each model against the strongest baseline, fold by fold "
                                              f"(`tables/cv_comparison.csv`).{note}") + "\n")
        return "\n".join(out)

    @_guard
    def recommendations(self, k: int = 3) -> str:
        ranking = self.optional_table("tables/ranking.csv")
        origin = "`tables/ranking.csv`"
        if ranking is not None:
            source = find_column(ranking, SOURCE_COLUMN, required=True, what="source", file="tables/ranking.csv")
            rank = find_column(ranking, RANK)
            score = find_column(ranking, PREDICTED + ("score",))
            keys = [c for c in ("task", "model") if c in ranking.columns]
            method = self._best_ranker(ranking) if rank is None else None
            if method is not None:  # one <method>_rank / <method>_score pair per ranker
                rank, score = f"{method}_rank", (f"{method}_score" if f"{method}_score" in ranking else None)
                origin = f"`tables/ranking.csv` ({method} ranker)"
            if rank is None:
                if score is None:
                    raise SectionUnavailable("`tables/ranking.csv` has neither a rank nor a predicted score")
                ranking = ranking.sort_values([*keys, "target", score, source],
                                              ascending=[*[True] * len(keys), True, False, True])
                ranking["rank"] = ranking.groupby([*keys, "target"]).cumcount() + 1
                rank = "rank"
        else:
            predictions = self.read_table("predictions.csv")
            score = find_column(predictions, PREDICTED)
            source = "source"
            estimator = find_column(predictions, ESTIMATOR)
            wide = _wide_prediction_columns(predictions)
            if score is None and wide:
                labels = {_estimator_label(c): c for c in wide}
                choice = "mixed" if "mixed" in labels else sorted(labels)[0]
                score = labels[choice]
                origin = f"`predictions.csv` ({choice} predictions)"
            elif score is None:
                raise SectionUnavailable("`predictions.csv` has no prediction column")
            elif estimator is not None:
                preferred = predictions[estimator].astype(str)
                choice = "mixed" if (preferred == "mixed").any() else sorted(set(preferred))[0]
                predictions = predictions[preferred == choice]
                origin = f"`predictions.csv` ({choice} predictions)"
            else:
                origin = "`predictions.csv`"
            keys = [c for c in ("task", "model") if c in predictions.columns]
            candidates = predictions[predictions["source"].astype(str) != predictions["target"].astype(str)]
            ranking = candidates.groupby([*keys, "target", "source"], as_index=False)[score].mean()
            ranking = ranking.sort_values([*keys, "target", score, "source"],
                                          ascending=[*[True] * len(keys), True, False, True])
            ranking["rank"] = ranking.groupby([*keys, "target"]).cumcount() + 1
            rank = "rank"
        # Transfer from a language to itself is not a recommendation: rank the other sources only.
        ranking = ranking[ranking[source].astype(str) != ranking["target"].astype(str)].copy()
        ranking[rank] = ranking.groupby([*keys, "target"])[rank].rank(method="first")
        top = ranking[ranking[rank] <= k].sort_values([*keys, "target", rank])
        observed_best = {}
        if "observed" in ranking.columns and ranking["observed"].notna().any():
            best = ranking.dropna(subset=["observed"])
            best = best.loc[best.groupby([*keys, "target"])["observed"].idxmax()]
            observed_best = {tuple(r[[*keys, "target"]]): r for _, r in best.iterrows()}
        rows = []
        for group_key, part in top.groupby([*keys, "target"], sort=True):
            group_key = group_key if isinstance(group_key, tuple) else (group_key,)
            row = dict(zip(keys, group_key[:-1]))
            target = group_key[-1]
            row["target"] = f"{language_label(target)} ({target})"
            for position, (_, entry) in enumerate(part.iterrows(), start=1):
                label = f"{language_label(entry[source])} ({entry[source]})"
                if score is not None and score in entry and pd.notna(entry[score]):
                    label += f", {_format_value(float(entry[score]))}"
                row[f"source {position}"] = label
            if observed_best:
                entry = observed_best.get(tuple(group_key))
                row["best observed source"] = ("–" if entry is None else
                                               f"{language_label(entry[source])} ({entry[source]}), "
                                               f"{_format_value(float(entry['observed']))}")
            rows.append(row)
        if not rows:
            raise SectionUnavailable(f"no ranked sources in {origin}")
        out = [self.table(pd.DataFrame(rows), "report_recommendations",
                          f"Top {k} source languages per target other than the target itself, from {origin} "
                          "(the ranker's score after the name; the best observed source also excludes the "
                          "target).",
                          max_rows=500)]
        evaluation = self.optional_table("tables/ranking_ndcg.csv")
        if evaluation is not None:
            out.append(self.table(evaluation, "report_ranking_ndcg",
                                  "How well each ranker orders the sources (`tables/ranking_ndcg.csv`)."))
        return "\n".join(out)

    def _best_ranker(self, ranking: pd.DataFrame) -> str | None:
        """The ranker with the best mean NDCG (``tables/ranking_ndcg.csv``), else the first ``*_rank`` column."""
        methods = [str(c)[: -len("_rank")] for c in ranking.columns if str(c).endswith("_rank")]
        if not methods:
            return None
        evaluation = self.optional_table("tables/ranking_ndcg.csv")
        if evaluation is not None:
            method = find_column(evaluation, ("method", "ranker", "estimator"))
            ndcg = next((c for c in evaluation.columns if str(c).startswith("mean_ndcg")), None)
            if method is not None and ndcg is not None:
                scored = evaluation[evaluation[method].astype(str).isin(methods)]
                if not scored.empty:
                    best = scored.sort_values([ndcg, method], ascending=[False, True]).iloc[0]
                    return str(best[method])
        return sorted(methods)[0]

    def ranking_design(self) -> str:
        """How the source ranking was evaluated: which targets were held out together."""
        ranking = self.optional_table("tables/ranking.csv")
        if ranking is None or "target" not in ranking.columns:
            return ""
        config = (self.manifest.get("config") or {}).get("ranking") or {}
        k = config.get("k", 3)
        n_targets = int(ranking["target"].nunique())
        max_folds = config.get("max_folds")
        n_folds = min(n_targets, int(max_folds)) if max_folds else n_targets
        seed = self.manifest.get("seed", (self.manifest.get("config") or {}).get("seed"))
        held_out = ("each target held out in turn" if n_folds >= n_targets else
                    f"the {n_targets} targets dealt at random{'' if seed is None else f' (seed {seed})'} into "
                    f"{n_folds} groups, each group held out together")
        return (f"Every source language is scored for each target by rankers fitted without that target "
                f"({held_out}); rankings are compared with the observed order by NDCG@{k} (relevance as in "
                "LangRank: the best observed source of a target gets the most). The rankers are the regression "
                "models (ranking by predicted score), the source-mean baseline and a LightGBM LambdaRank model; "
                "the recommendations above follow the ranker with the best mean NDCG.")

    def methods(self) -> str:
        manifest = self.manifest
        if not manifest:
            return _note("Not available: the fit folder has no readable `manifest.json`.")
        out = []
        argv = manifest.get("argv")
        if argv:
            command = "python -m " + " ".join(_shell_quote(str(a)) for a in argv)
            out.append(f"**Command.** The fit was produced by\n\n{md_code_block(command)}")
        seed = manifest.get("seed", (manifest.get("config") or {}).get("seed"))
        if seed is not None:
            out.append(f"**Seed.** All random steps used seed {md_escape(seed)}.\n")
        formulas = manifest.get("formulas") or {}
        config = manifest.get("config") or {}
        if formulas:
            standardised = self.fit_config.ols.standardise
            scale = ("standardised to mean 0 and SD 1, so a coefficient is the change in score per SD of "
                     "its feature" if standardised else "in their own units")
            out.append("**Models.** With $y_{st}$ the score of transfer from source $s$ to target $t$ and "
                       f"$x_{{k,st}}$ the pair features ({scale}), the OLS model is\n\n"
                       "$$y_{st} = \\beta_0 + \\sum_k \\beta_k x_{k,st} + \\varepsilon_{st}.$$\n")
            mixed_formula = formulas.get("mixed") if isinstance(formulas, dict) else None
            out.append(_mixed_model_text(str(mixed_formula)) if mixed_formula else "")
            if (self.fit_dir / "tables" / "fewshot_params.csv").is_file():
                out.append("Few-shot curves model the score as linear in $\\log(1 + n)$ for $n$ "
                           "target-language training examples.\n")
            out.append("The formulas used:\n")
            items = formulas.items() if isinstance(formulas, dict) else enumerate(formulas)
            for key, formula in items:
                out.append(f"- {md_escape(key)}: {md_code(formula)}")
            out.append("")
        design = self.cv_design()
        if design:
            estimators_seen = []
            cv = self.optional_table("cv.csv")
            if cv is not None:
                column = find_column(cv, ESTIMATOR)
                if column is not None:
                    estimators_seen = sorted(set(cv[column].astype(str)))
            baselines = [BASELINES[e] for e in estimators_seen if e in BASELINES]
            out.append("**Validation.** Out-of-sample error (RMSE, MAE, R², and coverage and width of the "
                       "95% prediction intervals) is estimated by cross-validation"
                       + (f" against the baselines: {'; '.join(baselines)}" if baselines else "") + ". Schemes:\n")
            out.extend(f"- {name}: {text}." for name, text in design.items())
            out.append("")
        ranking_design = self.ranking_design()
        if ranking_design:
            out.append(f"**Source ranking.** {ranking_design}\n")
        estimators = manifest.get("estimators")
        if estimators:
            out.append("**Estimators.**\n")
            items = estimators.items() if isinstance(estimators, dict) else enumerate(estimators)
            out.extend(f"- {md_escape(key)}: {md_escape(value)}" for key, value in items)
            out.append("")
        elif config:
            ols = config.get("ols") or {}
            mixed = config.get("mixed") or {}
            out.append(f"**Estimators.** OLS with {md_code(ols.get('cov_type', 'default'))} standard errors; mixed model "
                       f"fitted by {'REML' if mixed.get('reml', True) else 'maximum likelihood'}.\n")
        if config:
            import yaml

            out.append("**Configuration.**\n\n" + md_code_block(yaml.safe_dump(config, sort_keys=True), "yaml"))
        notes = manifest.get("notes") or []
        if notes:
            out.append("**Notes from the fit.**\n")
            out.extend(f"- {md_escape(note)}" for note in (notes if isinstance(notes, list) else [notes]))
            out.append("")
        inputs = manifest.get("inputs")
        if inputs:
            rows = (inputs.items() if isinstance(inputs, dict)
                    else [(i.get("path"), i.get("sha256")) for i in inputs if isinstance(i, dict)])
            frame = pd.DataFrame(sorted((str(p), str(h)) for p, h in rows), columns=["input", "sha256"])
            out.append(self.table(frame, "report_inputs", "Input files and their SHA-256 checksums."))
        versions = manifest.get("versions") or manifest.get("package_versions")
        if versions:
            frame = pd.DataFrame(sorted((str(k), str(v)) for k, v in versions.items()), columns=["package", "version"])
            out.append(self.table(frame, "report_versions", "Package versions.", max_rows=200))
        dataset = manifest.get("dataset") or {}
        citations = dataset.get("citation") or dataset.get("citations")
        if citations:
            if isinstance(citations, str):
                citations = [citations]
            out.append("**Data citation.** Please cite the dataset"
                       + (f" {md_escape(dataset.get('title'))}" if dataset.get("title") else "") + ":\n")
            for citation in citations:
                out.append(md_code_block(str(citation).strip(), "bibtex"))
        for key in ("origin", "url", "commit", "licence", "license"):
            if dataset.get(key):
                out.append(f"- {key}: {md_escape(dataset[key])}")
        out.append(_references_text(manifest))
        return "\n".join(out) + "\n"

    @_guard
    def other_tables(self, max_rows: int = 20) -> str:
        """Every ``tables/*.csv`` the sections above did not show."""
        if not self.tables_dir.is_dir():
            raise SectionUnavailable("the fit folder has no `tables/`")
        out = []
        for csv in sorted(self.tables_dir.glob("*.csv")):
            relative = f"tables/{csv.name}"
            if relative in self.tables_read:
                continue
            if not csv.read_text(encoding="utf-8").strip():
                out.append(f"**`{relative}`** is empty.\n")
                continue
            try:
                table = self.read_table(relative)
            except SectionUnavailable as exc:  # one unreadable table must not hide the others
                out.append(_note(f"Not available: {exc}"))
                continue
            out.append(f"**`{relative}`**\n\n" + markdown_table(table, max_rows=max_rows) + "\n")
        return "\n".join(out) if out else "Every table of the fit is shown above.\n"

    def closing(self) -> str:
        written = self.ensure_latex_tables()
        text = f"The report wrote {self.figure_count} figure(s) to `figures/` ({'PNG and SVG' if self.svg else 'PNG'})"
        text += " and LaTeX versions of its tables to `tables/`"
        if written:
            text += f", including {len(written)} `.tex` file(s) the fit had not written"
        return text + ".\n"


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


def _references_text(manifest: dict) -> str:
    """The methods section's list of the sources the fit used (xltstats.references)."""
    from ..references import citation_text, references, used_keys

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
