"""Simard, LeCun and Denker's tangent distance (NIPS 1992).

The distance between the linear approximations of small translations, rotations, scalings, shears
and thickness changes of two images: each image ``x`` spans an affine subspace ``x + T a`` of its
tangent vectors ``T``, and the (two-sided) tangent distance is the least squared distance between the
two subspaces, with an optional ridge ``regularization`` on the coefficients. Re-ranks the
candidates of the exact search (see :mod:`.rerank`).

The kernels are compiled with numba (``parallel=True``, ``fastmath=False``); work is split over
queries only, so results do not depend on the number of threads.
"""

import math

import numba
import numpy as np

from .rerank import candidate_images, float_images, query_chunks, used_training_images
from ..data.preprocess import blur

__all__ = ["TANGENTS", "tangent_distance", "tangent_vectors"]

#: Names of the transformations whose tangent vectors :func:`tangent_vectors` computes.
TANGENTS = ("tx", "ty", "rotation", "scaling", "shear_par", "shear_diag", "thickness")

# A pivot of the Cholesky factorisation smaller than this fraction of its diagonal entry means that
# the tangent is (numerically) a combination of the ones before it: it is left out of the solve.
_PIVOT_TOL = 1e-10
# Images per block when computing tangent vectors (bounds the float64 work arrays).
_IMAGES_PER_BLOCK = 4096


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
    X = float_images(X, "X")
    tangents = _check_tangent_names(tangents)
    sigma = float(sigma)
    if not (np.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"sigma must be a finite number >= 0; got sigma={sigma!r}.")
    n, H, W = X.shape
    out = np.empty((n, len(tangents), H, W), dtype=X.dtype)
    x = np.arange(W, dtype=np.float64) - (W - 1) / 2
    y = (np.arange(H, dtype=np.float64) - (H - 1) / 2)[:, None]
    for start in range(0, n, _IMAGES_PER_BLOCK):
        S = X[start : start + _IMAGES_PER_BLOCK].astype(np.float64)
        if sigma > 0:
            S = blur(S, sigma, truncate=3.0, dtype=np.float64)
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
            out[start : start + _IMAGES_PER_BLOCK, a] = fields[name]()
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
    X_train, X_query, candidates = candidate_images(X_train, X_query, candidates)
    tangents = _check_tangent_names(tangents)
    lam = float(regularization)
    if not (np.isfinite(lam) and lam >= 0):
        raise ValueError(f"regularization must be a finite number >= 0; got {regularization!r}.")
    X_ref, local = used_training_images(X_train, candidates)
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
    Xr_flat, Xq_flat = X_ref.reshape(len(X_ref), n_pix), X_query.reshape(len(X_query), n_pix)
    for a, b in query_chunks(len(X_query), "tangent distance"):  # one chunk unless a progress bar is shown
        # (one-sided, Tq and Gq are empty: their slices are too, and unused)
        _tangent_kernel(Xr_flat, Xq_flat[a:b], Tr, Tq[a:b], Gr, Gq[a:b], local[a:b], bool(two_sided), lam, out[a:b])
    return out
