"""Slow, obviously correct reference versions of the image distortion model (and its constrained
form, the pseudo-two-dimensional hidden Markov distortion model) and the tangent distance.

The fast kernels of :mod:`.idm`, :mod:`.p2dhmdm` and :mod:`.tangent` are compiled with numba and
arranged for speed: flattened, padded feature arrays indexed by offsets, box sums computed
separably, least-squares problems solved through their normal equations with a hand-written
Cholesky factorisation that drops dependent tangents. Each trick is a place for an off-by-one or a
sign to hide. The functions here compute the same distances for ONE pair of images in the plainest
possible way (loops over pixels and displacements, zero padding written out,
:func:`numpy.linalg.lstsq` for the least squares), so that the tests can check the fast kernels
against them. This is the lesson of Karpathy's micrograd: test the fast thing against a reference
too simple to be wrong.

They are never used by the report or the notebooks, only by the tests
(``tests/engine/test_reference_kernels.py``, ``tests/engine/test_p2dhmdm.py``). Everything is
computed in float64.
"""

import numpy as np

from .tangent import TANGENTS, tangent_vectors

__all__ = [
    "idm_distance_reference",
    "p2dhmdm_distance_reference",
    "sobel_gradients_reference",
    "tangent_distance_reference",
]

# The 3x3 Sobel kernels, indexed [i + 1, j + 1] for the pixel at row offset i, column offset j.
_SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64)  # d/dx, x to the right
_SOBEL_Y = _SOBEL_X.T  # d/dy, y down


def _one_image(image, name):
    image = np.array(image, dtype=np.float64)
    if image.ndim != 2 or image.size == 0:
        raise ValueError(f"{name} must be one non-empty image of shape (height, width); got shape {image.shape}.")
    if not np.isfinite(image).all():
        raise ValueError(f"{name} must be finite.")
    return image


def _image_pair(x_train_image, x_query_image):
    """Both images as float64, checked, of one shape."""
    t = _one_image(x_train_image, "x_train_image")
    q = _one_image(x_query_image, "x_query_image")
    if q.shape != t.shape:
        raise ValueError(f"the images differ in shape: {q.shape} and {t.shape}.")
    return t, q


def _pixel(image, y, x):
    """``image[y, x]``, and 0 outside the image."""
    H, W = image.shape
    if 0 <= y < H and 0 <= x < W:
        return image[y, x]
    return 0.0


def sobel_gradients_reference(image):
    """Sobel gradients of one image by explicit 3x3 sums, zero outside the image.

    ``Gx(y, x) = 1/8 * sum over i, j in {-1, 0, 1} of Kx[i, j] * I(y + i, x + j)`` with
    ``Kx = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]`` (rows i = -1, 0, 1; columns j = -1, 0, 1)
    and ``I`` taken as 0 outside the image; ``Gy`` likewise with ``Ky = Kx.T``. Divided by 8
    so that a ramp rising by 1 per pixel has gradient 1.

    Parameters
    ----------
    image : array-like of shape (height, width)

    Returns
    -------
    G : ndarray of shape (2, height, width), float64
        ``G[0]`` the horizontal gradient (x to the right), ``G[1]`` the vertical one (y down).
    """
    image = _one_image(image, "image")
    H, W = image.shape
    G = np.zeros((2, H, W))
    for y in range(H):
        for x in range(W):
            for i in (-1, 0, 1):
                for j in (-1, 0, 1):
                    v = _pixel(image, y + i, x + j)
                    G[0, y, x] += _SOBEL_X[i + 1, j + 1] * v
                    G[1, y, x] += _SOBEL_Y[i + 1, j + 1] * v
    return G / 8


def _idm_channels(image, use_gradients, use_intensity):
    """The channel images the IDM compares, shape (n_channels, height, width)."""
    channels = []
    if use_gradients:
        channels.extend(sobel_gradients_reference(image))
    if use_intensity:
        channels.append(image)
    return np.stack(channels)


def _idm_one_way(Fq, Ft, warp, context, cost):
    """Every pixel of ``Fq`` matched to its best pixel of ``Ft`` (see :func:`idm_distance_reference`)."""
    _, H, W = Fq.shape
    c = context
    # Zero outside the image: pad every channel by c + warp zeros on every side, so that
    # the padded array at [m + y, m + x] holds pixel (y, x).
    m = c + warp
    Qp = np.pad(Fq, ((0, 0), (m, m), (m, m)))
    Tp = np.pad(Ft, ((0, 0), (m, m), (m, m)))
    total = 0.0
    for y in range(H):
        for x in range(W):
            best = np.inf
            for dy in range(-warp, warp + 1):
                for dx in range(-warp, warp + 1):
                    if not (0 <= y + dy < H and 0 <= x + dx < W):
                        continue  # the match must be a pixel of the image
                    # The (2c + 1) x (2c + 1) contexts around (y, x) in q and (y + dy, x + dx)
                    # in t, over all channels.
                    q_context = Qp[:, m + y - c : m + y + c + 1, m + x - c : m + x + c + 1]
                    t_context = Tp[:, m + y + dy - c : m + y + dy + c + 1, m + x + dx - c : m + x + dx + c + 1]
                    value = np.sum((q_context - t_context) ** 2) + cost * (dy * dy + dx * dx)
                    best = min(best, value)
            total += best
    return float(total)


def idm_distance_reference(
    x_train_image,
    x_query_image,
    warp=2,
    context=1,
    *,
    displacement_cost=0.0,
    use_gradients=True,
    use_intensity=False,
    symmetric=False,
):
    """Image distortion model distance between one query and one training image, by loops.

    The reference for :func:`~mnist_knn.engine.idm_distance` (same parameters and defaults).

    In words: build the channel images of both images (the horizontal and vertical Sobel
    gradients if ``use_gradients``, the pixel values themselves if ``use_intensity``), taken as
    0 outside the image. Then every pixel ``p`` of the **query** looks for its best match in the
    **training** image among the pixels ``p + d`` that lie inside the image with
    ``|d|_inf <= warp``; a match is scored by the squared difference of the two
    ``(2 context + 1) x (2 context + 1)`` contexts, summed over the channels, plus
    ``displacement_cost * |d|_2 ** 2``. The distance is the sum of the best scores over all
    query pixels. Each query pixel moves on its own; a training pixel may be matched many times
    or never. In math, with ``F_q``, ``F_t`` the channel images of query and training image::

        D(q, t) = sum over pixels p of q of
                  min over d with |d|_inf <= warp and p + d inside the image of
                  [ sum over offsets o with |o|_inf <= context, over channels ch, of
                        (F_q[ch](p + o) - F_t[ch](p + d + o)) ** 2
                    + displacement_cost * (d_y ** 2 + d_x ** 2) ]

    with ``F(p) = 0`` for ``p`` outside the image (a context may stick out of the image; a match
    may not). If ``symmetric``, the result is ``D(q, t) + D(t, q)``.

    Parameters
    ----------
    x_train_image, x_query_image : array-like of shape (height, width)
    warp, context : int
    displacement_cost : float
    use_gradients, use_intensity, symmetric : bool
        As in :func:`~mnist_knn.engine.idm_distance`.

    Returns
    -------
    float
    """
    t, q = _image_pair(x_train_image, x_query_image)
    if not (use_gradients or use_intensity):
        raise ValueError("At least one of use_gradients and use_intensity must be True.")
    warp, context, cost = int(warp), int(context), float(displacement_cost)
    if warp < 0 or context < 0 or cost < 0:
        raise ValueError("warp, context and displacement_cost must be >= 0.")
    Fq = _idm_channels(q, use_gradients, use_intensity)
    Ft = _idm_channels(t, use_gradients, use_intensity)
    d = _idm_one_way(Fq, Ft, warp, context, cost)
    if symmetric:
        d += _idm_one_way(Ft, Fq, warp, context, cost)
    return d


def _context_costs(Fq, Ft, warp, context):
    """``S[y, x, dy + warp, dx + warp]``: the context distance of query pixel ``(y, x)`` to training
    pixel ``(y + dy, x + dx)``, for every ``|dy|, |dx| <= warp`` (+inf where that pixel is outside)."""
    _, H, W = Fq.shape
    c = context
    m = c + warp  # as in _idm_one_way: the padded arrays at [m + y, m + x] hold pixel (y, x)
    Qp = np.pad(Fq, ((0, 0), (m, m), (m, m)))
    Tp = np.pad(Ft, ((0, 0), (m, m), (m, m)))
    n = 2 * warp + 1
    S = np.full((H, W, n, n), np.inf)
    for y in range(H):
        for x in range(W):
            q_context = Qp[:, m + y - c : m + y + c + 1, m + x - c : m + x + c + 1]
            for dy in range(-warp, warp + 1):
                for dx in range(-warp, warp + 1):
                    if not (0 <= y + dy < H and 0 <= x + dx < W):
                        continue  # the match must be a pixel of the image
                    t_context = Tp[:, m + y + dy - c : m + y + dy + c + 1, m + x + dx - c : m + x + dx + c + 1]
                    S[y, x, dy + warp, dx + warp] = np.sum((q_context - t_context) ** 2)
    return S


def p2dhmdm_distance_reference(x_train_image, x_query_image, warp=2, context=1):
    """Pseudo-two-dimensional hidden Markov distortion model distance of one pair, by loops.

    The reference for :func:`~mnist_knn.engine.p2dhmdm.p2dhmdm_distance` (same ``warp`` and
    ``context``); after Keysers, Deselaers, Gollan & Ney, PAMI 2007, in the project's reading.

    The IDM (:func:`idm_distance_reference`) lets every query pixel move on its own. The
    P2DHMDM keeps the columns and, within a column, the rows in order. With ``F_q``, ``F_t``
    the horizontal and vertical Sobel gradients of query and training image
    (:func:`sobel_gradients_reference`, 0 outside the image), the local cost of matching query
    pixel ``(y, x)`` to training pixel ``(y + dy, x + dx)`` is the IDM's context distance::

        S(y, x; dy, dx) = sum over channels ch and offsets |oy|, |ox| <= context of
                          (F_q[ch](y + oy, x + ox) - F_t[ch](y + dy + oy, x + dx + ox)) ** 2

    A matching chooses a column offset ``u_x`` in ``[-warp, warp]`` for every query column
    ``x``, and for every query pixel ``(y, x)`` a row offset ``v_{x,y}`` in ``[-warp, warp]``
    and a horizontal deviation ``delta_{x,y}`` in ``{-1, 0, 1}``, such that

    * ``|u_{x+1} - u_x| <= 1`` (the columns are mapped monotonically),
    * ``|v_{x,y+1} - v_{x,y}| <= 1`` (so are the rows of each column),
    * the pixel's displacement ``dy = v_{x,y}``, ``dx = u_x + delta_{x,y}`` has
      ``|dx| <= warp`` and the matched pixel ``(y + dy, x + dx)`` is inside the image.

    The distance is the smallest ``sum over query pixels of S(y, x; v_{x,y}, u_x + delta_{x,y})``
    over all matchings (the all-zero matching is always allowed, so it is finite). It is found by
    dynamic programming: ``M(x, y, u, v) = min over allowed delta of S(y, x; v, u + delta)``
    (+inf if none); for every column ``x`` and offset ``u`` a Viterbi pass down the rows,
    ``V(y, v) = M(x, y, u, v) + min over |v' - v| <= 1 of V(y - 1, v')``, gives the column cost
    ``C(x, u) = min over v of V(H - 1, v)``; a Viterbi pass across the columns,
    ``A(x, u) = C(x, u) + min over |u' - u| <= 1 of A(x - 1, u')``, gives the distance
    ``min over u of A(W - 1, u)``.

    With ``warp=0`` this is the IDM with ``warp=0``; for every ``warp`` it is at least the IDM
    with the same ``warp`` and ``context`` (whose matchings are unconstrained).

    Parameters
    ----------
    x_train_image, x_query_image : array-like of shape (height, width)
    warp, context : int

    Returns
    -------
    float
    """
    t, q = _image_pair(x_train_image, x_query_image)
    warp, context = int(warp), int(context)
    if warp < 0 or context < 0:
        raise ValueError("warp and context must be >= 0.")
    H, W = q.shape
    S = _context_costs(sobel_gradients_reference(q), sobel_gradients_reference(t), warp, context)
    offsets = range(-warp, warp + 1)  # u, v; index offset + warp
    A = None  # A[u + warp] for the previous column
    for x in range(W):
        C = np.full(2 * warp + 1, np.inf)  # C[u + warp]: the best cost of column x with offset u
        for u in offsets:
            V = None  # V[v + warp] for the previous row
            for y in range(H):
                V_new = np.full(2 * warp + 1, np.inf)
                for v in offsets:
                    M = np.inf  # the best horizontal deviation of pixel (y, x) at (u, v)
                    for delta in (-1, 0, 1):
                        dx = u + delta
                        if abs(dx) <= warp:  # S is +inf where (y + v, x + dx) is outside
                            M = min(M, S[y, x, v + warp, dx + warp])
                    if V is None:
                        V_new[v + warp] = M
                    else:
                        V_new[v + warp] = M + min(V[vp + warp] for vp in offsets if abs(vp - v) <= 1)
                V = V_new
            C[u + warp] = min(V)
        if A is None:
            A = C
        else:
            A = np.array([C[u + warp] + min(A[up + warp] for up in offsets if abs(up - u) <= 1) for u in offsets])
    return float(min(A))


def tangent_distance_reference(
    x_train_image,
    x_query_image,
    tangents=TANGENTS,
    two_sided=True,
    regularization=0.0,
    sigma=1.0,
):
    """Squared tangent distance between one query and one training image, by ``numpy.linalg.lstsq``.

    The reference for :func:`~mnist_knn.engine.tangent_distance` (same parameters and defaults).

    With ``q``, ``t`` the query and training image as vectors of pixels and ``T_q``, ``T_t``
    the matrices whose columns are their tangent vectors::

        D(q, t) = min over alpha, beta of
                  |q + T_q beta - t - T_t alpha| ** 2 + lam * (|alpha| ** 2 + |beta| ** 2)

    with ``beta = 0`` (only the training image moves) when not ``two_sided``, and
    ``lam = regularization``. Writing ``r = q - t``, ``A = [T_t, -T_q]`` (or ``A = T_t``
    one-sided) and ``z = (alpha, beta)``, this is ``min_z |r - A z| ** 2 + lam |z| ** 2``, the
    ordinary least-squares problem of the stacked system::

        [ A               ]       [ r ]
        [ sqrt(lam) * I   ] z  ~  [ 0 ]

    which is solved by :func:`numpy.linalg.lstsq` (an SVD, so dependent or zero tangents are
    harmless); the distance is the squared residual of the stacked system at its solution,
    computed directly from ``z``.

    The tangent vectors themselves come from the public
    :func:`~mnist_knn.engine.tangent_vectors` (blur by ``sigma``, then central differences),
    tested on its own elsewhere: what this function checks is the distance, the least-squares
    solve.

    Parameters
    ----------
    x_train_image, x_query_image : array-like of shape (height, width)
    tangents : sequence of str
    two_sided : bool
    regularization : float
    sigma : float
        As in :func:`~mnist_knn.engine.tangent_distance`.

    Returns
    -------
    float
    """
    t, q = _image_pair(x_train_image, x_query_image)
    lam = float(regularization)
    if lam < 0:
        raise ValueError("regularization must be >= 0.")
    if isinstance(tangents, str):
        tangents = (tangents,)
    n_pixels = q.size
    T_t = tangent_vectors(t[None], tangents, sigma)[0].reshape(-1, n_pixels).T  # (n_pixels, m)
    A = T_t
    if two_sided:
        T_q = tangent_vectors(q[None], tangents, sigma)[0].reshape(-1, n_pixels).T
        A = np.hstack([T_t, -T_q])
    r = (q - t).ravel()
    n_params = A.shape[1]
    A_stacked = np.vstack([A, np.sqrt(lam) * np.eye(n_params)])
    r_stacked = np.concatenate([r, np.zeros(n_params)])
    z, *_ = np.linalg.lstsq(A_stacked, r_stacked, rcond=None)
    residual = r_stacked - A_stacked @ z
    return float(residual @ residual)
