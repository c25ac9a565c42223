"""Stage 1 of a mixed-model fit, lme4's ``lFormula``: formula -> model matrices and the fixed
structure of the relative covariance factor ``Lambda_theta`` (independent of ``theta``).

Also :func:`update_formula`, lme4's ``update(formula, . ~ . - x)``, used to build the reduced
models of likelihood-ratio tests from a fitted model's parsed formula.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from xltstats.errors import ConfigError, InputError
from xltstats.models.formula import (ParsedFormula, _split_top_level_plus, build_random_terms,
                                     formula_env, multi_membership_members, parse_formula,
                                     referenced_columns)
from xltstats.models.mixed._optimise import single_threaded_blas

@dataclass
class Design:
    """Model matrices and the fixed structure of Lambda_theta (independent of theta)."""

    X: np.ndarray
    y: np.ndarray
    fixed_names: list
    terms: list                 # RandomTerm
    Z: sp.csc_matrix            # n x q
    offsets: list               # first Z column of each term
    theta_slices: list          # slice of theta belonging to each term
    theta_lower: np.ndarray     # lower bounds (0 for diagonal elements, -inf otherwise)
    lambda_rows: np.ndarray     # sparsity pattern of Lambda: rows, cols, index into theta
    lambda_cols: np.ndarray
    lambda_theta_index: np.ndarray
    x_design_info: object
    term_design_infos: list

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def p(self) -> int:
        return self.X.shape[1]

    @property
    def q(self) -> int:
        return self.Z.shape[1]

    @property
    def n_theta(self) -> int:
        return len(self.theta_lower)

    def lambda_matrix(self, theta: np.ndarray) -> sp.csr_matrix:
        return sp.csr_matrix((theta[self.lambda_theta_index], (self.lambda_rows, self.lambda_cols)),
                             shape=(self.q, self.q))

    def theta_template(self, theta: np.ndarray, term_index: int) -> np.ndarray:
        """The lower-triangular ``T`` of one term (lme4 stores it column by column)."""
        k = self.terms[term_index].n_columns
        T = np.zeros((k, k))
        values = theta[self.theta_slices[term_index]]
        rows, cols = lower_triangle_colwise(k)
        T[rows, cols] = values
        return T


def group_labels(data: pd.DataFrame, group: str) -> pd.Series:
    """The level label of each row for a grouping factor as written (``source``, ``source:task``);
    raises :class:`InputError` naming a grouping column the data lacks."""
    columns = [g.strip() for g in group.split(":")]
    for c in columns:
        if c not in data.columns:
            raise InputError(f"new data lacks the grouping column {c!r}", column=c)
    labels = data[columns[0]].astype(str)
    for c in columns[1:]:
        labels = labels + ":" + data[c].astype(str)
    return labels


def member_labels(data: pd.DataFrame, group: str) -> list[pd.Series]:
    """The level labels of each row, one Series per member: ``[source, target]`` for a
    multi-membership factor ``mm(source, target)``, ``[labels]`` for any other (see
    :func:`group_labels`)."""
    members = multi_membership_members(group)
    if members is None:
        return [group_labels(data, group)]
    return [group_labels(data, m) for m in members]


def numeric_builder(design_info):
    """A builder of ``design_info``'s model matrix on new data without patsy, made once per fit:
    ``build(data)`` gives what ``patsy.build_design_matrices([design_info], data)`` gives (the
    intercept a column of ones, every other column the product of plain numeric data columns, in
    patsy's order) or None where patsy is needed (a categorical factor, a transform, a column
    missing or not numeric, a missing value: patsy then evaluates it and names the problem).
    Returns None when the design has a term of any other kind.
    """
    plan = []
    for term in design_info.terms:
        codings = design_info.term_codings[term]
        if len(codings) != 1 or codings[0].num_columns != 1 or codings[0].contrast_matrices:
            return None
        names = []
        for factor in codings[0].factors:
            info = design_info.factor_infos[factor]
            code = getattr(factor, "code", None)
            if info.type != "numerical" or info.num_columns != 1 or not isinstance(code, str) \
                    or not code.isidentifier():
                return None
            names.append(code)
        plan.append(names)
    if len(plan) != len(design_info.column_names):
        return None

    def build(data: pd.DataFrame):
        if not data.columns.is_unique:
            return None
        out = np.empty((len(data), len(plan)))
        for j, names in enumerate(plan):
            out[:, j] = 1.0
            for name in names:            # patsy: column = 1, then *= each factor in turn
                if name not in data.columns:
                    return None
                values = data[name]
                if not isinstance(values.dtype, np.dtype) or values.dtype.kind not in "fiu":
                    return None
                out[:, j] *= values.to_numpy(dtype=float)
        return None if np.isnan(out).any() else out

    return build


def lower_triangle_colwise(k: int):
    rows, cols = [], []
    for j in range(k):
        for i in range(j, k):
            rows.append(i)
            cols.append(j)
    return np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64)


def build_design(X, y, fixed_names, terms, x_design_info, term_design_infos) -> Design:
    n = len(y)
    offsets, theta_slices, lower = [], [], []
    z_rows, z_cols, z_vals = [], [], []
    l_rows, l_cols, l_idx = [], [], []
    offset = 0
    theta_pos = 0
    for term in terms:
        k, levels = term.n_columns, term.n_levels
        offsets.append(offset)
        r, c = lower_triangle_colwise(k)
        theta_slices.append(slice(theta_pos, theta_pos + len(r)))
        lower.extend(0.0 if i == j else -np.inf for i, j in zip(r, c))
        for codes in term.member_codes.T:  # mm(): each member loads with weight 1 (duplicates add)
            for j in range(k):
                z_rows.append(np.arange(n))
                z_cols.append(offset + codes * k + j)
                z_vals.append(term.matrix[:, j])
        base = offset + np.arange(levels) * k
        for t, (i, j) in enumerate(zip(r, c)):
            l_rows.append(base + i)
            l_cols.append(base + j)
            l_idx.append(np.full(levels, theta_pos + t))
        offset += k * levels
        theta_pos += len(r)
    Z = sp.csc_matrix((np.concatenate(z_vals), (np.concatenate(z_rows), np.concatenate(z_cols))),
                      shape=(n, offset))
    Z.eliminate_zeros()
    return Design(X=X, y=y, fixed_names=fixed_names, terms=terms, Z=Z, offsets=offsets,
                   theta_slices=theta_slices, theta_lower=np.array(lower),
                   lambda_rows=np.concatenate(l_rows), lambda_cols=np.concatenate(l_cols),
                   lambda_theta_index=np.concatenate(l_idx).astype(np.int64),
                   x_design_info=x_design_info, term_design_infos=term_design_infos)


#: Design infos of fixed parts built of plain numeric columns, by formula and column dtypes (what
#: patsy's reading of such a formula depends on): cross-validation fits one formula many times.
_NUMERIC_DESIGNS: dict = {}
_NUMERIC_DESIGNS_LOCK = threading.Lock()
_NUMERIC_DESIGNS_MAX = 64


def _numeric_design(fixed_formula: str, frame: pd.DataFrame):
    """``(design info of y, of X)`` when both sides of ``fixed_formula`` are products of plain
    numeric columns (:func:`numeric_builder`) of ``frame``, else None; patsy reads the formula on
    the first row, once per formula and column dtypes."""
    # names, sums, interactions and 0/1/-1 only: no call (a transform would see one row)
    if not re.fullmatch(r"[\w\s+:~\-]*", fixed_formula):
        return None
    import patsy

    key = (fixed_formula, tuple((str(c), str(t)) for c, t in frame.dtypes.items()))
    with _NUMERIC_DESIGNS_LOCK:
        if key in _NUMERIC_DESIGNS:
            return _NUMERIC_DESIGNS[key]
    head_y, head_X = patsy.dmatrices(fixed_formula, frame.iloc[:1], eval_env=formula_env(),
                                     return_type="matrix", NA_action="raise")
    infos = (head_y.design_info, head_X.design_info)
    if numeric_builder(infos[0]) is None or numeric_builder(infos[1]) is None:
        infos = None
    with _NUMERIC_DESIGNS_LOCK:
        if len(_NUMERIC_DESIGNS) >= _NUMERIC_DESIGNS_MAX:
            _NUMERIC_DESIGNS.clear()
        _NUMERIC_DESIGNS[key] = infos
    return infos


def _fixed_matrices(fixed_formula: str, frame: pd.DataFrame):
    """``(y, X, design info of X)`` of the fixed part on ``frame`` (complete rows), as
    ``patsy.dmatrices`` builds them: without patsy where both sides are products of plain numeric
    columns (:func:`_numeric_design`; the same bytes as patsy's), otherwise by patsy on the frame."""
    import patsy

    infos = _numeric_design(fixed_formula, frame)
    if infos is not None:
        y, X = numeric_builder(infos[0])(frame), numeric_builder(infos[1])(frame)
        if y is not None and X is not None:
            # column-major, as DataFrame.to_numpy gives it: the same layout, the same BLAS sums
            return y, np.asfortranarray(X), infos[1]
    y_df, X_df = patsy.dmatrices(fixed_formula, frame, eval_env=formula_env(), return_type="dataframe",
                                 NA_action="raise")
    return y_df.to_numpy(dtype=float), X_df.to_numpy(dtype=float), X_df.design_info


def prepare(formula: str, data: pd.DataFrame):
    """lme4's ``lFormula``: parse ``formula``, keep the complete rows of the columns it uses, and
    build the model matrices; returns (parsed formula, frame used, Design, rows dropped)."""
    import patsy

    if not isinstance(data, pd.DataFrame):
        raise InputError(f"fit_mixed needs a pandas DataFrame, got {type(data).__name__}")
    parsed = parse_formula(formula)
    used = referenced_columns(formula, data)
    if parsed.response not in data.columns:
        raise InputError(f"the response {parsed.response!r} is not a column of the data",
                         column=parsed.response)
    frame = data[used].copy()
    mask = frame.isna().any(axis=1).to_numpy()
    n_dropped = int(mask.sum())
    frame = frame.loc[~mask]
    if len(frame) == 0:
        raise InputError("no rows left after dropping rows with missing values in "
                         f"{used}")
    for col in used:
        if frame[col].dtype == object or pd.api.types.is_string_dtype(frame[col]):
            if col == parsed.response:
                raise InputError(f"the response {col!r} must be numeric", column=col)
    try:
        y, X, x_info = _fixed_matrices(parsed.fixed_formula, frame)
    except patsy.PatsyError as exc:
        raise ConfigError(f"cannot build the fixed-effects part {parsed.fixed_formula!r}: {exc}") from None
    if y.shape[1] != 1:
        raise InputError(f"the response {parsed.response!r} must be a single numeric column",
                         column=parsed.response)
    with single_threaded_blas():  # an SVD of n x p: threaded BLAS is many times slower on it under load
        rank = np.linalg.matrix_rank(X) if X.shape[1] else 0
    if rank < X.shape[1]:
        raise ConfigError(f"the fixed-effects design of {formula!r} is rank deficient (columns "
                          f"{list(x_info.column_names)}); drop a collinear covariate")
    terms = build_random_terms(parsed, frame)
    term_infos = []
    for expr, _group in parsed.random:
        term_infos.append(patsy.dmatrix(expr, frame.iloc[:1], eval_env=formula_env(),
                                        return_type="matrix").design_info)
    design = build_design(X, y.ravel(), list(x_info.column_names), terms, x_info, term_infos)
    for t in terms:
        if t.n_levels >= design.n:
            raise InputError(f"the grouping factor {t.group!r} has {t.n_levels} levels for "
                             f"{design.n} rows: every row is its own level", column=t.group)
    return parsed, frame, design, n_dropped



def _fixed_terms(fixed_rhs: str) -> list[str]:
    """The fixed right-hand side as signed terms: ``"a + b - c"`` -> ``["a", "+ b", "- c"]``."""
    return [t.strip() for t in _split_top_level_plus(fixed_rhs)]


def _term_body(term: str) -> str:
    """A fixed term without a leading ``+`` (a ``-`` stays: ``- 1`` is not the term ``1``)."""
    return term[1:].strip() if term.startswith("+") else term


def fixed_terms(parsed: ParsedFormula) -> list[str]:
    """The fixed terms of a parsed formula as written, without signs of addition
    (``"a + b - 1"`` -> ``["a", "b", "- 1"]``)."""
    return [_term_body(t) for t in _fixed_terms(parsed.fixed_rhs)]


def _join_fixed(terms: list[str]) -> str:
    rhs = " ".join(terms).strip()
    rhs = rhs[1:].strip() if rhs.startswith("+") else rhs
    if not rhs or all(t.startswith("-") for t in terms):
        rhs = ("1 " + rhs).strip()
    return rhs


def update_formula(parsed: ParsedFormula | str, change: str) -> str:
    """lme4's ``update(formula, change)`` for the fixed part: ``". ~ . - x - z + w"``.

    On the left ``.`` keeps the response (or names a new one); on the right ``.`` stands for the
    current fixed terms, ``- term`` removes a fixed term written exactly as in the formula (a
    term that is not there is ignored, as R's ``update`` does) and ``+ term`` adds one.  The
    random terms are kept as parsed (``(x || g)`` expanded into its uncorrelated parts, ``a/b``
    into ``a + a:b``), so the result is written as ``response ~ fixed + (expr | group) + ...``.
    """
    if isinstance(parsed, str):
        parsed = parse_formula(parsed)
    if not isinstance(change, str) or "~" not in change:
        raise ConfigError(f"a formula update needs the form '. ~ . - term', got {change!r}")
    lhs, rhs = (part.strip() for part in change.split("~", 1))
    response = parsed.response if lhs in ("", ".") else lhs
    pieces = _fixed_terms(rhs)
    if not pieces or _term_body(pieces[0]) != ".":
        raise ConfigError(f"a formula update must start its right-hand side with '.', got {change!r}")
    terms = _fixed_terms(parsed.fixed_rhs)
    for piece in pieces[1:]:
        if "|" in piece:
            raise ConfigError(f"update_formula changes fixed terms only, not {piece!r}")
        if piece.startswith("-"):
            removed = piece[1:].strip()
            terms = [t for t in terms if _term_body(t) != removed]
        elif _term_body(piece) not in map(_term_body, terms):
            terms.append(piece if piece.startswith("+") else "+ " + piece)
    random_part = " + ".join(f"({expr} | {group})" for expr, group in parsed.random)
    return f"{response} ~ {_join_fixed(terms)} + {random_part}"
