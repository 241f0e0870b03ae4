"""Exact k-nearest-neighbour search: a fast float32 matrix product proposes, exact arithmetic decides.

How it works, for a block of query rows at a time:

1. One float32 matrix product ``G = X_query @ X_train.T`` gives every dot product, up to rounding.
   The rounding is bounded (Higham, *Accuracy and Stability of Numerical Algorithms*, Thm. 3.1:
   ``|fl(x.y) - x.y| <= gamma_n |x| |y|`` with ``gamma_n = n u / (1 - n u)`` and ``u = 2**-24``, for any
   order of summation, with or without FMA), so each product yields a *guaranteed lower bound* on the
   squared Euclidean distance ``|x|^2 + |y|^2 - 2 x.y``.
2. Every metric's distance is bounded below by a function of that squared L2 distance
   (``L1 >= L2^2 / R`` where ``R`` bounds any pixel difference; for ``p > 2`` the power-mean inequality
   ``sum |d|^p >= m^(1 - p/2) (sum d^2)^(p/2)`` with ``m`` the pixels where either image has ink;
   ``L-inf >= sqrt(L2^2 / m)``; cosine from the bounded dot product).
3. The exact distance of the few most promising training rows sets a threshold ``tau`` (the k-th best so
   far); every other training row is computed exactly only if its lower bound does not exceed ``tau``.
   On MNIST that is typically under 3% of the rows for L1 and L3, and a handful for L2.

The result is exact: the k smallest distances, ties ordered by training index (the lower index first),
independent of block size, thread count and the order of the queries. For integer images (0..255)
the ranked quantities (sum of squares, of absolute values, of cubes) are exact integers.

How the work is shared: each of ``numba.get_num_threads()`` threads takes the next block of query rows,
multiplies it with a single-threaded BLAS, runs steps 1-3 on it, and takes the next. Both the product and
the search so run on every core at once. Left to itself, the BLAS would multiply each block with all its
threads and keep them spinning for more work while the compiled search ran: measured on 2 cores, that
spinning doubled the search's time (0.87 s instead of 0.39 s of a full MNIST search). The product also
skips every pixel that is blank in all training images or in all queries (118 of MNIST's 784 pixels):
those pixels add nothing to any dot product. The calling thread only waits for the workers; in JupyterLab it
also draws a progress bar, once a search has lasted a few seconds (:mod:`mnist_knn.progress`).

Peak memory beyond the inputs: a float32 copy of the training set's inked pixels (4 bytes per pixel: 160 MB
for MNIST), the float32 products of ``block_size`` query rows against the training set (split between the
threads; by default the larger of 246 MB and 1,024 rows), a float32 copy of those query rows, and the
(n_query, k) results, whatever the number of queries. The buffers are kept for the next call (memory fresh
from the operating system is slow to touch); ``mnist_knn.engine.search.release_buffers()`` frees them.

Why the default block grows as the training set shrinks: every block costs a matrix product with a fixed
cost independent of the block's size, which dominates against a few hundred training rows (with fixed
512-row blocks, the thread launches and products cost some 50 us per query, more than the search itself).
"""

import contextlib
import math
import os
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path

import numpy as np
from numba import njit, prange
from threadpoolctl import ThreadpoolController

from .. import progress, validation
from ..paths import CACHE_DIR
from ..store import cached_arrays, digest
from .distances import COS, L1, L2, LINF, LP, common_rows, finish_array, metric_code, power_sum, thread_count

DEFAULT_BLOCK_SIZE = 1024  # the fewest query rows per block by default (shared between the threads)
# Default memory budget for one block's float32 products and query copy, in values: the 1,024 x 60,000
# product buffer of a full MNIST search (246 MB). A smaller training set gets proportionally more rows.
_BLOCK_VALUES = DEFAULT_BLOCK_SIZE * 60_000
CACHE_VERSION = 1  # bump when a change to the search could change any cached result

_U = 2.0**-24  # unit roundoff of float32


@njit(inline="always")
def _before(s1, j1, s2, j2):
    """(s1, j1) < (s2, j2) lexicographically: smaller distance first, then smaller training index."""
    return s1 < s2 or (s1 == s2 and j1 < j2)


@njit(inline="always")
def _push(heap_s, heap_i, s, j):
    """Keep the n smallest (s, j) seen so far in a max-heap (largest at position 0).

    If (s, j) comes before the largest entry, it replaces it and sinks to its place: O(log n) per
    insertion, where a sorted array costs O(n), which matters for the long candidate lists of large k.
    """
    n = heap_s.shape[0]
    if not _before(s, j, heap_s[0], heap_i[0]):
        return
    pos = 0
    while True:
        child = 2 * pos + 1
        if child >= n:
            break
        if child + 1 < n and _before(heap_s[child], heap_i[child], heap_s[child + 1], heap_i[child + 1]):
            child += 1
        if not _before(s, j, heap_s[child], heap_i[child]):
            break
        heap_s[pos] = heap_s[child]
        heap_i[pos] = heap_i[child]
        pos = child
    heap_s[pos] = s
    heap_i[pos] = j


@njit(inline="always")
def _sorted_into(heap_s, heap_i, out_s, out_i):
    """Write the heap's entries in lexicographic (s, j) order: by index, then stably by distance."""
    by_index = np.argsort(heap_i, kind="mergesort")
    order = by_index[np.argsort(heap_s[by_index], kind="mergesort")]
    for pos in range(order.shape[0]):
        out_s[pos] = heap_s[order[pos]]
        out_i[pos] = heap_i[order[pos]]


@njit(inline="always")
def _lower_bound(code, p, l2lb, g_hi, xnorm, tnorm, m, R):
    """A lower bound on the metric's power sum from a lower bound on the squared L2 distance."""
    if code == L2:
        return l2lb
    if code == COS:
        if xnorm == 0.0 or tnorm == 0.0:
            return 1.0
        return max(0.0, 1.0 - g_hi / (xnorm * tnorm))
    if l2lb <= 0.0:
        return 0.0
    if code == L1:
        return l2lb / R
    if code == LP and p < 2.0:
        return l2lb * R ** (p - 2.0)
    if code == LINF:
        return math.sqrt(l2lb / m)
    # L3 and minkowski p > 2: power-mean inequality over the m pixels that can differ.
    return m ** (1.0 - 0.5 * p) * l2lb ** (0.5 * p)


@njit(inline="always")
def _l2_threshold(code, p, tau, R, n_feat):
    """The largest squared-L2 lower bound that can still pass ``_lower_bound(...) <= tau``.

    A cheap first filter (one comparison per training row); rows that pass it are checked with the
    exact bound, then computed exactly.
    """
    tau = tau + 1e-9 * abs(tau) + 1e-12
    if code == L2:
        return tau
    if code == L1:
        return tau * R
    if code == LP and p < 2.0:
        return tau * R ** (2.0 - p)
    if code == LINF:
        return tau * tau * n_feat
    # L3 and p > 2: m <= n_feat pixels can differ.
    return tau ** (2.0 / p) * n_feat ** (1.0 - 2.0 / p)


_SCREEN_ROWS = 32  # training rows screened together: their minimum score, then a look at the few that pass


@njit(nogil=True, cache=True, error_model="numpy")  # x / 0 gives inf, as in a parallel kernel
def _search_block(G, Xq, Xt, qn, tn, tnorm, qnnz, tnnz, gamma, R, code, p, k, C, out_s, out_i, halt):
    """Steps 1-3 for one block of query rows, on one thread (``_search`` runs one block per thread).

    Returns early, leaving the rest of the block undone, once ``halt[0]`` is set (by another thread, on an
    error or an interrupt): a block never holds up a Ctrl-C for longer than one query row."""
    n_train = Xt.shape[0]
    n_feat = Xt.shape[1]
    max_tnorm = tnorm.max()
    for r in range(G.shape[0]):
        if halt[0]:
            return
        g = G[r]
        xq = Xq[r]
        xn = qn[r]
        xnorm = math.sqrt(xn)
        slack = 2.0 * gamma * xnorm
        # 1. The C most promising training rows by the approximate score (cand_* and best_* are max-heaps
        #    of the C, then k, lexicographically smallest (score, index) pairs, sorted at the very end).
        cand_s = np.full(C, np.inf)
        cand_i = np.full(C, n_train, dtype=np.int64)
        sc = np.empty(_SCREEN_ROWS)
        for j0 in range(0, n_train, _SCREEN_ROWS):
            j1 = min(j0 + _SCREEN_ROWS, n_train)
            lo = np.inf
            for j in range(j0, j1):
                if code == COS:
                    v = -np.float64(g[j]) / tnorm[j] if tnorm[j] > 0.0 else 0.0
                else:
                    v = tn[j] - 2.0 * np.float64(g[j])
                sc[j - j0] = v
                lo = min(lo, v)
            if lo < cand_s[0]:
                for j in range(j0, j1):
                    if sc[j - j0] < cand_s[0]:
                        _push(cand_s, cand_i, sc[j - j0], j)
        # 2. Their exact distances give the first threshold.
        best_s = np.full(k, np.inf)
        best_i = np.full(k, n_train, dtype=np.int64)
        for c in range(C):
            j = cand_i[c]
            _push(best_s, best_i, power_sum(xq, Xt[j], code, p), j)
        tau = best_s[0]
        t2 = _l2_threshold(code, p, tau, R, n_feat)
        # Shortcut: every row outside the candidates scores at least cand_s[0]; if even that
        # row's lower bound clears the threshold, the candidates already hold the answer.
        if code != COS and C < n_train and xn + cand_s[0] - slack * max_tnorm > t2:
            _sorted_into(best_s, best_i, out_s[r], out_i[r])
            continue
        # 3. Every other row whose lower bound does not exceed the threshold is computed exactly.
        cand_sorted = np.sort(cand_i)
        for j0 in range(0, n_train, _SCREEN_ROWS):
            j1 = min(j0 + _SCREEN_ROWS, n_train)
            if code != COS:
                lo = np.inf
                for j in range(j0, j1):
                    v = tn[j] - 2.0 * np.float64(g[j]) - slack * tnorm[j]
                    sc[j - j0] = v
                    lo = min(lo, v)
                if xn + lo > t2:
                    continue
            for j in range(j0, j1):
                if code != COS:
                    l2lb = xn + sc[j - j0]
                    if l2lb > t2:
                        continue
                else:
                    l2lb = 0.0
                g_hi = np.float64(g[j]) + gamma * xnorm * tnorm[j]
                m = min(n_feat, qnnz[r] + tnnz[j])
                lb = _lower_bound(code, p, l2lb, g_hi, xnorm, tnorm[j], m, R)
                if lb - 1e-9 * abs(lb) - 1e-12 > tau:
                    continue
                at = np.searchsorted(cand_sorted, j)
                if at < C and cand_sorted[at] == j:  # already computed in step 2
                    continue
                _push(best_s, best_i, power_sum(xq, Xt[j], code, p), j)
                if best_s[0] < tau:
                    tau = best_s[0]
                    t2 = _l2_threshold(code, p, tau, R, n_feat)
        _sorted_into(best_s, best_i, out_s[r], out_i[r])


@njit(parallel=True, cache=True)
def _row_stats(X, sq, nnz):
    for i in prange(X.shape[0]):
        s = 0.0
        c = 0
        for d in range(X.shape[1]):
            v = np.float64(X[i, d])
            s += v * v
            if v != 0.0:
                c += 1
        sq[i] = s
        nnz[i] = c


def _gather_columns_py(X, columns, out):
    """``out[:] = X[:, columns]`` converted to out's type, in one pass (numpy's fancy indexing and a
    separate conversion take several times longer)."""
    for i in prange(X.shape[0]):
        for c in range(columns.shape[0]):
            out[i, c] = X[i, columns[c]]


_gather_columns = njit(parallel=True, cache=True)(_gather_columns_py)  # the training set, once per search
_gather_columns_1 = njit(nogil=True, cache=True)(_gather_columns_py)  # a query block, inside its thread


def _stats(X):
    sq = np.empty(X.shape[0], dtype=np.float64)
    nnz = np.empty(X.shape[0], dtype=np.int64)
    _row_stats(X, sq, nnz)
    return sq, nnz


# Work buffers are kept between searches (memory fresh from the OS is slow to touch, here about
# 0.6 GB/s). Each search takes a workspace of its own for its whole duration and gives it back at the
# end, so searches running at once in several threads never share a buffer; a single search reuses the
# same workspace call after call.
_free_workspaces = []
_workspaces_lock = threading.Lock()


@contextlib.contextmanager
def _workspace():
    with _workspaces_lock:
        workspace = _free_workspaces.pop() if _free_workspaces else {}
    try:
        yield workspace
    finally:
        with _workspaces_lock:
            _free_workspaces.append(workspace)


def _buffer(workspace, name, rows, cols):
    """A float32 work buffer of shape (rows, cols) from ``workspace``, reused when large enough. Kept flat,
    so that any smaller shape reuses it (the number of inked pixels changes with the query set)."""
    buf = workspace.get(name)
    if buf is None or buf.size < rows * cols:
        workspace.pop(name, None)
        buf = workspace[name] = np.empty(rows * cols, dtype=np.float32)
    return buf[: rows * cols].reshape(rows, cols)


def release_buffers():
    """Free the work buffers kept between searches (those of searches still running are kept)."""
    with _workspaces_lock:
        _free_workspaces.clear()


def kneighbors(X_train, X_query, k, metric="euclidean", p=2, *, block_size=None, cache=False):
    """The k nearest training images of every query image, exactly.

    Parameters
    ----------
    X_train : array-like of shape (n_train, n_pixels) or (n_train, height, width)
    X_query : array-like of shape (n_query, n_pixels) or (n_query, height, width)
    k : int
        Number of neighbours, 1 <= k <= n_train.
    metric : {"euclidean", "manhattan", "minkowski", "chebyshev", "cosine"}, default="euclidean"
    p : float, default=2
        Exponent of the minkowski metric, p >= 1 (p = 1, 2, 3 and infinity use the exact special cases).
    block_size : int, optional
        Query rows per block: bounds memory at ``block_size * (n_train + n_pixels) * 4`` bytes.
        The default is 1,024, or as many rows as fit in 1,024 x 60,000 values (246 MB) if that is more: a
        small training set gets fewer, larger blocks, so less fixed cost per query. The result does not
        depend on it.
    cache : bool or path-like, default=False
        Store the result on disk (under ``data/cache/``, or the given directory) keyed by a hash of both
        arrays, ``metric``, ``p`` and the search version; a later call with the same inputs and the same or
        a smaller ``k`` loads it instead of searching.

    Returns
    -------
    distances : ndarray of shape (n_query, k), float64
        Nearest first. Exact for integer images up to the final root (one rounding).
    indices : ndarray of shape (n_query, k), int64
        Training row of each neighbour; among equal distances the lower index comes first.

    Raises
    ------
    ValueError
        If the arrays are empty, have different widths, contain NaN or infinity, or if ``k``, ``metric``
        or ``p`` is invalid.

    Notes
    -----
    scikit-learn's brute-force search returns the same neighbours except, possibly, in the order of
    training rows at *exactly* equal distance: it sorts float distances computed with its own rounding,
    so its order among exact ties is not specified (its documentation warns that results then depend on
    the order of the training data). Ours is always the lower training index first.

    Examples
    --------
    >>> import numpy as np
    >>> X_train = np.array([[0, 0], [3, 4], [1, 1], [6, 8]], dtype=np.uint8)
    >>> X_query = np.array([[0, 1], [6, 7]], dtype=np.uint8)
    >>> distances, indices = kneighbors(X_train, X_query, k=3)
    >>> indices.tolist()  # rows 0 and 2 are both at distance 1 from (0, 1): the lower index comes first
    [[0, 2, 1], [3, 1, 2]]
    >>> distances.round(3).tolist()
    [[1.0, 1.0, 4.243], [1.0, 4.243, 7.81]]
    >>> kneighbors(X_train, X_query, k=2, metric="manhattan")[0].tolist()
    [[1.0, 1.0], [1.0, 6.0]]
    """
    code, p = metric_code(metric, p)
    Xt, Xq = common_rows(X_train, X_query, names=("X_train", "X_query"))
    n_train = Xt.shape[0]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"k must be an integer in [1, n_train={n_train}]; got k={k!r}.")
    if not 1 <= k <= n_train:
        raise ValueError(f"k must be in [1, n_train={n_train}]; got k={k}.")
    k = int(k)
    if block_size is None:
        block_size = max(DEFAULT_BLOCK_SIZE, _BLOCK_VALUES // (n_train + Xt.shape[1]))
    if not (isinstance(block_size, (int, np.integer)) and block_size >= 1):
        raise ValueError(f"block_size must be a positive integer; got block_size={block_size!r}.")

    if cache:
        return _cached(Xt, Xq, k, metric, p, code, int(block_size), cache)
    return _search(Xt, Xq, k, code, p, int(block_size))


def kneighbors_loo(X, k, metric="euclidean", p=2, *, block_size=None, cache=False):
    """Leave-one-out neighbours: the k nearest *other* rows of every row of ``X``.

    One search of ``X`` against itself with ``k + 1`` neighbours, with each row's own index removed
    (not simply the first column: an exact duplicate with a lower index comes before the row itself).
    Used to choose k, metrics and preprocessing on the training set alone.

    Parameters
    ----------
    X : array-like of shape (n, n_pixels) or (n, height, width)
    k : int
        1 <= k <= n - 1.
    metric, p, block_size, cache
        As in :func:`kneighbors`.

    Returns
    -------
    distances : ndarray of shape (n, k), float64
    indices : ndarray of shape (n, k), int64
    """
    n = np.asarray(X).shape[0]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n - 1:
        raise ValueError(f"k must be an integer in [1, n - 1 = {n - 1}] for leave-one-out; got k={k!r}.")
    dist, ind = kneighbors(X, X, int(k) + 1, metric, p, block_size=block_size, cache=cache)
    drop = ind == np.arange(n)[:, None]
    # A row is missing from its own list only behind more than k exact duplicates: drop the last one.
    drop[~drop.any(axis=1), -1] = True
    keep = ~drop
    return dist[keep].reshape(n, k), ind[keep].reshape(n, k)


def _search(Xt, Xq, k, code, p, block_size):
    """The exact search of :func:`kneighbors` on validated rows (see the module docstring)."""
    if code == COS and Xt.dtype.kind == "f":
        # The cosine ignores each row's scale, but the float32 product does not: a row far below the
        # largest would underflow. Scale every row by the power of two that brings its largest magnitude
        # into [0.5, 1): exact in float64, so every cosine is unchanged to the last bit.
        Xt, Xq = _unit_scale_rows(Xt), _unit_scale_rows(Xq)
    shift = _safe_shift(Xt, Xq)
    if shift:
        # Far from unit scale the float32 product would overflow or underflow: rescale by a power of
        # two (exact in float64, so the ranking is unchanged) and scale the distances back.
        dist, ind = _search(np.ldexp(Xt, shift), np.ldexp(Xq, shift), k, code, p, block_size)
        return (dist if code == COS else np.ldexp(dist, -shift)), ind
    with _workspace() as workspace:
        return _search_in(workspace, Xt, Xq, k, code, p, block_size)


def _search_in(workspace, Xt, Xq, k, code, p, block_size):
    n_train, n_feat = Xt.shape
    tn, tnnz = _stats(Xt)
    tnorm = np.sqrt(tn)
    qn, qnnz = _stats(Xq)
    lo = min(float(Xt.min()), float(Xq.min()))
    hi = max(float(Xt.max()), float(Xq.max()))
    R = max(hi - lo, 1e-300)
    # Higham's gamma for n_feat products, two more roundings converting float64 input to float32,
    # and slack for the float64 arithmetic of the bound itself.
    n = n_feat + 4
    gamma = 1.01 * n * _U / (1.0 - n * _U)
    C = min(n_train, k + 8 if code == L2 else max(2 * k, k + 16))

    # A pixel that is blank in every training image (or in every query) adds nothing to any dot product:
    # the product skips it. On MNIST that is 67 of 784 pixels of the training set, 118 with the test set.
    inked = inked_columns(Xt, Xq)
    Xt32 = _buffer(workspace, "train32", n_train, inked.size)
    _gather_columns(Xt, inked, Xt32)
    n_query = Xq.shape[0]
    out_s = np.empty((n_query, k), dtype=np.float64)
    out_i = np.empty((n_query, k), dtype=np.int64)

    # Each thread multiplies (single-threaded BLAS) and searches its own blocks: see the module docstring.
    n_threads = thread_count()
    rows = -(-min(block_size, n_query) // n_threads)  # per block: all threads' buffers fit block_size
    starts = iter(range(0, n_query, rows))
    lock = threading.Lock()
    # Set on an error or an interrupt: every thread stops within one query row (the kernel reads it).
    halt = np.zeros(1, dtype=np.uint8)
    # Query rows searched so far, counted only for a progress bar (mnist_knn.progress; none under nbval).
    show_progress = progress.enabled()
    finished = [0]

    def work(thread):
        G = _buffer(workspace, f"G{thread}", rows, n_train)
        Q32 = _buffer(workspace, f"query32-{thread}", rows, inked.size)
        while not halt[0]:
            with lock:
                start = next(starts, None)
            if start is None:
                return
            stop = min(start + rows, n_query)
            Gb, Qb = G[: stop - start], Q32[: stop - start]
            try:
                _gather_columns_1(Xq[start:stop], inked, Qb)
                np.matmul(Qb, Xt32.T, out=Gb)
                _search_block(
                    Gb, Xq[start:stop], Xt, qn[start:stop], tn, tnorm, qnnz[start:stop], tnnz,
                    gamma, R, code, p, k, C, out_s[start:stop], out_i[start:stop], halt,
                )
            except BaseException:
                halt[0] = 1
                raise
            if show_progress:
                with lock:
                    finished[0] += stop - start

    # The calling thread only waits, so that an interrupt (Ctrl-C) reaches it at once: it stops the workers
    # through ``halt`` and waits for them. A single worker keeps the BLAS's own threads for its product.
    # It also keeps the progress bar: made only once the search has run for progress.DELAY seconds, so a
    # short search (most of them) never creates one (a notebook bar's widgets take some 4 ms to set up).
    n_workers = min(n_threads, -(-n_query // rows))
    bar, started = None, time.monotonic()
    with _single_threaded_blas() if n_workers > 1 else contextlib.nullcontext():
        pool = ThreadPoolExecutor(n_workers)
        try:
            pending = {pool.submit(work, t) for t in range(n_workers)}
            while pending:
                # Wake up often: a signal handler (Ctrl-C) runs only between the waiting thread's steps.
                done, pending = wait(pending, timeout=0.05, return_when=FIRST_EXCEPTION)
                for future in done:
                    future.result()  # re-raises a worker's exception
                if show_progress:
                    if bar is None and time.monotonic() - started >= progress.DELAY:
                        bar = progress.progress_bar(n_query, desc="exact search", unit="query",
                                                    initial=finished[0], delay=0)
                    elif bar is not None:
                        bar.update(finished[0] - bar.n)
        except BaseException:  # including KeyboardInterrupt in the waiting thread
            halt[0] = 1
            raise
        finally:
            _join(pool)
            if bar is not None:
                bar.update(finished[0] - bar.n)
                bar.close()
    return finish_array(out_s, code, p), out_i


def _join(pool):
    """Wait for every worker to return, even through further interrupts: no worker outlives its search.
    (Once ``halt`` is set, each returns within one query row and one block's matrix product.)"""
    while True:
        try:
            pool.shutdown(wait=True)
            return
        except KeyboardInterrupt:
            continue


def _single_threaded_blas():
    """A context in which the BLAS (numpy's matrix product) runs on the calling thread only."""
    global _blas_controller
    if _blas_controller is None:
        _blas_controller = ThreadpoolController()  # inspects the loaded libraries: do it once
    return _blas_controller.limit(limits=1, user_api="blas")


_blas_controller = None


def inked_columns(Xt, Xq):
    """Indices of the columns that are nonzero in at least one training row and at least one query row."""
    return np.flatnonzero(Xt.any(axis=0) & Xq.any(axis=0))


def _unit_scale_rows(X):
    """Each row times the power of two that brings its largest magnitude into [0.5, 1); zero rows stay."""
    _, exponent = np.frexp(np.abs(X).max(axis=1))
    return np.ldexp(X, -exponent[:, None])


def _safe_shift(Xt, Xq):
    """0, or the exponent e such that ``X * 2**e`` brings float data far from unit scale to a largest
    magnitude near 1 (applied with ``np.ldexp``: ``2**e`` itself overflows for subnormal data)."""
    if Xt.dtype == np.uint8:
        return 0
    amax = max(float(np.abs(Xt).max()), float(np.abs(Xq).max()))
    if amax == 0.0 or 2.0**-60 <= amax <= 2.0**60:
        return 0
    return -math.frexp(amax)[1]


# --- the on-disk cache -------------------------------------------------------------------------------


def cache_key(X_train, X_query, metric="euclidean", p=2):
    """The file name stem under which a search is cached: a hash of everything that changes the result."""
    code, p = metric_code(metric, p)
    Xt, Xq = common_rows(X_train, X_query, names=("X_train", "X_query"))
    return _cache_key(Xt, Xq, code, p)


def _cache_key(Xt, Xq, code, p):
    return f"knn-v{CACHE_VERSION}-m{code}-p{p:.17g}-{digest(Xt, Xq)}"


def _cached(Xt, Xq, k, metric, p, code, block_size, cache):
    path = Path(CACHE_DIR if cache is True else cache) / (_cache_key(Xt, Xq, code, p) + ".npz")

    def accept(stored):
        """The first k columns of a stored search of these rows, or None when it cannot be one."""
        dist, ind = stored.get("distances"), stored.get("indices")
        if dist is None or ind is None or dist.dtype != np.float64 or ind.dtype.kind not in "iu":
            return None
        if not (dist.ndim == ind.ndim == 2 and dist.shape == ind.shape and dist.shape[0] == Xq.shape[0]):
            return None
        if dist.shape[1] < k:
            return None
        dist, ind = dist[:, :k], ind[:, :k]
        if ind.size and (ind.min() < 0 or ind.max() >= Xt.shape[0]):
            return None
        if not np.isfinite(dist).all() or (dist < 0).any():
            return None
        return {"distances": dist.copy(), "indices": ind.astype(np.int64)}

    def compute():
        dist, ind = _search(Xt, Xq, k, code, p, block_size)
        return {"distances": dist, "indices": ind}

    arrays = cached_arrays(path, compute, accept=accept)
    return arrays["distances"], arrays["indices"]


def exclude_group(distances, indices, groups_train, groups_query, k):
    """Drop the neighbours that share the query's group; keep the first ``k`` of the rest.

    With writer IDs as groups, this turns a leave-one-out search into leave-one-*writer*-out: a
    training digit is then voted on only by digits of other writers, as a test digit is. With each
    row its own group (``groups_train = np.arange(n_train)``, ``groups_query = rows``) it drops only
    the query itself: plain leave-one-out.

    Parameters
    ----------
    distances, indices : ndarray of shape (n_query, k_max)
        A search result, nearest first.
    groups_train : ndarray of shape (n_train,)
        Group of each training row.
    groups_query : ndarray of shape (n_query,)
        Group of each query.
    k : int
        Neighbours to keep per query.

    Returns
    -------
    distances, indices : ndarray of shape (n_query, k)
        The nearest ``k`` neighbours from other groups, in their original order.

    Raises
    ------
    ValueError
        If the shapes do not fit, or some query has fewer than ``k`` neighbours from other groups
        among its ``k_max``.

    Examples
    --------
    >>> import numpy as np
    >>> d, i = exclude_group(np.array([[0.0, 1.0, 2.0]]), np.array([[4, 5, 6]]),
    ...                      groups_train=np.array([0, 0, 0, 0, 7, 8, 7]), groups_query=np.array([7]), k=1)
    >>> i.tolist(), d.tolist()
    ([[5]], [[1.0]])
    """
    distances, indices = np.asarray(distances), np.asarray(indices)
    groups_train, groups_query = np.asarray(groups_train), np.asarray(groups_query)
    if distances.ndim != 2 or distances.shape != indices.shape:
        raise ValueError(
            f"distances and indices must have one shape (n_query, k_max); got {distances.shape} and {indices.shape}."
        )
    if groups_query.shape != (len(indices),):
        raise ValueError(f"groups_query must have shape ({len(indices)},); got {groups_query.shape}.")
    if indices.size and not (0 <= indices.min() and indices.max() < len(groups_train)):
        raise ValueError(f"indices must index groups_train (length {len(groups_train)}).")
    k = validation.k_value(k, max(distances.shape[1], 1))
    keep = groups_train[indices] != groups_query[:, None]
    n_left = keep.sum(axis=1)
    if n_left.size and n_left.min() < k:
        raise ValueError(
            f"{int((n_left < k).sum())} queries have fewer than k={k} neighbours from other groups; "
            f"the fewest is {int(n_left.min())}: search more neighbours."
        )
    # A stable sort puts the kept columns first, in their original order.
    order = np.argsort(~keep, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(distances, order, axis=1), np.take_along_axis(indices, order, axis=1)


__all__ = ["kneighbors", "kneighbors_loo", "cache_key", "exclude_group", "inked_columns", "release_buffers", "DEFAULT_BLOCK_SIZE"]
