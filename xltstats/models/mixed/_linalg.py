"""Cholesky factor and solve through LAPACK directly.

scipy.linalg's wrappers cost more than the factorisation of the small matrices the profiled
deviance factors thousands of times per fit.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg as sla

_dpotrf, _dpotrs = sla.lapack.get_lapack_funcs(("potrf", "potrs"), dtype=np.float64)


def cho_factor(A):
    """Lower Cholesky factor of ``A``; raises LinAlgError if ``A`` is not positive definite."""
    c, info = _dpotrf(A, lower=1, clean=0, overwrite_a=0)
    if info != 0:
        raise np.linalg.LinAlgError("matrix is not positive definite")
    return c


def cho_solve(c, B):
    """``A^{-1} B`` from the lower factor ``c`` of :func:`cho_factor`."""
    x, info = _dpotrs(c, B, lower=1)
    if info != 0:  # pragma: no cover - only on invalid arguments
        raise np.linalg.LinAlgError(f"potrs failed with info={info}")
    return x
