"""The shift distance: L_p to the best integer translation of each candidate.

Wilder's "1-pixel shift" and "2-pixel shift" rows of LeCun's table: every training image is tried at
all translations by at most ``max_shift`` pixels along each axis, and the best is kept. Re-ranks the
candidates of the exact search (see :mod:`.rerank`).

The kernel is compiled with numba (``parallel=True``, ``fastmath=False``); work is split over
queries only and every (query, candidate) pair is summed by one thread in a fixed order, so results
do not depend on the number of threads.
"""

import numba
import numpy as np

from .rerank import candidate_images, query_chunks, used_training_images

__all__ = ["shift_distance"]


@numba.njit(cache=True, inline="always")
def _add_abs_pow(acc, q, t, ox, p, mode):
    """acc[x] += |q[x] - t[x + ox]| ** p, with one loop per case so that each vectorises:
    mode 1, 2, 3 for p = 1, 2, 3 and mode 0 for any other p."""
    if mode == 2:
        for x in range(acc.shape[0]):
            d = q[x] - t[x + ox]
            acc[x] += d * d
    elif mode == 1:
        for x in range(acc.shape[0]):
            acc[x] += abs(q[x] - t[x + ox])
    elif mode == 3:
        for x in range(acc.shape[0]):
            a = abs(q[x] - t[x + ox])
            acc[x] += a * a * a
    else:
        for x in range(acc.shape[0]):
            acc[x] += abs(q[x] - t[x + ox]) ** p


@numba.njit(parallel=True, fastmath=False, cache=True)
def _shift_kernel(Xr, Xq, cand, max_shift, p, mode, out):
    # Xr is zero-padded by max_shift on every side, so that every shifted read is in bounds and
    # every index is a sum of non-negative loop counters (which lets LLVM vectorise the x loop).
    n_query, n_cand = cand.shape
    H, W = Xq.shape[1], Xq.shape[2]
    n_off = 2 * max_shift + 1
    for i in numba.prange(n_query):
        acc = np.empty(W, dtype=Xq.dtype)  # one running sum per column: vectorises without reassociation
        for c in range(n_cand):
            j = cand[i, c]
            best = np.inf
            # The shifted reference t'(y, x) = t(y - dy, x - dx) = Xr[j, y + oy, x + ox],
            # with oy = max_shift - dy and ox = max_shift - dx in [0, 2 * max_shift].
            for oy in range(n_off):
                for ox in range(n_off):
                    for x in range(W):
                        acc[x] = 0
                    for y in range(H):
                        _add_abs_pow(acc, Xq[i, y], Xr[j, y + oy], ox, p, mode)
                    total = 0.0
                    for x in range(W):
                        total += acc[x]
                    if total < best:
                        best = total
            out[i, c] = best


def shift_distance(X_train, X_query, candidates, max_shift=1, p=2):
    """L_p distance to the best integer translation of each candidate (p-th power sum).

    Parameters
    ----------
    X_train : array-like of shape (n_train, height, width)
        Training images (float32, float64 or integers).
    X_query : array-like of shape (n_query, height, width)
    candidates : array-like of shape (n_query, n_cand)
        Indices into ``X_train``: the training images to compare with each query.
    max_shift : int, default=1
        Largest translation in pixels along each axis: ``(2 * max_shift + 1) ** 2`` shifts
        ``(dx, dy)`` in ``[-max_shift, max_shift]**2`` are tried.
    p : float, default=2
        Exponent of the L_p distance, ``p > 0`` (Wilder used ``p = 3``).

    Returns
    -------
    D : ndarray of shape (n_query, n_cand), float64
        ``D[i, c] = min over (dx, dy) of sum_{y, x} |q(y, x) - t(y - dy, x - dx)| ** p``
        with ``q = X_query[i]``, ``t = X_train[candidates[i, c]]`` and ``t = 0`` outside the
        image: the training image is shifted, and pixels shifted out of the frame are lost.
        This is the p-th *power* of the L_p distance (no root is taken); it ranks
        candidates in the same order.

    Raises
    ------
    ValueError
        On images of different shapes, candidates out of range, ``max_shift < 0``
        or ``p <= 0``.

    Notes
    -----
    ``max_shift=0`` gives the plain ``sum |q - t| ** p``.
    """
    X_train, X_query, candidates = candidate_images(X_train, X_query, candidates)
    if isinstance(max_shift, bool) or not isinstance(max_shift, (int, np.integer)) or max_shift < 0:
        raise ValueError(f"max_shift must be an integer >= 0; got max_shift={max_shift!r}.")
    p = float(p)
    if not (np.isfinite(p) and p > 0):
        raise ValueError(f"p must be a finite number > 0; got p={p!r}.")
    mode = int(p) if p in (1.0, 2.0, 3.0) else 0
    X_ref, local = used_training_images(X_train, candidates)
    X_ref = np.pad(X_ref, ((0, 0), (max_shift, max_shift), (max_shift, max_shift)))
    out = np.empty(candidates.shape, dtype=np.float64)
    for a, b in query_chunks(len(X_query), "shift distance"):  # one chunk unless a progress bar is shown
        _shift_kernel(X_ref, X_query[a:b], local[a:b], int(max_shift), p, mode, out[a:b])
    return out
