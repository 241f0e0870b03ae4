"""Re-ranking a shortlist: the candidates of a cheap exact search, ordered by a costlier distance.

The exact search (:mod:`.search`) finds, for every query, its ``n_cand`` nearest training rows under
a plain metric (the *candidates*). The functions here order those candidates by something else:

- :func:`rerank_by_metric`: the exact distance of another Minkowski metric (for exponents the full
  search is too slow for);
- :func:`nearest_candidates`: any precomputed distance (the deformation-tolerant ones of
  :mod:`.shift`, :mod:`.tangent` and :mod:`.idm`), keeping the ``k`` nearest;
- :func:`cached_distance`: such a distance stored on disk, so a warm notebook run is quick.

Neither is an exact search: a training row missing from the shortlist is never considered.
"""

import functools
from pathlib import Path

import numba
import numpy as np

from .. import validation
from ..paths import CACHE_DIR
from ..progress import progress_chunks
from ..store import cached_arrays, digest
from .distances import LP, common_rows, finish_array, metric_code, power_sum, thread_count

__all__ = [
    "DEFORM_CACHE_VERSION",
    "cached_distance",
    "candidate_images",
    "float_images",
    "function_identity",
    "nearest_candidates",
    "query_chunks",
    "rerank_by_metric",
    "used_training_images",
]

#: Bump when a change to a deformation kernel could change any cached distance.
DEFORM_CACHE_VERSION = 1


def query_chunks(n_query, desc):
    """``(start, stop)`` chunks of the queries for a re-ranking kernel (:func:`~mnist_knn.progress.progress_chunks`).

    One chunk, so one call of the compiled kernel, unless a progress bar is shown (in JupyterLab); then
    up to 50 chunks of at least 64 queries per thread. Every query's distances are computed by one
    thread, independently of the others, so the result is the same to the bit either way.
    """
    return progress_chunks(n_query, min_size=64 * thread_count(), desc=desc, unit="query")


def candidate_images(X_train, X_query, candidates):
    """Validate the arguments every deformation distance takes.

    Returns
    -------
    X_train, X_query : ndarray of shape (n, height, width)
        C-contiguous, of one dtype: float32 stays float32 (unless the other is float64), integers
        become float64 (exactly).
    candidates : ndarray of shape (n_query, n_cand), int64
    """
    X_train = float_images(X_train, "X_train")
    X_query = float_images(X_query, "X_query")
    if X_train.shape[1:] != X_query.shape[1:]:
        raise ValueError(f"X_query has images of shape {X_query.shape[1:]}; X_train has {X_train.shape[1:]}.")
    dtype = np.result_type(X_train.dtype, X_query.dtype)
    candidates = validation.candidate_indices(candidates, len(X_query), len(X_train))
    return X_train.astype(dtype, copy=False), X_query.astype(dtype, copy=False), candidates


def float_images(X, name="X"):
    """Images ``(n, height, width)`` (or flat squares) for the deformation kernels: float32 stays, integers
    become float64 (exactly), other dtypes are refused."""
    X = validation.images(X, name)
    if X.dtype.kind in "iu":
        X = X.astype(np.float64)
    elif X.dtype not in (np.float32, np.float64):
        raise ValueError(f"{name} must hold float32, float64 or integer pixels; got dtype {X.dtype}.")
    return np.ascontiguousarray(X)


def used_training_images(X_train, candidates):
    """The training images that appear in ``candidates``, and candidates as indices into them.

    Features (gradients, tangents) are then computed only for the images actually compared.
    """
    used, local = np.unique(candidates, return_inverse=True)
    return np.ascontiguousarray(X_train[used]), local.reshape(candidates.shape).astype(np.int64)


@numba.njit(parallel=True, cache=True)
def _candidate_sums(Xq, Xt, indices, code, p, out):
    for r in numba.prange(indices.shape[0]):
        for c in range(indices.shape[1]):
            out[r, c] = power_sum(Xq[r], Xt[indices[r, c]], code, p)


@numba.njit(parallel=True, cache=True)
def _candidate_sums_int(Xq, Xt, indices, p, out):
    """Exact sum |a - b|**p of uint8 rows for an integer p <= 6 (at most 784 * 255**6 < 2**63 per
    row of 784 pixels), by repeated multiplication in int64."""
    for r in numba.prange(indices.shape[0]):
        a = Xq[r]
        for c in range(indices.shape[1]):
            b = Xt[indices[r, c]]
            s = np.int64(0)
            for d in range(a.shape[0]):
                x = np.int64(a[d]) - np.int64(b[d])
                x = x if x >= 0 else -x
                t = x
                for _ in range(p - 1):
                    t *= x
                s += t
            out[r, c] = s


def rerank_by_metric(X_train, X_query, indices, metric="minkowski", p=2):
    """Re-order each query's candidate neighbours by another metric (a shortlist re-ranking).

    Not an exact search: a training row missing from the shortlist is never considered. It is the
    exact ranking *of the candidates*: for uint8 images the power sums are exact integers for
    p = 1, 2, 3 and for integer p up to 6 (int64), otherwise they are summed in float64, as in
    :func:`~mnist_knn.kneighbors`; equal distances keep the lower training index first.

    Parameters
    ----------
    X_train : array-like of shape (n_train, n_pixels) or (n_train, height, width)
    X_query : array-like of shape (n_query, n_pixels) or (n_query, height, width)
    indices : ndarray of shape (n_query, n_candidates)
        Candidate training rows of each query, e.g. the indices of an L3 search.
    metric, p
        As in :func:`~mnist_knn.kneighbors`.

    Returns
    -------
    distances : ndarray of shape (n_query, n_candidates), float64
        Nearest first.
    indices : ndarray of shape (n_query, n_candidates), int64
    """
    code, p = metric_code(metric, p)
    Xt, Xq = common_rows(X_train, X_query, names=("X_train", "X_query"))
    indices = np.asarray(indices, dtype=np.int64)
    if indices.ndim != 2 or indices.shape[0] != Xq.shape[0]:
        raise ValueError(f"indices must have shape (n_query={Xq.shape[0]}, n_candidates); got {indices.shape}.")
    if indices.size and not (0 <= indices.min() and indices.max() < Xt.shape[0]):
        raise ValueError(f"indices must be training rows in [0, {Xt.shape[0]}).")
    exact = code == LP and Xt.dtype == np.uint8 and p == int(p) and p <= 6 and Xt.shape[1] <= 784
    sums = np.empty(indices.shape, dtype=np.int64 if exact else np.float64)
    for a, b in query_chunks(len(Xq), f"re-ranking by {metric}"):
        if exact:
            _candidate_sums_int(Xq[a:b], Xt, indices[a:b], int(p), sums[a:b])
        else:
            _candidate_sums(Xq[a:b], Xt, indices[a:b], code, p, sums[a:b])
    order = np.lexsort((indices, sums), axis=1) if indices.size else indices
    sums = np.take_along_axis(sums, order, axis=1).astype(np.float64)
    return finish_array(sums, code, p), np.take_along_axis(indices, order, axis=1)


def nearest_candidates(distance_values, candidates, k):
    """Sort candidates by a new distance and keep the ``k`` nearest.

    Parameters
    ----------
    distance_values : array-like of shape (n_query, n_cand)
        The new distance of every candidate, e.g. from :func:`idm_distance`.
    candidates : array-like of shape (n_query, n_cand)
        Training indices, in the order of the search that produced them
        (nearest first).
    k : int
        Number of neighbours to keep, ``1 <= k <= n_cand``.

    Returns
    -------
    distances : ndarray of shape (n_query, k), float64
        The ``k`` smallest distance values of every row, in increasing order.
    indices : ndarray of shape (n_query, k), int64
        The training indices they belong to.

    Raises
    ------
    ValueError
        If the shapes differ, ``k`` is out of range, a distance is NaN, or +inf is among
        the ``k`` nearest of a row (the mark of a pair abandoned by
        ``idm_distance(..., keep=...)``: ask for at most ``keep``).

    Notes
    -----
    The sort is stable: candidates at an equal new distance keep their original order,
    so ties go to the candidate that the first search ranked higher.
    """
    D = np.asarray(distance_values, dtype=np.float64)
    candidates = np.asarray(candidates)
    if D.ndim != 2 or D.shape != candidates.shape:
        raise ValueError(
            "distance_values and candidates must both have shape (n_query, n_cand); "
            f"got {D.shape} and {candidates.shape}."
        )
    if candidates.dtype.kind not in "iu":
        raise ValueError(f"candidates must hold integer indices; got dtype {candidates.dtype}.")
    n_cand = D.shape[1]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n_cand:
        raise ValueError(f"k must be an integer in [1, n_cand={n_cand}]; got k={k!r}.")
    if np.isnan(D).any():
        raise ValueError("distance_values contains NaN.")
    order = np.argsort(D, axis=1, kind="stable")[:, :k]
    nearest = np.take_along_axis(D, order, axis=1)
    if np.isposinf(nearest).any():
        raise ValueError(
            f"distance_values has +inf among the {k} nearest of a row: +inf marks a pair that was not "
            "computed to the end (idm_distance(..., keep=...) abandons pairs farther than the keep-th "
            f"nearest), so at most keep neighbours are known; asked for k={k}."
        )
    return (
        nearest,
        np.take_along_axis(candidates, order, axis=1).astype(np.int64),
    )


def cached_distance(distance, X_train, X_query, candidates, *, cache=True, **params):
    """``distance(X_train, X_query, candidates, **params)``, stored on disk and loaded when warm.

    Parameters
    ----------
    distance : callable
        One of :func:`shift_distance`, :func:`tangent_distance`, :func:`idm_distance` (or any
        function with the same first three arguments returning an (n_query, n_cand) array).
    X_train, X_query, candidates
        As for ``distance``.
    cache : bool or path-like, default=True
        ``True`` stores under ``data/cache/``; a path stores there; ``False`` only computes.
    **params
        Keyword arguments of ``distance``.

    Returns
    -------
    D : ndarray of shape (n_query, n_cand), float64

    Raises
    ------
    ValueError
        With ``cache`` on, for a ``distance`` that a key cannot identify across runs (a lambda, a
        function defined inside another, a callable object) or a parameter whose ``repr`` is not
        stable (one that shows a memory address): two such calls could share one file and return
        each other's distances. Pass ``cache=False`` for those.

    Notes
    -----
    The file name (``.npz``) is a hash of the function's full name (module and qualified name; for
    a :func:`functools.partial`, the wrapped function's, with its bound arguments),
    ``DEFORM_CACHE_VERSION``, the three arrays (dtype, shape and bytes) and the parameters; a change
    to any of them computes afresh. A file that cannot be read or does not hold a float64 array of
    the candidates' shape with no NaN is recomputed and replaced; a new file is written atomically.
    """
    if not cache:
        return distance(X_train, X_query, candidates, **params)
    arrays = [np.asarray(a) for a in (X_train, X_query, candidates)]
    name = function_identity(distance)
    setting = repr(sorted((key, _stable_repr(value, key)) for key, value in params.items()))
    short = name.rpartition(".")[2].replace("(", "-").replace(")", "")[:40]
    key = f"{short}-v{DEFORM_CACHE_VERSION}-{digest(*arrays, np.frombuffer((name + setting).encode(), np.uint8))}"
    path = Path(CACHE_DIR if cache is True else cache) / f"{key}.npz"

    def accept(stored):
        D = stored.get("distances")
        if D is None or D.shape != arrays[2].shape or D.dtype != np.float64 or np.isnan(D).any():
            return None
        return {"distances": D}

    compute = lambda: {"distances": np.asarray(distance(*arrays, **params), dtype=np.float64)}  # noqa: E731
    return cached_arrays(path, compute, accept=accept)["distances"]


def _stable_repr(value, name):
    text = repr(value)
    if " at 0x" in text:
        raise ValueError(
            f"cannot cache by parameter {name}={text}: its repr shows a memory address, so it does not "
            "identify the value across runs; pass plain values or cache=False."
        )
    return text


def function_identity(func):
    """A name that identifies ``func`` across runs: ``module.qualname``, partials with their arguments.

    Raises ValueError for what no name identifies: lambdas, functions defined inside functions, and
    other callables (their ``repr`` would differ between runs, or two of them would share a name).

    Examples
    --------
    >>> import functools
    >>> from mnist_knn.engine.idm import idm_distance
    >>> function_identity(functools.partial(idm_distance, warp=1))
    "functools.partial(mnist_knn.engine.idm.idm_distance, (), [('warp', '1')])"
    """
    if isinstance(func, functools.partial):
        inner = function_identity(func.func)
        args = tuple(_stable_repr(a, "args") for a in func.args)
        keywords = sorted((k, _stable_repr(v, k)) for k, v in func.keywords.items())
        return f"functools.partial({inner}, {args}, {keywords})"
    module = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", None)
    if not (module and qualname) or "<lambda>" in qualname or "<locals>" in qualname:
        raise ValueError(
            f"cannot cache distances of {func!r}: only a module-level function (or a functools.partial "
            "of one) has a name that identifies it across runs; pass cache=False."
        )
    return f"{module}.{qualname}"
