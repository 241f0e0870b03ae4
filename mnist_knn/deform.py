"""Deformation-tolerant distances that re-rank the candidates of a cheap exact search.

A plain Euclidean search finds, for every query image, the ``n_cand`` nearest training
images (the *candidates*). The distances here are too slow to compare a query with all
60,000 training images, but cheap enough to re-rank a few dozen candidates:

- :func:`shift_distance`: the best of all integer translations of the training image
  by at most ``max_shift`` pixels (Wilder's "1-pixel shift", "2-pixel shift" rows);
- :func:`tangent_distance`: Simard, LeCun and Denker's tangent distance (NIPS 1992), the
  distance between the linear approximations of small translations, rotations, scalings,
  shears and thickness changes of the images;
- :func:`idm_distance`: Keysers et al.'s image distortion model (IEEE PAMI 2007), which
  lets every pixel of the query move by up to ``warp`` pixels on its own, comparing local
  contexts of Sobel gradient images.

:func:`rerank` turns any of them into ``(distances, indices)`` of the ``k`` best candidates,
in the same form as the main neighbour search.

All kernels are compiled with numba (``parallel=True``, ``fastmath=False``). Work is split
over queries only, and every (query, candidate) pair is computed by one thread in a fixed
order, so results do not depend on the number of threads.

Images are ``(n, height, width)`` arrays (or ``(n, height * width)`` with square images).
Integer images are converted to float64 (exactly); float32 images are kept in float32
inside the inner loops of :func:`shift_distance` and :func:`idm_distance`, with float64
sums over pixels. Distances are always returned as float64.
"""

import math
from pathlib import Path

import numba
import numpy as np

from .paths import CACHE_DIR
from .search import _digest, _save_atomically

__all__ = [
    "TANGENTS",
    "cached_distance",
    "idm_distance",
    "rerank",
    "shift_distance",
    "sobel_gradients",
    "tangent_distance",
    "tangent_vectors",
]

#: Names of the transformations whose tangent vectors :func:`tangent_vectors` computes.
TANGENTS = ("tx", "ty", "rotation", "scaling", "shear_par", "shear_diag", "thickness")

#: Bump when a change to a kernel could change any cached distance.
DEFORM_CACHE_VERSION = 1

# A pivot of the Cholesky factorisation smaller than this fraction of its diagonal entry means that
# the tangent is (numerically) a combination of the ones before it: it is left out of the solve.
_PIVOT_TOL = 1e-10
# Images are processed in chunks of this many when computing tangents and gradients (bounded memory).
_CHUNK = 4096


# --------------------------------------------------------------------------------------------------
# Validation at the boundary
# --------------------------------------------------------------------------------------------------


def _as_images(X, name):
    """Return ``X`` as a C-contiguous float32/float64 array of shape (n, height, width)."""
    X = np.asarray(X)
    if X.dtype.kind in "biu":
        X = X.astype(np.float64)
    elif X.dtype not in (np.float32, np.float64):
        raise ValueError(f"{name} must hold float32, float64 or integer pixels; got dtype {X.dtype}.")
    if X.ndim == 2:
        side = math.isqrt(X.shape[1])
        if side * side != X.shape[1]:
            raise ValueError(
                f"{name} of shape {X.shape} has {X.shape[1]} pixels per image, which is not a square "
                "number; pass images of shape (n, height, width)."
            )
        X = X.reshape(len(X), side, side)
    if X.ndim != 3:
        raise ValueError(f"{name} must have shape (n, height, width); got shape {X.shape}.")
    if X.shape[1] == 0 or X.shape[2] == 0:
        raise ValueError(f"{name} has empty images of shape {X.shape[1:]}.")
    if not np.isfinite(X).all():
        raise ValueError(f"{name} contains NaN or infinite pixels.")
    return np.ascontiguousarray(X)


def _check_pair(X_train, X_query, candidates):
    """Validate the common arguments; return images of one dtype and int64 candidates."""
    X_train = _as_images(X_train, "X_train")
    X_query = _as_images(X_query, "X_query")
    if X_train.shape[1:] != X_query.shape[1:]:
        raise ValueError(
            f"X_query has images of shape {X_query.shape[1:]}; X_train has {X_train.shape[1:]}."
        )
    dtype = np.result_type(X_train.dtype, X_query.dtype)
    X_train = X_train.astype(dtype, copy=False)
    X_query = X_query.astype(dtype, copy=False)
    candidates = np.asarray(candidates)
    if candidates.ndim != 2:
        raise ValueError(
            f"candidates must have shape (n_query, n_cand); got shape {candidates.shape}."
        )
    if candidates.shape[0] != len(X_query):
        raise ValueError(
            f"candidates has {candidates.shape[0]} rows; X_query has {len(X_query)} images."
        )
    if candidates.dtype.kind not in "iu":
        raise ValueError(f"candidates must hold integer indices; got dtype {candidates.dtype}.")
    if candidates.size and (candidates.min() < 0 or candidates.max() >= len(X_train)):
        raise ValueError(
            f"candidates must be indices in [0, n_train={len(X_train)}); "
            f"got values in [{candidates.min()}, {candidates.max()}]."
        )
    return X_train, X_query, candidates.astype(np.int64)


def _used_training_images(X_train, candidates):
    """The training images that appear in ``candidates``, and candidates as indices into them.

    Features (gradients, tangents) are then computed only for the images actually compared.
    """
    used, local = np.unique(candidates, return_inverse=True)
    return np.ascontiguousarray(X_train[used]), local.reshape(candidates.shape).astype(np.int64)


# --------------------------------------------------------------------------------------------------
# Re-ranking
# --------------------------------------------------------------------------------------------------


def rerank(distance_values, candidates, k):
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
        If the shapes differ, ``k`` is out of range, or a distance is NaN.

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
    return (
        np.take_along_axis(D, order, axis=1),
        np.take_along_axis(candidates, order, axis=1).astype(np.int64),
    )


# --------------------------------------------------------------------------------------------------
# Shift distance
# --------------------------------------------------------------------------------------------------


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
    X_train, X_query, candidates = _check_pair(X_train, X_query, candidates)
    if isinstance(max_shift, bool) or not isinstance(max_shift, (int, np.integer)) or max_shift < 0:
        raise ValueError(f"max_shift must be an integer >= 0; got max_shift={max_shift!r}.")
    p = float(p)
    if not (np.isfinite(p) and p > 0):
        raise ValueError(f"p must be a finite number > 0; got p={p!r}.")
    mode = int(p) if p in (1.0, 2.0, 3.0) else 0
    X_ref, local = _used_training_images(X_train, candidates)
    X_ref = np.pad(X_ref, ((0, 0), (max_shift, max_shift), (max_shift, max_shift)))
    out = np.empty(candidates.shape, dtype=np.float64)
    _shift_kernel(X_ref, X_query, local, int(max_shift), p, mode, out)
    return out


# --------------------------------------------------------------------------------------------------
# Tangent distance
# --------------------------------------------------------------------------------------------------


def _gaussian_smooth(X, sigma):
    """Separable Gaussian blur of float64 images (n, H, W), zero outside, truncated at 3 sigma."""
    radius = max(1, int(math.ceil(3 * sigma)))
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (t / sigma) ** 2)
    kernel /= kernel.sum()
    n, H, W = X.shape
    P = np.pad(X, ((0, 0), (radius, radius), (0, 0)))
    Y = np.zeros_like(X)
    for o, w in enumerate(kernel):
        Y += w * P[:, o : o + H, :]
    P = np.pad(Y, ((0, 0), (0, 0), (radius, radius)))
    Z = np.zeros_like(X)
    for o, w in enumerate(kernel):
        Z += w * P[:, :, o : o + W]
    return Z


def _central_gradients(S):
    """Central differences (f[x+1] - f[x-1]) / 2 along x and y, zero outside the image."""
    P = np.pad(S, ((0, 0), (1, 1), (1, 1)))
    gx = 0.5 * (P[:, 1:-1, 2:] - P[:, 1:-1, :-2])
    gy = 0.5 * (P[:, 2:, 1:-1] - P[:, :-2, 1:-1])
    return gx, gy


def _check_tangent_names(tangents):
    if isinstance(tangents, str):
        tangents = (tangents,)
    tangents = tuple(tangents)
    unknown = [t for t in tangents if t not in TANGENTS]
    if not tangents or unknown or len(set(tangents)) != len(tangents):
        raise ValueError(
            f"tangents must be distinct names from {TANGENTS}; got {tangents!r}."
        )
    return tangents


def tangent_vectors(X, tangents=TANGENTS, sigma=1.0):
    """Tangent vectors of small transformations of each image (Simard, LeCun & Denker).

    Parameters
    ----------
    X : array-like of shape (n, height, width)
        Images (float32, float64 or integers).
    tangents : sequence of str, default=TANGENTS
        Which transformations, any of ``"tx"``, ``"ty"`` (translations), ``"rotation"``,
        ``"scaling"``, ``"shear_par"`` (parallel hyperbolic: stretch along x, squeeze
        along y), ``"shear_diag"`` (diagonal hyperbolic), ``"thickness"`` (line thickness).
    sigma : float, default=1.0
        Standard deviation (pixels) of the Gaussian blur applied before taking gradients;
        ``0`` takes gradients of the images as they are.

    Returns
    -------
    T : ndarray of shape (n, n_tangents, height, width)
        In the dtype of ``X`` (float64 for integer images).

    Raises
    ------
    ValueError
        On an unknown or repeated tangent name, ``sigma < 0`` or a bad image array.

    Notes
    -----
    With ``gx``, ``gy`` the central-difference gradients of the blurred image and
    ``x``, ``y`` pixel coordinates relative to the image centre (``y`` pointing down),
    a transformation moving pixel ``(x, y)`` by ``(u, v)`` has tangent
    ``u * gx + v * gy`` (up to a sign that does not change the distance):
    translations ``(1, 0)`` and ``(0, 1)``, rotation ``(y, -x)``, scaling ``(x, y)``,
    parallel hyperbolic ``(x, -y)``, diagonal hyperbolic ``(y, x)``. The thickness
    tangent is ``gx**2 + gy**2`` (Simard et al. 1998). Parameters are thus in pixels
    (translations) or per pixel (the others), which is what ``regularization`` in
    :func:`tangent_distance` penalises.
    """
    X = _as_images(X, "X")
    tangents = _check_tangent_names(tangents)
    sigma = float(sigma)
    if not (np.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"sigma must be a finite number >= 0; got sigma={sigma!r}.")
    n, H, W = X.shape
    out = np.empty((n, len(tangents), H, W), dtype=X.dtype)
    x = np.arange(W, dtype=np.float64) - (W - 1) / 2
    y = (np.arange(H, dtype=np.float64) - (H - 1) / 2)[:, None]
    for start in range(0, n, _CHUNK):
        S = X[start : start + _CHUNK].astype(np.float64)
        if sigma > 0:
            S = _gaussian_smooth(S, sigma)
        gx, gy = _central_gradients(S)
        fields = {
            "tx": lambda: gx,
            "ty": lambda: gy,
            "rotation": lambda: y * gx - x * gy,
            "scaling": lambda: x * gx + y * gy,
            "shear_par": lambda: x * gx - y * gy,
            "shear_diag": lambda: y * gx + x * gy,
            "thickness": lambda: gx * gx + gy * gy,
        }
        for a, name in enumerate(tangents):
            out[start : start + _CHUNK, a] = fields[name]()
    return out


@numba.njit(cache=True, inline="always")
def _dot(x, y):
    """Dot product with eight interleaved partial sums (fixed order, so deterministic)."""
    n = x.shape[0]
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    k = 0
    while k + 8 <= n:
        s0 += np.float64(x[k]) * np.float64(y[k])
        s1 += np.float64(x[k + 1]) * np.float64(y[k + 1])
        s2 += np.float64(x[k + 2]) * np.float64(y[k + 2])
        s3 += np.float64(x[k + 3]) * np.float64(y[k + 3])
        s4 += np.float64(x[k + 4]) * np.float64(y[k + 4])
        s5 += np.float64(x[k + 5]) * np.float64(y[k + 5])
        s6 += np.float64(x[k + 6]) * np.float64(y[k + 6])
        s7 += np.float64(x[k + 7]) * np.float64(y[k + 7])
        k += 8
    while k < n:
        s0 += np.float64(x[k]) * np.float64(y[k])
        k += 1
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


@numba.njit(parallel=True, fastmath=False, cache=True)
def _gram_kernel(T, out):
    """out[n] = T[n] @ T[n].T in float64, for T of shape (n, m, n_pixels)."""
    m = T.shape[1]
    for n in numba.prange(T.shape[0]):
        for a in range(m):
            for b in range(a + 1):
                g = _dot(T[n, a], T[n, b])
                out[n, a, b] = g
                out[n, b, a] = g


@numba.njit(cache=True)
def _solve_psd(A, b, L, z):
    """Solve A z = b for symmetric positive semi-definite A by Cholesky (in place: L, z).

    A variable whose pivot is below ``_PIVOT_TOL`` times its diagonal entry (its tangent is a
    combination of earlier ones, or zero) is fixed at 0: the least-squares minimum is unchanged.
    """
    M = A.shape[0]
    for j in range(M):
        s = A[j, j]
        for k in range(j):
            s -= L[j, k] * L[j, k]
        if not s > _PIVOT_TOL * A[j, j] or not s > 0.0:
            for i in range(j, M):
                L[i, j] = 0.0
            continue
        d = math.sqrt(s)
        L[j, j] = d
        for i in range(j + 1, M):
            t = A[i, j]
            for k in range(j):
                t -= L[i, k] * L[j, k]
            L[i, j] = t / d
    for i in range(M):  # forward: L w = b
        if L[i, i] == 0.0:
            z[i] = 0.0
            continue
        t = b[i]
        for k in range(i):
            t -= L[i, k] * z[k]
        z[i] = t / L[i, i]
    for i in range(M - 1, -1, -1):  # backward: L.T z = w
        if L[i, i] == 0.0:
            z[i] = 0.0
            continue
        t = z[i]
        for k in range(i + 1, M):
            t -= L[k, i] * z[k]
        z[i] = t / L[i, i]


@numba.njit(parallel=True, fastmath=False, cache=True)
def _tangent_kernel(Xr, Xq, Tr, Tq, Gr, Gq, cand, two_sided, lam, out):
    n_query, n_cand = cand.shape
    n_pix = Xq.shape[1]
    m = Tr.shape[1]
    M = 2 * m if two_sided else m
    for i in numba.prange(n_query):
        r = np.empty(n_pix, dtype=np.float64)
        A = np.empty((M, M), dtype=np.float64)
        b = np.empty(M, dtype=np.float64)
        L = np.empty((M, M), dtype=np.float64)
        z = np.empty(M, dtype=np.float64)
        for c in range(n_cand):
            j = cand[i, c]
            for p in range(n_pix):
                r[p] = np.float64(Xq[i, p]) - np.float64(Xr[j, p])
            rr = _dot(r, r)
            # min over alpha (and beta) of |r - Tr' alpha + Tq' beta|^2 + lam (|alpha|^2 + |beta|^2)
            for a in range(m):
                b[a] = _dot(Tr[j, a], r)
                for a2 in range(m):
                    A[a, a2] = Gr[j, a, a2]
                A[a, a] += lam
            if two_sided:
                for a in range(m):
                    b[m + a] = -_dot(Tq[i, a], r)
                    for a2 in range(m):
                        A[m + a, m + a2] = Gq[i, a, a2]
                    A[m + a, m + a] += lam
                    for a2 in range(m):
                        cross = -_dot(Tr[j, a2], Tq[i, a])
                        A[m + a, a2] = cross
                        A[a2, m + a] = cross
            _solve_psd(A, b, L, z)
            gain = 0.0
            for a in range(M):
                gain += b[a] * z[a]
            out[i, c] = min(max(rr - gain, 0.0), rr)


def tangent_distance(
    X_train,
    X_query,
    candidates,
    *,
    tangents=TANGENTS,
    two_sided=True,
    sigma=1.0,
    regularization=0.0,
):
    """Squared tangent distance (Simard, LeCun & Denker 1992) between queries and candidates.

    Parameters
    ----------
    X_train : array-like of shape (n_train, height, width)
    X_query : array-like of shape (n_query, height, width)
    candidates : array-like of shape (n_query, n_cand)
        Indices into ``X_train``.
    tangents : sequence of str, default=TANGENTS
        Transformations to be invariant to; see :func:`tangent_vectors`.
    two_sided : bool, default=True
        If True, both images move along their tangents; if False, only the training
        image (the reference) does.
    sigma : float, default=1.0
        Gaussian blur (pixels) before the gradients of the tangent vectors; the distance
        itself compares the images as given.
    regularization : float, default=0.0
        ``lam >= 0``: a penalty ``lam * |alpha|**2`` on the transformation parameters
        (Simard's "spring"), which keeps the two-sided solution from moving far along
        nearly parallel tangents.

    Returns
    -------
    D : ndarray of shape (n_query, n_cand), float64
        ``min over alpha, beta of |q + T_q beta - t - T_t alpha|**2
        + lam * (|alpha|**2 + |beta|**2)`` with ``beta = 0`` when one-sided, where
        ``q = X_query[i]``, ``t = X_train[candidates[i, c]]`` and the columns of ``T_q``,
        ``T_t`` are their tangent vectors. It is never larger than the squared
        Euclidean distance ``|q - t|**2`` (take ``alpha = beta = 0``).

    Raises
    ------
    ValueError
        On images of different shapes, candidates out of range, an unknown tangent name,
        ``sigma < 0`` or ``regularization < 0``.

    Notes
    -----
    The least-squares problem of every pair is solved exactly through its normal equations
    (a Cholesky factorisation of size ``n_tangents`` or ``2 * n_tangents``), with the Gram
    matrices of the tangents computed once per image. Tangents that are (numerically) linear
    combinations of others are dropped from that pair's solve, which does not change the
    minimum. Tangent vectors are stored in the dtype of the images.
    """
    X_train, X_query, candidates = _check_pair(X_train, X_query, candidates)
    tangents = _check_tangent_names(tangents)
    lam = float(regularization)
    if not (np.isfinite(lam) and lam >= 0):
        raise ValueError(f"regularization must be a finite number >= 0; got {regularization!r}.")
    X_ref, local = _used_training_images(X_train, candidates)
    n_pix = X_query.shape[1] * X_query.shape[2]
    m = len(tangents)

    def features(X):
        T = tangent_vectors(X, tangents, sigma).reshape(len(X), m, n_pix)
        G = np.empty((len(X), m, m), dtype=np.float64)
        _gram_kernel(T, G)
        return T, G

    Tr, Gr = features(X_ref)
    if two_sided:
        Tq, Gq = features(X_query)
    else:  # unused by the kernel; empty arrays of the right type
        Tq = np.empty((0, m, n_pix), dtype=Tr.dtype)
        Gq = np.empty((0, m, m), dtype=np.float64)
    out = np.empty(candidates.shape, dtype=np.float64)
    _tangent_kernel(
        X_ref.reshape(len(X_ref), n_pix),
        X_query.reshape(len(X_query), n_pix),
        Tr,
        Tq,
        Gr,
        Gq,
        local,
        bool(two_sided),
        lam,
        out,
    )
    return out


# --------------------------------------------------------------------------------------------------
# Image distortion model
# --------------------------------------------------------------------------------------------------


def sobel_gradients(X):
    """Horizontal and vertical Sobel gradients of each image, zero outside the image.

    Parameters
    ----------
    X : array-like of shape (n, height, width)

    Returns
    -------
    G : ndarray of shape (n, 2, height, width)
        ``G[:, 0]`` is the horizontal gradient (d/dx, x to the right) and ``G[:, 1]`` the
        vertical one (d/dy, y down), each the Sobel filter divided by 8, so that a ramp
        rising by 1 per pixel has gradient 1. In the dtype of ``X`` (float64 for integers).
    """
    X = _as_images(X, "X")
    n, H, W = X.shape
    G = np.empty((n, 2, H, W), dtype=X.dtype)
    for start in range(0, n, _CHUNK):
        P = np.pad(X[start : start + _CHUNK].astype(np.float64), ((0, 0), (1, 1), (1, 1)))
        dx = P[:, :, 2:] - P[:, :, :-2]  # (n, H + 2, W)
        dy = P[:, 2:, :] - P[:, :-2, :]  # (n, H, W + 2)
        G[start : start + _CHUNK, 0] = (dx[:, :-2] + 2 * dx[:, 1:-1] + dx[:, 2:]) / 8
        G[start : start + _CHUNK, 1] = (dy[:, :, :-2] + 2 * dy[:, :, 1:-1] + dy[:, :, 2:]) / 8
    return G


def _idm_features(X, context, warp, use_gradients, use_intensity):
    """Channels compared by the IDM, zero-padded by ``context + warp`` on every side and by one
    more row at the bottom, each flattened: shape (n, n_channels, (H + 2m + 1) * (W + 2m))."""
    channels = []
    if use_gradients:
        channels.append(sobel_gradients(X))
    if use_intensity:
        channels.append(X[:, None])
    F = np.concatenate(channels, axis=1) if len(channels) > 1 else channels[0]
    m = context + warp
    F = np.pad(F, ((0, 0), (0, 0), (m, m + 1), (m, m)))
    return np.ascontiguousarray(F.reshape(F.shape[0], F.shape[1], -1))


@numba.njit(cache=True)
def _idm_pair(Fa, Fb, H, W, warp, context, cost, D, R, S, best):
    """IDM distance matching every pixel of image ``a`` into image ``b``.

    ``Fa`` and ``Fb`` are (n_channels, L) flattened images padded by m = context + warp, with row
    length Wr = W + 2m (see ``_idm_features``); a displacement (dy, dx) adds
    ``cost * (dy**2 + dx**2)`` to a pixel's context distance; ``D``, ``R``, ``S``, ``best`` are
    work arrays.
    Work arrays are indexed by k = ry * Wr + rx, where (ry - c, rx - c) is the image position
    of a pixel of ``a``. At displacement (dy, dx) = (oy - warp, ox - warp) the pixel at k sits at
    Fa[k + base] and its match at Fb[k + oy * Wr + ox] (base = warp * Wr + warp), so each step
    is one long loop over contiguous memory that LLVM vectorises, and no sum is reassociated.
    Columns rx >= W + 2c are padding: computed, never used.
    """
    n_ch = Fa.shape[0]
    c2 = 2 * context
    Wr = W + 2 * (context + warp)
    base = warp * Wr + warp
    n_off = 2 * warp + 1
    for k in range(H * Wr):
        best[k] = np.inf
    for oy in range(n_off):
        # Rows y of a whose match y + dy lies inside the image.
        y0 = max(0, warp - oy)
        y1 = min(H, H + warp - oy)
        if y1 <= y0:
            continue
        k0 = y0 * Wr
        k1 = (y1 + c2) * Wr
        n = k1 - k0
        m = (y1 - y0) * Wr
        for ox in range(n_off):
            x0 = max(0, warp - ox)
            x1 = min(W, W + warp - ox)
            if x1 <= x0:
                continue
            off = oy * Wr + ox
            penalty = cost * ((oy - warp) ** 2 + (ox - warp) ** 2)
            # D: squared difference per pixel, summed over channels.
            d_v = D[k0:k1]
            for k in range(n):
                d_v[k] = 0
            for ch in range(n_ch):
                fa = Fa[ch, k0 + base : k1 + base]
                fb = Fb[ch, k0 + off : k1 + off]
                for k in range(n):
                    d = fa[k] - fb[k]
                    d_v[k] += d * d
            # R: D summed over the context along x; S: R summed along y.
            r_v = R[k0:k1]
            for k in range(n):
                r_v[k] = d_v[k]
            for u in range(1, c2 + 1):
                d_u = D[k0 + u : k1 + u]
                for k in range(n):
                    r_v[k] += d_u[k]
            s_v = S[k0 : k0 + m]
            for k in range(m):
                s_v[k] = r_v[k]
            for v in range(1, c2 + 1):
                r_w = R[k0 + v * Wr : k0 + v * Wr + m]
                for k in range(m):
                    s_v[k] += r_w[k]
            for y in range(y0, y1):  # the match would lie left or right of the image
                for x in range(x0):
                    S[y * Wr + x] = np.inf
                for x in range(x1, W):
                    S[y * Wr + x] = np.inf
            b_v = best[k0 : k0 + m]
            if penalty > 0:
                for k in range(m):
                    s_v[k] += penalty
            for k in range(m):
                b = b_v[k]
                t = s_v[k]
                b_v[k] = t if t < b else b
    total = 0.0
    for y in range(H):
        for x in range(W):
            total += best[y * Wr + x]
    return total


@numba.njit(parallel=True, fastmath=False, cache=True)
def _idm_kernel(Fr, Fq, cand, H, W, warp, context, cost, symmetric, out):
    n_query, n_cand = cand.shape
    c2 = 2 * context
    Wr = W + 2 * (context + warp)
    nD = (H + c2) * Wr
    for i in numba.prange(n_query):
        D = np.zeros(nD + c2, dtype=Fq.dtype)
        R = np.zeros(nD, dtype=Fq.dtype)
        S = np.zeros(H * Wr, dtype=Fq.dtype)
        best = np.empty(H * Wr, dtype=Fq.dtype)
        for c in range(n_cand):
            j = cand[i, c]
            d = _idm_pair(Fq[i], Fr[j], H, W, warp, context, cost, D, R, S, best)
            if symmetric:
                d += _idm_pair(Fr[j], Fq[i], H, W, warp, context, cost, D, R, S, best)
            out[i, c] = d


def idm_distance(
    X_train,
    X_query,
    candidates,
    *,
    warp=2,
    context=1,
    use_gradients=True,
    use_intensity=False,
    displacement_cost=0.0,
    symmetric=False,
):
    """Image distortion model distance (Keysers, Deselaers, Gollan & Ney, PAMI 2007).

    Every pixel of the query is matched to the best pixel of the training image within
    ``warp`` pixels, independently of its neighbours, by comparing local contexts.

    Parameters
    ----------
    X_train : array-like of shape (n_train, height, width)
    X_query : array-like of shape (n_query, height, width)
    candidates : array-like of shape (n_query, n_cand)
        Indices into ``X_train``.
    warp : int, default=2
        Largest displacement of a pixel along each axis (2 gives a 5x5 search window).
    context : int, default=1
        Half-width of the local context compared: ``(2 * context + 1)`` squared pixels
        (1 gives 3x3 patches; 0 compares single pixels).
    use_gradients : bool, default=True
        Compare the horizontal and vertical Sobel gradients (:func:`sobel_gradients`).
    use_intensity : bool, default=False
        Also (or instead) compare the pixel values themselves.
    displacement_cost : float, default=0.0
        ``lam >= 0``: a match at displacement ``(dy, dx)`` costs ``lam * (dy**2 + dx**2)``
        on top of its context distance, which favours small deformations.
    symmetric : bool, default=False
        If True, add the distance with the roles swapped (every pixel of the training
        image matched into the query), at twice the cost.

    Returns
    -------
    D : ndarray of shape (n_query, n_cand), float64
        ``sum over query pixels (y, x) of min over |dy|, |dx| <= warp, (y + dy, x + dx)
        inside the image, of sum over channels and context offsets (v, u) of
        (Q(y + v, x + u) - R(y + dy + v, x + dx + u)) ** 2``, with the channel images
        ``Q``, ``R`` of query and training image taken as zero outside the image
        (``lam * (dy**2 + dx**2)`` is added inside the min; if ``symmetric``, the same
        sum with ``Q`` and ``R`` swapped is added).

    Raises
    ------
    ValueError
        On images of different shapes, candidates out of range, ``warp < 0``,
        ``context < 0``, ``displacement_cost < 0`` or no channel selected.

    Notes
    -----
    With ``warp=0`` and ``context=0`` this is the squared Euclidean distance between the
    channel images. The context distance at one displacement is a box sum of the
    per-pixel squared differences, computed separably. For float32 images the
    per-pixel sums are float32 and the sum over pixels float64. Unless ``symmetric``, the
    distance is not symmetric: every pixel of the query is matched exactly once, while a
    pixel of the training image may be matched many times or never.
    """
    X_train, X_query, candidates = _check_pair(X_train, X_query, candidates)
    for name, value in (("warp", warp), ("context", context)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be an integer >= 0; got {name}={value!r}.")
    if not (use_gradients or use_intensity):
        raise ValueError("At least one of use_gradients and use_intensity must be True.")
    cost = float(displacement_cost)
    if not (np.isfinite(cost) and cost >= 0):
        raise ValueError(
            f"displacement_cost must be a finite number >= 0; got {displacement_cost!r}."
        )
    X_ref, local = _used_training_images(X_train, candidates)
    warp, context = int(warp), int(context)
    Fr = _idm_features(X_ref, context, warp, use_gradients, use_intensity)
    Fq = _idm_features(X_query, context, warp, use_gradients, use_intensity)
    H, W = X_query.shape[1:]
    out = np.empty(candidates.shape, dtype=np.float64)
    _idm_kernel(Fr, Fq, local, H, W, warp, context, cost, bool(symmetric), out)
    return out


# --------------------------------------------------------------------------------------------------
# The on-disk cache
# --------------------------------------------------------------------------------------------------


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

    Notes
    -----
    The file name is a hash of the function's name, ``DEFORM_CACHE_VERSION``, the three arrays
    (dtype, shape and bytes) and the parameters; a change to any of them computes afresh. A file
    that cannot be read is recomputed and replaced; a new file is written atomically.
    """
    if not cache:
        return distance(X_train, X_query, candidates, **params)
    arrays = [np.asarray(a) for a in (X_train, X_query, candidates)]
    name = getattr(distance, "__name__", type(distance).__name__)
    setting = repr(sorted((key, repr(value)) for key, value in params.items()))
    key = f"{name}-v{DEFORM_CACHE_VERSION}-{_digest(*arrays, np.frombuffer(setting.encode(), np.uint8))}"
    directory = Path(CACHE_DIR if cache is True else cache)
    path = directory / f"{key}.npy"
    if path.exists():
        try:
            D = np.load(path)
            if D.shape == arrays[2].shape:
                return D
        except Exception:  # noqa: BLE001 - unreadable or truncated: compute again and overwrite
            pass
    D = distance(*arrays, **params)
    _save_atomically(path, lambda f: np.save(f, D))
    return D
