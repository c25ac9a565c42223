"""Boosted trees and crossed random effects fitted together (GPBoost's design, Sigrist 2022).

The model of a transfer score is ``y = F(x) + Z b + e`` with ``F`` a LightGBM tree ensemble on
the pair features (the fixed part, with an intercept), ``b`` random intercepts of the grouping
factors (``(1|source) + (1|target)`` by default, as the mixed model's), ``b ~ N(0, Sigma_theta)``
and ``e ~ N(0, sigma^2)``.  The negative marginal log-likelihood of ``y - F`` under
``Psi = Z Sigma Z' + sigma^2 I`` has the functional gradient ``-Psi^{-1}(y - F)``, which by the
Woodbury identity is ``-(y - F - Z b_hat) / sigma^2`` with ``b_hat`` the BLUPs of ``b`` given
``y - F``.  So the boosting rounds are GPBoost's Algorithm 1 with gradient steps, in blocks of
``block`` rounds (10):

1. at the start of a block the BLUPs ``b_hat`` and the intercept are recomputed from ``y - F`` at
   the current variance components (one penalised least-squares solve of our mixed-model
   machinery, :class:`~xltstats.models.mixed._deviance.ProfiledDeviance`, whose response is swapped);
2. each round fits one tree to the conditional residuals ``y - F - intercept - Z b_hat`` (squared
   loss: leaf values are their shrunken means);
3. every ``cov_every`` blocks (5) the variance components ``theta`` are re-estimated by maximising
   the profiled likelihood of ``y - F`` (ML by default, as GPBoost; warm-started L-BFGS-B); boosting
   stops when that likelihood improves by less than ``tol`` (relative).

Which random terms the rounds account for (``boosted_random``) matters for languages never seen:
the gradient shrinks what is constant within a level by ``sigma^2 / (sigma^2 + n_level var_level)``,
so with every term in it (``"all"``, GPBoost) the trees barely learn target-level features and a
new target is predicted by little more than the intercept (xpos, held-out targets: RMSE 16.2
against 11.5 for plain LightGBM).  ``"auto"`` leaves out the terms of the factor held out
(``validation_group``), ``"none"`` boosts on ``y`` alone and fits the random part to the trees'
residuals.  The default ``"choose"`` takes, of ``"auto"`` and ``"none"``, the one with the lower
inner-fold error (``"auto"`` is ``"all"`` when no factor is held out, e.g. inner folds of rows; on
xpos and the simulated data of the tests ``"all"`` never won where a factor was held out, so it
is not tried there: each candidate costs one more set of inner fits).  The candidates are raced
(``race_margin``, 0.5): after the first inner fold, one whose best held-out error there is more than
1.5 times the other's is dropped (on random folds of xpos and langrank-mt ``"none"`` is 35-60% worse
in every fold; where a language is held out the two are within a few percent and both go on).

Rounds and candidate are chosen by an inner grouped K-fold (``inner_folds``, 3, grouped by
``validation_group``): each inner fit boosts with early stopping on its held-out part (predicted as
a new fold is: a level never seen gets a random effect of 0); the round count is the minimum of
the held-out error pooled over folds; each fold's held-out rows are then predicted with the trees
at that count and the full random part refitted to the rest.  The final variance components and
BLUPs are a full mixed-model fit of ``y - F ~ 1 + (1|source) + (1|target)``
(:func:`~xltstats.models.mixed._results.fit_design`), kept as :attr:`HybridEstimator.random_part_`.
Within one fit every maximisation of the likelihood of a random formula starts from the variance
components that formula last reached (a warm start), and the distinct feature rows are found once
(the inner folds take subsets of them).
The trees' in-sample fit absorbs part of the noise (no degrees of freedom are charged for them, as
in GPBoost), so the residual variance is low (by about a quarter on the simulated data of the tests).

Prediction: ``F(x) + intercept + Z b_hat``, where a language never seen in training gets a random
effect of 0, exactly as the mixed model.  Rows with missing features are predicted (LightGBM sends
them down its learned default branches); a missing language label counts as a language not seen.
Without a feature LightGBM can split on, the model is the random part alone.

Intervals (normalised split-conformal): the variance of a new observation under the random part,
``s^2 = sigma^2 + var(intercept) + sum_terms (condVar of a seen level, or the full variance
component for an unseen one)``, sets the shape; the scale ``q`` is the conformal quantile
(:func:`~xltstats.models.estimators.conformal_quantile`) of ``|y - y_hat| / s`` over the inner
folds' held-out rows, so the interval is ``y_hat ± q s``: wider for unseen languages, calibrated on
residuals of rows predicted as the scheme predicts them (without inner folds, q is the normal
quantile).

Persistence: :meth:`HybridEstimator.to_spec` / :meth:`HybridEstimator.from_spec` (JSON-able: the
trees as LightGBM's text model, the random part as ``model.json`` writes a mixed model).

Everything is deterministic: LightGBM with ``deterministic=True``, ``num_threads=1``, a fixed
seed; inner folds from a seeded permutation.
"""
from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from xltstats.errors import InputError
from xltstats.models._hybrid_random import _RESIDUAL, _group_columns, _NoRandomPart, _RandomPart, random_intercepts
from xltstats.models.estimators import TreeSettings, distinct_rows

__all__ = ["HybridEstimator", "PortableHybrid", "random_intercepts"]


class HybridEstimator(TreeSettings):
    """Boosted trees for the fixed part with crossed random intercepts (see the module docstring).

    ``random``: the random-intercept terms, lme4 syntax (default ``(1|source) + (1|target)``);
    :func:`~xltstats.models.validation.default_estimators` passes the mixed formula's.
    ``validation_group``: the column the inner folds hold out (``"auto"``: ``target``; inside
    :func:`~xltstats.models.validation.cross_validate` the scheme's column, or single rows for
    ``"random"``).
    """

    def __init__(self, features, random: str = "(1|source) + (1|target)", response: str = "score",
                 n_estimators: int = 400, learning_rate: float = 0.1, num_leaves: int = 15,
                 min_child_samples: int = 10, seed: int = 0, inner_folds: int = 3,
                 validation_group: str | None = "auto", early_stopping_rounds: int = 25,
                 boosted_random: str = "choose", block: int = 10, cov_every: int = 5, reml: bool = False,
                 tol: float = 1e-7, alpha: float = 0.05, race_margin: float = 0.5):
        super().__init__(features, response, n_estimators, learning_rate, num_leaves, min_child_samples, seed, alpha)
        self.random = random
        self.inner_folds = inner_folds
        self.validation_group = validation_group
        self.early_stopping_rounds = early_stopping_rounds
        if boosted_random not in ("choose", "auto", "all", "none"):
            raise InputError(f"boosted_random must be 'choose', 'auto', 'all' or 'none', not {boosted_random!r}")
        self.boosted_random = boosted_random
        self.block = max(1, int(block))
        self.cov_every = max(1, int(cov_every))
        self.reml = reml
        self.tol = tol
        self.race_margin = race_margin

    # ------------------------------------------------------------------ boosting
    def _params(self, merged: bool) -> dict:
        params = dict(objective="none", learning_rate=self.params["learning_rate"],
                      num_leaves=self.params["num_leaves"], min_data_in_leaf=self.params["min_child_samples"],
                      seed=self.seed, deterministic=True, num_threads=1, force_row_wise=True, verbose=-1,
                      boost_from_average=False, metric="None")
        if merged:  # a merged row stands for `count` rows: leaf sizes count hessians (see validation.py)
            params.update(min_data_in_leaf=1, min_sum_hessian_in_leaf=self.params["min_child_samples"] - 0.5,
                          min_data_in_bin=1)
        return params

    def _xy(self, data: pd.DataFrame):
        missing = [c for c in [*self.features, self.response] if c not in data.columns]
        if missing:
            raise InputError(f"missing column(s) {missing}", column=missing[0])
        x = data[self.features].apply(pd.to_numeric, errors="coerce").to_numpy(float)
        y = pd.to_numeric(data[self.response], errors="coerce").to_numpy(float)
        return x, y

    def _boost(self, x, y, frame, max_rounds, valid=None, *, rows=None, warm=None):
        """Boost up to ``max_rounds`` trees; ``valid`` = (x, y, frame) for early stopping; ``rows``:
        each row's number among the distinct feature rows of the whole fit (:func:`distinct_rows`,
        computed once per fit); ``warm``: the variance components each random formula last had
        in this fit, where its likelihood maximisation starts (and is updated).

        Returns a dict: booster, rounds (trees kept), part (the random part at the end), F (the
        trees' training scores at the end), best (the round count with the lowest held-out squared
        error, when ``valid``) and, per round count m, ``theta[m]``, ``train[m]`` and ``held[m]``
        (trees' scores of the training and held-out rows after m trees)."""
        import lightgbm

        boosted = self._boosted_terms()
        warm = {} if warm is None else warm
        part = (_RandomPart(boosted, frame.assign(**{_RESIDUAL: y}), self.reml, theta=warm.get(boosted))
                if boosted else _NoRandomPart(len(y)))
        part.set_residual(y)
        crit = part.optimise()
        warm[boosted] = part.theta.copy()
        # rows with equal features share every tree's leaf: boost on the distinct rows, with the
        # gradient sums and row counts as hessians (exact for the squared loss); a subset of the
        # fit's distinct rows keeps their (sorted) order, so its numbering is distinct_rows' own
        if rows is None:
            groups, n_distinct, first = distinct_rows(x)
        else:
            _, first, groups = np.unique(rows, return_index=True, return_inverse=True)
            n_distinct = len(first)
        merged = n_distinct * 2 <= len(y)
        if not merged:
            groups, n_distinct, first = np.arange(len(y)), len(y), np.arange(len(y))
        counts = np.bincount(groups, minlength=n_distinct).astype(float)
        # one thread for the binning too (an idle OpenMP team spins between the rounds' callbacks)
        train_set = lightgbm.Dataset(x[first], label=np.zeros(n_distinct), params={"verbose": -1, "num_threads": 1},
                                     free_raw_data=False)
        booster = lightgbm.Booster(self._params(merged), train_set)
        out = {"theta": [], "train": [], "held": []}
        current = {}

        def read_scores(preds, dataset):
            current[dataset is train_set] = np.array(preds, float)
            return "none", 0.0, False

        if valid is not None:
            # held-out scores through LightGBM's own validation set (a predict() call between
            # rounds would make every later round recompute the training scores from all trees)
            xv, yv, fv = valid
            codes_v = part.codes(fv)
            booster.add_valid(lightgbm.Dataset(xv, label=np.zeros(len(yv)), reference=train_set,
                                               params={"verbose": -1, "num_threads": 1}), "held_out")
            current[False] = np.zeros(len(yv))
            losses = []
        state = {"crit": crit, "stop": False, "re": None}

        def gradients(preds, _dataset):
            m = len(out["theta"])
            F = preds[groups]
            if m % self.block == 0:  # a new block: BLUPs (every cov_every blocks also theta) from y - F
                part.set_residual(y - F)
                if m and m % (self.block * self.cov_every) == 0:
                    previous, state["crit"] = state["crit"], part.optimise()
                    if previous - state["crit"] < self.tol * abs(previous):
                        state["stop"] = True  # the likelihood stopped improving
                state["re"] = part.blups()
                if valid is not None:  # the held-out rows' random part, fixed within the block
                    state["held_re"] = state["re"][0] + part.effect(state["re"][2], codes_v)
            mu, zb, b, _ = state["re"]
            out["theta"].append(part.theta.copy())
            out["train"].append(F)
            if valid is not None:
                out["held"].append(current[False])
                losses.append(float(np.mean((yv - current[False] - state["held_re"]) ** 2)))
            grad = np.bincount(groups, weights=F + mu + zb - y, minlength=n_distinct)
            return grad, counts.copy()

        best = None
        train_set.construct()
        # without a feature LightGBM can split on (constant in these rows) the model is the random part
        splittable = any(train_set.feature_num_bin(i) > 1 for i in range(x.shape[1]))
        for m in range(max_rounds if splittable else 0):
            booster.update(fobj=gradients)
            if valid is not None:
                booster.eval_valid(feval=read_scores)
                best = int(np.argmin(losses))
                if m + 1 - best > self.early_stopping_rounds:
                    break
            if state["stop"]:
                break
        if booster.current_iteration():
            booster.eval_train(feval=read_scores)
        else:
            current[True] = np.zeros(n_distinct)
        F = current[True][groups]
        part.set_residual(y - F)
        out["theta"].append(part.theta.copy())
        out["train"].append(F)
        if valid is not None:
            out["held"].append(current[False])
            mu, _, b, _ = part.blups()
            losses.append(float(np.mean((yv - current[False] - mu - part.effect(b, codes_v)) ** 2)))
            best = int(np.argmin(losses))
        return {"booster": booster if booster.current_iteration() else None, "rounds": booster.current_iteration(), "part": part, "best": best, "F": F,
                "losses": losses if valid is not None else [], **out}

    def _with(self, **changes) -> "HybridEstimator":
        other = copy.copy(self)
        vars(other).update(changes)
        return other

    def _inner_run(self, x, y, frame, test, rows=None, warm=None):
        """One inner fold: boosting on the rest with early stopping on the held-out rows ``test``."""
        return test, self._boost(x[~test], y[~test], frame[~test].reset_index(drop=True), self.params["n_estimators"],
                                 valid=(x[test], y[test], frame[test].reset_index(drop=True)),
                                 rows=None if rows is None else rows[~test], warm=warm)

    def _inner(self, x, y, frame, runs, full_parts: dict, warm=None) -> dict:
        """Inner folds (``runs``: each fold's :meth:`_inner_run`): the round count with the
        lowest held-out error pooled over folds (a fold that stopped keeps its last value); then each
        fold's held-out rows predicted as a new fold is (trees at that round count, the full random
        part refitted to the rest), for the calibration scores ``|y - y_hat| / s`` and the error."""
        length = max(len(run["losses"]) for _, run in runs)
        pooled = np.zeros(length)
        for test, run in runs:
            curve = np.asarray(run["losses"])
            pooled += test.sum() * np.concatenate([curve, np.full(length - len(curve), curve[-1])])
        n_rounds = max(1, int(np.argmin(pooled)))
        scores, sq = [], []
        for test, run in runs:
            m = min(n_rounds, run["rounds"])
            key = test.tobytes()
            warm = {} if warm is None else warm
            if key not in full_parts:  # the fold's design, shared by the candidates
                full_parts[key] = _RandomPart(self.random, frame[~test].reset_index(drop=True).assign(
                    **{_RESIDUAL: 0.0}), self.reml, theta=warm.get(("full", self.random)))
            full = full_parts[key]
            full.set_residual(y[~test] - run["train"][m])
            full.optimise()
            warm[("full", self.random)] = full.theta.copy()
            rand = self._random_results(full, full.theta, y[~test] - run["train"][m], optimise=False)
            pi = rand.prediction_interval(frame[test].reset_index(drop=True))
            resid = y[test] - run["held"][m] - pi["prediction"].to_numpy()
            scores.append(np.abs(resid) / pi["se_prediction"].to_numpy())
            sq.append(resid ** 2)
        return {"rounds": n_rounds, "scores": np.concatenate(scores), "mse": float(np.mean(np.concatenate(sq))),
                "fold_best": [run["best"] for _, run in runs]}

    def _race(self, x, y, frame, folds, candidates, full_parts, rows, warm) -> dict:
        """The inner folds of each candidate, raced: after the first fold a candidate whose best
        held-out error there is more than ``1 + race_margin`` times another's is not boosted on the
        other folds (it is not chosen; on xpos and langrank-mt this drops ``"none"`` on random
        folds, where it is 35-60% worse, and keeps both where a language is held out)."""
        tests = [folds == f for f in np.unique(folds)]
        models = {c: self._with(boosted_random=c) for c in candidates}
        runs = {c: [models[c]._inner_run(x, y, frame, tests[0], rows, warm)] for c in candidates}
        best = {c: float(np.min(runs[c][0][1]["losses"])) for c in candidates}
        alive = [c for c in candidates if best[c] <= (1 + self.race_margin) * min(best.values())]
        out = {}
        for c in alive:
            runs[c] += [models[c]._inner_run(x, y, frame, test, rows, warm) for test in tests[1:]]
            out[c] = models[c]._inner(x, y, frame, runs[c], full_parts, warm=warm)
        return out

    def _boosted_terms(self) -> str | None:
        """The random terms the boosting rounds account for (see ``boosted_random``)."""
        from xltstats.models.formula import parse_formula

        if self.boosted_random == "none":
            return None
        terms = parse_formula(f"{_RESIDUAL} ~ 1 + {self.random}").random
        held = "target" if self.validation_group == "auto" else self.validation_group
        if self.boosted_random == "auto" and held:
            terms = [(e, g) for e, g in terms if held not in _group_columns(g)]
        return " + ".join(f"({e} | {g})" for e, g in terms) or None

    def _random_results(self, part: _RandomPart, theta, residual, optimise: bool):
        """The random part as a :class:`~xltstats.models.mixed.MixedResults` of ``residual`` at
        ``theta`` (``optimise``: refitted from there with lme4's checks)."""
        from xltstats.models.mixed._results import MixedResults, fit_design

        frame = part.frame.assign(**{_RESIDUAL: residual})
        design = copy.copy(part.design)
        design.y = np.asarray(residual, float)
        if optimise:
            return fit_design(part.formula, part.parsed, frame, design, reml=self.reml, method="fast",
                              n_dropped=0, theta0=theta)
        from xltstats.models.mixed._deviance import ProfiledDeviance

        dev = ProfiledDeviance(design, self.reml)
        return MixedResults(formula=part.formula, parsed=part.parsed, data=frame, design=design, dev=dev,
                            theta=theta, criterion=dev(theta), reml=self.reml, method="fast", converged=True,
                            warnings_=[], n_dropped=0, n_evaluations=0)

    def _labels(self, frame: pd.DataFrame) -> np.ndarray:
        group = "target" if self.validation_group == "auto" else self.validation_group
        if group and group in frame.columns:
            return frame[group].astype(str).to_numpy()
        return np.arange(len(frame)).astype(str)

    def fit(self, data: pd.DataFrame) -> "HybridEstimator":
        """Inner folds choose the number of rounds and calibrate the intervals; then the final fit."""
        from xltstats.models.mixed._optimise import single_threaded_blas

        # one BLAS thread: the systems are small, and idle BLAS threads spinning between the
        # boosting rounds' solves slow LightGBM down many times on a loaded machine
        with single_threaded_blas():
            return self._fit(data)

    def _fit(self, data: pd.DataFrame) -> "HybridEstimator":
        fitted = copy.copy(self)
        x, y = self._xy(data)
        from xltstats.models.formula import referenced_columns

        probe = data.assign(**{_RESIDUAL: 0.0})
        group_cols = [c for c in referenced_columns(f"{_RESIDUAL} ~ 1 + {self.random}", probe) if c != _RESIDUAL]
        keep = ~np.isnan(y) & data[group_cols].notna().all(axis=1).to_numpy()
        if keep.sum() < 3:
            raise InputError(f"the hybrid model needs at least 3 rows with a score and {group_cols}, "
                             f"got {int(keep.sum())}")
        x, y = x[keep], y[keep]
        frame = data.loc[keep, group_cols].reset_index(drop=True)
        labels = self._labels(data.loc[keep].reset_index(drop=True))
        uniques = np.unique(labels)
        n_folds = min(self.inner_folds, len(uniques))
        fitted.inner_, fitted.notes_ = {}, []
        # once per fit: the distinct feature rows (inner folds take their subsets) and the variance
        # components each random formula reached last (where the next maximisation starts)
        rows, warm = distinct_rows(x)[0], {}
        if n_folds >= 2:
            rng = np.random.default_rng(self.seed)
            fold_of = dict(zip(rng.permutation(uniques), np.arange(len(uniques)) % n_folds))
            folds = np.array([fold_of[v] for v in labels])
            candidates = {}  # one candidate per distinct set of boosted terms
            for c in (("auto", "none") if self.boosted_random == "choose" else (self.boosted_random,)):
                candidates.setdefault(self._with(boosted_random=c)._boosted_terms(), c)
            candidates = tuple(candidates.values())
            full_parts = {}
            try:
                fitted.inner_ = self._race(x, y, frame, folds, candidates, full_parts, rows, warm)
            except InputError as exc:  # e.g. an inner fold too small for the random part
                fitted.inner_ = {}
                fitted.notes_ = [f"inner folds not possible ({exc}): {self.params['n_estimators']} rounds, "
                                 "normal-quantile intervals"]
        if fitted.inner_:
            # the candidate whose calibrated held-out predictions have the lowest squared error
            chosen = min(fitted.inner_, key=lambda c: fitted.inner_[c]["mse"])
            n_rounds, scores = fitted.inner_[chosen]["rounds"], fitted.inner_[chosen]["scores"]
        else:
            chosen = "auto" if self.boosted_random == "choose" else self.boosted_random
            n_rounds, scores = self.params["n_estimators"], np.array([])
        final = self._with(boosted_random=chosen)
        run = final._boost(x, y, frame, n_rounds, rows=rows, warm=warm)
        fitted.boosted_random_ = chosen
        fitted.booster_ = run["booster"]
        fitted.n_rounds_ = run["rounds"]
        full = _RandomPart(self.random, frame.assign(**{_RESIDUAL: 0.0}), self.reml,
                           theta=warm.get(("full", self.random)))
        fitted.random_part_ = self._random_results(full, full.theta, y - run["F"], optimise=True)
        fitted.calibration_scores_ = np.sort(scores)
        fitted.nobs = int(len(y))
        fitted._portable_random()
        return fitted

    def _portable_random(self) -> None:
        """The random part as ``model.json`` holds it, which predictions go through: a fitted
        estimator and the one :meth:`from_spec` rebuilds predict exactly alike."""
        from xltstats.models.persist import PortableModel, model_spec

        self.random_spec_ = model_spec(self.random_part_)
        self.random_predictor_ = PortableModel(self.random_spec_, name="hybrid.random")

    # ------------------------------------------------------------------ results
    @property
    def variance_components(self) -> pd.Series:
        """Variances of the random intercepts and the residual (the final fit's)."""
        return self.random_part_.variance_components

    @property
    def random_effects(self) -> dict:
        """BLUPs per grouping factor (levels seen in training)."""
        return self.random_part_.random_effects

    def predict(self, data: pd.DataFrame, include_random: bool = True) -> pd.Series:
        """``F(x) + intercept (+ Z b_hat)``; a language never seen in training gets a random effect of 0."""
        return self.predict_interval(data, include_random=include_random)["prediction"]

    def predict_interval(self, data: pd.DataFrame, alpha: float = 0.05, include_random: bool = True) -> pd.DataFrame:
        """Prediction and ``1 - alpha`` interval ``y_hat ± q s`` (see the module docstring); without
        inner folds to calibrate on, ``q`` is the normal quantile."""
        from scipy import stats

        from xltstats.models.estimators import _interval_frame, conformal_quantile

        missing = [c for c in self.features if c not in data.columns]
        if missing:
            raise InputError(f"missing column(s) {missing}", column=missing[0])
        x = data[self.features].apply(pd.to_numeric, errors="coerce").to_numpy(float)
        # one thread, as in fitting (else an OpenMP team of every core spins after each call)
        f = self.booster_.predict(x, raw_score=True, num_threads=1) if self.n_rounds_ else np.zeros(len(data))
        pi = self.random_predictor_.prediction_interval(data.reset_index(drop=True), alpha,
                                                        include_random=include_random)
        pred = f + pi["prediction"].to_numpy()
        s = pi["se_prediction"].to_numpy()
        q = (conformal_quantile(self.calibration_scores_, alpha) if len(self.calibration_scores_)
             else float(stats.norm.ppf(1 - alpha / 2)))
        return _interval_frame(pred, pred - q * s, pred + q * s, data.index)

    # ------------------------------------------------------------------ persistence
    def to_spec(self) -> dict:
        """A JSON-able description of the fitted model (no pickle): the trees as LightGBM's text
        model, the random part as :func:`xltstats.models.persist.model_spec` writes a mixed model,
        and the calibration scores.  :meth:`from_spec` rebuilds a predictor from it."""
        from xltstats.models.persist import _floats

        return {"kind": "hybrid", "response": self.response, "features": list(self.features),
                "random_formula": self.random, "n_rounds": int(self.n_rounds_),
                "boosted_random": self.boosted_random_,
                "trees": self.booster_.model_to_string() if self.n_rounds_ else None,
                "random": self.random_spec_,
                "calibration_scores": _floats(self.calibration_scores_), "nobs": self.nobs}

    @classmethod
    def from_spec(cls, spec: dict, name: str = "hybrid", file=None) -> "HybridEstimator":
        """The fitted estimator :meth:`to_spec` described (predictions equal the original's).

        Every entry is checked (a hand-edited ``model.json`` is refused with the key named:
        ``models.<name>.<key>``); the random part as a mixed entry of its own
        (``models.<name>.random.<key>``)."""
        from xltstats.models._portable import _kind, _SpecChecker, read_booster
        from xltstats.models.persist import PortableModel

        checker = _SpecChecker(name, file)
        if spec.get("kind") != "hybrid":
            checker.fail("kind", f"expected 'hybrid', got {_kind(spec.get('kind'))}")
        for key in ("features", "n_rounds", "trees", "random", "calibration_scores"):
            if key not in spec:
                checker.fail(key, "missing")
        features = checker.text_list(spec["features"], "features")
        n_rounds = spec["n_rounds"]
        if isinstance(n_rounds, bool) or not isinstance(n_rounds, int) or n_rounds < 0:
            checker.fail("n_rounds", f"expected a whole number of at least 0, got {_kind(n_rounds)}")
        for key in ("response", "random_formula"):
            if key in spec and not (isinstance(spec[key], str) and spec[key].strip()):
                checker.fail(key, f"expected a name, got {_kind(spec[key])}")
        if spec.get("boosted_random") not in (None, "auto", "all", "none"):
            checker.fail("boosted_random", f"expected 'auto', 'all', 'none' or null, got {_kind(spec['boosted_random'])}")
        if spec.get("nobs") is not None:
            checker.number(spec["nobs"], "nobs", low=0)
        scores = spec["calibration_scores"]
        if not isinstance(scores, list):
            checker.fail("calibration_scores", f"expected a list of numbers, got {_kind(scores)}")
        scores = np.array([checker.number(v, f"calibration_scores[{i}]", low=0) for i, v in enumerate(scores)], float)
        random = spec["random"]
        if not isinstance(random, dict):
            checker.fail("random", f"expected a mixed-model entry (an object), got {_kind(random)}")
        if random.get("kind") != "mixed":
            checker.fail("random.kind", f"expected 'mixed', got {_kind(random.get('kind'))}")
        booster = None
        if n_rounds:
            booster = read_booster(spec["trees"], "trees", len(features), checker)
            if booster.num_trees() != n_rounds:
                checker.fail("n_rounds", f"{n_rounds} rounds for a booster of {booster.num_trees()} trees")
        elif spec["trees"] is not None:
            checker.fail("trees", f"expected null for a model of 0 rounds, got {_kind(spec['trees'])}")
        fitted = cls(features, random=spec.get("random_formula", "(1|source) + (1|target)"),
                     response=spec.get("response", "score"))
        fitted.n_rounds_ = n_rounds
        fitted.booster_ = booster
        fitted.random_spec_ = random
        fitted.random_predictor_ = fitted.random_part_ = PortableModel(random, name=f"{name}.random", file=file)
        fitted.calibration_scores_ = scores
        fitted.nobs = spec.get("nobs")
        fitted.inner_ = {}
        fitted.boosted_random_ = spec.get("boosted_random")
        return fitted


class PortableHybrid:
    """The hybrid of trees and random intercepts (``kind: hybrid``) read from ``model.json``:
    :meth:`HybridEstimator.from_spec <xltstats.models.hybrid.HybridEstimator.from_spec>` checks the
    entry key by key and predicts exactly as the fitted estimator (its trees route missing feature
    values; a language not seen in fitting gets a random effect of 0). Intervals are the
    estimator's normalised conformal ones; no standard errors (``se_*`` are missing)."""

    kind = "hybrid"

    def __init__(self, spec: dict, name: str = "hybrid", file=None):
        self.estimator = HybridEstimator.from_spec(spec, name=name, file=file)
        self.spec, self.name, self.file = spec, name, file
        self.features = list(self.estimator.features)
        self.nobs = spec.get("nobs")
        self.formula = None

    @property
    def feature_columns(self) -> list[str]:
        return list(self.features)

    @property
    def required_columns(self) -> list[str]:
        return list(dict.fromkeys([*self.features, *self.estimator.random_predictor_.required_columns]))

    def prediction_interval(self, data: pd.DataFrame, alpha: float = 0.05, include_random: bool = True) -> pd.DataFrame:
        """Prediction and the ``1 - alpha`` interval of each row (``include_random=False``: every
        language as if not seen)."""
        from xltstats.models._portable import numeric_column

        for c in self.features:
            numeric_column(data, c, self.name)  # a value that is not a number names its row and column
        pi = self.estimator.predict_interval(data, alpha=alpha, include_random=include_random)
        nan = np.full(len(data), np.nan)
        return pd.DataFrame({"prediction": pi["prediction"].to_numpy(), "se_mean": nan, "se_prediction": nan,
                             "lower": pi["lower"].to_numpy(), "upper": pi["upper"].to_numpy()}, index=data.index)

    def predict(self, data: pd.DataFrame, include_random: bool = True) -> pd.Series:
        return self.prediction_interval(data, include_random=include_random)["prediction"].rename("prediction")
