"""Writer adaptation: a writer's own first digits join the training set, with no refit (notebook 07).

k-NN has no training step: to learn from new labelled digits it only stores them. Here each test writer's
first ``m`` digits (in file order), once labelled, join the 60,000 training digits, and the writer's other
digits are classified again. A query's neighbours are the nearer of its ``k`` nearest training digits (a
search made once, without the writer's digits) and its writer's own stored digits, so nothing is searched
twice.

- :func:`first_digits`: which digits are each writer's first ``m``;
- :func:`adapted_neighbors`: the ``k`` nearest among the training digits and the writer's first ``m``.
"""

import numpy as np

from .. import validation
from ..engine.distances import pairwise_distances

__all__ = ["adapted_neighbors", "first_digits"]


def first_digits(writers, m):
    """Mask of each writer's first ``m`` digits, in the order of ``writers``.

    Examples
    --------
    >>> first_digits(np.array([7, 7, 3, 7, 3]), 1).tolist()
    [True, False, True, False, False]
    """
    writers = np.asarray(writers)
    if writers.ndim != 1:
        raise ValueError(f"writers must be 1-D, one per digit; got shape {writers.shape}.")
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 0:
        raise ValueError(f"m must be an integer >= 0; got m={m!r}.")
    order = np.argsort(writers, kind="stable")
    sorted_writers = writers[order]
    starts = np.r_[0, np.flatnonzero(sorted_writers[1:] != sorted_writers[:-1]) + 1]
    rank = np.arange(len(writers)) - np.repeat(starts, np.diff(np.r_[starts, len(writers)]))
    mask = np.zeros(len(writers), dtype=bool)
    mask[order] = rank < m
    return mask


def adapted_neighbors(distances, indices, X_query, writers, m, n_train, *, metric="euclidean", p=2):
    """Each query's ``k`` nearest among the training digits and its writer's first ``m`` digits (never itself).

    Parameters
    ----------
    distances, indices : ndarray of shape (n_query, k)
        The queries' ``k`` nearest training digits, nearest first (from
        :func:`~mnist_knn.engine.search.kneighbors`, with the same metric).
    X_query : array-like of shape (n_query, n_pixels) or (n_query, height, width)
        The queries (e.g. the test digits).
    writers : array-like of shape (n_query,)
        Writer of each query.
    m : int
        How many of each writer's first digits (in the order of ``X_query``) join the training set.
    n_train : int
        Number of training digits: a stored query ``j`` gets the index ``n_train + j``, so that
        ``np.concatenate([y_train, y_query])`` labels every index.
    metric, p
        As in the search.

    Returns
    -------
    distances : ndarray of shape (n_query, k), float64
    indices : ndarray of shape (n_query, k), int64
        Nearest first; on equal distances the training digits (found by the search, in its order) come
        before the writer's own digits (in file order).

    Examples
    --------
    Four queries; writer 0 wrote rows 0 and 3, writer 1 rows 1 and 2; each query's nearest training digit:

    >>> X = np.array([[0], [10], [11], [3]], dtype=np.uint8)
    >>> d, i = np.array([[5.0], [1.0], [1.0], [4.0]]), np.array([[0], [1], [1], [0]])
    >>> dd, ii = adapted_neighbors(d, i, X, np.array([0, 1, 1, 0]), 1, n_train=100)
    >>> ii.ravel().tolist(), dd.ravel().tolist()  # row 3 finds its writer's first digit (row 0) at 3 < 4
    ([0, 1, 1, 100], [5.0, 1.0, 1.0, 3.0])

    Row 2 ties its writer's first digit (row 1, at 1) with its training neighbour: the training digit stays.
    """
    D = np.asarray(distances, dtype=np.float64)
    I = np.asarray(indices)
    Xq = np.asarray(X_query)
    Xq = Xq.reshape(len(Xq), -1)
    writers = np.asarray(writers)
    if D.ndim != 2 or D.shape != I.shape or len(D) != len(Xq) or writers.shape != (len(Xq),):
        raise ValueError(
            "distances and indices must have shape (n_query, k), one row per query of X_query, and writers "
            f"shape (n_query,); got {D.shape}, {I.shape}, {len(Xq)} queries and writers {writers.shape}."
        )
    if I.dtype.kind not in "iu":
        raise ValueError(f"indices must be integers; got dtype {I.dtype}.")
    n_train = validation.k_value(n_train, np.iinfo(np.int64).max, "n_train")
    if I.size and I.max() >= n_train:
        raise ValueError(f"indices must point at the n_train={n_train} training digits; got index {I.max()}.")
    stored = np.flatnonzero(first_digits(writers, m))
    k = D.shape[1]
    out_d, out_i = D.copy(), I.astype(np.int64)
    if stored.size == 0 or k == 0:
        return out_d, out_i
    for writer in np.unique(writers[stored]):
        rows = np.flatnonzero(writers == writer)
        own = stored[writers[stored] == writer]
        d_own = pairwise_distances(Xq[rows], Xq[own], metric, p)
        d_own[rows[:, None] == own[None, :]] = np.inf  # a digit is never its own neighbour
        d_all = np.concatenate([D[rows], d_own], axis=1)
        i_all = np.concatenate([I[rows].astype(np.int64), np.broadcast_to(n_train + own, d_own.shape)], axis=1)
        order = np.argsort(d_all, axis=1, kind="stable")[:, :k]  # stable: the search's digits first on a tie
        out_d[rows] = np.take_along_axis(d_all, order, axis=1)
        out_i[rows] = np.take_along_axis(i_all, order, axis=1)
    return out_d, out_i
