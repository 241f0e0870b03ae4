"""Distances between images, exact for integer pixels.

Every metric here is computed by a small compiled kernel (numba) on one pair of rows at a time, so no
``(n_query, n_train, n_pixels)`` array is ever built. For ``uint8`` images the sums are done in integer
arithmetic, so L1, squared L2 and the cubed L3 distance are exact integers; other inputs are summed in
float64.

The neighbour search (:mod:`mnist_knn.engine.search`) uses the same kernels to rank its candidates, and
:func:`pairwise_distances` exposes them for analysis (for example the distances between a few pairs of
digits in a notebook).
"""

import math

import numba
import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from .. import validation

__all__ = ["METRICS", "as_rows", "common_rows", "metric_code", "pairwise_distances", "thread_count"]

METRICS = ("euclidean", "manhattan", "minkowski", "chebyshev", "cosine")

# Kernel codes: the "power sum" a metric ranks by, before the final root.
L2, L1, L3, LP, LINF, COS = 0, 1, 2, 3, 4, 5


def metric_code(metric, p=2):
    """Map a metric name (and ``p`` for minkowski) to a kernel code and the exponent used.

    ``minkowski`` with p = 1, 2, 3 or infinity is routed to the exact special cases.

    Returns
    -------
    code : int
    p : float
        The exponent of the power sum (1, 2, 3, p, inf; 0 for cosine).
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}; got metric={metric!r}.")
    if metric == "euclidean":
        return L2, 2.0
    if metric == "manhattan":
        return L1, 1.0
    if metric == "chebyshev":
        return LINF, math.inf
    if metric == "cosine":
        return COS, 0.0
    p = float(p)
    if not p >= 1:  # also rejects NaN
        raise ValueError(f"minkowski needs p >= 1; got p={p}.")
    if p == 1:
        return L1, 1.0
    if p == 2:
        return L2, 2.0
    if p == 3:
        return L3, 3.0
    if math.isinf(p):
        return LINF, math.inf
    return LP, p


@njit(inline="always")
def _power_sum_u8(a, b, code, p):
    """Exact power sum of two uint8 rows (an int64 stored in a float64: exact below 2**53)."""
    n = a.shape[0]
    if code == L2:
        s = np.int64(0)
        for d in range(n):
            x = np.int32(a[d]) - np.int32(b[d])
            s += x * x
        return np.float64(s)
    if code == L1:
        s = np.int64(0)
        for d in range(n):
            x = np.int32(a[d]) - np.int32(b[d])
            s += x if x >= 0 else -x
        return np.float64(s)
    if code == L3:
        s = np.int64(0)
        for d in range(n):
            x = np.int64(a[d]) - np.int64(b[d])
            x = x if x >= 0 else -x
            s += x * x * x
        return np.float64(s)
    if code == LINF:
        m = np.int32(0)
        for d in range(n):
            x = np.int32(a[d]) - np.int32(b[d])
            x = x if x >= 0 else -x
            if x > m:
                m = x
        return np.float64(m)
    if code == COS:
        dot = np.int64(0)
        na = np.int64(0)
        nb = np.int64(0)
        for d in range(n):
            x = np.int64(a[d])
            y = np.int64(b[d])
            dot += x * y
            na += x * x
            nb += y * y
        return _cosine_from_dot(np.float64(dot), np.float64(na), np.float64(nb))
    s = 0.0
    for d in range(n):
        x = abs(np.float64(a[d]) - np.float64(b[d]))
        s += x**p
    return s


@njit(inline="always")
def _power_sum_f8(a, b, code, p):
    """Power sum of two float64 rows."""
    n = a.shape[0]
    s = 0.0
    if code == L2:
        for d in range(n):
            x = a[d] - b[d]
            s += x * x
    elif code == L1:
        for d in range(n):
            s += abs(a[d] - b[d])
    elif code == L3:
        for d in range(n):
            x = abs(a[d] - b[d])
            s += x * x * x
    elif code == LINF:
        for d in range(n):
            x = abs(a[d] - b[d])
            if x > s:
                s = x
    elif code == COS:
        dot = 0.0
        na = 0.0
        nb = 0.0
        for d in range(n):
            dot += a[d] * b[d]
            na += a[d] * a[d]
            nb += b[d] * b[d]
        s = _cosine_from_dot(dot, na, nb)
    else:
        for d in range(n):
            s += abs(a[d] - b[d]) ** p
    return s


@njit(inline="always")
def _cosine_from_dot(dot, na, nb):
    # As scikit-learn: a zero vector has cosine distance 1 to everything; the result is clipped to [0, 2].
    if na == 0.0 or nb == 0.0:
        return 1.0
    c = 1.0 - dot / (math.sqrt(na) * math.sqrt(nb))
    return min(max(c, 0.0), 2.0)


def power_sum(a, b, code, p):
    """The quantity a metric ranks by: sum |a - b|**p (p = 1, 2, 3, ...), max |a - b|, or 1 - cos.

    Compiled for uint8 rows (exact integer sums) and float64 rows; callable from compiled code only.
    """
    raise NotImplementedError("power_sum is compiled into numba kernels; use pairwise_distances().")


@overload(power_sum)
def _power_sum_overload(a, b, code, p):
    if a.dtype == types.uint8:
        return lambda a, b, code, p: _power_sum_u8(a, b, code, p)
    return lambda a, b, code, p: _power_sum_f8(a, b, code, p)


@njit(parallel=True, cache=True)
def _pairwise(X, Y, code, p, out):
    for i in prange(X.shape[0]):
        for j in range(Y.shape[0]):
            out[i, j] = power_sum(X[i], Y[j], code, p)


def finish_array(s, code, p):
    """From power sums to distances (the p-th root), in numpy: the one place this rounding happens."""
    if code == L2:
        return np.sqrt(s)
    if code == L3:
        return np.cbrt(s)
    if code == LP:
        return s ** (1.0 / p)
    return s


def as_rows(X, name):
    """Validate an image array and return it as C-contiguous rows: uint8 when the values allow, else float64.

    Integer-valued arrays in 0..255 (of any dtype) become uint8, on which every kernel is exact.
    """
    X = np.asarray(validation.not_masked(X, name))
    if X.ndim < 2:
        raise ValueError(f"{name} must have shape (n_samples, n_features) or (n, height, width); got shape {X.shape}.")
    if X.shape[0] == 0 or X.size == 0:
        raise ValueError(f"{name} is empty (shape {X.shape}); expected at least one sample and one feature.")
    if X.dtype == bool:
        X = X.view(np.uint8)
    if X.dtype.kind not in "uif":
        raise ValueError(f"{name} must hold numbers; got dtype {X.dtype}.")
    X = X.reshape(X.shape[0], -1)
    if X.dtype == np.uint8:
        return np.ascontiguousarray(X)
    if X.dtype.kind == "f" and not np.isfinite(X).all():
        raise ValueError(f"{name} contains NaN or infinity; expected finite numbers.")
    lo, hi = X.min(), X.max()
    if lo >= 0 and hi <= 255 and (X.dtype.kind in "ui" or np.array_equal(X, np.round(X))):
        return np.ascontiguousarray(X, dtype=np.uint8)
    return np.ascontiguousarray(X, dtype=np.float64)


def common_rows(X, Y, names=("X", "Y")):
    """Validate two image arrays and bring them to one kernel dtype (uint8 if both allow, else float64)."""
    X = as_rows(X, names[0])
    Y = as_rows(Y, names[1])
    if X.shape[1] != Y.shape[1]:
        raise ValueError(
            f"{names[1]} has {Y.shape[1]} features (pixels) per sample; {names[0]} has {X.shape[1]}."
        )
    if X.dtype != Y.dtype:
        X, Y = X.astype(np.float64), Y.astype(np.float64)
    return X, Y


def pairwise_distances(X, Y, metric="euclidean", p=2):
    """Distances between every row of ``X`` and every row of ``Y``.

    Parameters
    ----------
    X : array-like of shape (n_x, n_pixels) or (n_x, height, width)
    Y : array-like of shape (n_y, n_pixels) or (n_y, height, width)
    metric : {"euclidean", "manhattan", "minkowski", "chebyshev", "cosine"}, default="euclidean"
    p : float, default=2
        Exponent of the minkowski metric (p >= 1).

    Returns
    -------
    D : ndarray of shape (n_x, n_y), float64
        Exact for integer images (0..255) up to the final root (one rounding).

    Notes
    -----
    Memory is the output alone; use :func:`mnist_knn.kneighbors` for the nearest neighbours of many
    queries, which never holds all distances.
    """
    code, p = metric_code(metric, p)
    X, Y = common_rows(X, Y)
    scale = 1.0
    if X.dtype == np.float64:
        amax = max(float(np.abs(X).max()), float(np.abs(Y).max()))
        if amax > 2.0**60 or 0.0 < amax < 2.0**-60:  # keep the power sums in range (as the search)
            scale = math.ldexp(1.0, -math.frexp(amax)[1])
            X, Y = X * scale, Y * scale
    out = np.empty((X.shape[0], Y.shape[0]), dtype=np.float64)
    _pairwise(X, Y, code, p, out)
    out = finish_array(out, code, p)
    return out if scale == 1.0 or code == COS else out / scale


def thread_count():
    """Number of threads the compiled kernels use (``numba.get_num_threads()``)."""
    return numba.get_num_threads()
