"""The tree model of ``model.json`` (``kind: gbt``): LightGBM's booster and its conformal calibration.

:func:`trees_spec` saves a fitted :class:`~xltstats.models.validation.GradientBoostingEstimator`;
:class:`PortableTrees` predicts from the saved entry exactly as the estimator does (same booster,
same residuals, so the same predictions and intervals).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from xltstats.errors import ConfigError
from xltstats.models._portable import _floats, _kind, _SpecChecker, numeric_column, read_booster

__all__ = ["trees_spec", "PortableTrees"]


def trees_spec(estimator) -> dict:
    """A fitted :class:`~xltstats.models.validation.GradientBoostingEstimator` with conformal intervals:
    LightGBM's model string and the calibration residuals (so predictions and intervals are the
    estimator's own)."""
    model = getattr(estimator, "model_", None)
    if model is None:
        raise ConfigError("this tree model cannot be saved: it is not fitted")
    if getattr(estimator, "interval", "conformal") != "conformal":
        raise ConfigError("only trees with conformal intervals can be saved to model.json")
    residuals = np.asarray(getattr(estimator, "calibration_residuals_", []), float)
    return {"kind": "gbt", "response": estimator.response, "features": list(estimator.features),
            "booster": model.booster_.model_to_string(), "calibration_residuals": _floats(residuals),
            "nobs": getattr(estimator, "nobs_", None),
            "parameters": {k: v for k, v in sorted(estimator.params.items())}, "seed": int(estimator.seed)}


class PortableTrees:
    """The tree model (``kind: gbt``) read from ``model.json``: LightGBM's booster and the conformal
    calibration residuals of :class:`~xltstats.models.validation.GradientBoostingEstimator`.

    Missing feature values are routed by the trees as in fitting (LightGBM's own rule for NaN);
    intervals are ``prediction +/- q`` with q the conformal quantile of the saved residuals, as
    the estimator's ``predict_interval`` gives them; no standard errors (``se_*`` are missing).
    """

    kind = "gbt"

    def __init__(self, spec: dict, name: str = "gbt", file=None):
        checker = _SpecChecker(name, file)
        for key in ("features", "booster", "calibration_residuals"):
            if key not in spec:
                checker.fail(key, "missing")
        self.features = checker.text_list(spec["features"], "features")
        residuals = spec["calibration_residuals"]
        if not isinstance(residuals, list):
            checker.fail("calibration_residuals", f"expected a list of numbers, got {_kind(residuals)}")
        self.residuals = np.array([checker.number(v, f"calibration_residuals[{i}]", low=0)
                                   for i, v in enumerate(residuals)], float)
        self.spec, self.name, self.file = spec, name, file
        self.nobs = spec.get("nobs")
        self.formula = None
        self.booster = read_booster(spec["booster"], "booster", len(self.features), checker)

    @property
    def feature_columns(self) -> list[str]:
        return list(self.features)

    required_columns = feature_columns

    def prediction_interval(self, data: pd.DataFrame, alpha: float = 0.05, include_random: bool = True) -> pd.DataFrame:
        """Prediction and the ``1 - alpha`` conformal interval of each row (``include_random`` is
        accepted for the common interface: trees have no random effects)."""
        from xltstats.models.estimators import conformal_quantile

        columns = [numeric_column(data, c, self.name) for c in self.features]
        x = np.column_stack(columns) if columns else np.zeros((len(data), 0))
        pred = self.booster.predict(x) if len(x) else np.zeros(0)
        q = conformal_quantile(self.residuals, alpha)
        nan = np.full(len(data), np.nan)
        return pd.DataFrame({"prediction": pred, "se_mean": nan, "se_prediction": nan,
                             "lower": pred - q, "upper": pred + q}, index=data.index)

    def predict(self, data: pd.DataFrame, include_random: bool = True) -> pd.Series:
        return self.prediction_interval(data)["prediction"].rename("prediction")

