"""Keysers et al.'s image distortion model (IDM; IEEE PAMI 2007).

Every pixel of the query may move by up to ``warp`` pixels on its own, independently of its
neighbours; pixels are compared through their local context (a ``(2 context + 1)``-pixel square) of
Sobel gradient images. The distance is the sum over the query's pixels of the best match's squared
context difference, plus ``displacement_cost`` times the squared displacement. Re-ranks the
candidates of the exact search (see :mod:`.rerank`).

The kernel is compiled with numba (``parallel=True``, ``fastmath=False``); work is split over
queries only, and every (query, candidate) pair is computed by one thread in a fixed order, so
results do not depend on the number of threads. The features of every training image compared are
computed once per call; the context sums of the report's setting (two gradient channels, context 1)
are taken in fused passes, with the same operations in the same order as the general loops.

Early abandoning (``keep=k``): re-ranking needs only the k nearest candidates, so a pair can stop as
soon as its partial sum exceeds the k-th best distance found so far for its query. The candidates of
a query are taken in list order, so the k nearest of every prefix of the list are found exactly, and
every distance that is computed to the end is bit-identical to the full computation
(``tests/engine/test_idm_abandoning.py``). ``benchmarks/bench_idm.py`` measures the gain.
"""

import numba
import numpy as np

from .rerank import candidate_images, float_images, query_chunks

__all__ = ["features_into", "idm_distance", "sobel_gradients"]

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
    G = np.empty((n, 2 * H * W), dtype=X.dtype)  # unpadded: the layout of _features with m = 0
    _features(X, np.arange(n), 0, H * W, True, False, G)
    return G.reshape(n, 2, H, W)


@numba.njit(cache=True)
def features_into(image, padded, F, L, m, Wr, use_gradients, use_intensity):
    """The channels the IDM compares of one image, written into flat ``F`` (a numba function, for the IDM's and
    the P2DHMDM's kernels): channel ch of pixel (y, x) at ``ch * L + (y + m) * Wr + m + x``. Only those positions
    are written.

    ``padded`` is a float64 work array of shape (H + 2, W + 2) whose border holds zeros. The Sobel
    gradients (:func:`sobel_gradients` calls this too) are computed in float64, ``(a + 2 b + c) / 8`` of the
    differences a, b, c across the pixel's three rows (or columns), then stored in ``F``'s dtype.
    """
    H, W = image.shape
    for y in range(H):
        for x in range(W):
            padded[y + 1, x + 1] = image[y, x]
    ch = 0
    if use_gradients:
        for y in range(H):
            k = (y + m) * Wr + m
            for x in range(W):
                a = padded[y, x + 2] - padded[y, x]
                b = padded[y + 1, x + 2] - padded[y + 1, x]
                c = padded[y + 2, x + 2] - padded[y + 2, x]
                F[k + x] = (a + 2 * b + c) / 8
                a = padded[y + 2, x] - padded[y, x]
                b = padded[y + 2, x + 1] - padded[y, x + 1]
                c = padded[y + 2, x + 2] - padded[y, x + 2]
                F[L + k + x] = (a + 2 * b + c) / 8
        ch = 2
    if use_intensity:
        for y in range(H):
            k = ch * L + (y + m) * Wr + m
            for x in range(W):
                F[k + x] = image[y, x]


@numba.njit(parallel=True, cache=True)
def _features(X, rows, m, L, use_gradients, use_intensity, out):
    """``out[r]``: the channels of image ``X[rows[r]]``, padded by m, each of length L (see ``features_into``).
    ``out``'s padding must hold zeros (with m = 0 there is none)."""
    H, W = X.shape[1:]
    Wr = W + 2 * m
    for r in numba.prange(len(rows)):
        padded = np.zeros((H + 2, W + 2))
        features_into(X[rows[r]], padded, out[r], L, m, Wr, use_gradients, use_intensity)


# Rows of an image per band when a bound is set: the unit in which a pair's partial sum grows and is
# checked (see ``_idm_pair``).
_BAND = 6
# Every pass of the kernel runs over a multiple of _VEC elements (16 float32: one AVX-512 vector), so that
# the compiled loops never fall into their scalar remainder; the extra elements are work space (see
# ``_idm_pair``). Bands of 6 rows, with their 2 context rows, make a pass of 8 rows of 34: 17 vectors.
_VEC = 16


@numba.njit(cache=True)
def _round_up(n, vec):
    return (n + vec - 1) // vec * vec


@numba.njit(cache=True)
def _block(band, Wr, vec):
    """Elements of ``best`` per band: the band's rows, rounded up to the vector width, and slack for a rounded pass."""
    return _round_up(band * Wr, vec) + vec


@numba.njit(cache=True)
def _band_order(fa, n_ch, L, H, Wr, base, band):
    """Bands of ``band`` rows of flat image ``fa`` (by first row), those with the most energy first."""
    n_band = (H + band - 1) // band
    energy = np.zeros(n_band)
    for ch in range(n_ch):
        for y in range(H):
            for k in range(ch * L + base + y * Wr, ch * L + base + (y + 1) * Wr):
                energy[y // band] += fa[k] * fa[k]
    return np.argsort(-energy, kind="mergesort") * band


@numba.njit(cache=True)
def _idm_pair(fa, fb, n_ch, H, W, warp, context, cost, bands, band, vec, D, R, best, start, bound):
    """IDM distance matching every pixel of image ``a`` into image ``b``, abandoned above ``bound``.

    ``fa`` and ``fb`` hold ``n_ch`` channel images of length L each, one after the other, padded
    by m = context + warp, with row length Wr = W + 2m (see ``features_into``). A match at
    displacement (dy, dx) adds ``cost * (dy**2 + dx**2)`` (in float64) to a pixel's context
    distance. ``D``, ``R`` and ``best`` are work arrays.

    Positions are k = ry * Wr + rx, where (ry - c, rx - c) is the image position of a pixel of ``a``.
    At displacement (dy, dx) = (oy - warp, ox - warp) the pixel at k of channel ch sits at
    fa[ch * L + k + base] and its match at fb[ch * L + k + oy * Wr + ox] (base = warp * Wr + warp),
    so each step is a loop over contiguous memory (a slice: explicit offsets would cost a
    negative-index check per element and stop LLVM from vectorising). Columns rx >= W + 2c are
    padding: computed, never used.

    The rows of ``a`` are taken in ``bands`` of ``band`` rows. For every band and displacement: the
    squared differences ``D`` of the band's rows and its context rows, summed over channels; their
    sums along x over the context, ``R`` (+inf in the columns whose match would lie left or right
    of the image); the sums of ``R`` along y, plus the displacement's cost; the smallest over
    displacements is each pixel's best match, ``best``. Each pixel's sums are taken in the same
    order whatever the band and whatever the loops fused (the context's rows, then its columns in
    order, then the cost), so its best match is always the same value.

    Early abandoning. The bands are ordered with the most gradient energy first (they hold most of
    the distance). After each band, its pixels' best matches are added to a partial sum, and the
    pair stops as soon as ``start`` plus the partial sum exceeds ``bound`` times ``margin``: every
    term is >= 0, and ``margin`` exceeds the largest ratio that rounding can put between two
    floating-point sums of the same non-negative terms in different orders (the partial sum is
    taken in four interleaved parts, an order of its own), so the finished distance would exceed
    ``bound`` too. A pair that finishes sums the best matches of all its
    pixels in row-major order: exactly the value of the unbanded computation. One that stops
    returns +inf.

    Vector width. Each pass runs over a multiple of ``vec`` elements, so that the compiled loops
    never fall into their scalar remainder (with bands of 6 rows and context 1, a pass over a band's
    rows is 8 rows of 34: exactly 17 vectors of 16 float32). The extra elements are work space: ``D``
    and ``R`` are sized for them, ``fa`` and ``fb`` carry ``vec`` elements of slack after their last
    channel, and ``best`` keeps each band's rows in a block of its own (``block`` elements) with slack
    after the band's last row. A displacement that leaves the band's last rows without a match is not
    rounded up in the S pass, as its extra elements would land on those rows.
    """
    L = (fa.shape[0] - vec) // n_ch
    c2 = 2 * context
    Wr = W + 2 * (context + warp)
    base = warp * Wr + warp
    n_off = 2 * warp + 1
    # Sums of the same n = H * W non-negative terms (n + 1 with ``start``) in two orders differ by a ratio of at most
    # about 1 + 2 (n + 1) u (u = 2 ** -53), one more u for rounding bound * margin: 1 + 8 n u leaves room.
    margin = 1.0 + 8.0 * H * W * 2.0**-53
    limit = bound * margin
    partial = 0.0
    block = _block(band, Wr, vec)  # best holds each band's rows in a block of its own
    for ya in bands:
        yb = min(H, ya + band)
        bb = best[(ya // band) * block : (ya // band + 1) * block]  # this band's best matches
        for k in range(block):
            bb[k] = np.inf
        for oy in range(n_off):
            # Rows y of a in this band whose match y + dy lies inside the image.
            y0 = max(ya, warp - oy)
            y1 = min(yb, H + warp - oy)
            if y1 <= y0:
                continue
            for ox in range(n_off):
                off = oy * Wr + ox
                k0 = y0 * Wr
                n = _round_up((y1 - y0 + c2) * Wr, vec)  # the band's rows and their context rows
                # D: squared difference per pixel, summed over channels.
                a_v = fa[base + k0 : base + k0 + n]
                b_v = fb[off + k0 : off + k0 + n]
                if n_ch == 2:  # the gradients: both channels in one pass
                    a_w = fa[L + base + k0 : L + base + k0 + n]
                    b_w = fb[L + off + k0 : L + off + k0 + n]
                    for k in range(n):
                        d = a_v[k] - b_v[k]
                        e = a_w[k] - b_w[k]
                        D[k] = d * d + e * e
                else:
                    for k in range(n):
                        d = a_v[k] - b_v[k]
                        D[k] = d * d
                    for ch in range(1, n_ch):
                        a_v = fa[ch * L + base + k0 : ch * L + base + k0 + n]
                        b_v = fb[ch * L + off + k0 : ch * L + off + k0 + n]
                        for k in range(n):
                            d = a_v[k] - b_v[k]
                            D[k] += d * d
                # R: D summed over the context along x (the last c2 columns of a row read past
                # it: padding, never used).
                if c2 == 2:  # context 1 in one pass
                    d_1 = D[1 : n + 1]
                    d_2 = D[2 : n + 2]
                    for k in range(n):
                        R[k] = D[k] + d_1[k] + d_2[k]
                else:
                    for k in range(n):
                        R[k] = D[k]
                    for u in range(1, c2 + 1):
                        d_u = D[u : n + u]
                        for k in range(n):
                            R[k] += d_u[k]
                # A match left or right of the image is no match: +inf in every row of R.
                x0 = max(0, warp - ox)
                x1 = max(0, min(W, W + warp - ox))
                if x0 > 0 or x1 < W:
                    for r in range(y1 - y0 + c2):
                        for x in range(min(x0, W)):
                            R[r * Wr + x] = np.inf
                        for x in range(x1, W):
                            R[r * Wr + x] = np.inf
                # S: R summed along y, plus the displacement's cost; the best match so far.
                penalty = cost * ((oy - warp) ** 2 + (ox - warp) ** 2)
                m = (y1 - y0) * Wr
                if y1 == yb:  # rounded up into the block's slack; never past a row of the band
                    m = _round_up(m, vec)
                b_v = bb[(y0 - ya) * Wr : (y0 - ya) * Wr + m]
                if c2 == 2 and penalty == 0:  # context 1, no cost: in one pass
                    r_1 = R[Wr : Wr + m]
                    r_2 = R[2 * Wr : 2 * Wr + m]
                    for k in range(m):
                        t = R[k] + r_1[k] + r_2[k]
                        b = b_v[k]
                        b_v[k] = t if t < b else b
                    continue
                for k in range(m):
                    D[k] = R[k]
                for v in range(1, c2 + 1):
                    r_w = R[v * Wr : v * Wr + m]
                    for k in range(m):
                        D[k] += r_w[k]
                if penalty == 0:
                    for k in range(m):
                        t = D[k]
                        b = b_v[k]
                        b_v[k] = t if t < b else b
                else:  # in float64 (float32 sums promoted), as before; the min keeps best's dtype, and rounding
                    # t to it first would give the same value (rounding never reverses an order)
                    for k in range(m):
                        t = D[k] + penalty
                        b = b_v[k]
                        b_v[k] = t if t < b else b
        if limit < np.inf:
            # Four running sums, to keep the adds independent: the margin covers any order.
            s0 = s1 = s2 = s3 = 0.0
            for y in range(ya, yb):
                b_v = bb[(y - ya) * Wr : (y - ya) * Wr + W]
                x = 0
                while x + 4 <= W:
                    s0 += b_v[x]
                    s1 += b_v[x + 1]
                    s2 += b_v[x + 2]
                    s3 += b_v[x + 3]
                    x += 4
                for x in range(x, W):
                    s0 += b_v[x]
            partial += (s0 + s1) + (s2 + s3)
            if start + partial > limit:
                return np.inf
    total = 0.0
    for y in range(H):
        for x in range(W):
            total += best[(y // band) * block + (y % band) * Wr + x]
    return total


@numba.njit(parallel=True, fastmath=False, cache=True)
def _idm_kernel(F_train, index, X_query, cand, warp, context, use_gradients, use_intensity, cost, band,
                symmetric, keep, out):
    """Fill ``out[i, c]`` with the IDM distance of query i to candidate ``cand[i, c]``.

    ``F_train[index[j]]`` holds the padded features of training image j (see ``_features``); each
    thread computes its query's features into its own buffer.

    With ``keep > 0`` the candidates of a query are taken in their order, and a pair stops (and its
    entry is +inf) as soon as it is certain to be farther than the ``keep``-th nearest of the
    candidates before it: no such pair is among the ``keep`` nearest of any prefix of the list.
    """
    n_query, n_cand = cand.shape
    H, W = X_query.shape[1:]
    n_ch = 2 * int(use_gradients) + int(use_intensity)
    m = context + warp
    c2 = 2 * context
    Wr = W + 2 * m
    L = (H + 2 * m + 1) * Wr
    vec = _VEC
    nD = _round_up((band + c2) * Wr, vec) + 2 * c2 * Wr + vec
    n_block = (H + band - 1) // band
    base = warp * Wr + warp
    dtype = X_query.dtype
    for i in numba.prange(n_query):
        padded = np.zeros((H + 2, W + 2))
        fq = np.zeros(n_ch * L + vec, dtype=dtype)
        D = np.zeros(nD, dtype=dtype)
        R = np.zeros(nD, dtype=dtype)
        best = np.empty(n_block * _block(band, Wr, vec), dtype=dtype)
        kept = np.full(max(keep, 1), np.inf)  # the keep smallest finished distances, ascending
        features_into(X_query[i], padded, fq, L, m, Wr, use_gradients, use_intensity)
        bands = _band_order(fq, n_ch, L, H, Wr, base, band)
        for c in range(n_cand):
            fr = F_train[index[cand[i, c]]]
            bound = kept[keep - 1] if keep > 0 else np.inf
            d = _idm_pair(fq, fr, n_ch, H, W, warp, context, cost, bands, band, vec, D, R, best, 0.0, bound)
            if symmetric and d < np.inf:  # the roles swapped: the training image's bands
                bands_r = _band_order(fr, n_ch, L, H, Wr, base, band)
                d += _idm_pair(fr, fq, n_ch, H, W, warp, context, cost, bands_r, band, vec, D, R, best, d, bound)
            if d > bound:  # abandoned (+inf), or finished just above the bound: never kept
                out[i, c] = np.inf
                continue
            out[i, c] = d
            if keep > 0:  # insert d into the ascending list of the keep smallest
                p = keep - 1
                while p > 0 and kept[p - 1] > d:
                    kept[p] = kept[p - 1]
                    p -= 1
                kept[p] = d


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
    keep=None,
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
    keep : int or None, default=None
        None computes every distance. An integer ``keep >= 1`` computes only what re-ranking
        the candidates (or any prefix of them: the first 100, 200, ...) needs to find the
        ``keep`` nearest: the candidates of each query are taken in their order, and a pair
        is abandoned, its entry set to +inf, as soon as its partial sum shows that it is
        farther than the ``keep``-th nearest of the candidates before it (early
        abandoning). Every entry that is not +inf is bit-identical to the full computation,
        and for every prefix length ``n >= keep`` the ``keep`` nearest of the first ``n``
        candidates, with their distances and their order (including ties), are the same as
        with ``keep=None``. Use it with :func:`~mnist_knn.engine.rerank.nearest_candidates`
        and ``k <= keep``.

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
        ``context < 0``, ``displacement_cost < 0``, ``keep < 1`` or no channel selected.

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
    if keep is not None and (
        isinstance(keep, bool) or not isinstance(keep, (int, np.integer)) or keep < 1
    ):
        raise ValueError(f"keep must be None or an integer >= 1; got keep={keep!r}.")
    H, W = X_query.shape[1:]
    out = np.empty(candidates.shape, dtype=np.float64)
    band = min(_BAND, H) if keep else H  # without a bound, the whole image is one band
    # The features of every training image compared, computed once; index maps an image to its row.
    used = np.zeros(len(X_train), dtype=bool)
    used[candidates.ravel()] = True
    rows = np.flatnonzero(used)
    index = np.cumsum(used) - 1
    n_ch = 2 * int(use_gradients) + int(use_intensity)
    m = int(warp) + int(context)
    L = (H + 2 * m + 1) * (W + 2 * m)  # one channel, padded (see features_into)
    F_train = np.zeros((len(rows), n_ch * L + _VEC), dtype=X_train.dtype)  # _VEC: room for rounded-up passes
    _features(X_train, rows, m, L, bool(use_gradients), bool(use_intensity), F_train)
    for a, b in query_chunks(len(X_query), "IDM"):  # one chunk unless a progress bar is shown
        _idm_kernel(F_train, index, X_query[a:b], candidates[a:b], int(warp), int(context), bool(use_gradients),
                    bool(use_intensity), cost, band, bool(symmetric), int(keep or 0), out[a:b])
    return out
