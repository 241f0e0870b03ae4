"""The pseudo-two-dimensional hidden Markov distortion model (P2DHMDM) against references.

:func:`mnist_knn.engine.reference.p2dhmdm_distance_reference` computes the distance of one pair of
images by plain loops: a table of context costs, then a Viterbi pass down the rows of every column
for every column offset and one across the columns. Here that reference is first anchored:

* on cases whose value is known without any dynamic programming (identical images, warp 0 = the
  IDM with warp 0 = the squared distance of the context-summed gradients, translated digits, one-row
  images where the constraints cannot bite);
* against brute-force enumerations of the matchings on tiny images, written straight from the
  definition (every column-offset sequence, every row-offset sequence, every horizontal deviation);
* on properties the definition implies (never below the IDM, monotone in warp and context).

Then the fast numba kernel :func:`mnist_knn.engine.p2dhmdm.p2dhmdm_distance` is compared with the
reference on random images of several shapes over warp and context, in batches, in float32 and
bit for bit on integer grey levels, and its input validation is checked.

The definition, in short (see the reference's docstring): with ``S(y, x; dy, dx)`` the IDM's
context distance of the Sobel gradients, a matching chooses a column offset ``u_x`` per query
column, a row offset ``v_{x,y}`` and a horizontal deviation ``delta_{x,y}`` in ``{-1, 0, 1}`` per
query pixel, with ``|u_{x+1} - u_x| <= 1``, ``|v_{x,y+1} - v_{x,y}| <= 1``,
``|u_x + delta_{x,y}| <= warp``, ``|v_{x,y}| <= warp`` and the matched pixel inside the image; the
distance is the smallest sum of ``S(y, x; v_{x,y}, u_x + delta_{x,y})`` over the matchings.

The fast kernel is run on one numba thread (tiny inputs: a parallel launch costs more than the work).
"""

import itertools
import re

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from mnist_knn.engine.p2dhmdm import p2dhmdm_distance
from mnist_knn.engine.reference import (
    idm_distance_reference,
    p2dhmdm_distance_reference,
    sobel_gradients_reference,
)

SHAPES = [(5, 5), (7, 6), (9, 9), (12, 12)]
RTOL = 1e-12  # float64: both sides add the same non-negative terms, in different orders


pytestmark = pytest.mark.usefixtures("one_numba_thread")  # tests/conftest.py


def fast(t, q, **params):
    """The fast kernel on one pair (training image ``t``, query ``q``)."""
    D = p2dhmdm_distance(t[None], q[None], [[0]], **params)
    assert D.shape == (1, 1) and D.dtype == np.float64
    return D[0, 0]


def digit(shape, rows, cols, seed):
    """Zeros with random grey levels in the block ``rows`` x ``cols`` (a "digit" well inside the frame)."""
    image = np.zeros(shape)
    image[rows, cols] = np.random.default_rng(seed).integers(1, 256, size=image[rows, cols].shape)
    return image


def translate(image, dy, dx):
    """``image`` moved by ``dy`` rows down and ``dx`` columns right, zeros coming in; no ink may leave."""
    H, W = image.shape
    moved = np.zeros_like(image)
    moved[max(dy, 0) : H + min(dy, 0), max(dx, 0) : W + min(dx, 0)] = (
        image[max(-dy, 0) : H + min(-dy, 0), max(-dx, 0) : W + min(-dx, 0)]
    )
    assert moved.sum() == image.sum()
    return moved


# --------------------------------------------------------------------------------------------------
# Brute force, straight from the definition
# --------------------------------------------------------------------------------------------------


def context_costs(t, q, warp, context):
    """``{(y, x, dy, dx): S(y, x; dy, dx)}`` for every match inside the image, by the formula."""
    Gq, Gt = sobel_gradients_reference(q), sobel_gradients_reference(t)
    H, W = q.shape

    def value(G, ch, y, x):
        return G[ch, y, x] if 0 <= y < H and 0 <= x < W else 0.0

    box = range(-context, context + 1)
    S = {}
    for y, x in itertools.product(range(H), range(W)):
        for dy, dx in itertools.product(range(-warp, warp + 1), repeat=2):
            if 0 <= y + dy < H and 0 <= x + dx < W:
                S[y, x, dy, dx] = sum(
                    (value(Gq, ch, y + oy, x + ox) - value(Gt, ch, y + dy + oy, x + dx + ox)) ** 2
                    for ch in (0, 1)
                    for oy in box
                    for ox in box
                )
    return S


def smooth(sequence):
    """Consecutive entries differ by at most 1."""
    return all(abs(a - b) <= 1 for a, b in zip(sequence, sequence[1:]))


def brute_force(t, q, warp, context):
    """Every column-offset sequence; for each, every row-offset sequence of every column (the columns
    are independent once the column offsets are fixed); the best allowed deviation per pixel."""
    H, W = q.shape
    S = context_costs(t, q, warp, context)
    offsets = range(-warp, warp + 1)

    def pixel(y, x, u, v):
        return min(
            (S[y, x, v, u + d] for d in (-1, 0, 1) if abs(u + d) <= warp and (y, x, v, u + d) in S),
            default=np.inf,
        )

    column_cost = {}

    def column(x, u):
        if (x, u) not in column_cost:  # the same whichever the other columns' offsets: remembered
            column_cost[x, u] = min(
                sum(pixel(y, x, u, v[y]) for y in range(H))
                for v in itertools.product(offsets, repeat=H)
                if smooth(v)
            )
        return column_cost[x, u]

    return min(
        sum(column(x, u[x]) for x in range(W)) for u in itertools.product(offsets, repeat=W) if smooth(u)
    )


def brute_force_joint(t, q, warp, context):
    """Every complete matching at once: column offsets, all row offsets and all deviations (tiny images)."""
    H, W = q.shape
    S = context_costs(t, q, warp, context)
    offsets = range(-warp, warp + 1)
    pixels = list(itertools.product(range(H), range(W)))
    best = np.inf
    n_matchings = 0
    for u in itertools.product(offsets, repeat=W):
        if not smooth(u):
            continue
        for v in itertools.product(offsets, repeat=H * W):  # v[y * W + x]
            if not all(smooth([v[y * W + x] for y in range(H)]) for x in range(W)):
                continue
            for delta in itertools.product((-1, 0, 1), repeat=H * W):
                total = 0.0
                for y, x in pixels:
                    dy, dx = v[y * W + x], u[x] + delta[y * W + x]
                    if abs(dx) > warp or (y, x, dy, dx) not in S:
                        break  # a displacement beyond warp or a match outside the image
                    total += S[y, x, dy, dx]
                else:
                    n_matchings += 1
                    best = min(best, total)
    assert n_matchings > 0
    return best


# --------------------------------------------------------------------------------------------------
# The reference, by hand
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("distance", [p2dhmdm_distance_reference, lambda t, q, w, c: fast(t, q, warp=w, context=c)],
                         ids=["reference", "fast"])
def test_by_hand(distance):
    rng = np.random.default_rng(1)
    t, q = rng.random((2, 7, 6))
    # Identical images: the zero matching costs nothing.
    for warp, context in [(0, 0), (1, 1), (2, 1), (3, 2)]:
        assert distance(q, q, warp, context) == 0.0
    # Warp 0, context 0: the squared Euclidean distance of the Sobel gradients.
    G = sobel_gradients_reference(q) - sobel_gradients_reference(t)
    assert_allclose(distance(t, q, 0, 0), np.sum(G**2), rtol=RTOL)
    # Warp 0, context 1: every pixel's squared gradient difference counted once per 3x3 context it
    # lies in (contexts sticking out of the image count the zeros there): 9 times inside, fewer at
    # the border.
    counts = np.ones((7, 6))
    counts = np.pad(counts, 1)
    window_count = sum(np.roll(counts, (i, j), axis=(0, 1)) for i in (-1, 0, 1) for j in (-1, 0, 1))[1:-1, 1:-1]
    assert window_count[3, 3] == 9 and window_count[0, 0] == 4
    assert_allclose(distance(t, q, 0, 1), np.sum(window_count * G**2), rtol=RTOL)
    # A query of one bright pixel against an empty training image: every match costs the query's own
    # gradients, the Sobel kernels over 8 (squares 1 + 4 + 1 + 1 + 4 + 1 per channel, over 64).
    blob = np.zeros((7, 7))
    blob[3, 3] = 1.0
    empty = np.zeros((7, 7))
    for warp in (0, 1, 2):
        assert distance(empty, blob, warp, 0) == 2 * 12 / 64
    # The other way round, an empty query against the bright pixel: with warp 0 the same; with warp 1
    # every query pixel can be matched to a zero gradient (the blob's gradients vanish everywhere but
    # on the ring around it) by a legal matching: u = -1, 0, +1 in columns 2, 3, 4 (so columns 2 and 4
    # look one column further out), and in column 3 row offsets -1, 0, +1 in rows 2, 3, 4 (the ring's
    # top and bottom look one row further out; the centre's gradients are 0). Distance 0.
    assert distance(blob, empty, 0, 0) == 2 * 12 / 64
    assert distance(blob, empty, 1, 0) == 0.0
    assert distance(blob, empty, 1, 1) > 0  # a 3x3 context around the ring always sees some of it


@pytest.mark.parametrize("context", [0, 1, 2])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_reference_with_warp_0_is_the_idm_with_warp_0(shape, context):
    rng = np.random.default_rng([*shape, context])
    for _ in range(3):
        t, q = rng.random((2, *shape))
        assert_allclose(
            p2dhmdm_distance_reference(t, q, 0, context), idm_distance_reference(t, q, 0, context), rtol=RTOL
        )


@pytest.mark.parametrize("context", [0, 2])
@pytest.mark.parametrize("shift", [(0, 1), (1, 0), (1, 1), (-1, 1), (0, -2), (2, -1), (-2, -2)])
def test_a_translated_digit_costs_nothing(shift, context):
    """A digit moved by ``(dy, dx)`` inside the frame: ``u_x = dx`` and ``v = dy`` everywhere (with
    ``delta = -sign(dx)`` or a smaller offset at the far border, where both images are empty) match
    every pixel to its own, at cost 0 as soon as ``warp >= max(|dy|, |dx|)``; with a smaller warp the
    digit cannot be followed and the distance is positive."""
    q = digit((20, 20), slice(8, 12), slice(8, 12), seed=sum(shift) + 10)
    t = translate(q, *shift)
    need = max(abs(shift[0]), abs(shift[1]))
    for warp in range(need, 4):
        assert p2dhmdm_distance_reference(t, q, warp, context) == 0.0
        assert fast(t, q, warp=warp, context=context) == 0.0
    assert p2dhmdm_distance_reference(t, q, need - 1, context) > 0
    assert fast(t, q, warp=need - 1, context=context) > 0


@pytest.mark.parametrize("context", [0, 1, 2])
def test_one_row_images_with_warp_1_are_the_idm(context):
    """With a single row no pixel can move vertically, and with warp 1 the column offsets ``u_x = 0``
    with ``delta = dx`` reach any displacement ``|dx| <= 1`` for every pixel independently: the
    constraints cannot bite, and the P2DHMDM equals the IDM."""
    rng = np.random.default_rng(context)
    for width in (1, 2, 7, 12):
        t, q = rng.random((2, 1, width))
        assert_allclose(
            p2dhmdm_distance_reference(t, q, 1, context), idm_distance_reference(t, q, 1, context), rtol=RTOL
        )


@pytest.mark.parametrize("context", [0, 1])
def test_rows_of_a_column_may_not_cross(context):
    """A thick bar (rows 2-3) against two thin ones (rows 1 and 4): the IDM sends row 2 up and row 3
    down (row offsets -1, +1 in consecutive rows), which the P2DHMDM forbids; it costs strictly more."""
    q = np.zeros((6, 4))
    q[2:4, 1:3] = 1
    t = np.zeros((6, 4))
    t[[1, 4], 1:3] = 1
    p2 = p2dhmdm_distance_reference(t, q, 1, context)
    assert p2 > idm_distance_reference(t, q, 1, context)
    assert p2 == brute_force(t, q, 1, context)  # multiples of 1/64: exact
    assert fast(t, q, warp=1, context=context) == p2


@pytest.mark.parametrize("context", [0, 1])
def test_columns_may_not_cross(context):
    """A thick vertical bar (columns 2-3) against two thin ones (columns 0 and 5), warp 2: the IDM
    sends column 2 left and column 3 right by 2 (displacements -2, +2 in consecutive columns); the
    P2DHMDM needs column offsets u_2 <= -1 and u_3 >= 1 for that, two apart, which it forbids."""
    q = np.zeros((4, 6))
    q[1:3, 2:4] = 1
    t = np.zeros((4, 6))
    t[1:3, [0, 5]] = 1
    p2 = p2dhmdm_distance_reference(t, q, 2, context)
    assert p2 > idm_distance_reference(t, q, 2, context)
    assert p2 == brute_force(t, q, 2, context)  # multiples of 1/64: exact
    assert fast(t, q, warp=2, context=context) == p2


# --------------------------------------------------------------------------------------------------
# The reference against brute force
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape, warp, context",
    [((3, 3), 1, 0), ((3, 3), 1, 1), ((3, 4), 1, 0), ((3, 4), 1, 1), ((4, 3), 1, 1), ((3, 3), 2, 1),
     ((2, 5), 2, 0), ((4, 2), 2, 1), ((1, 4), 1, 1), ((3, 1), 1, 0)],
    ids=str,
)
def test_reference_equals_brute_force(shape, warp, context):
    rng = np.random.default_rng([*shape, warp, context])
    for _ in range(2):
        t, q = rng.random((2, *shape))
        assert_allclose(p2dhmdm_distance_reference(t, q, warp, context), brute_force(t, q, warp, context), rtol=RTOL)
    # Sparse integer images (many zero gradients, many ties): exact.
    t, q = rng.integers(0, 4, size=(2, *shape)) * (rng.random((2, *shape)) < 0.5)
    assert p2dhmdm_distance_reference(t, q, warp, context) == brute_force(t, q, warp, context)


@pytest.mark.parametrize("shape, context", [((2, 2), 0), ((2, 2), 1), ((1, 3), 1), ((2, 1), 0)], ids=str)
def test_reference_equals_joint_brute_force(shape, context):
    """Every complete matching enumerated at once (warp 1), deviations included."""
    rng = np.random.default_rng([*shape, context, 7])
    for _ in range(2):
        t, q = rng.random((2, *shape))
        assert_allclose(p2dhmdm_distance_reference(t, q, 1, context), brute_force_joint(t, q, 1, context), rtol=RTOL)


# --------------------------------------------------------------------------------------------------
# Properties of the definition
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(4, 5), (6, 6), (7, 5), (9, 9)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_reference_is_at_least_the_idm(shape):
    """Every P2DHMDM matching is an IDM matching (the same displacements, minus the constraints)."""
    rng = np.random.default_rng(shape)
    strictly_above = 0
    for warp in (1, 2, 3):
        for context in (0, 1, 2):
            t, q = rng.random((2, *shape))
            p2 = p2dhmdm_distance_reference(t, q, warp, context)
            idm = idm_distance_reference(t, q, warp, context)
            assert p2 >= idm * (1 - RTOL)
            strictly_above += p2 > idm * (1 + 1e-9)
    assert strictly_above > 0  # the constraints do bite on random images


@pytest.mark.parametrize("shape", [(5, 5), (7, 6)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_reference_is_monotone_in_warp_and_context(shape):
    """A larger warp allows more matchings (never more cost); a larger context adds non-negative terms
    to every local cost (never less cost)."""
    rng = np.random.default_rng([*shape, 3])
    t, q = rng.random((2, *shape))
    D = np.array([[p2dhmdm_distance_reference(t, q, w, c) for c in range(3)] for w in range(4)])
    assert np.all(np.diff(D, axis=0) <= RTOL * D[1:])  # down the warps
    assert np.all(np.diff(D, axis=1) >= -RTOL * D[:, 1:])  # along the contexts
    assert D[3, 0] < D[0, 0] and D[0, 2] > D[0, 0]  # and not trivially


def test_reference_rejects_bad_input_and_keeps_it():
    t, q = np.random.default_rng(4).random((2, 5, 6))
    t0, q0 = t.copy(), q.copy()
    p2dhmdm_distance_reference(t, q, 2, 1)
    assert_array_equal(t, t0)
    assert_array_equal(q, q0)
    with pytest.raises(ValueError, match=r"the images differ in shape: \(5, 6\) and \(6, 5\)"):
        p2dhmdm_distance_reference(t.T, q)
    with pytest.raises(ValueError, match="warp and context must be >= 0"):
        p2dhmdm_distance_reference(t, q, -1, 1)
    with pytest.raises(ValueError, match="warp and context must be >= 0"):
        p2dhmdm_distance_reference(t, q, 1, -1)
    with pytest.raises(ValueError, match="x_query_image must be one non-empty image"):
        p2dhmdm_distance_reference(t, q[None])


# --------------------------------------------------------------------------------------------------
# The fast kernel against the reference
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("context", [0, 1, 2])
@pytest.mark.parametrize("warp", [0, 1, 2, 3])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_fast_matches_reference(shape, warp, context):
    rng = np.random.default_rng([*shape, warp, context])
    for _ in range(2):
        t, q = rng.random((2, *shape))
        assert_allclose(
            fast(t, q, warp=warp, context=context), p2dhmdm_distance_reference(t, q, warp, context), rtol=RTOL
        )


@pytest.mark.parametrize("shape", [(3, 3), (1, 6), (6, 1), (2, 9), (28, 28)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_fast_matches_reference_on_odd_shapes(shape):
    """Images smaller than the warp window, one row, one column, and MNIST's 28x28 (default options)."""
    rng = np.random.default_rng(shape)
    t, q = rng.random((2, *shape))
    params = [(2, 1)] if shape == (28, 28) else [(1, 0), (2, 1), (3, 2)]
    for warp, context in params:
        assert_allclose(
            fast(t, q, warp=warp, context=context), p2dhmdm_distance_reference(t, q, warp, context), rtol=RTOL
        )
    assert_allclose(fast(t, q), p2dhmdm_distance_reference(t, q), rtol=RTOL)  # the same defaults (2, 1)


@pytest.mark.parametrize("shape", [(5, 5), (7, 6)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_fast_batch_matches_reference_pair_by_pair(shape):
    rng = np.random.default_rng([*shape, 5])
    X_train = rng.random((6, *shape))
    X_query = rng.random((3, *shape))
    candidates = np.array([[5, 0, 5, 2], [1, 1, 3, 0], [4, 2, 0, 5]])  # repeated and out of order
    for warp, context in [(1, 1), (2, 0), (3, 2)]:
        D = p2dhmdm_distance(X_train, X_query, candidates, warp=warp, context=context)
        assert D.shape == candidates.shape and D.dtype == np.float64
        for i, row in enumerate(candidates):
            for c, j in enumerate(row):
                assert_allclose(
                    D[i, c], p2dhmdm_distance_reference(X_train[j], X_query[i], warp, context), rtol=RTOL
                )
        assert D[0, 0] == D[0, 2]  # the same pair twice: the same number


def test_fast_float32_is_close_to_the_reference():
    rng = np.random.default_rng(15)
    X = rng.random((3, 9, 9)).astype(np.float32)
    D = p2dhmdm_distance(X, X[:2], [[1, 2], [2, 0]], warp=2, context=1)
    assert D.dtype == np.float64
    for i, row in enumerate([[1, 2], [2, 0]]):
        for c, j in enumerate(row):
            ref = p2dhmdm_distance_reference(X[j].astype(np.float64), X[i].astype(np.float64), 2, 1)
            assert_allclose(D[i, c], ref, rtol=1e-5)


@pytest.mark.parametrize("warp, context", [(0, 1), (1, 0), (2, 1), (3, 1), (2, 2)])
@pytest.mark.parametrize("shape", [(14, 14), (17, 20)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_fast_equals_reference_exactly_on_integer_images(shape, warp, context):
    """On integer grey levels every term and every partial sum is exact in float64 (Sobel gradients are
    multiples of 1/8 below 128, their squared differences multiples of 1/64 far below 2**53), so the
    fast kernel must equal the reference bit for bit, whatever its order of summation."""
    rng = np.random.default_rng([*shape, warp, context])
    X = rng.integers(0, 256, size=(4, *shape)) * (rng.random((4, *shape)) < 0.4)  # sparse: ties, zeros
    X[:, : shape[0] // 3] = 0  # ink-free rows at the top
    candidates = np.array([[0, 1, 3], [3, 2, 0]])
    want = np.array(
        [[p2dhmdm_distance_reference(X[j], X[2 + i], warp, context) for j in row] for i, row in enumerate(candidates)]
    )
    assert_array_equal(p2dhmdm_distance(X.astype(np.float64), X[2:].astype(np.float64), candidates,
                                        warp=warp, context=context), want)
    assert_array_equal(p2dhmdm_distance(X.astype(np.uint8), X[2:].astype(np.uint8), candidates,
                                        warp=warp, context=context), want)  # integers become float64 exactly


def test_fast_accepts_numpy_integers():
    rng = np.random.default_rng(16)
    t, q = rng.random((2, 6, 6))
    assert fast(t, q, warp=np.int64(2), context=np.int32(1)) == fast(t, q, warp=2, context=1)


# --------------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def images():
    return np.random.default_rng(17).random((8, 6, 6))


@pytest.mark.parametrize("name", ["warp", "context"])
@pytest.mark.parametrize("value", [-1, 1.5, 2.0, True, "1", None])
def test_bad_warp_or_context_raises(images, name, value):
    with pytest.raises(ValueError, match=re.escape(f"{name} must be an integer >= 0; got {name}={value!r}.")):
        p2dhmdm_distance(images, images, [[0]] * 8, **{name: value})


def test_candidate_out_of_range_raises(images):
    with pytest.raises(ValueError, match=r"indices in \[0, n_train=8\); got values in \[0, 8\]"):
        p2dhmdm_distance(images, images[:1], [[0, 8]])
    with pytest.raises(ValueError, match=r"indices in \[0, n_train=8\); got values in \[-1, 0\]"):
        p2dhmdm_distance(images, images[:1], [[-1, 0]])


def test_candidate_shape_and_dtype_raise(images):
    with pytest.raises(ValueError, match=r"candidates has 2 rows; X_query has 3 images"):
        p2dhmdm_distance(images, images[:3], [[0], [1]])
    with pytest.raises(ValueError, match=r"shape \(n_query, n_cand\); got shape \(8,\)"):
        p2dhmdm_distance(images, images, np.arange(8))
    with pytest.raises(ValueError, match=r"integer indices; got dtype float64"):
        p2dhmdm_distance(images, images, np.zeros((8, 1)))


def test_image_shape_mismatch_raises(images):
    with pytest.raises(ValueError, match=r"X_query has images of shape \(10, 10\); X_train has \(6, 6\)"):
        p2dhmdm_distance(images, np.zeros((1, 10, 10)), [[0]])
    with pytest.raises(ValueError, match=r"X_query has images of shape \(6, 5\); X_train has \(6, 6\)"):
        p2dhmdm_distance(images, np.zeros((1, 6, 5)), [[0]])


def test_nan_pixels_raise(images):
    bad = images.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="X_query must be finite; got NaN"):
        p2dhmdm_distance(images, bad, [[0]] * 8)


def test_inputs_are_not_modified(images):
    X_train = images.copy()
    X_query = images[:3].astype(np.float32)
    candidates = np.array([[7, 0], [1, 1], [2, 6]])
    before = (X_train.copy(), X_query.copy(), candidates.copy())
    p2dhmdm_distance(X_train, X_query, candidates, warp=2, context=1)
    for a, b in zip((X_train, X_query, candidates), before):
        assert_array_equal(a, b)
        assert a.dtype == b.dtype
