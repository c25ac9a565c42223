"""Our hybrid estimator (``xltstats.models.hybrid``) against the ``gpboost`` package, the reference
implementation of boosted trees with grouped random effects (Sigrist 2022).

Usage::

    pip install gpboost            # the reference; not a dependency of xltstats
    python benchmarks/hybrid.py                    # simulated data, xpos, langrank-mt
    python benchmarks/hybrid.py --cases simulated

Cases:

* ``simulated``: 40 x 40 languages, ``score = 50 + 2 x1 + 4 sin(1.5 x2) + u_s + u_t + e`` (x3 noise;
  SDs 3, 5, 2; :class:`xltstats.models.simulate.CrossedSimulator` plus the sine), 12 targets held out.
  Printed: RMSE of the fitted fixed part against the planted one (training rows), held-out RMSE,
  the variance components against the truth, fit time.
* ``xpos``, ``langrank-mt``: the fit's model table (default configuration), leave-one-target-out
  with 10 folds of targets (the fit's ``cv.max_folds``); held-out RMSE, coverage of 95% intervals,
  the variance components of a fit on all rows, fit time.

GPBoost is run with the same trees (learning rate, leaves, leaf size, one thread, deterministic)
and random intercepts for source and target; its number of rounds is chosen as ours is, by
``gpboost.cv`` early stopping on three inner folds grouped by target; its intervals are
``mean ± z sqrt(response_var)``.  Ours is :class:`~xltstats.models.hybrid.HybridEstimator` with its
defaults (inside cross-validation ``validation_group="target"``, as ``cross_validate`` sets it).
Ratios are ours / gpboost (RMSE below 1: ours better; time below 1: ours faster).
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xltstats.models.hybrid import HybridEstimator  # noqa: E402
from xltstats.models.estimators import _interval_frame  # noqa: E402
from xltstats.models.validation import cross_validate  # noqa: E402

CASES = ("simulated", "xpos", "langrank-mt")


class GPBoostEstimator:
    """gpboost.train with grouped random intercepts, following the estimator protocol."""

    def __init__(self, features, learning_rate=0.05, num_leaves=15, min_data_in_leaf=10, max_rounds=500,
                 early_stopping_rounds=30, inner_folds=3, seed=0, groups=("source", "target"),
                 validation_group="target"):
        self.features = list(features)
        self.params = dict(learning_rate=learning_rate, num_leaves=num_leaves, min_data_in_leaf=min_data_in_leaf,
                           num_threads=1, deterministic=True, seed=seed, verbose=-1, force_row_wise=True)
        self.max_rounds, self.early_stopping_rounds = max_rounds, early_stopping_rounds
        self.inner_folds, self.seed, self.groups = inner_folds, seed, list(groups)
        self.validation_group = validation_group

    def _model(self, frame):
        import gpboost as gpb

        model = gpb.GPModel(group_data=frame[self.groups].astype(str).to_numpy(), likelihood="gaussian",
                            num_parallel_threads=1, seed=self.seed)
        return model

    def fit(self, data):
        import gpboost as gpb

        fitted = copy.copy(self)
        x = data[self.features].to_numpy(float)
        y = data["score"].to_numpy(float)
        labels = data[self.validation_group].astype(str).to_numpy()
        uniques = np.unique(labels)
        fold_of = dict(zip(np.random.default_rng(self.seed).permutation(uniques),
                           np.arange(len(uniques)) % self.inner_folds))
        folds = np.array([fold_of[v] for v in labels])
        splits = [(np.flatnonzero(folds != f), np.flatnonzero(folds == f)) for f in range(self.inner_folds)]
        result = gpb.cv(params=dict(self.params), train_set=gpb.Dataset(x, y), gp_model=self._model(data),
                        num_boost_round=self.max_rounds, early_stopping_rounds=self.early_stopping_rounds,
                        folds=splits, metric="l2", verbose_eval=False, seed=self.seed)
        fitted.n_rounds_ = len(next(iter(result.values())))
        fitted.gp_model_ = self._model(data)
        fitted.booster_ = gpb.train(params=dict(self.params), train_set=gpb.Dataset(x, y), gp_model=fitted.gp_model_,
                                    num_boost_round=fitted.n_rounds_)
        return fitted

    @property
    def variance_components(self):
        cov = self.gp_model_.get_cov_pars()
        values = np.asarray(cov, float).ravel()
        return pd.Series({"Residual": values[0], **{g: v for g, v in zip(self.groups, values[1:])}})

    def predict_interval(self, data, alpha=0.05):
        pred = self.booster_.predict(data=data[self.features].to_numpy(float),
                                     group_data_pred=data[self.groups].astype(str).to_numpy(),
                                     predict_var=True, pred_latent=False)
        mean, var = np.asarray(pred["response_mean"], float), np.asarray(pred["response_var"], float)
        half = stats.norm.ppf(1 - alpha / 2) * np.sqrt(var)
        return _interval_frame(mean, mean - half, mean + half, data.index)


def simulated_case(n_lang=40, seed=5):
    from xltstats.models.simulate import CrossedSimulator

    rng = np.random.default_rng(seed)
    langs = [f"l{i:02d}" for i in range(n_lang)]
    pairs = pd.DataFrame([(s, t) for s in langs for t in langs if s != t], columns=["source", "target"])
    for f in ("x1", "x2", "x3"):
        pairs[f] = rng.normal(size=len(pairs))
    sim = CrossedSimulator(pairs, {"x1": 2.0, "x2": 0.0, "x3": 0.0}, intercept=50, sd_source=3, sd_target=5,
                           sd_residual=2)
    data = sim.draw(11)
    wave = 4.0 * np.sin(1.5 * data["x2"])
    data["fixed_truth"] = 50 + 2.0 * data["x1"] + wave
    data["score"] += wave
    return data, ["x1", "x2", "x3"]


def run_simulated():
    data, features = simulated_case()
    held = data["target"].isin([f"l{i:02d}" for i in range(12)])
    truth = {"source": 9.0, "target": 25.0, "Residual": 4.0}
    rows = []
    for name, est in (("ours", HybridEstimator(features)), ("gpboost", GPBoostEstimator(features))):
        start = time.process_time()
        fitted = est.fit(data)
        seconds = time.process_time() - start
        if name == "ours":
            fixed = fitted.predict(data, include_random=False).to_numpy()
        else:
            fixed = fitted.booster_.predict(data=data[features].to_numpy(float), ignore_gp_model=True, pred_latent=True)
            fixed = np.asarray(fixed["fixed_effect"] if isinstance(fixed, dict) else fixed, float)
        outside = est.fit(data[~held]).predict_interval(data[held])
        y = data.loc[held, "score"].to_numpy()
        vc = fitted.variance_components
        rows.append({"engine": name, "fixed_rmse": float(np.sqrt(np.mean((fixed - data["fixed_truth"]) ** 2))),
                     "heldout_rmse": float(np.sqrt(np.mean((outside["prediction"].to_numpy() - y) ** 2))),
                     "coverage": float(((outside["lower"] <= y) & (y <= outside["upper"])).mean()),
                     **{f"var_{k}": float(vc[k]) for k in truth}, "fit_cpu_s": seconds,
                     "rounds": fitted.n_rounds_})
    table = pd.DataFrame(rows).set_index("engine")
    print("simulated (truth: var_source 9, var_target 25, var_Residual 4)")
    print(table.to_string(float_format=lambda v: f"{v:.4g}"))
    print("ratios ours/gpboost:", (table.loc["ours"] / table.loc["gpboost"]).round(3).to_dict())


def run_dataset(name):
    from xltstats.pipeline.config import FitConfig
    from xltstats.pipeline.design import model_table
    from xltstats.pipeline.run import load_results

    config = FitConfig(data=name)
    design = model_table(load_results(config), config)
    complete, features = design.complete, design.used
    ests = {"ours": HybridEstimator(features), "gpboost": GPBoostEstimator(features)}
    rows = []
    for engine, est in ests.items():
        start = time.process_time()
        cv = cross_validate(complete, {engine: est}, scheme="leave-one-target-out", max_folds=10)
        seconds = time.process_time() - start
        metrics = cv.metrics().iloc[0]
        fitted = est.fit(complete)
        vc = fitted.variance_components
        rows.append({"engine": engine, "rmse": metrics["rmse"], "coverage": metrics["coverage"],
                     "width": metrics["mean_interval_width"], "var_source": vc["source"], "var_target": vc["target"],
                     "var_Residual": vc["Residual"], "cv_cpu_s": seconds, "rounds_all_rows": fitted.n_rounds_})
    table = pd.DataFrame(rows).set_index("engine")
    print(f"{name}: leave-one-target-out, 10 folds, {len(complete)} rows")
    print(table.to_string(float_format=lambda v: f"{v:.4g}"))
    print("ratios ours/gpboost:", (table.loc["ours"] / table.loc["gpboost"]).round(3).to_dict())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default=",".join(CASES))
    args = p.parse_args(argv)
    print("load average:", " ".join(f"{v:.2f}" for v in os.getloadavg()))
    for case in args.cases.split(","):
        run_simulated() if case == "simulated" else run_dataset(case)
    print("load average:", " ".join(f"{v:.2f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
