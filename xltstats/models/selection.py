"""Model choice by inner cross-validation, stacking, and conformal intervals for every estimator.

Used by :func:`xltstats.models.validation.cross_validate` with ``select=True``:

* **Choice by inner cross-validation** (:func:`inner_choice`).  In each outer fold the training
  part alone is split again by the same scheme into ``inner_folds`` folds (held-out targets,
  held-out sources, random rows, or the scheme's grouping column); every estimator is fitted on
  each inner training part and predicts its inner held-out part.  The estimator with the lowest
  inner RMSE (over the rows that every estimator predicting the most rows could predict) is the
  fold's choice, and its outer prediction — fitted on the whole training part, as every
  estimator's is — is the ``chosen`` prediction of the fold.  The outer fold never takes part in
  its own choice, so the ``chosen`` RMSE estimates the error of *choosing by cross-validation*
  (nested cross-validation), not that of the best estimator in hindsight.  The stack is a
  candidate too, scored on the same inner folds by cross-fitting (each inner fold's stacked
  prediction uses weights fitted on the other inner folds only); when it wins, the fold's
  ``chosen`` prediction is its ``stacked`` one.  To keep this cheap the
  inner folds are a race: an estimator more than ``margin`` (50%) worse than the best after an
  inner fold is not fitted on the later ones, and the race stops when one estimator is left.
* **Stacking** (:func:`convex_weights`).  The same inner held-out predictions give convex weights
  (non-negative, summing to 1, minimising the squared error of ``sum_j w_j prediction_j``); the
  ``stacked`` prediction of the outer fold is that combination of the outer predictions.
* **Selection per scheme** (:func:`selection_table`).  A prediction for new rows uses the single
  estimator with the lowest held-out RMSE, or ``stacked`` only if it has a lower held-out RMSE than
  every single estimator; stacked weights for it come from the held-out predictions of all folds.
* **Conformal intervals for every estimator** (:func:`add_conformal`): cross-conformal bounds
  ``prediction ± q``, q from the absolute held-out residuals of the *other* folds (as the tree
  baseline's ``calibration="outer"``), so coverage is comparable across estimators whatever their
  own intervals assume.
"""
from __future__ import annotations

import copy

import numpy as np
import pandas as pd
from scipy.optimize import nnls

CHOSEN = "chosen"
STACKED = "stacked"

__all__ = ["inner_choice", "convex_weights", "choice_frames", "add_conformal", "selection_table", "CHOSEN", "STACKED"]


def convex_weights(predictions: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Weights ``w >= 0``, ``sum(w) = 1`` minimising ``||observed - predictions @ w||²``.

    Solved as non-negative least squares with the constraint appended as one heavily weighted row
    (the weights are then renormalised to sum to exactly 1).  ``predictions``: rows x estimators,
    no missing values."""
    p = np.asarray(predictions, float)
    y = np.asarray(observed, float)
    if p.ndim != 2 or p.shape[1] == 0:
        raise ValueError("convex_weights needs a rows x estimators matrix")
    if p.shape[1] == 1:
        return np.ones(1)
    scale = 1e3 * max(1.0, float(np.abs(p).max(initial=0.0))) * np.sqrt(max(len(y), 1))
    a = np.vstack([p, np.full((1, p.shape[1]), scale)])
    b = np.concatenate([y, [scale]])
    w, _ = nnls(a, b, maxiter=50 * p.shape[1])
    total = w.sum()
    return w / total if total > 0 else np.full(p.shape[1], 1.0 / p.shape[1])


def _rmse_on(frame: np.ndarray, observed: np.ndarray, rows: np.ndarray) -> float:
    return float(np.sqrt(np.mean((observed[rows] - frame[rows]) ** 2))) if rows.any() else np.nan


def _contenders(oof: np.ndarray, observed: np.ndarray, done: np.ndarray, alive: list[int], margin: float) -> list[int]:
    """The estimators still in the race after the inner folds ``done``: those that predicted the most
    rows and whose RMSE there is within ``margin`` (relative) of the best one's."""
    counts = (~np.isnan(oof[done][:, alive])).sum(axis=0)
    if counts.max(initial=0) == 0:
        return []
    alive = [j for j, n in zip(alive, counts) if n == counts.max()]
    rows = done & ~np.isnan(oof[:, alive]).any(axis=1) & ~np.isnan(observed)
    if not rows.any():
        return alive
    rmse = {j: _rmse_on(oof[:, j], observed, rows) for j in alive}
    best = min(rmse.values())
    return [j for j in alive if rmse[j] <= best * (1 + margin)]


def _cross_fitted_stack(oof: np.ndarray, observed: np.ndarray, rows: np.ndarray, tests: list) -> np.ndarray | None:
    """The stack's own inner held-out predictions: on each inner fold, the combination with weights
    fitted on the other inner folds' held-out predictions (no fold weighs its own rows); None with
    fewer than two estimators or inner folds."""
    if oof.shape[1] < 2 or len(tests) < 2:
        return None
    out = np.full(len(observed), np.nan)
    for test in tests:
        fit_rows, held = rows & ~test, rows & test
        if not fit_rows.any() or not held.any():
            return None
        out[held] = oof[held] @ convex_weights(oof[fit_rows], observed[fit_rows])
    return out


def inner_choice(train: pd.DataFrame, estimators: dict, splits: list, *, alpha: float, response: str,
                 margin: float = 0.5) -> dict:
    """The estimator inner cross-validation on ``train`` picks, with every estimator's inner RMSE and
    the convex stacking weights (see the module docstring).

    The inner folds run in turn as a race: after each, an estimator whose RMSE so far is more than
    ``margin`` (relative) above the best one's cannot win and is not fitted on the later inner folds
    (its RMSE and weight are missing and 0); when one estimator is left the choice is made.
    ``margin=inf`` evaluates every estimator on every inner fold.

    ``splits``: the inner (label, test mask[, training mask]) over ``train``'s rows (the outer
    scheme's splits of the training part; the training mask defaults to the rows not tested).  Returns ``{"chosen": name or None, "rmse": {name: rmse}, "weights": {name: weight},
    "n_inner_folds": m, "n_rows": rows compared}``; ``chosen`` is None when the training part
    cannot be split again (fewer than two inner folds).
    """
    from xltstats.errors import XltstatsError
    from xltstats.models.estimators import GradientBoostingEstimator

    train = train.reset_index(drop=True)
    observed = pd.to_numeric(train[response], errors="coerce").to_numpy(float)
    names = list(estimators)
    empty = {"chosen": None, "rmse": {n: np.nan for n in names}, "weights": {n: np.nan for n in names},
             "n_inner_folds": 0, "n_rows": 0}
    splits = [(split[1], split[2] if len(split) > 2 else ~split[1]) for split in splits
              if split[1].any() and not split[1].all()]
    if len(splits) < 2:
        return empty
    light = {}
    for name, est in estimators.items():
        if isinstance(est, GradientBoostingEstimator) and est.interval == "conformal":
            est = copy.copy(est)
            est.calibration = "outer"  # inner fits need predictions, not intervals
        light[name] = est
    oof = np.full((len(train), len(names)), np.nan)
    alive = list(range(len(names)))
    done = np.zeros(len(train), bool)
    n_run = 0
    for test, fit_rows in splits:
        n_run += 1
        inner_train, inner_test = train[fit_rows], train[test]
        for j in alive:
            try:
                pred = light[names[j]].fit(inner_train).predict_interval(inner_test, alpha)["prediction"]
                oof[test, j] = pred.to_numpy(float)
            except (XltstatsError, np.linalg.LinAlgError, ValueError):
                pass  # an estimator that cannot fit here cannot be chosen on these rows
        done |= test
        alive = _contenders(oof, observed, done, alive, margin)
        if len(alive) < 2:
            break
    counts = (~np.isnan(oof[done])).sum(axis=0)
    if counts.max(initial=0) == 0:
        return {**empty, "n_inner_folds": n_run}
    eligible = [j for j in alive if counts[j] == counts[alive].max()]
    rows = done & ~np.isnan(oof[:, eligible]).any(axis=1) & ~np.isnan(observed)
    rmse = {n: np.nan for n in names}
    for j in eligible:
        rmse[names[j]] = _rmse_on(oof[:, j], observed, rows)
    left_out = [j for j in range(len(names)) if j not in eligible]
    for j in left_out:  # raced out: its RMSE on the folds it was fitted on, for the record
        mine = done & ~np.isnan(oof[:, j]) & ~np.isnan(observed)
        rmse[names[j]] = _rmse_on(oof[:, j], observed, mine)
    candidates = [names[j] for j in eligible]
    stacked = _cross_fitted_stack(oof[:, eligible], observed, rows, [test for test, _ in splits[:n_run]])
    rmse[STACKED] = _rmse_on(stacked, observed, rows) if stacked is not None else np.nan
    if stacked is not None:
        candidates.append(STACKED)
    order = names + [STACKED]
    chosen = min(candidates, key=lambda n: (rmse[n], order.index(n)))
    weights = {n: 0.0 for n in names}
    if rows.any():
        w = convex_weights(oof[rows][:, eligible], observed[rows])
        weights.update({names[j]: float(v) for j, v in zip(eligible, w)})
    return {"chosen": chosen, "rmse": rmse, "weights": weights, "n_inner_folds": n_run, "n_rows": int(rows.sum())}


def choice_frames(frames: pd.DataFrame, choices: list[dict]) -> pd.DataFrame:
    """The ``chosen`` and ``stacked`` prediction frames from the single estimators' fold frames
    (``fold``, ``estimator``, ``row``, ``prediction``, ``lower``, ``upper``, ...) and the folds' choices."""
    out = []
    by_fold = {c["fold"]: c for c in choices}
    for fold, group in frames.groupby("fold", sort=False):
        choice = by_fold.get(fold)
        if choice is None or choice["chosen"] is None:
            continue
        weights = {n: w for n, w in choice["weights"].items() if w > 0}
        wide = group.pivot(index="row", columns="estimator", values="prediction")
        stacked = sum(wide[n] * w for n, w in weights.items()) if weights else wide.iloc[:, 0] * np.nan
        template = group[group["estimator"] == group["estimator"].iat[0]].set_index("row")
        stack = template.assign(estimator=STACKED, prediction=stacked.reindex(template.index).to_numpy(),
                                lower=np.nan, upper=np.nan).reset_index()[group.columns]
        picked = stack if choice["chosen"] == STACKED else group[group["estimator"] == choice["chosen"]]
        out.append(picked.assign(estimator=CHOSEN))
        out.append(stack)
    return pd.concat(out, ignore_index=True) if out else frames.iloc[:0]


def add_conformal(predictions: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """``conformal_lower`` / ``conformal_upper`` for every estimator: each fold's ``prediction ± q``, q
    the conformal quantile of the estimator's absolute held-out residuals in the other folds."""
    from xltstats.models.estimators import conformal_quantile

    lower = np.full(len(predictions), np.nan)
    upper = np.full(len(predictions), np.nan)
    resid = (predictions["observed"] - predictions["prediction"]).abs().to_numpy()
    pred = predictions["prediction"].to_numpy(float)
    for _, idx in predictions.groupby("estimator", sort=False).indices.items():
        folds = predictions["fold"].to_numpy()[idx]
        r = resid[idx]
        for fold in pd.unique(folds):
            mine = folds == fold
            others = r[~mine & ~np.isnan(r)]
            q = conformal_quantile(others, alpha) if len(others) else np.nan
            lower[idx[mine]] = pred[idx[mine]] - q
            upper[idx[mine]] = pred[idx[mine]] + q
    return predictions.assign(conformal_lower=lower, conformal_upper=upper)


def selection_table(metrics: pd.DataFrame, predictions: pd.DataFrame, choices: list[dict], scheme: str) -> pd.DataFrame:
    """One row for ``scheme``: the estimator a prediction for new rows should use (see the module
    docstring), the held-out RMSE of the inner-CV choice (``chosen_rmse``) and of stacking, how often
    each estimator was chosen, and the stacking weights fitted on all folds' held-out predictions."""
    single = metrics[~metrics["estimator"].isin([CHOSEN, STACKED])]
    single = single[single["n_predicted"] == single["n_predicted"].max()] if len(single) else single
    rmse = metrics.set_index("estimator")["rmse"]
    best = single.sort_values("rmse", kind="stable").iloc[0]["estimator"] if len(single) else None
    stacked_rmse = float(rmse.get(STACKED, np.nan))
    use, rule = best, "lowest held-out RMSE of the single estimators"
    if best is not None and np.isfinite(stacked_rmse) and (single["rmse"] > stacked_rmse).all():
        use, rule = STACKED, "stacking has a lower held-out RMSE than every single estimator"
    picks = pd.Series([c["chosen"] for c in choices if c["chosen"] is not None], dtype=object).value_counts()
    row = {"scheme": scheme, "estimator": use, "rule": rule, "rmse": float(rmse.get(use, np.nan)) if use else np.nan,
           "best_single": best, "best_single_rmse": float(rmse.get(best, np.nan)) if best else np.nan,
           "chosen_rmse": float(rmse.get(CHOSEN, np.nan)), "stacked_rmse": stacked_rmse,
           "picks": " ".join(f"{n}:{k}" for n, k in sorted(picks.items(), key=lambda kv: (-kv[1], kv[0])))}
    names = list(single["estimator"])
    wide = predictions[predictions["estimator"].isin(names)].pivot(index="row", columns="estimator",
                                                                   values="prediction")[names]
    obs = predictions.drop_duplicates("row").set_index("row")["observed"].reindex(wide.index)
    ok = wide.notna().all(axis=1) & obs.notna()
    weights = convex_weights(wide[ok].to_numpy(), obs[ok].to_numpy()) if ok.any() and names else []
    for name, w in zip(names, weights):
        row[f"weight_{name}"] = float(w)
    return pd.DataFrame([row])
