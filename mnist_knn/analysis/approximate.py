"""Approximate nearest-neighbour search with faiss: HNSW and IVF indexes, their recall and speed (notebook 07).

Exact search compares every query with every stored digit. Approximate indexes look at a fraction:

- HNSW (Malkov & Yashunin, *IEEE TPAMI* 42, 2020): a layered graph of near neighbours, walked
  greedily; ``M`` links per node, ``ef_construction`` candidates while building, ``ef_search`` while
  searching (more: higher recall, slower);
- IVF (Jégou et al., *IEEE TPAMI* 33, 2011): the digits bucketed by their nearest of ``nlist`` k-means
  centres; a query scans the ``nprobe`` nearest buckets.

Both compare squared L2 distances in float32. :func:`recall` measures how many of the exact ``k``
nearest neighbours (:func:`~mnist_knn.engine.search.kneighbors`) an approximate search finds, and
:func:`timed_search` the query time, best of a few repeats. A notebook then asks whether classification
error rises before recall falls.

faiss (``faiss-cpu``) is imported only inside the functions: the package imports without it, and the
functions raise an :class:`ImportError` saying how to install it. Indexes are built with one thread
(faiss's parallel HNSW insertion depends on thread timing, so a multi-threaded build is not
reproducible); searches use :data:`FAISS_THREADS`, which returns the same neighbours.
"""

import time

import numpy as np

from .. import validation

__all__ = [
    "FAISS_THREADS", "IVF_SEED", "approximate_kneighbors", "hnsw_index", "index_bytes", "ivf_index", "recall",
    "timed_search",
]

#: Threads faiss uses for searching: the machine's two cores.
FAISS_THREADS = 2
#: Seed of IVF's k-means (faiss's clustering seed).
IVF_SEED = 2026


def _faiss():
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("approximate search needs faiss: pip install faiss-cpu==1.15.1") from exc
    return faiss


def _rows(X, name):
    """Rows as C-contiguous float32 (faiss's only input type)."""
    X = np.asarray(validation.not_masked(X, name))
    if X.ndim == 3:
        X = X.reshape(len(X), -1)
    X = validation.feature_matrix(X, name)
    if len(X) == 0:
        raise ValueError(f"{name} must hold at least one row.")
    return np.ascontiguousarray(X, dtype=np.float32)


def _positive(value, name):
    return validation.k_value(value, np.iinfo(np.int32).max, name)


def _with_threads(faiss, n, func):
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n)
    try:
        return func()
    finally:
        faiss.omp_set_num_threads(previous)


def hnsw_index(X_train, *, M=32, ef_construction=40):
    """A faiss ``IndexHNSWFlat`` of the training rows (L2), built with one thread.

    Parameters
    ----------
    X_train : array-like of shape (n_train, n_pixels) or (n_train, height, width)
    M : int, default=32
        Links per node.
    ef_construction : int, default=40
        Candidate-list length while inserting.

    Returns
    -------
    faiss.IndexHNSWFlat
    """
    faiss = _faiss()
    X = _rows(X_train, "X_train")
    M, ef_construction = _positive(M, "M"), _positive(ef_construction, "ef_construction")
    index = faiss.IndexHNSWFlat(X.shape[1], M)
    index.hnsw.efConstruction = ef_construction
    _with_threads(faiss, 1, lambda: index.add(X))
    return index


def ivf_index(X_train, *, nlist=256, seed=IVF_SEED):
    """A faiss ``IndexIVFFlat`` of the training rows (L2): k-means with ``nlist`` centres (seeded), one
    thread.

    Parameters
    ----------
    X_train : array-like of shape (n_train, n_pixels) or (n_train, height, width)
    nlist : int, default=256
        Buckets (k-means centres); at most the number of rows.
    seed : int, default=IVF_SEED

    Returns
    -------
    faiss.IndexIVFFlat
    """
    faiss = _faiss()
    X = _rows(X_train, "X_train")
    nlist = validation.k_value(nlist, len(X), "nlist")
    quantizer = faiss.IndexFlatL2(X.shape[1])
    index = faiss.IndexIVFFlat(quantizer, X.shape[1], nlist)
    index.cp.seed = int(seed)
    index.cp.min_points_per_centroid = 1  # small training sets: no warning, no subsampling surprise
    index.quantizer_trains_alone = 0

    def build():
        index.train(X)
        index.add(X)

    _with_threads(faiss, 1, build)
    return index  # faiss's Python wrapper keeps the quantizer alive as long as the index


def approximate_kneighbors(index, X_query, k, *, ef_search=None, nprobe=None):
    """The ``k`` approximate nearest neighbours of each query in ``index``.

    Parameters
    ----------
    index : faiss index
        From :func:`hnsw_index` or :func:`ivf_index`.
    X_query : array-like of shape (n_query, n_pixels) or (n_query, height, width)
    k : int
    ef_search : int, optional
        HNSW's candidate-list length while searching (at least ``k`` is sensible); HNSW indexes only.
    nprobe : int, optional
        Buckets scanned per query; IVF indexes only.

    Returns
    -------
    distances : ndarray of shape (n_query, k), float64
        Euclidean distances (the square root of faiss's float32 squared distances).
    indices : ndarray of shape (n_query, k), int64
        Training rows; -1 where the index found fewer than ``k`` neighbours.
    """
    faiss = _faiss()
    Xq = _rows(X_query, "X_query")
    if Xq.shape[1] != index.d:
        raise ValueError(f"X_query has {Xq.shape[1]} columns; the index holds rows of {index.d}.")
    k = validation.k_value(k, max(index.ntotal, 1))
    hnsw = hasattr(index, "hnsw")
    if ef_search is not None:
        if not hnsw:
            raise ValueError("ef_search applies to HNSW indexes only.")
        index.hnsw.efSearch = _positive(ef_search, "ef_search")
    if nprobe is not None:
        if not hasattr(index, "nprobe"):
            raise ValueError("nprobe applies to IVF indexes only.")
        index.nprobe = validation.k_value(nprobe, index.nlist, "nprobe")
    D, I = _with_threads(faiss, FAISS_THREADS, lambda: index.search(Xq, k))
    return np.sqrt(np.maximum(D.astype(np.float64), 0)), I.astype(np.int64)


def timed_search(index, X_query, k, *, repeats=3, **settings):
    """:func:`approximate_kneighbors`, timed: the result and the best of ``repeats`` wall-clock seconds per query."""
    repeats = _positive(repeats, "repeats")
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = approximate_kneighbors(index, X_query, k, **settings)
        best = min(best, time.perf_counter() - start)
    return result, best / len(result[1])


def recall(approximate_indices, exact_indices):
    """Share of the exact neighbours that the approximate search found: ``|A ∩ E| / k`` averaged over queries.

    Parameters
    ----------
    approximate_indices, exact_indices : array-like of int, shape (n_query, k)

    Returns
    -------
    float

    Examples
    --------
    >>> recall([[0, 1, 2], [5, 6, 9]], [[2, 1, 0], [5, 6, 7]])
    0.8333333333333334
    """
    A = np.asarray(approximate_indices)
    E = np.asarray(exact_indices)
    if A.ndim != 2 or A.shape != E.shape or A.size == 0:
        raise ValueError(f"approximate and exact indices must be non-empty 2-D arrays of one shape; "
                         f"got {A.shape} and {E.shape}.")
    if A.dtype.kind not in "iu" or E.dtype.kind not in "iu":
        raise ValueError("indices must be integers.")
    A = np.where(A < 0, -2, A)  # a missing neighbour (-1) matches nothing
    hits = (A[:, :, None] == E[:, None, :]).any(axis=1).sum(axis=1)
    return float(hits.mean() / E.shape[1])


def index_bytes(index):
    """Bytes of the serialized index: the memory it needs besides the queries."""
    faiss = _faiss()
    return int(faiss.serialize_index(index).size)
