"""The fast numba kernels of the IDM and the tangent distance equal slow, obviously correct references.

:mod:`mnist_knn.engine.reference` computes each distance for one pair of images by plain loops
(IDM) or :func:`numpy.linalg.lstsq` (tangent distance). Here the references are first anchored on
tiny cases computed by hand, then the fast kernels are compared with them on random images of
several sizes (square and not) and over the options: warp, context, channels, displacement cost,
symmetric; one-/two-sided, regularization, tangent subsets, blur.

The fast kernels are run on one numba thread: their results do not depend on the thread count
(tested in test_deformation.py), and on tiny inputs a parallel launch costs far more than the work.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose, assert_array_equal

from mnist_knn.engine.idm import idm_distance, sobel_gradients
from mnist_knn.engine.reference import (
    idm_distance_reference,
    sobel_gradients_reference,
    tangent_distance_reference,
)
from mnist_knn.engine.tangent import TANGENTS, tangent_distance, tangent_vectors

SHAPES = [(5, 5), (7, 6), (9, 9), (12, 12)]
RTOL = 1e-12  # float64: both sides sum the same non-negative terms, in different orders


pytestmark = pytest.mark.usefixtures("one_numba_thread")  # tests/conftest.py


def delta(shape, y, x, value=1.0):
    """An image of zeros with one pixel set."""
    image = np.zeros(shape)
    image[y, x] = value
    return image


def fast_idm(t, q, **params):
    """The fast kernel on one pair (training image ``t``, query ``q``)."""
    return idm_distance(t[None], q[None], [[0]], **params)[0, 0]


def fast_tangent(t, q, **params):
    return tangent_distance(t[None], q[None], [[0]], **params)[0, 0]


# --------------------------------------------------------------------------------------------------
# Sobel gradients
# --------------------------------------------------------------------------------------------------


def test_sobel_reference_by_hand():
    # One bright pixel in the middle of a 3x3 image: the (flipped) Sobel kernels, over 8.
    G = sobel_gradients_reference(delta((3, 3), 1, 1))
    assert_array_equal(G[0], np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]]) / 8)
    assert_array_equal(G[1], np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]]) / 8)
    # A ramp rising by 1 per pixel to the right: gradient (1, 0) away from the border; at the
    # border the zero outside the image counts.
    ramp = np.tile(np.arange(5.0), (4, 1))
    G = sobel_gradients_reference(ramp)
    assert_array_equal(G[0, 1:-1, 1:-1], 1.0)
    assert_array_equal(G[1, 1:-1, 1:-1], 0.0)
    assert_array_equal(G[0, 1:-1, 0], 1 / 2)  # (1 - 0) * 4 / 8: the left neighbour is 0 (outside)
    assert_array_equal(G[1, 0, 1:-1], np.arange(1.0, 4.0) / 2)  # (x - 0) * 4 / 8: the row above is 0


@pytest.mark.parametrize("shape", [(1, 1), (1, 4), (3, 2), *SHAPES, (28, 28)])
def test_sobel_gradients_match_explicit_loop(shape):
    rng = np.random.default_rng(sum(shape))
    X = rng.random((3, *shape))
    G = sobel_gradients(X)
    for n in range(3):
        assert_allclose(G[n], sobel_gradients_reference(X[n]), rtol=RTOL, atol=1e-15)
    # Integer pixels: every value is a multiple of 1/8, exact on both sides.
    X = rng.integers(0, 256, (3, *shape), dtype=np.uint8)
    G = sobel_gradients(X)
    for n in range(3):
        assert_array_equal(G[n], sobel_gradients_reference(X[n]))


# --------------------------------------------------------------------------------------------------
# IDM: the reference by hand
# --------------------------------------------------------------------------------------------------

INTENSITY = dict(use_gradients=False, use_intensity=True)


@pytest.mark.parametrize("distance", [idm_distance_reference, fast_idm], ids=["reference", "fast"])
def test_idm_by_hand(distance):
    def D(t, q, warp, context, **params):
        if distance is fast_idm:
            return fast_idm(t, q, warp=warp, context=context, **params)
        return idm_distance_reference(t, q, warp, context, **params)

    # A bright pixel moved one pixel to the right: 2 wrong pixels without warp, none with.
    t, q = delta((3, 3), 1, 2), delta((3, 3), 1, 1)
    assert D(t, q, 0, 0, **INTENSITY) == 2.0
    assert D(t, q, 1, 0, **INTENSITY) == 0.0
    # With a displacement cost 1/4, both wrong pixels of q move by one (cost 1/4 < mismatch 1)...
    assert D(t, q, 1, 0, displacement_cost=0.25, **INTENSITY) == 0.5
    assert D(t, q, 1, 0, displacement_cost=0.25, symmetric=True, **INTENSITY) == 1.0
    # ... and with a cost 5 they rather stay.
    assert D(t, q, 1, 0, displacement_cost=5.0, **INTENSITY) == 2.0

    # The context is zero outside the image (no wrap-around): a bright corner pixel lies in the
    # 3x3 context of 4 pixels, and in the 5x5 context of all 9.
    t, q = np.zeros((3, 3)), delta((3, 3), 0, 0)
    assert D(t, q, 0, 1, **INTENSITY) == 4.0
    assert D(t, q, 0, 2, **INTENSITY) == 9.0
    assert D(t, q, 2, 1, **INTENSITY) == 4.0  # matching into a blank image: warp cannot help

    # Matches must lie inside the image: a blank query against an all-ones image pays 1 per pixel
    # whatever the warp (the zeros outside are not candidates).
    t, q = np.ones((3, 3)), np.zeros((3, 3))
    for warp in (0, 1, 2):
        assert D(t, q, warp, 0, **INTENSITY) == 9.0
    # 3x3 contexts of t hold 4 (corner), 6 (edge) or 9 (centre) ones: 4*4 + 4*6 + 9 without warp;
    # with warp 1 every pixel reaches a corner: 9 * 4; with cost 1 per |d|^2 the centre pays
    # 4 + 2 (diagonal), the edges 4 + 1, the corners 4.
    assert D(t, q, 0, 1, **INTENSITY) == 49.0
    assert D(t, q, 1, 1, **INTENSITY) == 36.0
    assert D(t, q, 1, 1, displacement_cost=1.0, **INTENSITY) == 4 * 4 + 4 * 5 + 6

    # Gradients: a bright pixel has |Sobel|^2 = 2 * (1 + 4 + 1) * 2 / 64 = 3/8 in total, and zero
    # gradient at its own position. Matching it into a blank image costs 3/8 at any warp; matching
    # the blank image into it costs 3/8 without warp and 0 with (every ring pixel moves to the
    # centre). Only the query's pixels move.
    bright, blank = delta((5, 5), 2, 2), np.zeros((5, 5))
    for warp in (0, 1, 2):
        assert D(blank, bright, warp, 0) == 0.375
    assert D(bright, blank, 0, 0) == 0.375
    assert D(bright, blank, 1, 0) == 0.0
    assert D(blank, bright, 0, 0, symmetric=True) == 0.75
    assert D(blank, bright, 1, 0, symmetric=True) == 0.375
    # With the intensity too, the centre of the blank query can no longer match the bright centre
    # for free (intensity 1): its best is a diagonal neighbour, gradient (1/8, 1/8), costing 2/64.
    assert D(bright, blank, 1, 0, use_intensity=True) == 2 / 64
    assert D(bright, blank, 0, 0, use_intensity=True) == 0.375 + 1


# --------------------------------------------------------------------------------------------------
# IDM: fast kernel == reference
# --------------------------------------------------------------------------------------------------

# (symmetric, use_gradients, use_intensity, displacement_cost): every pair of levels of any two
# options occurs.
IDM_VARIANTS = [
    (False, True, False, 0.0),
    (False, False, True, 0.05),
    (False, True, True, 0.0),
    (True, True, False, 0.05),
    (True, False, True, 0.0),
    (True, True, True, 0.05),
]


@pytest.mark.parametrize("context", [0, 1, 2])
@pytest.mark.parametrize("warp", [0, 1, 2])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_idm_matches_reference(shape, warp, context):
    rng = np.random.default_rng([shape[0], shape[1], warp, context])
    for symmetric, use_gradients, use_intensity, cost in IDM_VARIANTS:
        t, q = rng.random((2, *shape))
        params = dict(
            symmetric=symmetric,
            use_gradients=use_gradients,
            use_intensity=use_intensity,
            displacement_cost=cost,
        )
        fast = fast_idm(t, q, warp=warp, context=context, **params)
        ref = idm_distance_reference(t, q, warp, context, **params)
        assert_allclose(fast, ref, rtol=RTOL, err_msg=str(params))


@pytest.mark.parametrize("shape", [(5, 5), (7, 6)])
def test_idm_batch_matches_reference_pair_by_pair(shape):
    # Several queries and candidates, repeated and out of order, in one call.
    rng = np.random.default_rng(11)
    X_train, X_query = rng.random((4, *shape)), rng.random((3, *shape))
    cand = np.array([[3, 0, 3], [1, 2, 0], [2, 2, 1]])
    params = dict(use_intensity=True, displacement_cost=0.1, symmetric=True)
    D = idm_distance(X_train, X_query, cand, warp=1, context=1, **params)
    for i, row in enumerate(cand):
        for c, j in enumerate(row):
            ref = idm_distance_reference(X_train[j], X_query[i], 1, 1, **params)
            assert_allclose(D[i, c], ref, rtol=RTOL)


def test_idm_float32_is_close_to_the_reference():
    rng = np.random.default_rng(12)
    t, q = rng.random((2, 9, 9)).astype(np.float32)
    fast = fast_idm(t, q, warp=2, context=1, use_intensity=True)
    assert_allclose(fast, idm_distance_reference(t, q, 2, 1, use_intensity=True), rtol=1e-5)


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    shape=st.tuples(st.integers(1, 6), st.integers(1, 6)),
    warp=st.integers(0, 3),
    context=st.integers(0, 3),
    channels=st.sampled_from([(True, False), (False, True), (True, True)]),
    cost=st.sampled_from([0.0, 0.25, 1.5, 3.0]),
    symmetric=st.booleans(),
)
def test_idm_equals_reference_exactly_on_integer_images(data, shape, warp, context, channels, cost, symmetric):
    # Integer pixels make every term a multiple of 1/64 (Sobel values are multiples of 1/8 and the
    # costs multiples of 1/4), so every partial sum is exact and the two must agree to the last bit,
    # whatever their order of summation. Tiny images reach the edge cases: warp or context larger
    # than the image, single rows and columns.
    pixels = arrays(np.uint8, shape, elements=st.integers(0, 255))
    t, q = data.draw(pixels), data.draw(pixels)
    params = dict(
        use_gradients=channels[0], use_intensity=channels[1], displacement_cost=cost, symmetric=symmetric
    )
    fast = fast_idm(t, q, warp=warp, context=context, **params)
    assert fast == idm_distance_reference(t, q, warp, context, **params)


# --------------------------------------------------------------------------------------------------
# Tangent distance: the reference by hand
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("distance", [tangent_distance_reference, fast_tangent], ids=["reference", "fast"])
def test_tangent_distance_by_hand(distance):
    # t: one bright pixel in the middle of a 3x3 image; q: the same with its left neighbour lit.
    # Without blur the x-translation tangent of t is the central difference, (0.5, 0, -0.5) in the
    # middle row; that of q is (0.5, -0.5, -0.5). r = q - t = (1, 0, 0) in the middle row.
    t = delta((3, 3), 1, 1)
    q = t + delta((3, 3), 1, 0)
    assert_array_equal(tangent_vectors(t[None], ("tx",), sigma=0)[0, 0], [[0, 0, 0], [0.5, 0, -0.5], [0, 0, 0]])
    assert_array_equal(tangent_vectors(q[None], ("tx",), sigma=0)[0, 0], [[0, 0, 0], [0.5, -0.5, -0.5], [0, 0, 0]])
    params = dict(tangents=("tx",), sigma=0.0)
    # One-sided: |r|^2 - (r . T)^2 / |T|^2 = 1 - 0.25 / 0.5.
    assert_allclose(distance(t, q, two_sided=False, **params), 0.5, rtol=RTOL)
    # Ridge lam: 1 - (r . T)^2 / (|T|^2 + lam) = 1 - 0.25 / 1 for lam = 0.5.
    assert_allclose(distance(t, q, two_sided=False, regularization=0.5, **params), 0.75, rtol=RTOL)
    # Two-sided: the tangents span (0, 1, 0) and (1, 0, -1); r's projection has squared norm 1/2.
    assert_allclose(distance(t, q, two_sided=True, **params), 0.5, rtol=RTOL)
    # A blank training image has no tangents: one-sided, the squared Euclidean distance remains.
    blank = np.zeros((3, 3))
    assert distance(blank, t, two_sided=False, tangents=TANGENTS) == 1.0
    # Two-sided, the bright pixel's tangents (blurred, so symmetric about it) vanish at the pixel
    # itself: orthogonal to q - t, moving along them only adds to the distance.
    assert_allclose(distance(blank, t, two_sided=True, tangents=TANGENTS), 1.0, rtol=RTOL)
    # An image and itself, two-sided: the tangents of both are the same (a singular system).
    assert_allclose(distance(q, q, two_sided=True, tangents=TANGENTS), 0.0, atol=1e-30)


# --------------------------------------------------------------------------------------------------
# Tangent distance: fast kernel == reference
# --------------------------------------------------------------------------------------------------

TANGENT_SUBSETS = [
    TANGENTS,
    ("tx",),
    ("tx", "ty"),
    ("rotation", "scaling", "thickness"),
    ("shear_par", "shear_diag", "ty"),
]


def assert_tangent_close(fast, ref, t, q, err_msg=""):
    """rtol 1e-12, with an absolute slack of 1e-13 |q - t|^2.

    The fast kernel takes the distance as |r|^2 minus the gain of the normal equations, so its
    absolute error is a few ulps of |r|^2 = |q - t|^2, not of the (possibly much smaller)
    distance; lstsq works on the residual itself.
    """
    assert_allclose(fast, ref, rtol=RTOL, atol=1e-13 * np.sum((q - t) ** 2), err_msg=err_msg)


@pytest.mark.parametrize("regularization", [0.0, 1e-3, 1.0])
@pytest.mark.parametrize("two_sided", [False, True], ids=["one-sided", "two-sided"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_tangent_distance_matches_reference(shape, two_sided, regularization):
    rng = np.random.default_rng([shape[0], shape[1], int(two_sided), int(1000 * regularization)])
    for tangents in TANGENT_SUBSETS:
        for sigma in (0.0, 0.5, 1.0):
            X_train, X_query = rng.random((3, *shape)), rng.random((2, *shape))
            cand = np.array([[0, 1, 2], [2, 0, 1]])
            params = dict(tangents=tangents, two_sided=two_sided, regularization=regularization, sigma=sigma)
            D = tangent_distance(X_train, X_query, cand, **params)
            for i, row in enumerate(cand):
                for c, j in enumerate(row):
                    ref = tangent_distance_reference(X_train[j], X_query[i], **params)
                    assert_tangent_close(D[i, c], ref, X_train[j], X_query[i], err_msg=str(params))


@pytest.mark.parametrize("noise", [0.0, 1e-4, 1e-2])
@pytest.mark.parametrize("two_sided", [False, True], ids=["one-sided", "two-sided"])
def test_tangent_distance_near_the_tangent_plane(two_sided, noise):
    # q is t moved along its tangents, plus a little noise: the distance is a tiny fraction of
    # |q - t|^2, the hard case for the normal equations.
    rng = np.random.default_rng(13)
    t = rng.random((9, 9))
    T = tangent_vectors(t[None], TANGENTS, sigma=1.0)[0]
    q = t + 0.3 * T[0] - 0.05 * T[2] + 0.01 * T[6] + noise * rng.standard_normal((9, 9))
    for regularization in (0.0, 1e-3):
        params = dict(two_sided=two_sided, regularization=regularization)
        assert_tangent_close(fast_tangent(t, q, **params), tangent_distance_reference(t, q, **params), t, q)


def tangent_condition(t, q, two_sided, sigma):
    """Condition number of the tangent matrix ``[T_t, -T_q]`` (or ``T_t``) over its nonzero
    singular values: dependent tangents, which the fast solve drops, do not count."""
    m = len(TANGENTS)
    A = tangent_vectors(t[None], TANGENTS, sigma)[0].reshape(m, -1).T
    if two_sided:
        A = np.hstack([A, -tangent_vectors(q[None], TANGENTS, sigma)[0].reshape(m, -1).T])
    s = np.linalg.svd(A, compute_uv=False)
    s = s[s > 1e-12 * s[0]] if s[0] > 0 else s[:0]
    return s[0] / s[-1] if len(s) else 1.0


@pytest.mark.parametrize("shape", [(1, 1), (1, 6), (6, 1), (2, 3)])
def test_tangent_distance_with_dependent_tangents(shape):
    # In a single row the vertical gradient is zero, so ty, rotation and shear_diag vanish and
    # scaling = shear_par = x * gx: the fast solve must drop them, lstsq copes through the SVD.
    # With 6 pixels and two-sided, the remaining tangents span every image (distance 0), and are
    # ill-conditioned (kappa up to ~3e3): the normal equations square kappa, so the fast kernel is
    # held to the textbook bound eps * kappa**2 * |q - t|**2 here (observed: below 2e-3 of it).
    rng = np.random.default_rng(14)
    t, q = rng.random((2, *shape))
    for two_sided in (False, True):
        for sigma in (0.0, 1.0):
            params = dict(two_sided=two_sided, sigma=sigma)
            fast, ref = fast_tangent(t, q, **params), tangent_distance_reference(t, q, **params)
            kappa = tangent_condition(t, q, two_sided, sigma)
            slack = max(1e-13, np.finfo(np.float64).eps * kappa**2) * np.sum((q - t) ** 2)
            assert_allclose(fast, ref, rtol=RTOL, atol=slack, err_msg=f"{params}, kappa={kappa:.3g}")


def test_tangent_distance_float32_is_close_to_the_reference():
    rng = np.random.default_rng(15)
    t, q = rng.random((2, 9, 9)).astype(np.float32)
    assert_allclose(fast_tangent(t, q), tangent_distance_reference(t, q), rtol=1e-5)


@pytest.mark.parametrize("warp, context", [(1, 0), (2, 1), (3, 1), (2, 2)])
@pytest.mark.parametrize("shape", [(14, 14), (17, 20)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_idm_equals_the_reference_exactly_on_integer_images(shape, warp, context):
    """On integer grey levels every term and every partial sum is exact in float64 (Sobel gradients are
    multiples of 1/8 below 128, their squared differences multiples of 1/64 far below 2**53), so the fast
    kernel must equal the reference bit for bit, whatever its order of summation, its bands (``keep``
    set: rows taken band by band, most ink first) and its passes rounded up to the vector width. Digits
    whose ink reaches the bottom rows exercise the displacements that cut rows off a band."""
    rng = np.random.default_rng([*shape, warp, context])
    X = rng.integers(0, 256, size=(6, *shape)).astype(np.float64)
    X[:, : shape[0] // 3] = 0  # ink-free rows at the top: bands of very different weight
    candidates = np.array([[0, 1, 2, 3], [3, 2, 1, 0]])
    queries = X[4:]
    want = np.array([[idm_distance_reference(X[j], queries[i], warp, context) for j in row]
                     for i, row in enumerate(candidates)])
    for keep in (None, candidates.shape[1]):  # whole images; bands (a bound that never abandons)
        got = idm_distance(X, queries, candidates, warp=warp, context=context, keep=keep)
        assert_array_equal(got, want)
