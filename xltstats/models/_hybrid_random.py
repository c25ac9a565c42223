"""The random part of the hybrid (:mod:`xltstats.models.hybrid`): random intercepts of ``y - F``
on our mixed-model machinery (:class:`~xltstats.models.mixed._deviance.ProfiledDeviance`, whose
response is swapped as the trees change), their BLUPs and variance components, and the level codes
of new rows (a level not seen in training gets a random effect of 0)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from xltstats.errors import InputError

_RESIDUAL = "_hybrid_residual"


class _RandomPart:
    """The random-intercept model of ``y - F``: design, profiled likelihood and its optimum."""

    def __init__(self, random: str, frame: pd.DataFrame, reml: bool, theta=None):
        from xltstats.models.mixed._deviance import ProfiledDeviance
        from xltstats.models.mixed._design import prepare

        self.formula = f"{_RESIDUAL} ~ 1 + {random}"
        self.parsed, self.frame, self.design, _ = prepare(self.formula, frame)
        self.dev = ProfiledDeviance(self.design, reml)
        self.theta = np.where(self.design.theta_lower == 0, 1.0, 0.0)
        if theta is not None and np.shape(theta) == self.theta.shape:  # a warm start (see HybridEstimator._fit)
            self.theta = np.maximum(np.asarray(theta, float), self.design.theta_lower)
        self.lower = self.design.theta_lower
        self.bounds = [(lo if np.isfinite(lo) else None, None) for lo in self.lower]

    def set_residual(self, r: np.ndarray) -> None:
        self.dev.set_response(r)

    def optimise(self, maxiter: int = 200) -> float:
        """Re-estimate theta from the current residual (warm start); returns the criterion."""
        import scipy.optimize as sopt

        res = sopt.minimize(self.dev, self.theta, method="L-BFGS-B", bounds=self.bounds,
                            options=dict(maxiter=maxiter, ftol=1e-10, gtol=1e-6, maxls=30))
        if np.isfinite(res.fun):
            self.theta = np.maximum(res.x, self.lower)
        return float(self.dev(self.theta))

    def blups(self):
        """(intercept, Z b_hat per training row, b_hat, criterion) at the current theta."""
        pls = self.dev.solve_pls(self.theta)
        if pls is None:
            raise InputError("the random-effects system of the hybrid model is not positive definite")
        p = self.design.p
        W = pls["W"]
        beta = pls["beta"]
        u = pls["solve"](W[:, p] - W[:, :p] @ beta)
        b = np.asarray(self.design.lambda_matrix(self.theta) @ u).ravel()
        return float(beta[0]), np.asarray(self.design.Z @ b).ravel(), b, self.dev.deviance_from(pls)

    def codes(self, frame: pd.DataFrame) -> list[np.ndarray]:
        """Level codes of each term for new rows, rows x members (-1: a level not seen in training;
        one member but for ``mm(source, target)``)."""
        from xltstats.models.mixed._design import member_labels

        out = []
        for term in self.design.terms:
            lookup = {lev: i for i, lev in enumerate(term.levels)}
            out.append(np.column_stack([np.array([lookup.get(v, -1) for v in labels.to_numpy()], np.int64)
                                        for labels in member_labels(frame, term.group)]))
        return out

    def effect(self, b: np.ndarray, codes: list[np.ndarray]) -> np.ndarray:
        """``Z b`` for new rows of random intercepts, 0 for levels not seen."""
        total = 0.0
        for t, c in enumerate(codes):
            total = total + np.where(c >= 0, b[self.design.offsets[t] + np.maximum(c, 0)], 0.0).sum(axis=1)
        return total


def _group_columns(group: str) -> list[str]:
    """The data columns of a grouping factor (``source``, ``source:task``, ``mm(source, target)``)."""
    from xltstats.models.formula import multi_membership_members

    members = multi_membership_members(group)
    return list(members) if members else [c.strip() for c in group.split(":")]


def random_intercepts(formula: str) -> str | None:
    """The random-intercept terms of a mixed formula, e.g. ``(1 | source) + (1 | target)``; None without."""
    from xltstats.models.formula import parse_formula

    terms = [f"({e} | {g})" for e, g in parse_formula(formula).random if e.strip() == "1"]
    return " + ".join(terms) or None


class _NoRandomPart:
    """Boosting without random effects (``boosted_random="none"``): the intercept alone."""

    theta = np.zeros(0)

    def __init__(self, n: int):
        self.n = n

    def set_residual(self, r: np.ndarray) -> None:
        self.r = np.asarray(r, float)

    def optimise(self) -> float:
        return float(self.n * np.log(np.mean((self.r - self.r.mean()) ** 2) + 1e-300))

    def blups(self):
        return float(self.r.mean()), np.zeros(self.n), np.zeros(0), self.optimise()

    def codes(self, frame: pd.DataFrame) -> list:
        return []

    def effect(self, b, codes) -> float:
        return 0.0
