"""Prediction matrices of a mixed model built once per fit without patsy
(``_design.numeric_builder``): the same bytes as ``patsy.build_design_matrices``, patsy where the
design needs it, and the same errors for bad new data."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import patsy
import pytest

from xltstats.errors import InputError
from xltstats.models import MixedModelWarning, fit_mixed
from xltstats.models.formula import formula_env
from xltstats.models.mixed._design import numeric_builder

GOLDEN = Path(__file__).resolve().parent / "golden"


def _data(seed=0, n=60):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "k": rng.integers(0, 5, n),
                         "g": rng.choice(["u", "v", "w"], n)})


@pytest.mark.parametrize("rhs", ["a + b", "a + b + a:b", "0 + a", "a:b:k", "k + a"])
def test_numeric_builder_equals_patsy_bytes(rhs):
    train, new = _data(0), _data(1)
    info = patsy.dmatrix(rhs, train, eval_env=formula_env()).design_info
    build = numeric_builder(info)
    assert build is not None
    (expected,) = patsy.build_design_matrices([info], new, return_type="matrix", NA_action="raise")
    ours = build(new)
    assert ours.dtype == np.float64 and ours.shape == expected.shape
    assert ours.tobytes() == np.asarray(expected, dtype=float).tobytes()


@pytest.mark.parametrize("rhs", ["a + C(g)", "g", "np.log(np.abs(a))", "I(a * 2)", "a + center(b)"])
def test_numeric_builder_leaves_other_designs_to_patsy(rhs):
    info = patsy.dmatrix(rhs, _data(0), eval_env=formula_env()).design_info
    assert numeric_builder(info) is None


def test_numeric_builder_declines_data_patsy_must_see():
    info = patsy.dmatrix("a + b", _data(0), eval_env=formula_env()).design_info
    build = numeric_builder(info)
    new = _data(1)
    assert build(new.drop(columns="b")) is None                  # a missing column
    assert build(new.assign(b=new["g"])) is None                 # text
    assert build(new.assign(b=new["a"] > 0)) is None             # bool: patsy treats it as categorical
    assert build(new.assign(b=np.where(new.index == 3, np.nan, new["b"]))) is None  # a missing value


def _fit():
    data = pd.read_csv(GOLDEN / "lme4_data_sim_slopes.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MixedModelWarning)
        return data, fit_mixed("score ~ x + (1 + x | source) + (1 | target)", data)


def test_predictions_equal_the_patsy_built_ones(monkeypatch):
    data, fit = _fit()
    new = data.sample(200, random_state=1).assign(source=lambda f: np.where(f.index % 7 == 0, "unseen", f["source"]))
    assert fit._builders[0] is not None and all(b is not None for b in fit._builders[1])
    ours = fit.prediction_interval(new)
    ours_pred = fit.predict(new)
    patsy_only = (None, [None] * len(fit._design.terms))
    monkeypatch.setattr(type(fit), "_builders", property(lambda self: patsy_only))
    reference = fit.prediction_interval(new)
    assert ours.to_numpy().tobytes() == reference.to_numpy().tobytes()
    assert ours_pred.to_numpy().tobytes() == fit.predict(new).to_numpy().tobytes()
    assert (ours_pred.to_numpy() == ours["prediction"].to_numpy()).all()


def test_missing_value_in_new_data_is_the_same_clear_error():
    data, fit = _fit()
    new = data.head(5).copy()
    new.loc[new.index[2], "x"] = np.nan
    with pytest.raises(InputError, match="fixed-effects matrix for new data"):
        fit.predict(new)


@pytest.mark.parametrize("formula", ["score ~ a + b + a:b + k", "score ~ 0 + a", "score ~ a + C(g)",
                                     "np.log(score) ~ a", "score ~ g + a", "score ~ a - 1 + b"])
def test_fit_matrices_equal_patsy_dmatrices(formula):
    from xltstats.models.mixed._design import _fixed_matrices

    frame = _data(2).assign(score=lambda f: 10 + f["a"] ** 2)
    y, X, info = _fixed_matrices(formula, frame)
    y_ref, X_ref = patsy.dmatrices(formula, frame, eval_env=formula_env(), return_type="dataframe")
    assert info.column_names == list(X_ref.columns)
    # the same bytes in the same (column-major) layout: X'X sums in the same order
    assert y.tobytes() == y_ref.to_numpy(float).tobytes() and X.tobytes(order="A") == X_ref.to_numpy(float).tobytes(order="A")
    assert X.flags["F_CONTIGUOUS"] == X_ref.to_numpy(float).flags["F_CONTIGUOUS"]
