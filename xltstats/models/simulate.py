"""Simulating transfer scores from a known crossed model, to check that the models recover it.

The generating model, for pair features ``x_f(s, t)`` (z-scored over the pair table, so coefficients
are "per SD" exactly as :func:`xltstats.models.fit_ols` reports them)::

    score(s, t, r) = intercept + sum_f beta_f * z_f(s, t) + u_source[s] + u_target[t] + e(s, t, r)
    u_source ~ N(0, sd_source^2),  u_target ~ N(0, sd_target^2),  e ~ N(0, sd_residual^2)

with ``r`` = 1..``n_seeds`` repeated runs of each pair. Features come from a given pair table (e.g. the
output of :func:`xltstats.features.build_pair_features`, which :func:`pair_table_for` calls for a list
of languages); pairs with a missing feature are left out.

:func:`recovery_study` draws the data ``n_draws`` times, refits with the crossed mixed model
``score ~ features + (1|source) + (1|target)`` (or OLS with two-way clustered SEs), and reports per
coefficient the bias, the empirical SD of the estimates, the mean reported SE and the coverage of the
``1 - alpha`` Wald intervals.

:class:`UnorderedSimulator` draws unordered (symmetric) pairs, one random effect per language
whichever column holds it (the multi-membership model the fit uses for ``pairs: unordered``)::

    score({a, b}, k, r) = intercept + sum_f beta_f * z_f(a, b) + u[a] + u[b] + v[k] + e
    u ~ N(0, sd_language^2),  v ~ N(0, sd_task^2) over ``n_tasks`` tasks,  e ~ N(0, sd_residual^2)

fitted by ``score ~ features + (1 | mm(source, target)) (+ (1 | task))``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from xltstats.errors import InputError

__all__ = ["CrossedSimulator", "UnorderedSimulator", "pair_table_for", "recovery_study"]


def pair_table_for(languages, features, **options) -> pd.DataFrame:
    """All ordered pairs of different ``languages`` with ``features`` from ``build_pair_features``."""
    from xltstats.features import build_pair_features

    table = build_pair_features(list(languages), features=list(features), **options)
    table = table[table["source"] != table["target"]]
    return table[["source", "target", *features]].reset_index(drop=True)


@dataclass(kw_only=True)
class _FixedPart:
    """What both simulators share: the intercept, the residual SD, the repeated runs of each pair,
    the features, the true fixed effects and ``X beta``."""

    intercept: float = 50.0
    sd_residual: float = 2.0
    n_seeds: int = 1

    @property
    def features(self) -> list[str]:
        return list(self.coefficients)

    @property
    def truth(self) -> pd.Series:
        """True fixed effects, named as the fitted models name them."""
        return pd.Series({"Intercept": self.intercept, **{f: float(b) for f, b in self.coefficients.items()}})

    def _fixed(self) -> np.ndarray:
        return self.intercept + self.table[self.features].to_numpy() @ np.array(list(self.coefficients.values()), float)

    def _runs(self, rng: np.random.Generator, mean: np.ndarray, seed_column: int, **columns) -> list:
        """``n_seeds`` copies of the pair table (``seed`` inserted at ``seed_column``, ``columns`` in
        front), each with ``score = mean + e`` and its own residual draw."""
        frames = []
        for seed in range(self.n_seeds):
            frame = self.table.copy()
            for position, (name, value) in enumerate(columns.items()):
                frame.insert(position, name, value)
            frame.insert(seed_column, "seed", seed)
            frame["score"] = mean + rng.normal(0, self.sd_residual, len(mean))
            frames.append(frame)
        return frames


@dataclass
class CrossedSimulator(_FixedPart):
    """Draws results tables from the crossed model in the module docstring."""

    pairs: pd.DataFrame
    coefficients: dict
    sd_source: float = 3.0
    sd_target: float = 5.0

    def __post_init__(self):
        features = list(self.coefficients)
        missing = [c for c in ["source", "target", *features] if c not in self.pairs.columns]
        if missing:
            raise InputError(f"pair table lacks column(s) {missing}", column=missing[0])
        table = self.pairs.dropna(subset=features).drop_duplicates(["source", "target"]).reset_index(drop=True)
        if len(table) < len(features) + 3:
            raise InputError(f"only {len(table)} pairs with every feature; too few to simulate from")
        sds = table[features].std(ddof=1)
        constant = [f for f in features if not sds[f] > 0]
        if constant:
            raise InputError(f"feature {constant[0]!r} is constant over the pairs", column=constant[0])
        self.table = table[["source", "target"]].copy()
        for f in features:
            self.table[f] = (table[f] - table[f].mean()) / sds[f]
        self.sources = sorted(self.table["source"].astype(str).unique())
        self.targets = sorted(self.table["target"].astype(str).unique())

    def draw(self, rng: np.random.Generator | int | None = None) -> pd.DataFrame:
        """One results table: source, target, seed, standardised features, score."""
        rng = np.random.default_rng(rng)
        u_source = dict(zip(self.sources, rng.normal(0, self.sd_source, len(self.sources))))
        u_target = dict(zip(self.targets, rng.normal(0, self.sd_target, len(self.targets))))
        base = self._fixed() + self.table["source"].map(u_source).to_numpy() + self.table["target"].map(u_target).to_numpy()
        return pd.concat(self._runs(rng, base, 2), ignore_index=True)


@dataclass
class UnorderedSimulator(_FixedPart):
    """Draws tables of unordered pairs from the multi-membership model in the module docstring.

    ``languages``: the language codes; every unordered pair of two different languages is drawn
    once per task and seed, written with the codes sorted (``source < target``).  ``coefficients``:
    feature name -> coefficient; the features are standard normal draws per pair (the same in
    every table drawn with the same ``feature_seed``), symmetric by construction.
    """

    languages: list
    coefficients: dict
    sd_language: float = 3.0
    sd_task: float = 0.0
    n_tasks: int = 1
    feature_seed: int = 0

    def __post_init__(self):
        from itertools import combinations

        languages = sorted(map(str, self.languages))
        if len(set(languages)) != len(languages) or len(languages) < 3:
            raise InputError(f"an unordered-pair simulation needs 3 or more distinct languages, got {self.languages!r}")
        self.languages = languages
        pairs = pd.DataFrame(list(combinations(languages, 2)), columns=["source", "target"])
        draws = np.random.default_rng(self.feature_seed).normal(size=(len(pairs), len(self.coefficients)))
        for f, column in zip(self.coefficients, draws.T):
            pairs[f] = column
        self.table = pairs

    def draw(self, rng: np.random.Generator | int | None = None) -> pd.DataFrame:
        """One results table: task, source, target, seed, features, score."""
        rng = np.random.default_rng(rng)
        u = dict(zip(self.languages, rng.normal(0, self.sd_language, len(self.languages))))
        v = rng.normal(0, self.sd_task, self.n_tasks) if self.sd_task > 0 else np.zeros(self.n_tasks)
        base = self._fixed() + self.table["source"].map(u).to_numpy() + self.table["target"].map(u).to_numpy()
        frames = [frame for task in range(self.n_tasks)
                  for frame in self._runs(rng, base + v[task], 3, task=f"task{task + 1}")]
        return pd.concat(frames, ignore_index=True)


def recovery_study(simulator: CrossedSimulator, n_draws: int = 100, model: str = "mixed", alpha: float = 0.05,
                   seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Refit ``n_draws`` simulated tables; returns (summary per coefficient, one row per draw x coefficient)."""
    from xltstats.models.mixed import fit_mixed
    from xltstats.models.ols import fit_ols

    if model not in ("mixed", "ols"):
        raise InputError(f"model must be 'mixed' or 'ols', not {model!r}")
    truth = simulator.truth
    formula = "score ~ " + " + ".join(simulator.features) + " + (1|source) + (1|target)"
    rows = []
    for draw, child in enumerate(np.random.SeedSequence(seed).spawn(n_draws)):
        data = simulator.draw(np.random.default_rng(child))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if model == "mixed":
                res = fit_mixed(formula, data, warn=False)
            else:
                # features are already z-scored over pairs; keep them as they are
                res = fit_ols(data, features=simulator.features, cov_type="cluster2", standardise=False)
        ci = res.conf_int(alpha)
        for term, true in truth.items():
            rows.append({"draw": draw, "term": term, "truth": true, "estimate": float(res.params[term]),
                         "std_error": float(res.bse[term]), "lower": float(ci.loc[term, "lower"]),
                         "upper": float(ci.loc[term, "upper"])})
    draws = pd.DataFrame(rows)
    draws["covered"] = (draws["lower"] <= draws["truth"]) & (draws["truth"] <= draws["upper"])
    summary = draws.groupby("term", sort=False).agg(
        truth=("truth", "first"), mean_estimate=("estimate", "mean"), empirical_sd=("estimate", "std"),
        mean_std_error=("std_error", "mean"), coverage=("covered", "mean"), n_draws=("draw", "size")).reset_index()
    summary.insert(3, "bias", summary["mean_estimate"] - summary["truth"])
    summary["bias_se"] = summary["empirical_sd"] / np.sqrt(summary["n_draws"])
    return summary, draws
