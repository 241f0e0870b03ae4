"""Keysers et al.'s pseudo-two-dimensional hidden Markov distortion model (P2DHMDM; IEEE PAMI 2007).

The image distortion model (:mod:`.idm`) lets every pixel of the query find its best match on its own.
The P2DHMDM keeps the IDM's local costs (the context distance of Sobel gradient patches) but ties the
pixels together the way a pseudo-two-dimensional hidden Markov model does: the **columns** of the query
are mapped onto columns of the training image monotonically (each column's offset ``u`` differs from its
neighbour's by at most one), the **rows of each column** are mapped monotonically too (each pixel's
vertical offset ``v`` differs from the one above it by at most one), and on top of its column's offset
every pixel may deviate by one pixel sideways on its own (the "distortion" that gives the model its
name). Every displacement stays within the warp range, so the distance is never below the IDM's with
the same warp and context: a constrained IDM, which forbids matchings that tear a stroke apart.

This is the project's reading of the model (Keysers et al. 2007, section 4): no transition costs, and
every pixel displaced by at most ``warp`` in each direction. The distance is computed exactly by
dynamic programming: a Viterbi pass down the rows of each (column, offset), then one across the columns.
All sums are taken in float64. The slow reference is
:func:`~mnist_knn.engine.reference.p2dhmdm_distance_reference`.
"""

import numba
import numpy as np

from .idm import features_into
from .rerank import candidate_images, query_chunks

__all__ = ["p2dhmdm_distance"]


@numba.njit(cache=True)
def _local_costs(Fq, Ft, H, W, warp, context, D, R, S):
    """``S[dy + warp, dx + warp, y, x]``: the context distance of query pixel (y, x) matched to training pixel
    (y + dy, x + dx), +inf where that pixel lies outside the image. ``D`` and ``R`` are work arrays."""
    m = warp + context
    n = 2 * warp + 1
    c2 = 2 * context
    for oy in range(n):
        for ox in range(n):
            # D: squared differences summed over channels, over the query's pixels and their context.
            for yy in range(H + c2):
                for xx in range(W + c2):
                    qy, qx = yy + m - context, xx + m - context
                    d = Fq[0, qy, qx] - Ft[0, qy + oy - warp, qx + ox - warp]
                    e = Fq[1, qy, qx] - Ft[1, qy + oy - warp, qx + ox - warp]
                    D[yy, xx] = d * d + e * e
            # R: summed along x over the context; S: along y.
            for yy in range(H + c2):
                for x in range(W):
                    s = 0.0
                    for u in range(c2 + 1):
                        s += D[yy, x + u]
                    R[yy, x] = s
            for y in range(H):
                inside_y = 0 <= y + oy - warp < H
                for x in range(W):
                    if inside_y and 0 <= x + ox - warp < W:
                        s = 0.0
                        for v in range(c2 + 1):
                            s += R[y + v, x]
                        S[oy, ox, y, x] = s
                    else:
                        S[oy, ox, y, x] = np.inf


@numba.njit(cache=True)
def _best_neighbour(V, i):
    """The smallest of ``V[i - 1]``, ``V[i]``, ``V[i + 1]`` (those that exist): the states one step can come from."""
    best = V[i]
    if i > 0 and V[i - 1] < best:
        best = V[i - 1]
    if i + 1 < len(V) and V[i + 1] < best:
        best = V[i + 1]
    return best


@numba.njit(cache=True)
def _viterbi(S, H, W, warp, V, V_next, C):
    """The P2DHMDM distance from the local costs ``S`` (see ``_local_costs``)."""
    n = 2 * warp + 1
    for x in range(W):
        for ui in range(n):  # the column's offset u = ui - warp
            for y in range(H):
                for vi in range(n):  # the pixel's vertical offset v = vi - warp
                    best = np.inf  # the best sideways deviation, keeping |u + delta| <= warp
                    for di in range(max(0, ui - 1), min(n, ui + 2)):
                        if S[vi, di, y, x] < best:
                            best = S[vi, di, y, x]
                    V_next[vi] = best if y == 0 else best + _best_neighbour(V, vi)
                for vi in range(n):
                    V[vi] = V_next[vi]
            C[x, ui] = V.min()  # the column's best path, whatever its last row's offset
    # Across the columns, with the same recursion over the offsets u.
    for ui in range(n):
        V[ui] = C[0, ui]
    for x in range(1, W):
        for ui in range(n):
            V_next[ui] = C[x, ui] + _best_neighbour(V, ui)
        for ui in range(n):
            V[ui] = V_next[ui]
    return V.min()


@numba.njit(parallel=True, cache=True)
def _p2dhmdm_kernel(X_train, X_query, cand, warp, context, out):
    n_query, n_cand = cand.shape
    H, W = X_query.shape[1:]
    m = warp + context
    n = 2 * warp + 1
    Wr = W + 2 * m
    L = (H + 2 * m) * Wr  # one gradient channel, padded by m: the IDM's feature layout (idm.features_into)
    for i in numba.prange(n_query):
        P = np.zeros((H + 2, W + 2))
        fq, ft = np.zeros(2 * L), np.zeros(2 * L)
        Fq, Ft = fq.reshape((2, H + 2 * m, Wr)), ft.reshape((2, H + 2 * m, Wr))  # views: [ch, m + y, m + x]
        D = np.empty((H + 2 * context, W + 2 * context))
        R = np.empty((H + 2 * context, W))
        S = np.empty((n, n, H, W))
        V, V_next = np.empty(n), np.empty(n)
        C = np.empty((W, n))
        features_into(X_query[i], P, fq, L, m, Wr, True, False)  # the Sobel gradients, in float64
        for c in range(n_cand):
            features_into(X_train[cand[i, c]], P, ft, L, m, Wr, True, False)
            _local_costs(Fq, Ft, H, W, warp, context, D, R, S)
            out[i, c] = _viterbi(S, H, W, warp, V, V_next, C)


def p2dhmdm_distance(X_train, X_query, candidates, *, warp=2, context=1):
    """Pseudo-two-dimensional hidden Markov distortion model distance (Keysers et al., PAMI 2007).

    Parameters
    ----------
    X_train : array-like of shape (n_train, height, width)
    X_query : array-like of shape (n_query, height, width)
    candidates : array-like of shape (n_query, n_cand)
        Indices into ``X_train``.
    warp : int, default=2
        Largest displacement of a pixel along each axis, as in :func:`~mnist_knn.engine.idm_distance`.
    context : int, default=1
        Half-width of the compared patches of Sobel gradients, as in the IDM.

    Returns
    -------
    D : ndarray of shape (n_query, n_cand), float64
        The smallest sum, over the query's pixels (y, x), of the IDM's context distance between the
        pixel and its match (y + v, x + u + delta), over all matchings in which every query column x has
        one offset u_x with |u_x - u_(x-1)| <= 1, every pixel a vertical offset v with
        |v(y, x) - v(y-1, x)| <= 1 and a deviation delta in {-1, 0, 1}, with |v| <= warp,
        |u_x + delta| <= warp and the match inside the image.

    Raises
    ------
    ValueError
        On images of different shapes, candidates out of range, or ``warp``, ``context`` not integers >= 0.

    Notes
    -----
    Never below :func:`~mnist_knn.engine.idm_distance` with the same warp and context (the IDM is the
    same minimum without the constraints), and equal to it at ``warp=0``. Many times the IDM's cost per
    pair (notebook 06 measures it), so it re-ranks the IDM's nearest few, not the exact search's candidates.
    """
    X_train, X_query, candidates = candidate_images(X_train, X_query, candidates)
    for name, value in (("warp", warp), ("context", context)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be an integer >= 0; got {name}={value!r}.")
    out = np.empty(candidates.shape, dtype=np.float64)
    for a, b in query_chunks(len(X_query), "P2DHMDM"):
        _p2dhmdm_kernel(X_train, X_query[a:b], candidates[a:b], int(warp), int(context), out[a:b])
    return out
