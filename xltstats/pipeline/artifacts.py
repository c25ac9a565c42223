"""``FitFolder``: the one contract of a fit folder (file names, column schemas, write and read).

A fit folder holds::

    results.csv            the results with every feature joined (ROOT_TABLES)
    features.csv           pair features            feature_coverage.csv   their coverage
    predictions.csv        every saved model's predictions of every row (rows without a score: targets)
    cv.csv                 cross-validation metrics
    cv_summary.txt         cross-validation in words
    tables/NAME.csv|md|tex every model table (TABLES)
    model.json             the saved models, for ``python -m xltstats.predict`` (data only)
    manifest.json          provenance (:mod:`xltstats.pipeline.manifest`)
    report.html, figures/  the report (optional)

``FitFolder(path).write(fit)`` writes a :class:`~xltstats.pipeline.run.Fit` atomically (into a
hidden partial folder swapped into place at the end); ``read_table(name)`` reads one table back and
checks it has the columns of its schema.  The report, ``predict`` and ``reproduce`` read a fit only
through this class.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pandas as pd

from .._io import AtomicDir, atomic_write_text
from ..errors import InputError


@dataclass(frozen=True)
class TableSchema:
    """A table of the fit folder: where it lives and the columns it always has."""

    name: str
    file: str  # relative to the fit folder
    columns: tuple[str, ...]  # always present (others may follow: per-group, per-method columns)
    description: str = ""


def _schema(name, file, columns, description=""):
    return name, TableSchema(name, file, tuple(columns.split()), description)


#: Tables at the top of the folder.  ``columns``: what every reader may rely on (a fit writes more:
#: the full layouts are in the docstrings of the functions that make them).
ROOT_TABLES = dict([
    _schema("results", "results.csv", "model task source target score", "the results, features joined"),
    _schema("features", "features.csv", "source target", "pair features"),
    _schema("feature_coverage", "feature_coverage.csv", "feature coverage", "pairs with a value, per feature"),
    _schema("predictions", "predictions.csv", "source target score",
            "predictions of the saved models (ols_prediction, mixed_prediction, gbt_prediction, ...) for every "
            "row of the fit's table, predictions and interval bounds clipped to the metric's range; in_fit: the "
            "row was used by the full models; a row without a score is a prediction target"),
    _schema("cv", "cv.csv", "estimator scheme rmse", "cross-validation metrics"),
])
#: Tables under ``tables/`` (each also as .md and .tex).
TABLES = dict([
    _schema("coef_ols", "tables/coef_ols.csv", "term estimate std_error conf_low conf_high",
            "OLS coefficients (features standardised: per SD) with robust SE, p and 95% CI"),
    _schema("vif", "tables/vif.csv", "feature vif",
            "variance inflation factors of the OLS features, with each feature's most correlated partner"),
    _schema("group_comparison", "tables/group_comparison.csv", "group r2_drop",
            "OLS: R² lost when each feature group is dropped, with F and robust Wald tests"),
    _schema("dominance", "tables/dominance.csv", "group general_dominance",
            "dominance analysis of the feature groups (general and conditional dominance, share of R²)"),
    _schema("group_tests", "tables/group_tests.csv", "group_a group_b estimate",
            "pairwise comparisons of the feature groups' contributions (paired cluster bootstrap)"),
    _schema("coef_mixed", "tables/coef_mixed.csv", "effect term estimate",
            "mixed-model fixed effects (raw units; Satterthwaite df and p, Wald and profile 95% CI) and "
            "variance parameters"),
    _schema("variance_components", "tables/variance_components.csv", "component variance",
            "mixed-model variance components with 95% intervals and their share of the total variance"),
    _schema("morphology_imputed", "tables/morphology_imputed.csv", "language imputed_features mean_confidence",
            "morphology_imputation: per language, Grambank features observed and imputed, the imputed ones' mean "
            "confidence (held-out accuracy), the pairs it filled, why a language was not imputed"),
    _schema("morphology_imputed_pairs", "tables/morphology_imputed_pairs.csv", "source target distance filled",
            "morphology_imputation: the pairs whose morphological distance used imputed values (filled: it had none)"),
    _schema("mixed_fit", "tables/mixed_fit.csv", "statistic value",
            "mixed-model fit statistics"),
    _schema("group_comparison_mixed", "tables/group_comparison_mixed.csv", "group p_value",
            "mixed model: likelihood-ratio test and marginal R² lost when each feature group is dropped"),
    _schema("fewshot_params", "tables/fewshot_params.csv", "task target a b",
            "few-shot learning curves: fitted parameters per task and target"),
    _schema("fewshot_curves", "tables/fewshot_curves.csv", "task target n fit",
            "few-shot learning curves: fitted score per number of target examples"),
    _schema("data_demand", "tables/data_demand.csv", "task target n_needed",
            "target examples needed to reach a given score on the few-shot curve, with a 95% interval"),
    _schema("fewshot_pooled", "tables/fewshot_pooled.csv", "task a b",
            "few-shot learning curve pooled over targets: fitted parameters per task"),
    _schema("fewshot_pooled_curves", "tables/fewshot_pooled_curves.csv", "task n fit",
            "pooled few-shot learning curve: fitted score per number of target examples"),
    _schema("cv", "tables/cv.csv", "estimator scheme rmse",
            "cross-validation: error, R² and interval coverage per estimator and scheme"),
    _schema("cv_comparison", "tables/cv_comparison.csv", "estimator baseline scheme",
            "cross-validation: each estimator against each baseline, fold by fold"),
    _schema("cv_choice", "tables/cv_choice.csv", "scheme estimator rmse chosen_rmse stacked_rmse",
            "per scheme, the estimator a prediction should use (inner-CV choice, stacking)"),
    _schema("cv_choice_folds", "tables/cv_choice_folds.csv", "scheme fold chosen",
            "per outer fold, the estimator inner cross-validation chose"),
    _schema("ranking", "tables/ranking.csv", "target source",
            "source ranking per target: observed score and each ranker's cross-fitted score and rank"),
    _schema("ranking_ndcg", "tables/ranking_ndcg.csv", "method",
            "source ranking quality per ranker: NDCG@3 and top-1 accuracy and regret"),
    _schema("ranking_selection", "tables/ranking_selection.csv", "fold chosen",
            "per held-out fold of the ranking, the ranker chosen by inner CV and every candidate's inner NDCG"),
])
MANIFEST = "manifest.json"
MODEL = "model.json"
CV_SUMMARY = "cv_summary.txt"
REPORT = "report.html"


def table_caption(name: str) -> str:
    """The caption of ``tables/<name>.tex``: the table's description and where its data is."""
    schema = TABLES.get(name)
    what = schema.description if schema is not None and schema.description else name.replace("_", " ")
    return f"{what[:1].upper()}{what[1:]} (`tables/{name}.csv`)."


def schema_of(name: str) -> TableSchema:
    """The schema of a table by name (``coef_ols``) or file (``tables/coef_ols.csv``, ``results.csv``)."""
    for schema in (*ROOT_TABLES.values(), *TABLES.values()):
        if name in (schema.file, schema.name) and (name != "cv" or schema.file == "cv.csv"):
            return schema
    raise KeyError(name)


class FitFolder:
    """A fit folder on disk (see the module docstring)."""

    def __init__(self, path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"FitFolder({str(self.path)!r})"

    # ------------------------------------------------------------------ writing
    def write(self, fit, *, argv: list[str] | None = None, mirror=None, in_memory: bool | None = None,
              report: bool = False, quiet: bool = True, progress=None) -> Path:
        """Write ``fit`` (and its manifest; the report when ``report``) as this folder, atomically.

        ``argv`` is the fit command line the manifest records (None from Python: such a folder
        cannot be rerun by ``reproduce``).  ``in_memory``: the fit's data was a DataFrame, not
        ``fit.config.data`` (default: when ``argv`` is None and the data is not a file or dataset).
        """
        from .manifest import build_manifest

        if in_memory is None:
            in_memory = argv is None and not _is_dataset_or_file(fit.config.data)
        manifest = build_manifest(fit, argv=argv, mirror=mirror, in_memory=in_memory)
        with AtomicDir(self.path) as partial:
            self.write_contents(partial.path, fit, manifest)
            if report:
                from ..report import render_report

                # rendered silently: its own "wrote ..." would name the hidden partial folder
                if progress is not None:
                    with progress.step("rendering the report"):
                        render_report(partial.path, partial.path / REPORT)
                else:
                    render_report(partial.path, partial.path / REPORT)
            partial.commit()
        if report and progress is None and not quiet:
            print(f"wrote {self.path / REPORT}", file=sys.stderr)
        return self.path

    @staticmethod
    def write_contents(work: Path, fit, manifest: dict) -> None:
        """Every file of the fit into the (new, empty) folder ``work``."""
        from ..models.persist import save_model
        from ..models.tables import write_table
        from ..results import write_results
        from .design import sorted_results

        tables = work / "tables"
        tables.mkdir()
        write_table(fit.design.features, work, "features", formats=("csv",))
        write_table(fit.design.coverage, work, "feature_coverage", formats=("csv",))
        write_results(sorted_results(fit.data), work / ROOT_TABLES["results"].file)
        for name, table in fit.tables.items():
            write_table(table, tables, name, caption=table_caption(name))
        if fit.cv_table is not None:
            write_table(fit.cv_table, work, "cv", formats=("csv",))
        if fit.cv_summary:
            atomic_write_text(work / CV_SUMMARY, fit.cv_summary)
        write_table(fit.predictions, work, "predictions", formats=("csv",))
        if fit.saved is not None:  # every saved predictor (full, nested, trees) of pipeline.predictors
            save_model(work, document=fit.saved)
        else:
            save_model(work, ols=fit.ols, mixed=fit.mixed, features=fit.used, formula=fit.formula,
                       config=fit.config.to_dict())
        from ..references import write_references

        manifest = {**manifest, "references": write_references(work, manifest)}  # references.bib beside it
        atomic_write_text(work / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")

    # ------------------------------------------------------------------ reading
    def require(self) -> "FitFolder":
        """This folder, or an :class:`InputError` when it is not a fit folder."""
        if not self.path.is_dir():
            raise InputError("no such fit folder", file=self.path)
        if not (self.path / MANIFEST).is_file() and not (self.path / MODEL).is_file():
            raise InputError("not a fit folder written by python -m xltstats.fit (no manifest.json, no model.json)",
                             file=self.path)
        return self

    def has(self, name: str) -> bool:
        return (self.path / schema_of(name).file).is_file()

    def table_path(self, name: str) -> Path:
        return self.path / schema_of(name).file

    def read_table(self, name: str) -> pd.DataFrame | None:
        """Table ``name`` (None when the fit has none); an unreadable table or one without the
        columns of its schema is an :class:`InputError` naming the file."""
        from ..results import read_table

        schema = schema_of(name)
        path = self.path / schema.file
        if not path.is_file():
            return None
        if not path.read_bytes().strip():
            raise InputError("the table is empty (not even a header)", file=path)
        table = read_table(path, what=f"`{schema.file}`", allow_empty=True)
        missing = [c for c in schema.columns if c not in table.columns]
        if missing:
            raise InputError(f"lacks column(s) {', '.join(missing)} of the fit folder's `{schema.file}` "
                             f"(has {', '.join(map(str, table.columns))})", file=path, column=missing[0])
        return table

    def extra_tables(self) -> list[str]:
        """Files ``tables/*.csv`` outside the schema (written by other tools), by relative path."""
        folder = self.path / "tables"
        known = {s.file for s in TABLES.values()}
        return sorted(f"tables/{p.name}" for p in folder.glob("*.csv") if f"tables/{p.name}" not in known) \
            if folder.is_dir() else []

    def table_files(self) -> list[str]:
        """Every table file present (root tables and ``tables/*.csv``), by relative path."""
        names = [s.file for s in ROOT_TABLES.values() if (self.path / s.file).is_file()]
        folder = self.path / "tables"
        if folder.is_dir():
            names += [f"tables/{p.name}" for p in sorted(folder.glob("*.csv"))]
        return sorted(names)

    @cached_property
    def manifest(self) -> dict:
        """``manifest.json`` as a mapping ({} when absent); invalid JSON is an :class:`InputError`."""
        path = self.path / MANIFEST
        if not path.is_file():
            return {}
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputError(f"not valid JSON: {exc}", file=path) from None
        if not isinstance(manifest, dict):
            raise InputError(f"expected a JSON object, got {type(manifest).__name__}", file=path)
        return manifest

    @cached_property
    def config(self):
        """The fit's :class:`~xltstats.pipeline.config.FitConfig` (the manifest's, over the defaults)."""
        from .config import FitConfig

        return FitConfig.from_dict(self.manifest.get("config") or {}, source=f"{self.path / MANIFEST}: config")

    @cached_property
    def results(self) -> pd.DataFrame | None:
        return self.read_table("results")

    @property
    def model_path(self) -> Path:
        return self.path / MODEL


def _is_dataset_or_file(name: str) -> bool:
    from ..datasets import list_datasets

    return name in list_datasets() or Path(name).is_file()
