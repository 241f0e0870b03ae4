"""Keysers et al.'s image distortion model (IDM; IEEE PAMI 2007).

Every pixel of the query may move by up to ``warp`` pixels on its own, independently of its
neighbours; pixels are compared through their local context (a ``(2 context + 1)``-pixel square) of
Sobel gradient images. The distance is the sum over the query's pixels of the best match's squared
context difference, plus ``displacement_cost`` times the squared displacement. Re-ranks the
candidates of the exact search (see :mod:`.rerank`).

The kernel is compiled with numba (``parallel=True``, ``fastmath=False``); work is split over
queries only, and every (query, candidate) pair is computed by one thread in a fixed order, so
results do not depend on the number of threads.
"""

import numba
import numpy as np

from .rerank import candidate_images, float_images, used_training_images

__all__ = ["idm_distance", "sobel_gradients"]

# Images per block when computing Sobel gradients (bounds the float64 work arrays).
_IMAGES_PER_BLOCK = 4096


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
    X = float_images(X, "X")
    n, H, W = X.shape
    G = np.empty((n, 2, H, W), dtype=X.dtype)
    for start in range(0, n, _IMAGES_PER_BLOCK):
        P = np.pad(X[start : start + _IMAGES_PER_BLOCK].astype(np.float64), ((0, 0), (1, 1), (1, 1)))
        dx = P[:, :, 2:] - P[:, :, :-2]  # (n, H + 2, W)
        dy = P[:, 2:, :] - P[:, :-2, :]  # (n, H, W + 2)
        G[start : start + _IMAGES_PER_BLOCK, 0] = (dx[:, :-2] + 2 * dx[:, 1:-1] + dx[:, 2:]) / 8
        G[start : start + _IMAGES_PER_BLOCK, 1] = (dy[:, :, :-2] + 2 * dy[:, :, 1:-1] + dy[:, :, 2:]) / 8
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
    X_train, X_query, candidates = candidate_images(X_train, X_query, candidates)
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
    X_ref, local = used_training_images(X_train, candidates)
    warp, context = int(warp), int(context)
    Fr = _idm_features(X_ref, context, warp, use_gradients, use_intensity)
    Fq = _idm_features(X_query, context, warp, use_gradients, use_intensity)
    H, W = X_query.shape[1:]
    out = np.empty(candidates.shape, dtype=np.float64)
    _idm_kernel(Fr, Fq, local, H, W, warp, context, cost, bool(symmetric), out)
    return out
