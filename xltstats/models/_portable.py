"""Helpers shared by the portable models of ``model.json`` (:mod:`xltstats.models.persist`,
:mod:`xltstats.models.portable_trees`): JSON-safe numbers, the field checker of a hand-edited
entry, numeric columns of new rows, and the logit response scale of :mod:`xltstats.models.bounded`
(here so that a saved logit-scale model is read without importing the estimators)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit

from xltstats.errors import ConfigError, InputError


def _floats(values) -> list:
    return [None if not math.isfinite(v) else float(v) for v in np.asarray(values, float).ravel()]


def _matrix(values) -> list:
    return [_floats(row) for row in np.asarray(values, float)]


def _kind(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, str):
        return f"a string ({value[:40]!r})"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


class _SpecChecker:
    """Checks a hand-edited model entry field by field; errors name the key (``models.ols.x``)."""

    def __init__(self, name: str, file):
        self.prefix = f"models.{name}"
        self.file = file

    def fail(self, key: str, message: str):
        raise InputError(f"key '{self.prefix}.{key}': {message}", file=self.file)

    def number(self, value, key: str, *, allow_null=False, low=None) -> float:
        if value is None and allow_null:
            return float("nan")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(key, f"expected a number, got {_kind(value)}")
        if not math.isfinite(float(value)):
            self.fail(key, f"expected a finite number, got {value!r}")
        if low is not None and value < low:
            self.fail(key, f"must be at least {low}, got {value!r}")
        return float(value)

    def vector(self, value, key: str, length: int) -> np.ndarray:
        if not isinstance(value, list):
            self.fail(key, f"expected a list of {length} numbers, got {_kind(value)}")
        if len(value) != length:
            self.fail(key, f"expected {length} numbers (one per term), got {len(value)}")
        return np.array([self.number(v, f"{key}[{i}]", allow_null=True) for i, v in enumerate(value)], float)

    def matrix(self, value, key: str, size: int) -> np.ndarray:
        if not isinstance(value, list) or len(value) != size:
            self.fail(key, f"expected a {size} x {size} matrix (a list of {size} lists), got "
                           f"{_kind(value) if not isinstance(value, list) else f'{len(value)} rows'}")
        return np.vstack([self.vector(row, f"{key}[{i}]", size) for i, row in enumerate(value)]) \
            if size else np.zeros((0, 0))

    def text_list(self, value, key: str) -> list:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(key, f"expected a list of names, got {_kind(value)}")
        return list(value)

    def check(self, spec: dict) -> None:
        kind = spec["kind"]
        if kind not in ("ols", "mixed"):
            self.fail("kind", f"expected 'ols' or 'mixed', got {_kind(kind)}")
        terms = self.text_list(spec["terms"], "terms")
        self.vector(spec["coefficients"], "coefficients", len(terms))
        self.matrix(spec["covariance"], "covariance", len(terms))
        self.number(spec["residual_variance"], "residual_variance", low=0)
        if spec.get("df_inference") is not None:
            self.number(spec["df_inference"], "df_inference", low=1)
        for key in ("df_resid", "nobs"):
            if key in spec and spec[key] is not None:
                self.number(spec[key], key, low=0)
        if "features" in spec and spec["features"] is not None:
            self.text_list(spec["features"], "features")
        if kind == "ols":
            standardise = spec.get("standardise", True)
            if not isinstance(standardise, bool):
                self.fail("standardise", f"expected true or false, got {_kind(standardise)}")
            if standardise:
                for key in ("means", "sds"):
                    table = spec.get(key)
                    if not isinstance(table, dict):
                        self.fail(key, f"expected an object mapping each feature to a number, got {_kind(table)}")
                    for term in terms:
                        if term == "Intercept":
                            continue
                        if term not in table:
                            self.fail(f"{key}.{term}", "missing (every feature term needs one)")
                        self.number(table[term], f"{key}.{term}", low=0 if key == "sds" else None)
                        if key == "sds" and not table[term] > 0:
                            self.fail(f"{key}.{term}", f"must be positive, got {table[term]!r}")
        factor_levels = spec.get("factor_levels")
        if factor_levels is not None:
            if not isinstance(factor_levels, dict):
                self.fail("factor_levels", f"expected an object mapping each factor to its levels, got {_kind(factor_levels)}")
            for col, levels in factor_levels.items():
                self.text_list(levels, f"factor_levels.{col}")
        random = spec.get("random", [])
        if kind == "mixed" and not isinstance(random, list):
            self.fail("random", f"expected a list of random terms, got {_kind(random)}")
        for r, entry in enumerate(random or []):
            key = f"random[{r}]"
            if not isinstance(entry, dict):
                self.fail(key, f"expected an object, got {_kind(entry)}")
            for field in ("group", "columns", "covariance", "levels"):
                if field not in entry:
                    self.fail(f"{key}.{field}", "missing")
            if not isinstance(entry["group"], str) or not entry["group"].strip():
                self.fail(f"{key}.group", f"expected a column name, got {_kind(entry['group'])}")
            columns = self.text_list(entry["columns"], f"{key}.columns")
            self.matrix(entry["covariance"], f"{key}.covariance", len(columns))
            levels = entry["levels"]
            if not isinstance(levels, dict):
                self.fail(f"{key}.levels", f"expected an object mapping levels to effects, got {_kind(levels)}")
            for level, effect in levels.items():
                self.vector(effect, f"{key}.levels.{level}", len(columns))
            condvar = entry.get("conditional_covariance")
            if condvar is not None:
                if not isinstance(condvar, dict):
                    self.fail(f"{key}.conditional_covariance", f"expected an object, got {_kind(condvar)}")
                for level, block in condvar.items():
                    self.matrix(block, f"{key}.conditional_covariance.{level}", len(columns))


def read_booster(text, key: str, n_features: int, checker: _SpecChecker):
    """LightGBM's booster from the model string under ``key``, with ``n_features`` feature names."""
    if not isinstance(text, str) or not text.strip():
        checker.fail(key, f"expected LightGBM's model string, got {_kind(text)}")
    try:
        import lightgbm

        booster = lightgbm.Booster(model_str=text)
    except Exception as exc:  # noqa: BLE001 - LightGBM's own parse error, reported with the key
        checker.fail(key, f"LightGBM cannot read the model string: {exc}")
    if booster.num_feature() != n_features:
        checker.fail("features", f"{n_features} names for a booster of {booster.num_feature()} features")
    return booster


def numeric_column(data: pd.DataFrame, col: str, model: str) -> np.ndarray:
    """``data[col]`` as floats for the model named ``model``; a lacking column or a value that is
    not a number is an :class:`InputError` naming the row and column."""
    if col not in data.columns:
        raise InputError(f"new data lacks column {col!r} needed by the {model} model", column=col)
    values = pd.to_numeric(data[col], errors="coerce")
    bad = values.isna() & data[col].notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 1
        raise InputError(f"value {data[col].iloc[row - 1]!r} is not a number", row=row, column=col)
    return values.to_numpy(float)


@dataclass(frozen=True)
class LogitScale:
    """The transformation of scores in ``[low, high]`` fitted on ``n`` rows (module docstring)."""

    low: float
    high: float
    n: int

    def __post_init__(self):
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ConfigError(f"the logit scale needs a finite range low < high, got {self.low} to {self.high}")
        if self.n < 2:
            raise ConfigError(f"the logit scale needs at least 2 rows, got {self.n}")

    def forward(self, y) -> np.ndarray:
        p = (np.asarray(y, float) - self.low) / (self.high - self.low)
        p = (p * (self.n - 1) + 0.5) / self.n
        return np.log(p / (1 - p))

    def inverse(self, z) -> np.ndarray:
        p = (self.n * expit(np.asarray(z, float)) - 0.5) / (self.n - 1)
        return np.clip(self.low + (self.high - self.low) * p, self.low, self.high)

    def slope(self, z) -> np.ndarray:
        """d score / d logit at ``z`` (for the delta-method standard errors)."""
        e = expit(np.asarray(z, float))
        return (self.high - self.low) * self.n / (self.n - 1) * e * (1 - e)

    def to_spec(self) -> dict:
        return {"transform": "logit", "low": float(self.low), "high": float(self.high), "n": int(self.n)}

    @classmethod
    def from_spec(cls, spec) -> "LogitScale":
        if not isinstance(spec, dict) or spec.get("transform") != "logit":
            raise ConfigError(f"unknown response scale {spec!r}; expected {{transform: logit, low, high, n}}")
        try:
            return cls(float(spec["low"]), float(spec["high"]), int(spec["n"]))
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"a logit response scale needs numbers low, high and n, got {spec!r}") from None


def back_transform(interval: pd.DataFrame, scale: LogitScale) -> pd.DataFrame:
    """A logit-scale prediction-interval table (``prediction``, ``se_mean``, ``se_prediction``,
    ``lower``, ``upper``) on the score scale."""
    out = interval.copy()
    z = interval["prediction"].to_numpy(float)
    slope = scale.slope(z)
    for column in ("se_mean", "se_prediction"):
        if column in out.columns:
            out[column] = slope * interval[column].to_numpy(float)
    for column in ("prediction", "lower", "upper"):
        out[column] = scale.inverse(interval[column].to_numpy(float))
    return out
