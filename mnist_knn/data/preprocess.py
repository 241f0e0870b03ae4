"""Image preprocessing for k-NN: deskewing, blurring, centring, noise removal, downsampling.

Every function is pure (arrays in, arrays out) and vectorised over a batch of images of
shape ``(n, side, side)``; a single image of shape ``(side, side)`` is accepted too and gives
a single image back. MNIST images are ``28 x 28``.

Conventions
-----------
* **Coordinates.** Pixel ``[r, c]`` sits at row ``y = r`` (growing downwards) and column
  ``x = c``. The *image centre* is the point ``(side / 2, side / 2)``, i.e. pixel ``(14, 14)``
  of a 28 x 28 image: that is where MNIST put the centre of mass of every digit (between
  13.48 and 14.50 in both directions for all 60,000 training digits), and where the widely
  used moment-based deskew puts it.
* **Intensities.** Inputs are non-negative intensities of any integer or floating dtype
  (MNIST: ``uint8`` 0-255). Outputs are ``float32`` on the same scale, except
  :func:`binarize` (``uint8`` 0/1) and :func:`moments`/:func:`skew` (``float64``
  measurements). Nothing is ever computed in ``uint8``, so values near 0 and 255 never wrap.
* **Borders.** Pixels outside the image count as 0 (ink that moves or blurs past the border
  is lost).
* **Features** of whole data sets (PCA, standardisation, centred rows) live in
  :mod:`mnist_knn.data.features`.
"""

from typing import NamedTuple

import numba
import numpy as np

from .. import validation

__all__ = [
    "Moments",
    "binarize",
    "blur",
    "bounding_box_center",
    "center_of_mass_center",
    "change_thickness",
    "deskew",
    "distort",
    "downsample",
    "moments",
    "pipeline",
    "remove_noise",
    "skew",
    "to_uint8",
]

_IMAGES_PER_BLOCK = 8192  # images per block in the float64 moment computation (bounds memory)


def _unbatch(out, single):
    return out[0] if single else out


# --------------------------------------------------------------------------- kernels


@numba.njit(parallel=True, cache=True)
def _affine_bilinear(images, matrix, offset, lo, hi):
    """Bilinear resampling with zeros outside: ``out[r, c] = in[matrix @ (r, c) + offset]``.

    Private: assumes ``images`` is C-contiguous float32 (n, h, w), ``matrix`` float64
    (n, 2, 2), ``offset`` float64 (n, 2). Output clipped to ``[lo, hi]``. Matches
    ``scipy.ndimage.affine_transform(order=1, mode="grid-constant")``.
    """
    n, h, w = images.shape
    out = np.empty_like(images)
    for i in numba.prange(n):
        a00 = matrix[i, 0, 0]
        a01 = matrix[i, 0, 1]
        a10 = matrix[i, 1, 0]
        a11 = matrix[i, 1, 1]
        o0 = offset[i, 0]
        o1 = offset[i, 1]
        for r in range(h):
            for c in range(w):
                sr = a00 * r + a01 * c + o0
                sc = a10 * r + a11 * c + o1
                acc = 0.0
                if -1.0 < sr < h and -1.0 < sc < w:
                    fr0 = np.floor(sr)
                    fc0 = np.floor(sc)
                    fr = sr - fr0
                    fc = sc - fc0
                    ir = int(fr0)
                    ic = int(fc0)
                    if ir >= 0:
                        if ic >= 0:
                            acc += (1.0 - fr) * (1.0 - fc) * images[i, ir, ic]
                        if ic + 1 < w:
                            acc += (1.0 - fr) * fc * images[i, ir, ic + 1]
                    if ir + 1 < h:
                        if ic >= 0:
                            acc += fr * (1.0 - fc) * images[i, ir + 1, ic]
                        if ic + 1 < w:
                            acc += fr * fc * images[i, ir + 1, ic + 1]
                out[i, r, c] = min(max(acc, lo), hi)
    return out


@numba.njit(parallel=True, cache=True)
def _keep_components(ink, min_size, eight):
    """Mask of ink pixels in components of >= min_size pixels or of the largest size.

    Private: assumes ``ink`` is a C-contiguous bool array (n, h, w).
    """
    n, h, w = ink.shape
    keep = np.zeros_like(ink)
    for i in numba.prange(n):
        labels = np.zeros((h, w), np.int64)
        sizes = np.zeros(h * w + 1, np.int64)
        stack = np.empty(h * w, np.int64)
        n_labels = 0
        for r in range(h):
            for c in range(w):
                if ink[i, r, c] and labels[r, c] == 0:
                    n_labels += 1
                    labels[r, c] = n_labels
                    stack[0] = r * w + c
                    top = 1
                    size = 0
                    while top > 0:
                        top -= 1
                        pr = stack[top] // w
                        pc = stack[top] % w
                        size += 1
                        for dr in range(-1, 2):
                            for dc in range(-1, 2):
                                if (dr == 0 and dc == 0) or (not eight and dr != 0 and dc != 0):
                                    continue
                                qr = pr + dr
                                qc = pc + dc
                                if 0 <= qr < h and 0 <= qc < w and ink[i, qr, qc] and labels[qr, qc] == 0:
                                    labels[qr, qc] = n_labels
                                    stack[top] = qr * w + qc
                                    top += 1
                    sizes[n_labels] = size
        largest = 0
        for lab in range(1, n_labels + 1):
            largest = max(largest, sizes[lab])
        for r in range(h):
            for c in range(w):
                lab = labels[r, c]
                if lab > 0 and (sizes[lab] >= min_size or sizes[lab] == largest):
                    keep[i, r, c] = True
    return keep


def _shift(batch, shift_rows, shift_cols):
    """Translate each image by (shift_rows[i], shift_cols[i]) pixels, bilinear, zeros outside."""
    n = len(batch)
    matrix = np.broadcast_to(np.eye(2), (n, 2, 2)).copy()
    offset = -np.stack([shift_rows, shift_cols], axis=1).astype(np.float64)
    return _affine_bilinear(np.ascontiguousarray(batch, dtype=np.float32), matrix, offset, -np.inf, np.inf)


# --------------------------------------------------------------------------- moments


class Moments(NamedTuple):
    """Ink mass, centre of mass and second central moments of images (see :func:`moments`)."""

    total: np.ndarray
    row: np.ndarray
    col: np.ndarray
    mu20: np.ndarray
    mu11: np.ndarray
    mu02: np.ndarray


def _moments(batch):
    """(6, n) float64 array of total, row, col, mu20, mu11, mu02. Private: batch is validated."""
    n, side, _ = batch.shape
    coord = np.arange(side, dtype=np.float64)
    out = np.empty((6, n))
    for start in range(0, n, _IMAGES_PER_BLOCK):
        I = batch[start : start + _IMAGES_PER_BLOCK].astype(np.float64)
        rows = I.sum(axis=2)  # (m, side): ink per row
        cols = I.sum(axis=1)  # (m, side): ink per column
        total = rows.sum(axis=1)
        has_ink = total > 0
        mass = np.where(has_ink, total, 1.0)
        row = np.where(has_ink, rows @ coord / mass, side / 2)
        col = np.where(has_ink, cols @ coord / mass, side / 2)
        dy = coord - row[:, None]
        dx = coord - col[:, None]
        mu02 = np.where(has_ink, (rows * dy**2).sum(axis=1) / mass, 0.0)
        mu20 = np.where(has_ink, (cols * dx**2).sum(axis=1) / mass, 0.0)
        mu11 = np.where(has_ink, (np.matmul(I, dx[:, :, None])[:, :, 0] * dy).sum(axis=1) / mass, 0.0)
        out[:, start : start + len(I)] = total, row, col, mu20, mu11, mu02
    return out


def moments(images):
    """Centre of mass and second central moments of the ink of each image.

    With intensities ``I[y, x]`` as weights (``y`` = row, ``x`` = column) and ``M = sum I``,
    ``row = sum y I / M``, ``col = sum x I / M`` and
    ``mu_pq = sum (x - col)**p (y - row)**q I / M`` (normalised by the ink mass ``M``, so
    ``mu20`` is the variance of the column coordinate, ``mu02`` that of the row coordinate and
    ``mu11`` their covariance). Computed in float64.

    Parameters
    ----------
    images : ndarray of shape (n, side, side) or (side, side)
        Non-negative intensities, any integer or floating dtype.

    Returns
    -------
    Moments
        Named tuple ``(total, row, col, mu20, mu11, mu02)`` of float64 arrays of shape (n,)
        (scalars for a single image). An image without ink (``total <= 0``) gets its centre
        of mass at the image centre ``(side / 2, side / 2)`` and zero moments.

    Raises
    ------
    ValueError
        If ``images`` is not (n, side, side) / (side, side) or not a real numeric array.
    """
    batch, single = validation.image_batch(images)
    out = _moments(batch)
    return Moments(*(_unbatch(a, single) for a in out))


def skew(images):
    """Shear of each image's ink, ``mu11 / mu02``: columns moved per row, as removed by :func:`deskew`.

    Parameters
    ----------
    images : ndarray of shape (n, side, side) or (side, side)

    Returns
    -------
    alpha : ndarray of shape (n,), float64 (a scalar for a single image)
        ``d(column) / d(row)`` of the ink's principal slant. Rows grow downwards, so a digit
        leaning right (like ``/``) has **negative** skew and one leaning left (``\\``) positive.
        0 when ``mu02 == 0`` (no ink, or all ink in one row).
    """
    m = moments(images)
    mu02 = np.asarray(m.mu02)
    alpha = np.divide(m.mu11, mu02, out=np.zeros_like(mu02), where=mu02 > 0)
    return alpha[()] if alpha.ndim == 0 else alpha


# --------------------------------------------------------------------------- geometric


def deskew(images):
    """Remove each image's slant by a shear about its centre of mass (LeCun et al. 1998).

    The classic moment-based deskew: with ``alpha = mu11 / mu02`` (:func:`skew`), output
    pixel ``(r, c)`` is the input sampled at row ``row + (r - side/2)`` and column
    ``col + (c - side/2) + alpha * (r - side/2)``, where ``(row, col)`` is the centre of mass.
    So the centre of mass moves to the image centre ``(side/2, side/2)`` and the ink's skew
    becomes 0 (up to interpolation and ink sheared past the border: on MNIST training
    digits ``|skew|`` falls from a median of 0.2 to below 0.01 for 99% of them). Bilinear
    interpolation, zeros outside the image (the same as
    ``scipy.ndimage.affine_transform(order=1, mode="grid-constant")``), clipped to [0, 255].

    Parameters
    ----------
    images : ndarray of shape (n, side, side) or (side, side)
        Intensities 0-255, any integer or floating dtype.

    Returns
    -------
    deskewed : ndarray of shape (n, side, side) or (side, side), float32

    Notes
    -----
    Images without ink, or with all ink in one row (``mu02 == 0``), are only centred.
    """
    batch, single = validation.image_batch(images)
    n, side, _ = batch.shape
    m = Moments(*_moments(batch))
    mu02 = m.mu02
    alpha = np.divide(m.mu11, mu02, out=np.zeros_like(mu02), where=mu02 > 0)
    matrix = np.zeros((n, 2, 2))
    matrix[:, 0, 0] = 1.0
    matrix[:, 1, 0] = alpha
    matrix[:, 1, 1] = 1.0
    centre = side / 2
    offset = np.stack([m.row - centre, m.col - centre - alpha * centre], axis=1)
    out = _affine_bilinear(np.ascontiguousarray(batch, dtype=np.float32), matrix, offset, 0.0, 255.0)
    return _unbatch(out, single)


def distort(images, *, rotation=0.0, scale=1.0, shear=0.0):
    """Rotate, scale and shear each image about its centre: the small distortions of "virtual" digits.

    The forward map takes a point ``p`` (row, column) to ``centre + A (p - centre)`` with
    ``A = scale * R(rotation) @ [[1, 0], [shear, 1]]``: the shear moves a pixel sideways (along the
    columns) by ``shear`` times its height above or below the centre, as a slant does, and the
    rotation turns the image counter-clockwise as displayed (rows down, columns right). Each output
    pixel is the input sampled at ``centre + A^-1 (p - centre)``, bilinearly, zeros outside, clipped to
    [0, 255] (as :func:`deskew`; the same as ``scipy.ndimage.affine_transform(order=1,
    mode="grid-constant")``). The centre is the middle of the image, ``((side - 1) / 2, (side - 1) / 2)``,
    so a rotation by 90 degrees is exactly :func:`numpy.rot90`.

    Parameters
    ----------
    images : ndarray of shape (n, side, side) or (side, side)
        Intensities 0-255, any integer or floating dtype.
    rotation : float, default=0.0
        Degrees, counter-clockwise as displayed.
    scale : float, default=1.0
        Greater than 0; above 1 enlarges the digit.
    shear : float, default=0.0
        Columns moved per row away from the centre (rows below the centre move right).

    Returns
    -------
    distorted : ndarray of the same shape, float32

    Examples
    --------
    >>> import numpy as np
    >>> image = np.zeros((5, 5)); image[0, 2] = 200
    >>> float(distort(image, rotation=90)[2, 0])  # the top pixel, turned counter-clockwise, lands on the left
    200.0
    """
    for name, value in (("rotation", rotation), ("scale", scale), ("shear", shear)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not np.isfinite(value):
            raise ValueError(f"{name} must be a finite number; got {name}={value!r}.")
    if scale <= 0:
        raise ValueError(f"scale must be > 0; got scale={scale!r}.")
    rotation, scale, shear = float(rotation), float(scale), float(shear)  # float64 even for float32 arguments
    batch, single = validation.image_batch(images)
    n, side, _ = batch.shape
    # Rows down, columns right: with x = c and y = -r, a counter-clockwise turn (x, y) -> (x cos - y sin,
    # x sin + y cos) maps (r, c) offsets to (r cos - c sin, r sin + c cos). Whole quarter turns are exact
    # integer matrices (cos 90° is not exactly 0 in floating point), the rest is taken by cos and sin.
    quarters, rest = divmod(rotation, 90.0)
    t = np.deg2rad(rest)
    turn = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]) @ np.linalg.matrix_power(
        np.array([[0.0, -1.0], [1.0, 0.0]]), int(quarters) % 4)
    inverse = np.array([[1.0, 0.0], [-shear, 1.0]]) @ turn.T / scale  # of scale * turn @ [[1, 0], [shear, 1]]
    centre = np.full(2, (side - 1) / 2)
    matrix = np.broadcast_to(inverse, (n, 2, 2)).copy()
    offset = np.broadcast_to(centre - inverse @ centre, (n, 2)).copy()
    out = _affine_bilinear(np.ascontiguousarray(batch, dtype=np.float32), matrix, offset, 0.0, 255.0)
    return _unbatch(out, single)


def change_thickness(images, steps):
    """Thicken (``steps > 0``) or thin (``steps < 0``) the strokes by grey-level dilation or erosion.

    Each step replaces every pixel by the largest (thicker) or smallest (thinner) value of itself and
    its four neighbours (a 3x3 cross; zeros outside the image), which widens or narrows a stroke by
    about one pixel on each side.

    Parameters
    ----------
    images : ndarray of shape (n, side, side) or (side, side)
    steps : int
        Number of steps; 0 returns a copy.

    Returns
    -------
    ndarray of the same shape and dtype

    Examples
    --------
    >>> import numpy as np
    >>> dot = np.zeros((5, 5), dtype=np.uint8); dot[2, 2] = 255
    >>> int(change_thickness(dot, 1).sum() // 255), int(change_thickness(change_thickness(dot, 1), -1).sum() // 255)
    (5, 1)
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)):
        raise ValueError(f"steps must be an integer; got steps={steps!r}.")
    batch, single = validation.image_batch(images)
    out = np.array(batch, copy=True)
    pick = np.maximum if steps > 0 else np.minimum
    for _ in range(abs(int(steps))):
        padded = np.pad(out, ((0, 0), (1, 1), (1, 1)))
        out = pick.reduce([padded[:, 1:-1, 1:-1], padded[:, :-2, 1:-1], padded[:, 2:, 1:-1],
                           padded[:, 1:-1, :-2], padded[:, 1:-1, 2:]])
    return _unbatch(out, single)


def center_of_mass_center(images, subpixel=False):
    """Translate each image so that its centre of mass lands on the image centre, as MNIST did.

    Parameters
    ----------
    images : ndarray of shape (n, side, side) or (side, side)
    subpixel : bool, default=False
        False: shift by whole pixels, ``floor(side/2 - centre of mass + 0.5)`` (nearest
        integer, halves rounded up); pixel values are copied exactly and the centre of mass
        ends in ``(side/2 - 0.5, side/2 + 0.5]`` (MNIST itself: no shift for all but 4 of the
        60,000 training digits).
        True: shift by the exact fractional amount with bilinear interpolation (slightly
        blurs); the centre of mass then lands on ``(side/2, side/2)`` exactly, up to ink lost
        at the border.

    Returns
    -------
    centred : ndarray of shape (n, side, side) or (side, side), float32
        Images without ink are returned unchanged.
    """
    batch, single = validation.image_batch(images)
    side = batch.shape[-1]
    m = Moments(*_moments(batch))
    dr = side / 2 - m.row
    dc = side / 2 - m.col
    if not subpixel:
        dr, dc = np.floor(dr + 0.5), np.floor(dc + 0.5)
    return _unbatch(_shift(batch, dr, dc), single)


def bounding_box_center(images, threshold=0):
    """Translate each image by whole pixels so that the bounding box of its ink is centred.

    Ink is every pixel ``> threshold``. After the shift the margins above and below the box
    are equal, and so are those left and right of it; when a pair of margins cannot be
    equal (odd total), the top (left) margin gets the extra pixel, so that the box centre
    is at ``side/2`` rather than ``side/2 - 1`` (e.g. rows 5-23 of 28 for a box 19 rows
    high; rows 4-23 for 20 rows). Pixel values are copied exactly.

    Parameters
    ----------
    images : ndarray of shape (n, side, side) or (side, side)
    threshold : float, default=0

    Returns
    -------
    centred : ndarray of shape (n, side, side) or (side, side), float32
        Images without ink are returned unchanged.
    """
    batch, single = validation.image_batch(images)
    side = batch.shape[-1]
    ink = batch > threshold
    shifts = []
    for any_ink in (ink.any(axis=2), ink.any(axis=1)):  # rows, then columns
        first = any_ink.argmax(axis=1)
        last = side - 1 - any_ink[:, ::-1].argmax(axis=1)
        height = last - first + 1
        shift = (side - height + 1) // 2 - first
        shifts.append(np.where(any_ink.any(axis=1), shift, 0))
    return _unbatch(_shift(batch, *shifts), single)


# --------------------------------------------------------------------------- filters


def _gaussian_matrix(side, sigma, truncate):
    """(side, side) matrix G with G @ v = 1-D Gaussian filtering of v, zeros outside."""
    radius = int(truncate * sigma + 0.5)
    taps = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (taps / sigma) ** 2)
    kernel /= kernel.sum()
    offsets = np.arange(side)[None, :] - np.arange(side)[:, None]  # j - i
    inside = np.abs(offsets) <= radius
    return np.where(inside, kernel[np.clip(offsets + radius, 0, 2 * radius)], 0.0)


def blur(images, sigma, truncate=4.0, *, dtype=np.float32):
    """Gaussian blur of standard deviation ``sigma`` pixels, zeros outside the image.

    The same filter as ``scipy.ndimage.gaussian_filter(image, sigma, mode="constant",
    truncate=truncate)``: a separable kernel cut at ``int(truncate * sigma + 0.5)`` pixels and
    normalised to sum 1. Total ink is therefore preserved, except for ink that the kernel
    spreads past the border (lost, as ``mode="constant"`` treats the outside as 0).

    The one Gaussian filter of the package: preprocessing uses it in float32, the tangent
    distance (:mod:`mnist_knn.engine.tangent`) in float64 with ``truncate=3``.

    Parameters
    ----------
    images : ndarray of shape (n, height, width) or (side, side)
    sigma : float
        Standard deviation in pixels, ``>= 0``; ``sigma=0`` returns the images unchanged
        (in ``dtype``).
    truncate : float, default=4.0
        Kernel radius in standard deviations.
    dtype : {numpy.float32, numpy.float64}, default=numpy.float32
        The arithmetic and the result's dtype.

    Returns
    -------
    blurred : ndarray of the shape of ``images``, in ``dtype``

    Raises
    ------
    ValueError
        If ``sigma`` is negative or not finite, or ``images`` has the wrong shape or dtype.

    Examples
    --------
    >>> import numpy as np
    >>> dot = np.zeros((9, 9), dtype=np.uint8); dot[4, 4] = 100
    >>> round(float(blur(dot, 1.0).sum()), 3)  # the kernel (radius 4) stays inside: all the ink is kept
    100.0
    >>> round(float(blur(dot[2:7, 2:7], 1.0).sum()), 3)  # 5 x 5: the ink spread past the border is lost
    98.182
    """
    # A batch may hold rectangular images (the tangent distance's); a single image must be square,
    # which catches flattened rows passed by mistake.
    batch, single = validation.image_batch(images, square=np.ndim(images) != 3)
    is_number = isinstance(sigma, (int, float, np.integer, np.floating)) and not isinstance(sigma, bool)
    if not (is_number and np.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"sigma must be a finite number >= 0 (pixels); got sigma={sigma!r}.")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64; got {dtype}.")
    if sigma == 0:
        return _unbatch(batch.astype(dtype), single)
    n, height, width = batch.shape
    G_rows = _gaussian_matrix(height, float(sigma), truncate).astype(dtype)
    G_cols = _gaussian_matrix(width, float(sigma), truncate).astype(dtype)
    I = batch.astype(dtype, copy=False)
    # out = G_rows @ I @ G_cols.T for every image, as two large matrix products.
    along_cols = (I.reshape(n * height, width) @ G_cols.T).reshape(n, height, width)
    out = np.tensordot(G_rows, along_cols, axes=(1, 1)).transpose(1, 0, 2)
    return _unbatch(np.ascontiguousarray(out), single)


def remove_noise(images, min_size=5, threshold=0, connectivity=8):
    """Delete small specks of ink that are not part of the main stroke (Wilder's "noise removal").

    Ink is every pixel ``> threshold``; ink pixels are grouped into connected components
    (8-connected by default: diagonal neighbours touch). A component is **kept** if it has
    at least ``min_size`` pixels **or** is the largest component of its image (all
    components tied for largest are kept), so a digit never disappears. Every pixel of the
    other components is set to 0; all remaining pixels, including those ``<= threshold``,
    are unchanged.

    Parameters
    ----------
    images : ndarray of shape (n, side, side) or (side, side)
    min_size : int, default=5
        Components of fewer pixels are removed (unless largest). The default removes specks of
        up to 4 pixels: one noise pixel of a NIST scan, after MNIST's anti-aliased
        down-scaling, covers at most 2 x 2 pixels. ``min_size <= 1`` removes nothing.
    threshold : float, default=0
        Intensity above which a pixel is ink.
    connectivity : {8, 4}, default=8

    Returns
    -------
    cleaned : ndarray of shape (n, side, side) or (side, side), float32

    Raises
    ------
    ValueError
        If ``connectivity`` is not 4 or 8, ``min_size`` is not an integer, or ``images`` has
        the wrong shape or dtype.
    """
    batch, single = validation.image_batch(images)
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8; got connectivity={connectivity!r}.")
    if not isinstance(min_size, (int, np.integer)) or isinstance(min_size, bool):
        raise ValueError(f"min_size must be an integer (pixels); got min_size={min_size!r}.")
    keep = _keep_components(np.ascontiguousarray(batch > threshold), int(min_size), connectivity == 8)
    out = batch.astype(np.float32)  # always a copy
    out[(batch > threshold) & ~keep] = 0
    return _unbatch(out, single)


def downsample(images, factor):
    """Shrink images by an integer factor, each output pixel the mean of a factor x factor block.

    Parameters
    ----------
    images : ndarray of shape (n, side, side) or (side, side)
    factor : int
        Must divide ``side``: for MNIST 2 gives 14 x 14, 4 gives 7 x 7, 1 is the identity.

    Returns
    -------
    small : ndarray of shape (n, side // factor, side // factor) or (side // factor, side // factor), float32

    Raises
    ------
    ValueError
        If ``factor`` is not a positive integer dividing ``side``.
    """
    batch, single = validation.image_batch(images)
    n, side, _ = batch.shape
    if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) or factor < 1 or side % factor:
        raise ValueError(f"factor must be a positive integer dividing side={side}; got factor={factor!r}.")
    s = side // factor
    blocks = batch.astype(np.float32).reshape(n, s, factor, s, factor)
    return _unbatch(blocks.sum(axis=4).sum(axis=2) / np.float32(factor * factor), single)


def binarize(images, threshold=128):
    """Ink / no ink: 1 where a pixel is ``>= threshold``, else 0.

    Parameters
    ----------
    images : ndarray of shape (n, side, side) or (side, side)
    threshold : float, default=128
        With 0-255 intensities, 128 splits the range into two equal halves (0-127, 128-255).

    Returns
    -------
    binary : ndarray of shape (n, side, side) or (side, side), uint8 with values 0 and 1
    """
    batch, single = validation.image_batch(images)
    return _unbatch((batch >= threshold).astype(np.uint8), single)


# --------------------------------------------------------------------------- fitted transforms


_STEPS = {
    f.__name__: f
    for f in (deskew, blur, center_of_mass_center, bounding_box_center, remove_noise, downsample, binarize)
}


def pipeline(images, steps):
    """Apply a sequence of named preprocessing steps, so a configuration can be written as data.

    Parameters
    ----------
    images : ndarray of shape (n, side, side) or (side, side)
    steps : sequence of str or tuple
        Each step is a function name, ``"deskew"``, or a tuple of a name and its arguments,
        ``("blur", 1.0)``; a dict at the end of the tuple gives keyword arguments,
        ``("remove_noise", {"min_size": 3})``. Names: ``deskew``, ``blur``,
        ``center_of_mass_center``, ``bounding_box_center``, ``remove_noise``, ``downsample``,
        ``binarize``. Steps run in order.

    Returns
    -------
    out : ndarray
        The result of the last step; with no steps, ``images`` as float32.

    Raises
    ------
    ValueError
        If a step is malformed or names an unknown function (checked before any step runs).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.zeros((2, 8, 8), dtype=np.uint8); X[:, 1:7, 3:5] = 255  # two equal strokes...
    >>> X[0, 7, 0] = 255  # ...and a one-pixel speck in the first image
    >>> out = pipeline(X, ["remove_noise", ("blur", 1.0)])
    >>> out.shape, out.dtype
    ((2, 8, 8), dtype('float32'))
    >>> bool(np.array_equal(out[0], out[1]))  # the speck was removed before the blur
    True

    Wilder's preprocessing of MNIST, as data: ``pipeline(X, ["deskew", "remove_noise", ("blur", 1.0)])``.
    """
    parsed = []
    for step in steps:
        if isinstance(step, str):
            step = (step,)
        if not (isinstance(step, (tuple, list)) and step and isinstance(step[0], str)):
            raise ValueError(f"each step must be a name or a (name, *args[, kwargs]) tuple; got {step!r}.")
        name, *args = step
        if name not in _STEPS:
            raise ValueError(f"unknown step {name!r}; expected one of {sorted(_STEPS)}.")
        kwargs = args.pop() if args and isinstance(args[-1], dict) else {}
        parsed.append((_STEPS[name], args, kwargs))
    batch, single = validation.image_batch(images)
    out = batch.astype(np.float32)
    for func, args, kwargs in parsed:
        out = func(out, *args, **kwargs)
    return _unbatch(out, single)


def to_uint8(images):
    """Round preprocessed images back to 8-bit pixels, as MNIST stores them.

    Each pixel moves by at most 0.5 on the 0-255 scale; in exchange every distance between the
    images is again an exact integer (see :mod:`mnist_knn.engine.search`), and the search is faster.

    Parameters
    ----------
    images : array-like of float, any shape
        Intensities on the 0-255 scale (values outside are clipped).

    Returns
    -------
    ndarray of uint8, same shape
    """
    return np.clip(np.rint(np.asarray(images)), 0, 255).astype(np.uint8)
