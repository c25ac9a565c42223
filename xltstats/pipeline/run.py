"""``run_fit(config) -> Fit``: the whole analysis in memory, no files written.

    from xltstats.pipeline import FitConfig, run_fit
    fit = run_fit(FitConfig(data="langrank-pos"))
    print(fit.ols.summary())
    fit.tables["coef_mixed"]          # every table the CLI writes to tables/, by name

The steps, each skipped when the data cannot support it: load the results (a registry dataset, a
results file, or a DataFrame given as ``data=``), build the model table
(:func:`~xltstats.pipeline.design.model_table`), OLS with feature-group tests and dominance, the
crossed mixed model with variance components and group likelihood-ratio tests, few-shot curves,
cross-validation against baselines, source ranking, and the predictions of both models.
:class:`~xltstats.pipeline.artifacts.FitFolder` writes a :class:`Fit` to disk.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..progress import Progress
from .config import FitConfig
from .design import ModelTable, apply_subset, model_table
from .predictors import fit_predictions, fit_predictors, logit_range, with_logit_mixed


@dataclass
class Fit:
    """Everything one fit produced.  ``tables`` holds, by name, every table of ``tables/``."""

    config: FitConfig
    results: pd.DataFrame  # the results as loaded (after the subset), before features were joined
    design: ModelTable
    ols: Any
    mixed: Any
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    predictions: pd.DataFrame | None = None
    cv: dict[str, Any] = field(default_factory=dict)  # scheme -> cross-validation result
    cv_table: pd.DataFrame | None = None
    cv_summary: str | None = None
    fewshot: Any = None
    ranking: Any = None
    notes: list[str] = field(default_factory=list)
    imputation: dict | None = None  # morphology_imputation's parameters (xltstats.pipeline.imputation)
    gbt: Any = None  # the trees fitted on every scored row (see pipeline.predictors)
    hybrid: Any = None  # the trees + random intercepts fitted on every scored row (cv.hybrid; pipeline.predictors)
    nested: dict = field(default_factory=dict)  # family -> [(features, results)]: sub-models for pairs lacking features
    saved: dict | None = None  # model.json's document
    scale: Any = None  # the scores' range, direction and label (xltstats.results.metrics.ScoreScale)

    @property
    def data(self) -> pd.DataFrame:
        """The results with every feature joined (the fit folder's ``results.csv``)."""
        return self.design.data

    @property
    def used(self) -> list[str]:
        return self.design.used

    @property
    def formula(self) -> str:
        return self.design.formula

    def predict(self, pairs: pd.DataFrame, *, model: str = "auto", alpha: float = 0.05, mirror=None,
                include_random: bool = True) -> pd.DataFrame:
        """Scores and prediction intervals for new pairs, as ``python -m xltstats.predict`` gives them
        from this fit's folder (:func:`~xltstats.pipeline.predictors.predict_pairs`): missing columns
        computed as in the fit, a pair that lacks features predicted by the largest nested model it
        has the features of (``model_used``, ``model_reason``). ``model``: mixed, ols, gbt, hybrid or auto
        (the best by cross-validation)."""
        from ..models.nested import SavedModels
        from .predictors import predict_pairs

        return predict_pairs(pairs, SavedModels(self.saved), self.config, reference=self.data, which=model,
                             alpha=alpha, include_random=include_random, mirror=mirror)

    def closing_lines(self) -> list[str]:
        """What the fit prints at its end: the rows the models use (and why the others were left
        out), then every other note."""
        rows = self.design.rows_used
        return [rows] + [f"note: {n}" for n in self.notes if n != rows]

    def summary(self) -> str:
        """A few lines: data, models, the tables made, and the notes."""
        lines = [f"xltstats fit of {self.config.data}: features: {', '.join(self.used)}",
                 f"mixed model: {self.formula or 'none (see the notes)'}",
                 f"tables: {', '.join(self.tables)}"]
        return "\n".join(lines + self.closing_lines())

    def __repr__(self) -> str:
        return f"<Fit of {self.config.data}: {len(self.design.complete)} rows, {len(self.tables)} tables>"


def check_one_condition(data: pd.DataFrame) -> None:
    """Rows of different experimental conditions (``condition`` column) are different experiments
    on the same pair: a fit of pair features would pool them silently, so one must be chosen."""
    if "condition" not in data.columns:
        return
    conditions = data["condition"].fillna("(none)").astype(str)
    if conditions.nunique() > 1:
        shown = ", ".join(repr(c) for c in sorted(conditions.unique())[:5])
        more = f" and {conditions.nunique() - 5} more" if conditions.nunique() > 5 else ""
        raise ConfigError(f"the data has {conditions.nunique()} experimental conditions in column "
                          f"'condition' ({shown}{more}); a fit uses one: choose it with "
                          f"'subset: {{condition: ...}}' in the fit config")


def load_results(config: FitConfig, mirror=None) -> pd.DataFrame:
    """The configuration's dataset (registry name or results file), after its ``subset``."""
    from ..datasets import load_dataset

    data = load_dataset(config.data, mirror=mirror, **({"variant": config.variant} if config.variant else {}))
    return apply_subset(data, config.subset)


def run_fit(config: FitConfig | None = None, *, data: pd.DataFrame | None = None, mirror=None,
            progress: Progress | None = None) -> Fit:
    """Fit everything ``config`` asks for; ``data`` (a validated results table) replaces ``config.data``."""
    from ..languages import language_options
    from ..results.metrics import declared_from_config, metric_options

    config = FitConfig() if config is None else config
    # individual_languages: keep pes, cmn, arb, nob apart from their macrolanguages; metrics: the
    # declared ones are known to results validation
    from ..models.mixed._optimise import single_threaded_blas

    # one BLAS thread: the folds of the cross-validation and the ranking run in threads of their own,
    # and threaded BLAS on these small matrices mostly waits (an OLS rank check's SVD of 6,363 x 11
    # took 64 ms wall and 20 CPU-ms with two threads on a loaded machine, 2.5 ms and 0.8 ms with one)
    with language_options(individual=bool(config.individual_languages)), single_threaded_blas(), \
            metric_options(declared_from_config(config.metrics)):
        return _run(config, data, mirror, progress or Progress("xltstats.fit", quiet=True))


def _run(config: FitConfig, data, mirror, progress: Progress) -> Fit:
    np.random.seed(config.seed)
    if data is None:
        with progress.step(f"loading {config.data}"):
            data = load_results(config, mirror)
    else:
        from ..results import validate_results

        data = apply_subset(validate_results(data), config.subset)
    check_one_condition(data)
    from ..results.metrics import ScoreScale

    scale = ScoreScale.of(data, source=str(config.data))
    progress.info(f"read {len(data):,} rows: {data['source'].nunique()} sources, {data['target'].nunique()} targets, "
                  f"{data['task'].nunique()} task(s), {data['model'].nunique()} model(s)")
    with progress.step("computing pair features"):
        design = model_table(data, config, mirror=mirror)
    fit = Fit(config=config, results=data, design=design, ols=None, mixed=None, notes=list(design.notes), scale=scale)
    logit_range(fit)  # mixed.scale: logit needs a bounded metric: said before any model is fitted
    from .imputation import imputation_tables

    imputation_tables(fit)
    with progress.step("fitting OLS"):
        _fit_ols(fit)
    with progress.step("fitting the crossed mixed-effects model"):
        _fit_mixed(fit)
    if config.fewshot.enabled is True or (config.fewshot.enabled == "auto" and _has_fewshot_curves(_scored(design.data))):
        if not scale.higher_is_better:
            fit.notes.append(f"few-shot curves not fitted: they model a score that rises with the target's examples "
                             f"toward a plateau (and data demand as a share of it), and lower {scale.label} is better")
        else:
            with progress.step("fitting few-shot curves"):
                _fit_fewshot(fit)
    with progress.step("cross-validating against baselines"):
        _cross_validate(fit, progress)
    single = design.complete[design.complete["source"] != "mul"]  # candidates are languages, not source sets
    if design.pairs == "unordered":
        fit.notes.append("source ranking skipped: the pairs are unordered ('pairs: unordered'), so no language "
                         "is a source for another to rank")
    elif config.ranking.enabled is True or (config.ranking.enabled == "auto" and _ranking_possible(single)):
        with progress.step("ranking source languages"):
            _rank(fit, single, progress)
    for result in fit.cv.values():
        result.fold_models.clear()  # the cross-validation's fitted models were kept for the ranking only
    with progress.step("fitting the saved predictors (trees, nested models)"):
        fit_predictors(fit)
    with progress.step("predicting"):
        fit.predictions = fit_predictions(fit)
    return fit


# ---------------------------------------------------------------------- steps

def _fit_ols(fit: Fit) -> None:
    from ..models.ols import fit_ols

    config, design = fit.config, fit.design
    cov_type, cluster = config.ols.cov_type, "target"
    if design.pairs == "unordered":
        cluster = None
        if cov_type == "cluster2":
            cov_type = "dyadic"
            fit.notes.append("OLS standard errors clustered by language (cov_type dyadic) instead of by source and "
                             "target: with unordered pairs a language sits in either column")
        if design.groups:
            fit.notes.append("group tests resample rows, not target languages: unordered pairs have no targets")
    ols = fit_ols(design.complete, response="score", features=design.used, groups=design.groups,
                  cov_type=cov_type, standardise=config.ols.standardise, min_clusters=config.ols.min_clusters)
    fit.ols = ols
    fit.notes += [f"OLS: {n}" for n in ols.notes]
    fit.tables["coef_ols"] = ols.table()
    fit.tables["vif"] = ols.vif()
    fit.notes += ols.collinearity_notes()
    if design.groups:
        fit.tables["group_comparison"] = ols.group_comparison()
        fit.tables["dominance"] = ols.dominance()
        pairs = [tuple(p) for p in config.compare if p[0] in design.groups and p[1] in design.groups]
        if pairs:
            fit.tables["group_tests"] = ols.compare_groups(pairs, n_boot=config.ols.n_boot, seed=config.seed,
                                                           cluster=cluster)


def _fit_mixed(fit: Fit) -> None:
    from ..models.mixed import compare_feature_groups, fit_mixed

    config, design = fit.config, fit.design
    if design.formula is None:
        return  # no grouping factor has enough levels; the design's notes say why
    logit = logit_range(fit)
    if logit is None:
        mixed = fit_mixed(design.formula, design.complete, reml=config.mixed.reml)
    else:
        from ..models.bounded import fit_logit_mixed

        mixed = fit_logit_mixed(design.formula, design.complete, *logit, reml=config.mixed.reml)
        fit.notes.append(f"mixed model on the logit scale (mixed.scale: logit): the logit of each score's place in "
                         f"{fit.scale.range_text()}; coefficients, variances and their tests are on that scale, "
                         "predictions and interval bounds are transformed back to the score's")
    fit.mixed = mixed
    fit.tables["coef_mixed"], why = mixed_coefficients(mixed, config.mixed.ddf)
    if why:
        method = "Kenward-Roger" if config.mixed.ddf == "kenward-roger" else "Satterthwaite"
        fit.notes.append(f"mixed model: {method} df and p-values "
                         + (why if why.startswith("computed") else f"not computed: {why}"))
    if fit.tables["coef_mixed"].attrs.get("profile_note"):
        fit.notes.append(f"mixed model: {fit.tables['coef_mixed'].attrs['profile_note']}")
    fit.tables["variance_components"] = variance_table(mixed, config.mixed.ci_boot, config.seed)
    fit.tables["mixed_fit"] = mixed_fit_statistics(mixed)
    if design.groups:
        fit.tables["group_comparison_mixed"] = compare_feature_groups(getattr(mixed, "inner", mixed), design.groups)
    fit.notes += [f"mixed model: {w}" for w in getattr(mixed, "warnings", []) or []]


def _fit_fewshot(fit: Fit) -> None:
    from ..models.fewshot import fit_fewshot

    curves = fit_fewshot(_scored(fit.design.data), seed=fit.config.seed)
    shares = list(fit.config.fewshot.target_shares)
    fit.fewshot = curves
    fit.tables["fewshot_params"] = curves.table()
    fit.tables["fewshot_curves"] = curves.curves()
    fit.tables["data_demand"] = curves.data_demand(shares=shares)
    fit.tables["fewshot_pooled"] = curves.pooled_table(shares=shares)
    fit.tables["fewshot_pooled_curves"] = curves.pooled_curves()


def _cross_validate(fit: Fit, progress: Progress) -> None:
    from ..models.validation import cross_validate, default_estimators, make_splits

    config, complete = fit.config, fit.design.complete
    schemes, estimators = list(config.cv.schemes), None
    symmetric = fit.design.pairs == "unordered"
    logit = config.mixed.scale == "logit" and fit.formula  # the mixed model of every fold on the logit scale
    if symmetric:
        schemes = _unordered_schemes(fit, schemes)
    if symmetric or logit:
        estimators = default_estimators(
            fit.used, fit.formula, seed=config.seed, symmetric=symmetric, tree_features=fit.design.tree_features,
            categorical=fit.design.categorical, hybrid=config.cv.hybrid)
    if logit:
        estimators = with_logit_mixed(fit, estimators)
    possible = [s for s in schemes if _scheme_possible(s, complete)]
    # the ranking averages the rows of a pair: with one row per pair it trains on the same rows
    # (a lower-is-better ranking fits on the negated score: nothing to reuse)
    reusable = config.ranking.enabled is not False and not symmetric and fit.scale.higher_is_better \
        and not complete.duplicated(
        [c for c in ("model", "task", "source", "target") if c in complete.columns]).any()
    folds = progress.counter("cross-validation folds", sum(
        len(make_splits(complete, s, config.cv.k, config.seed, max_folds=config.cv.max_folds)) for s in possible))
    metrics, comparisons, summaries, choices, choice_folds = [], [], [], [], []
    for scheme in schemes:
        if not _scheme_possible(scheme, complete):
            fit.notes.append(f"cross-validation {scheme} skipped: too few languages")
            continue
        result = cross_validate(complete, estimators=estimators, features=fit.used, scheme=scheme, k=config.cv.k, seed=config.seed,
                                mixed_formula=fit.formula, max_folds=config.cv.max_folds,
                                n_jobs=n_jobs(config.cv.n_jobs), progress=folds,
                                tree_features=fit.design.tree_features, categorical=fit.design.categorical,
                                select=config.cv.select, inner_folds=config.cv.inner_folds,
                                hybrid=config.cv.hybrid, scale=fit.scale,
                                # the ranking holds out the same target groups: it reuses these fits
                                keep_models=scheme == "leave-one-target-out" and reusable)
        fit.cv[scheme] = result
        if result.clipped:
            fit.notes.append(f"cross-validation {scheme}: " + fit.scale.clip_note(
                "held-out predictions and interval bounds", result.clipped, _bound_count(result.predictions)))
        metrics.append(result.metrics())
        if result.choices:
            choices.append(result.selection())
            choice_folds.append(result.choice_folds())
        fit.notes += [f"cross-validation {scheme}: {m}" for m in result.not_converged]
        if result.baseline_name is not None:
            comparisons.append(result.comparison().assign(scheme=scheme))
        summaries.append(str(result.summary()))
    if metrics:
        fit.cv_table, failed = mark_failed_cv(pd.concat(metrics, ignore_index=True))
        fit.tables["cv"] = fit.cv_table
        fit.notes += failed
    if comparisons:
        fit.tables["cv_comparison"] = pd.concat(comparisons, ignore_index=True)
    if choices:  # the estimator a prediction should use, per scheme (predict and the report read it)
        fit.tables["cv_choice"] = pd.concat(choices, ignore_index=True)
        fit.tables["cv_choice_folds"] = pd.concat(choice_folds, ignore_index=True)
    if summaries:
        fit.cv_summary = "\n\n".join(summaries) + "\n"


def _rank(fit: Fit, single: pd.DataFrame, progress: Progress) -> None:
    from ..models.ranking import rank_sources, ranking_estimators
    from ..models.validation import group_splits

    config = fit.config
    n_folds = len(group_splits(single["target"].to_numpy(), config.ranking.max_folds))
    # every regression model of the cross-validation ranks (the mixed model, trees, the hybrid), and
    # with select the ranker chosen by inner CV within each fold ('best') is reported as well
    estimators = ranking_estimators(fit.used, fit.formula, seed=config.seed, hybrid=config.cv.hybrid)
    if config.mixed.scale == "logit" and fit.formula:
        estimators = with_logit_mixed(fit, estimators, negated=not fit.scale.higher_is_better)
    cv = fit.cv.get("leave-one-target-out")
    # the cross-validation's held-out target folds were fitted on these rows (rank_sources checks it
    # fold by fold) when the ranking has every row of the cross-validation
    fold_models = cv.fold_models if cv is not None and len(single) == len(fit.design.complete) else None
    ranking = rank_sources(single, features=fit.used, k=config.ranking.k, seed=config.seed, fold_models=fold_models,
                           estimators=estimators, max_folds=config.ranking.max_folds, mixed_formula=fit.formula,
                           select=config.ranking.select, inner_folds=config.ranking.inner_folds,
                           progress=progress.counter("ranking folds", n_folds),
                           n_jobs=n_jobs(config.cv.n_jobs),  # the same worker threads as the folds of cv
                           higher_is_better=fit.scale.higher_is_better, scale=fit.scale)
    if not fit.scale.higher_is_better:
        fit.notes.append(f"source ranking: lower {fit.scale.label} is better, so the best source is the one "
                         "with the lowest score (relevance, NDCG and LambdaRank's labels follow)")
    fit.ranking = ranking
    fit.tables["ranking"] = ranking.table()
    fit.tables["ranking_ndcg"] = ranking.evaluation()
    if len(ranking.selection):
        fit.tables["ranking_selection"] = ranking.selection


# ---------------------------------------------------------------------- pieces

#: the baseline whose held-out RMSE a model must not exceed (the training mean of the target, source or all)
FAIL_BASELINE = "mean"


def mixed_coefficients(mixed, ddf: str = "satterthwaite") -> tuple[pd.DataFrame, str]:
    """The mixed model's table with lmerTest's Satterthwaite ``df`` and ``p_value`` (``Pr(>|t|)``)
    for the fixed effects, and an empty reason; where they cannot be computed (an ML fit, the
    statsmodels path, a Hessian that is not positive definite) both stay missing and the reason says
    why.  ``ddf="kenward-roger"``: pbkrtest's Kenward-Roger df and ``p_value`` instead, with
    ``std_error`` and ``statistic`` from its adjusted covariance ``Phi_A`` (an ML fit is refitted
    with REML for them, as pbkrtest does; a model too large for it keeps lme4's standard errors,
    df and p missing, with the reason).  The Wald intervals (normal quantiles, as lme4's
    ``confint(method="Wald")``, on lme4's standard errors) are kept as
    ``conf_low``/``conf_high``; ``conf_low_profile``/``conf_high_profile`` are lme4's profile
    intervals (``confint(method = "profile")``, the ML deviance profiled over each fixed effect),
    missing where they cannot be computed, with the reason in ``table.attrs["profile_note"]``."""
    from ..errors import InputError

    table = mixed.table()
    kr = ddf == "kenward-roger"
    try:
        tests = mixed.kenward_roger() if kr else mixed.satterthwaite()
    except InputError as exc:
        tests, why = None, str(exc)
    else:
        why = ""
        if tests.attrs.get("note"):  # directions left out of an inverse, as lmerTest / pbkrtest do
            why = f"computed, but {tests.attrs['note']}"
    fixed = table["effect"] == "fixed"
    if kr and tests is not None:  # the KR standard errors and t values: Phi_A, lme4's vcov adjusted
        for column in ("std_error", "statistic"):
            table.loc[fixed, column] = table.loc[fixed, "term"].map(tests[column]).to_numpy(float)
    df = pd.Series(np.nan, index=table.index)
    p = pd.Series(np.nan, index=table.index)
    if tests is not None:
        by_term = tests.set_index("term") if "term" in tests.columns else tests
        df[fixed] = table.loc[fixed, "term"].map(by_term["df"]).to_numpy(float)
        p[fixed] = table.loc[fixed, "term"].map(by_term["p_value"]).to_numpy(float)
    at = list(table.columns).index("statistic") + 1
    table.insert(at, "df", df)
    table.insert(at + 1, "p_value", p)
    low, high = pd.Series(np.nan, index=table.index), pd.Series(np.nan, index=table.index)
    try:
        profile = mixed.conf_int(method="profile")
    except (InputError, ValueError, ArithmeticError, AttributeError) as exc:
        table.attrs["profile_note"] = f"profile intervals of the fixed effects not computed: {exc}"
    else:
        low[fixed] = table.loc[fixed, "term"].map(profile["lower"]).to_numpy(float)
        high[fixed] = table.loc[fixed, "term"].map(profile["upper"]).to_numpy(float)
    table["conf_low_profile"], table["conf_high_profile"] = low, high
    return table, why


def _brief(value: float) -> str:
    """Three significant digits, but thousands written out (``2,403``, not ``2.4e+03``)."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def mark_failed_cv(table: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Add ``failed`` (and ``failed_because``) to the cross-validation table; one note per failure.

    The rule: a model (any estimator but the ``mean`` baseline itself) **fails** a scheme when its
    held-out R² is below 0 -- its predictions are further from the held-out scores than their own
    mean is -- and it does not beat the ``mean`` baseline's RMSE under the same scheme (where the
    fit has that baseline).  A model that beats the baseline is not failed even below R² 0 (under
    leave-one-target-out the baseline itself can be, as no one knows a new target's level); one that
    loses to the baseline with R² above 0 is only worse than it (``cv_comparison`` says so).  A
    failed model's coefficients and intervals do not carry over to what the scheme holds out.
    """
    table = table.copy()
    failed, because, notes = [], [], []
    baseline = table[table["estimator"] == FAIL_BASELINE].set_index("scheme")["rmse"]
    held_out = {"leave-one-target-out": "the target languages it holds out",
                "leave-one-source-out": "the source languages it holds out"}
    for row in table.itertuples(index=False):
        base = baseline.get(row.scheme, np.nan)
        reasons = []
        if row.estimator != FAIL_BASELINE and np.isfinite(row.r2) and row.r2 < 0:
            if not np.isfinite(base):
                reasons = [f"held-out R² {_brief(row.r2)} < 0"]
            elif np.isfinite(row.rmse) and row.rmse > base:
                reasons = [f"held-out R² {_brief(row.r2)} < 0", f"RMSE {_brief(row.rmse)} > {_brief(base)} of the "
                                                             f"{FAIL_BASELINE} baseline"]
        failed.append(bool(reasons))
        because.append("; ".join(reasons))
        if reasons:
            width = getattr(row, "mean_interval_width", np.nan)
            notes.append(f"cross-validation failed: {row.estimator} under {row.scheme} ({'; '.join(reasons)}"
                         + (f"; prediction intervals {_brief(width)} wide on average" if np.isfinite(width) else "")
                         + f"): its coefficients and predictions do not carry over to "
                           f"{held_out.get(row.scheme, 'the rows it holds out')}")
    table["failed"] = failed
    table["failed_because"] = because
    return table, notes


def variance_table(mixed, n_boot: int | None, seed: int) -> pd.DataFrame:
    """Variance components with intervals (profile likelihood, or a parametric bootstrap of
    ``n_boot`` draws when given) and their share of the total."""
    table = mixed.variance_components_ci(n_boot=n_boot or None, seed=seed)
    table.index.name = "component"
    table = table.reset_index()
    table.insert(2, "sd", np.sqrt(table["variance"]))
    total = float(table["variance"].sum())
    table["share"] = table["variance"] / total if total > 0 else np.nan
    return table


def mixed_fit_statistics(mixed) -> pd.DataFrame:
    rows = [("log_likelihood", mixed.llf), ("aic", getattr(mixed, "aic", np.nan)),
            ("bic", getattr(mixed, "bic", np.nan)), ("r2_marginal", getattr(mixed, "r2_marginal", np.nan)),
            ("r2_conditional", getattr(mixed, "r2_conditional", np.nan)),
            ("converged", float(bool(mixed.converged))), ("singular", float(bool(getattr(mixed, "singular", False)))),
            ("n_observations", float(getattr(mixed, "nobs", np.nan)))]
    return pd.DataFrame(rows, columns=["statistic", "value"])


def _has_fewshot_curves(data: pd.DataFrame) -> bool:
    # some (model, task, target) measured at two or more few-shot sizes; one size per target
    # (langrank-mt's n_target_examples is each target's data size) is no curve
    keys = [c for c in ("model", "task", "target") if c in data.columns]
    return bool((data.groupby(keys, sort=False)["n_target_examples"].nunique() >= 2).any())


def n_jobs(value) -> int:
    """Worker threads for ``n_jobs`` (``auto``: the CPUs this process may use, at most 8)."""
    if value == "auto":
        try:
            cpus = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            cpus = os.cpu_count() or 1
        return max(1, min(cpus, 8))
    return int(value)


def _unordered_schemes(fit: Fit, schemes: list[str]) -> list[str]:
    """Unordered pairs have no source and no target: their schemes become leave-one-language-out."""
    directed = [s for s in schemes if s in ("leave-one-target-out", "leave-one-source-out")]
    if not directed:
        return schemes
    fit.notes.append(f"cross-validation {' and '.join(directed)} replaced by leave-one-language-out: unordered "
                     "pairs have no source or target; a fold holds out every pair with one of its languages")
    out = [s for s in schemes if s not in directed]
    return ["leave-one-language-out", *[s for s in out if s != "leave-one-language-out"]]


def _scheme_possible(scheme: str, data: pd.DataFrame) -> bool:
    if scheme == "leave-one-target-out":
        return data["target"].nunique() >= 3
    if scheme == "leave-one-source-out":
        return data["source"].nunique() >= 3 and (data["source"] != "mul").all()
    if scheme == "leave-one-language-out":
        return len(set(data["source"]) | set(data["target"])) >= 3 and (data["source"] != "mul").all()
    return len(data) >= 20


def _ranking_possible(data: pd.DataFrame) -> bool:
    counts = data[data["source"] != data["target"]].groupby("target")["source"].nunique()
    return bool(len(counts)) and counts.median() >= 3


def _bound_count(frame: pd.DataFrame) -> int:
    """The finite values of the columns clipped to the score's range."""
    from ..models.validation import CLIPPED_COLUMNS

    return int(sum(np.isfinite(frame[c].to_numpy(float)).sum() for c in CLIPPED_COLUMNS if c in frame.columns))


def _scored(data: pd.DataFrame) -> pd.DataFrame:
    """The rows with a score (rows without one are prediction targets, kept out of every fit)."""
    return data[data["score"].notna()].reset_index(drop=True)
