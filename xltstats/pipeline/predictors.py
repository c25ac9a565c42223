"""The saved predictors of a fit and the predictions made from them, for the fit and for new pairs.

:func:`fit_predictors` (a step of :func:`~xltstats.pipeline.run.run_fit`) adds to the full OLS and
mixed models what ``python -m xltstats.predict`` needs to predict every pair:

* ``gbt``: LightGBM trees on the used features, fitted on every row with a score (trees route
  missing feature values themselves), with conformal intervals from a grouped inner calibration
  (:class:`~xltstats.models.validation.GradientBoostingEstimator`);
* ``hybrid`` (with ``cv.hybrid``): the trees with the mixed model's random intercepts
  (:class:`~xltstats.models.hybrid.HybridEstimator`), fitted on every scored row;
* nested OLS and mixed sub-models for pairs that lack features (:mod:`xltstats.models.nested`);
* ``best``: the estimator with the lowest cross-validated RMSE (first scheme of ``cv.schemes``),
  which ``--model auto`` uses (the first scheme the fit ran);

all in one ``model.json`` document (``fit.saved``). :func:`fit_predictions` predicts every row of
the fit's table from that document (``predictions.csv``: rows without a score are prediction
targets), and :func:`predict_pairs` new pairs, exactly as ``python -m xltstats.predict`` does.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ConfigError, XltstatsError

#: estimators ``best`` may name (those model.json can hold)
SAVED = ("mixed", "ols", "gbt", "hybrid")


def fit_predictors(fit) -> None:
    """Fit the trees, the hybrid and the nested sub-models; set ``fit.gbt``, ``fit.hybrid``,
    ``fit.nested`` and ``fit.saved``."""
    from ..models.persist import model_document
    from ..models.validation import GradientBoostingEstimator

    config, design = fit.config, fit.design
    scored = design.data[pd.to_numeric(design.data["score"], errors="coerce").notna()].reset_index(drop=True)
    gbt = GradientBoostingEstimator(fit.used, seed=config.seed).fit(scored)
    gbt.nobs_ = len(scored)
    fit.gbt = gbt
    fit.hybrid = fit_hybrid(fit, scored)
    fit.nested = fit_nested(fit, scored)
    fit.saved = model_document(ols=fit.ols, mixed=fit.mixed, gbt=gbt, hybrid=fit.hybrid, nested=fit.nested,
                               features=fit.used,
                               formula=fit.formula, config=config.to_dict(), best=best_estimator(fit),
                               provenance=design.provenance,
                               score=fit.scale.to_dict() if fit.scale is not None else None)


def fit_hybrid(fit, scored: pd.DataFrame):
    """The hybrid of trees and the mixed model's random intercepts (``cv.hybrid``), fitted on every
    scored row as the cross-validation fitted it (the trees' columns, inner folds holding out what
    the first scheme of ``cv.schemes`` holds out, as ``best`` is judged there), or None."""
    from ..models.hybrid import HybridEstimator, random_intercepts

    config = fit.config
    random = random_intercepts(fit.formula) if config.cv.hybrid and fit.formula else None
    if random is None:
        return None
    run = list(pd.unique(fit.cv_table["scheme"])) if fit.cv_table is not None and len(fit.cv_table) else []
    first = (run or list(config.cv.schemes) or ["leave-one-target-out"])[0]
    group = {"leave-one-source-out": "source", "random": None, "leave-one-language-out": None}.get(first, "target")
    try:
        return HybridEstimator(list(fit.design.tree_features or fit.used), random=random, seed=config.seed,
                               validation_group=group).fit(scored)
    except (XltstatsError, np.linalg.LinAlgError, ValueError) as exc:
        fit.notes.append(f"hybrid model not saved: {exc}")
        return None


def fit_nested(fit, scored: pd.DataFrame) -> dict:
    """``{"ols": [(features, results), ...], "mixed": [...]}``: the sub-models of
    :func:`~xltstats.models.nested.nested_subsets`, each fitted on the scored rows with its features.
    A subset too few rows support, or with a constant feature there, is skipped (with a note)."""
    from ..models.mixed import fit_mixed
    from ..models.nested import nested_subsets, reduced_formula
    from ..models.persist import nested_name
    from ..models.ols import fit_ols
    from .design import default_formula

    from ..models.bounded import fit_logit_mixed
    from .pairs import unordered_formula

    config, design = fit.config, fit.design
    logit = logit_range(fit)
    # as the full models: unordered pairs cluster OLS errors by language (see run._fit_ols)
    cov_type = "dyadic" if design.pairs == "unordered" and config.ols.cov_type == "cluster2" else config.ols.cov_type
    nested: dict[str, list] = {"ols": [], "mixed": []}
    skipped = []
    for subset in nested_subsets(design.data, fit.used, design.groups):
        rows = scored.dropna(subset=list(subset)).reset_index(drop=True)
        dropped = [c for c in fit.used if c not in subset]
        constant = [c for c in subset if rows[c].nunique(dropna=True) < 2]
        if len(rows) < len(subset) + 10 or constant:
            skipped.append(f"{nested_name('', dropped).strip()} ({len(rows)} rows"
                           + (f", {', '.join(constant)} constant" if constant else "") + ")")
            continue
        try:
            if subset:
                nested["ols"].append((subset, fit_ols(rows, response="score", features=list(subset),
                                                      cov_type=cov_type, standardise=config.ols.standardise)))
            if config.mixed.formula:
                formula = reduced_formula(config.mixed.formula, dropped, rows.columns)
            else:
                formula = default_formula(list(subset), rows)
                formula = unordered_formula(formula) if design.pairs == "unordered" else formula
            if formula is not None and logit is not None:  # mixed.scale: logit, as the full mixed model
                nested["mixed"].append((subset, fit_logit_mixed(formula, rows, *logit, reml=config.mixed.reml)))
            elif formula is not None:
                nested["mixed"].append((subset, fit_mixed(formula, rows, reml=config.mixed.reml)))
        except (XltstatsError, np.linalg.LinAlgError, ValueError) as exc:
            skipped.append(f"{nested_name('', dropped).strip()} ({exc})")
    if skipped:
        fit.notes.append(f"nested models for pairs that lack features: not fitted {'; '.join(skipped)}")
    return nested


def best_estimator(fit) -> dict | None:
    """The saved estimator with the lowest cross-validated RMSE on the first scheme run (the first of
    ``cv.schemes`` the data allowed), or None."""
    table = fit.cv_table
    if table is None or not len(table):
        return None
    schemes = list(pd.unique(table["scheme"]))  # in the order the fit ran them (cv.schemes)
    # the hybrid only when the fit saves one (model.json can hold it through HybridEstimator.to_spec)
    saved = [f for f in SAVED if f != "hybrid" or getattr(fit, "hybrid", None) is not None]
    rows = table[(table["scheme"] == schemes[0]) & table["estimator"].isin(saved)].dropna(subset=["rmse"])
    if rows.empty:
        return None
    row = rows.sort_values(["rmse", "estimator"], kind="stable").iloc[0]
    return {"model": str(row["estimator"]), "scheme": schemes[0], "rmse": float(row["rmse"]),
            "by": "lowest cross-validated RMSE"}


def fit_predictions(fit) -> pd.DataFrame:
    """``predictions.csv``: every row of the fit's table (its input columns, ``score``, ``in_fit``:
    the row was used by the full models) with each saved family's ``F_prediction``, ``F_lower``,
    ``F_upper`` and, for the linear families, ``F_model_used`` (the nested sub-model for a row that
    lacks features). Rows without a score are prediction targets.  Predictions and bounds are clipped
    to the score's range (``model.json``'s ``score``), with a note counting the values changed."""
    from ..models.nested import SavedModels
    from ..results import key_columns

    data = fit.design.data
    saved = SavedModels(fit.saved)
    columns = [c for c in fit.results.columns if c in data.columns]
    pred = data[columns].copy()
    pred["in_fit"] = data[[*fit.used, "score"]].notna().all(axis=1).to_numpy()
    clipped = 0
    for family in saved.families:
        pi = saved.predict(data, family)
        clipped += pi.attrs.get("clipped", 0)
        pred[f"{family}_prediction"] = pi["prediction"].to_numpy()
        pred[f"{family}_lower"] = pi["lower"].to_numpy()
        pred[f"{family}_upper"] = pi["upper"].to_numpy()
        if family in ("ols", "mixed"):
            pred[f"{family}_model_used"] = pi["model_used"].to_numpy()
    if clipped:
        bounds = sum(int(np.isfinite(pred[f"{f}_{c}"].to_numpy(float)).sum())
                     for f in saved.families for c in ("prediction", "lower", "upper"))
        fit.notes.append(saved.scale.clip_note("predictions.csv: predictions and interval bounds", clipped, bounds))
    keys = [c for c in key_columns(pred) if c in pred.columns]
    return pred.sort_values(keys, kind="stable").reset_index(drop=True)


def predict_pairs(pairs: pd.DataFrame, saved, config, *, reference: pd.DataFrame | None, which: str = "auto",
                  alpha: float = 0.05, include_random: bool = True, mirror=None) -> pd.DataFrame:
    """Predictions for new pairs: every column of ``pairs``, the model columns it lacks (computed as
    the fit computed them, :func:`~xltstats.pipeline.design.prediction_table`), then
    ``prediction``, ``se_mean``, ``se_prediction``, ``lower``, ``upper``, ``model_used``, ``model_reason``
    (``prediction``, ``lower`` and ``upper`` clipped to the score's range; ``attrs["clipped"]`` counts them)."""
    from ..errors import InputError
    from ..models.nested import OUTPUT_COLUMNS
    from .design import prediction_table

    clash = [c for c in OUTPUT_COLUMNS if c in pairs.columns]
    if clash:
        raise InputError(f"the pairs table already has column {clash[0]!r}, which the predictions add "
                         "(rename or drop it)", column=clash[0])
    family = saved.resolve(which)
    table = prediction_table(pairs.reset_index(drop=True), saved.columns_needed(family), config,
                             reference=reference, mirror=mirror, provenance=saved.provenance)
    intervals = saved.predict(table, family, alpha=alpha, include_random=include_random)
    out = pd.concat([table.reset_index(drop=True), intervals.reset_index(drop=True)], axis=1)
    out.attrs["clipped"] = intervals.attrs.get("clipped", 0)  # values clipped to the score's range
    return out


def logit_range(fit) -> tuple[float, float] | None:
    """The score range of ``mixed.scale: logit`` (None for the Gaussian scale); a metric without a
    finite range on both sides is an error naming the key."""
    if fit.config.mixed.scale != "logit":
        return None
    scale = fit.scale
    if scale is None or scale.low is None or scale.high is None:
        raise ConfigError(f"{fit.config.data}: 'mixed.scale' is logit, which needs a metric with a finite range on "
                          f"both sides; {scale.label if scale else 'the score'} has {scale.range_text() if scale else 'none'} "
                          "(declare its range under 'metrics', or use mixed.scale: gaussian)")
    return float(scale.low), float(scale.high)


def with_logit_mixed(fit, estimators: dict, negated: bool = False) -> dict:
    """``estimators`` with the mixed model on the logit scale (``negated``: of the negated score, as a
    lower-is-better ranking fits it)."""
    from ..models.bounded import LogitMixedEstimator
    from ..models.validation import MixedEstimator

    low, high = logit_range(fit)
    low, high = (-high, -low) if negated else (low, high)
    return {name: LogitMixedEstimator(est.formula, low, high) if type(est) is MixedEstimator else est
            for name, est in estimators.items()}
