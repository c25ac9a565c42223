"""The crossed mixed model on the logit scale, for scores with a finite range (issue 15).

A Gaussian model of an accuracy predicts 1.03 and intervals past 1.  :func:`fit_logit_mixed`
(and :class:`LogitMixedEstimator` for cross-validation) fits the same crossed model to the logit of each score's position in its metric's range instead:

* ``p = (y - low) / (high - low)`` in ``[0, 1]``;
* squeezed into the open interval, ``p' = (p (n - 1) + 1/2) / n`` with ``n`` the number of fitted
  rows (Smithson & Verkuilen 2006, the usual squeeze of beta regression): a score of exactly 0 or
  the maximum gets a finite logit, ``logit(1 / 2n)``, and scores inside move by less than ``1/2n``;
* ``z = log(p' / (1 - p'))`` is the response of the crossed mixed model (``logit_score``).

Its coefficients and variance components are on the logit scale.  Predictions and interval
bounds are transformed back, ``y = low + (high - low) (n expit(z) - 1/2) / (n - 1)``, then clipped
to ``[low, high]`` (the un-squeeze can reach ``1/2(n-1)`` past an end).  The back-transform is
monotone, so an interval that holds ``1 - alpha`` of new logits holds ``1 - alpha`` of new scores:
the intervals stay calibrated when the logit-scale model is right, and are asymmetric, narrow near
the ends of the range.  The prediction is the back-transformed conditional median (of a normal on
the logit scale), not the mean.  ``se_mean`` and ``se_prediction`` are the delta-method standard
errors on the score scale, ``(high - low) n / (n - 1) p (1 - p)`` times those on the logit scale.
"""
from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from xltstats.models._portable import LogitScale, back_transform  # noqa: F401  (model.json reads them there)

__all__ = ["LogitScale", "LogitMixedResults", "LogitMixedEstimator", "fit_logit_mixed", "RESPONSE"]

RESPONSE = "logit_score"


def _logit_formula(formula: str) -> str:
    from xltstats.models.formula import parse_formula

    parsed = parse_formula(formula)
    return f"{RESPONSE} ~ {formula.split('~', 1)[1].strip()}" if parsed.response != RESPONSE else formula


class LogitMixedResults:
    """A :class:`~xltstats.models.MixedResults` fitted to ``logit_score`` (``inner``) that predicts
    scores: ``predict`` and ``prediction_interval`` are back-transformed (module docstring);
    everything else (``table()``, ``variance_components``, ``llf``, ...) is the inner fit's, on the
    logit scale."""

    def __init__(self, inner, scale: LogitScale, response: str = "score"):
        self.inner = inner
        self.scale = scale
        self.response = response

    def __getattr__(self, name):
        if name in ("inner", "scale", "response"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    def predict(self, newdata: pd.DataFrame | None = None, include_random: bool = True) -> pd.Series:
        z = self.inner.predict(newdata, include_random=include_random)
        return pd.Series(self.scale.inverse(z.to_numpy()), index=z.index, name="prediction")

    def prediction_interval(self, newdata: pd.DataFrame, alpha: float = 0.05,
                            include_random: bool = True) -> pd.DataFrame:
        return back_transform(self.inner.prediction_interval(newdata, alpha, include_random=include_random),
                              self.scale)

    def to_spec(self) -> dict:
        """``model.json``'s entry: the inner (logit-scale) model's, with ``response_scale`` to transform back."""
        from xltstats.models.persist import model_spec

        return {**model_spec(self.inner), "response_scale": self.scale.to_spec()}

    def __repr__(self) -> str:
        return f"<LogitMixedResults on {self.scale.low:g}..{self.scale.high:g}, n={self.scale.n}: {self.inner!r}>"


def fit_logit_mixed(formula: str, data: pd.DataFrame, low: float, high: float, *, reml: bool = True,
                    response: str = "score", warn: bool = True, maxiter: int = 2000) -> LogitMixedResults:
    """Fit ``formula`` (its response ``response``, in ``[low, high]``) on the logit scale."""
    from xltstats.errors import InputError
    from xltstats.models.mixed import fit_mixed

    y = pd.to_numeric(data[response], errors="coerce")
    known = y.notna().to_numpy()
    outside = known & ((y < low) | (y > high)).to_numpy()
    if outside.any():
        row = int(np.flatnonzero(outside)[0])
        raise InputError(f"score {y.iloc[row]:g} is outside the range {low:g} to {high:g} of the logit scale",
                         row=row + 1, column=response)
    scale = LogitScale(float(low), float(high), int(known.sum()))
    frame = data.assign(**{RESPONSE: np.where(known, scale.forward(y.fillna(low).to_numpy()), np.nan)})
    inner = fit_mixed(_logit_formula(formula), frame, reml=reml, warn=warn, maxiter=maxiter)
    return LogitMixedResults(inner, scale, response)


class LogitMixedEstimator:
    """:class:`xltstats.models.validation.MixedEstimator` on the logit scale (``fit``/``predict_interval``
    protocol of :mod:`xltstats.models.validation`); each fit squeezes with its own training rows."""

    def __init__(self, formula: str, low: float, high: float, reml: bool = True, maxiter: int = 2000):
        self.formula, self.low, self.high, self.reml, self.maxiter = formula, low, high, reml, maxiter
        self.result_ = None

    def fit(self, data: pd.DataFrame) -> "LogitMixedEstimator":
        fitted = copy.copy(self)
        fitted.result_ = fit_logit_mixed(self.formula, data, self.low, self.high, reml=self.reml, warn=False,
                                         maxiter=self.maxiter)
        return fitted

    def predict_interval(self, data: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
        from xltstats.models.validation import MixedEstimator

        gaussian = MixedEstimator(_logit_formula(self.formula))
        gaussian.result_ = self.result_.inner
        out = gaussian.predict_interval(data, alpha)  # NaN where a row lacks a column, as the Gaussian one
        for column in ("prediction", "lower", "upper"):
            done = out[column].notna().to_numpy()
            out.loc[done, column] = self.result_.scale.inverse(out.loc[done, column].to_numpy(float))
        return out
