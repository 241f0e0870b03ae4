"""Tests for the deformation-tolerant distances (mnist_knn.engine.shift, .tangent, .idm) and their
re-ranking and cache (mnist_knn.engine.rerank)."""

import numba
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from mnist_knn.engine.idm import idm_distance, sobel_gradients
from mnist_knn.engine.p2dhmdm import p2dhmdm_distance
from mnist_knn.engine.rerank import cached_distance, nearest_candidates
from mnist_knn.engine.shift import shift_distance
from mnist_knn.engine.tangent import TANGENTS, tangent_distance, tangent_vectors

SIDE = 20


def stroke_image(rng, shift=(0.0, 0.0), n_strokes=3, width=1.0):
    """A smooth digit-like image: a few blurred line segments (Gaussian profile of standard
    deviation ``width`` pixels) on a blank border, translated by ``shift`` = (dx, dy) pixels."""
    yy, xx = np.mgrid[:SIDE, :SIDE].astype(np.float64)
    xx -= shift[0]
    yy -= shift[1]
    img = np.zeros((SIDE, SIDE))
    for _ in range(n_strokes):
        (x0, y0), (x1, y1) = rng.uniform(6, SIDE - 7, size=(2, 2))
        t = np.linspace(0, 1, 25)[:, None, None]
        d2 = (xx - (x0 + t * (x1 - x0))) ** 2 + (yy - (y0 + t * (y1 - y0))) ** 2
        img += np.exp(-d2 / (2 * width**2)).max(axis=0)
    img[img < 1e-6] = 0.0  # a truly blank border
    return img


@pytest.fixture
def images():
    """Eight smooth stroke images, float64, shape (8, SIDE, SIDE)."""
    rng = np.random.default_rng(0)
    return np.stack([stroke_image(rng) for _ in range(8)])


def all_candidates(n_query, n_train):
    return np.tile(np.arange(n_train), (n_query, 1))


def sq_l2(A, B):
    """Squared Euclidean distance between every image of A and of B."""
    return ((A[:, None] - B[None]) ** 2).reshape(len(A), len(B), -1).sum(axis=2)


# --------------------------------------------------------------------------------------------------
# shift_distance
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dx, dy", [(1, 0), (0, -1), (-1, 1), (1, 1)])
def test_shift_distance_of_shifted_copy_is_zero(images, dx, dy):
    shifted = np.roll(images, (dy, dx), axis=(1, 2))  # the border is blank: nothing wraps
    cand = np.arange(len(images))[:, None]
    assert_array_equal(shift_distance(images, shifted, cand, max_shift=1), 0.0)
    assert (shift_distance(images, shifted, cand, max_shift=0) > 0).all()
    assert_array_equal(shift_distance(images, shifted, cand, max_shift=2), 0.0)


@pytest.mark.parametrize("p", [1, 2, 3, 1.5])
def test_shift_distance_without_shift_is_plain_lp(images, p):
    cand = all_candidates(3, len(images))
    expected = (np.abs(images[:3, None] - images[None]) ** p).sum(axis=(2, 3))
    assert_allclose(shift_distance(images, images[:3], cand, max_shift=0, p=p), expected, rtol=1e-12)


def test_shift_distance_zero_fills_pixels_shifted_out(images):
    # Shifting t right by one pixel loses its last column; the query's first column meets zeros.
    q = np.zeros((1, SIDE, SIDE))
    t = np.zeros((1, SIDE, SIDE))
    t[0, 5, SIDE - 1] = 1.0
    q[0, 5, 0] = 2.0
    D = shift_distance(t, q, [[0]], max_shift=1)
    assert D[0, 0] == 4.0  # t's pixel shifted out of the frame costs nothing; q's pixel costs 2^2
    # Brute force over the 9 shifts agrees.
    best = np.inf
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            s = np.zeros_like(t[0])
            src = t[0][max(0, -dy) : SIDE - max(0, dy), max(0, -dx) : SIDE - max(0, dx)]
            s[max(0, dy) : max(0, dy) + src.shape[0], max(0, dx) : max(0, dx) + src.shape[1]] = src
            best = min(best, ((q[0] - s) ** 2).sum())
    assert D[0, 0] == best


def test_shift_distance_matches_brute_force(images):
    rng = np.random.default_rng(1)
    X = rng.random((4, 9, 9))
    Q = rng.random((3, 9, 9))
    cand = all_candidates(3, 4)
    D = shift_distance(X, Q, cand, max_shift=2, p=3)
    for i in range(3):
        for j in range(4):
            best = np.inf
            for dy in range(-2, 3):
                for dx in range(-2, 3):
                    P = np.pad(X[j], 2)
                    s = P[2 - dy : 2 - dy + 9, 2 - dx : 2 - dx + 9]
                    best = min(best, (np.abs(Q[i] - s) ** 3).sum())
            assert_allclose(D[i, j], best, rtol=1e-12)


# --------------------------------------------------------------------------------------------------
# tangent_distance
# --------------------------------------------------------------------------------------------------


def test_tangent_vectors_shape_and_dtype(images):
    T = tangent_vectors(images.astype(np.float32), tangents=("tx", "rotation"))
    assert T.shape == (8, 2, SIDE, SIDE)
    assert T.dtype == np.float32
    assert tangent_vectors(images).shape == (8, len(TANGENTS), SIDE, SIDE)


@pytest.mark.parametrize("two_sided", [False, True])
def test_tangent_distance_of_translated_copy_is_small(two_sided):
    rng = np.random.default_rng(2)
    seeds = rng.integers(1 << 30, size=5)
    X = np.stack([stroke_image(np.random.default_rng(s), width=1.5) for s in seeds])
    Q = np.stack([stroke_image(np.random.default_rng(s), (0.4, -0.3), width=1.5) for s in seeds])
    cand = np.arange(5)[:, None]
    td = tangent_distance(X, Q, cand, two_sided=two_sided, sigma=0.5)[:, 0]
    l2 = ((Q - X) ** 2).sum(axis=(1, 2))
    assert (td <= l2).all()
    assert (td < 0.05 * l2).all(), td / l2


def test_tangent_distance_never_exceeds_l2(images):
    cand = all_candidates(len(images), len(images))
    l2 = sq_l2(images, images)
    for two_sided in (False, True):
        td = tangent_distance(images, images, cand, two_sided=two_sided)
        assert (td >= 0).all()
        assert (td <= l2).all()
        assert_allclose(np.diag(td), 0.0, atol=1e-12)


def test_two_sided_is_at_most_one_sided(images):
    cand = all_candidates(4, len(images))
    one = tangent_distance(images, images[4:], cand, two_sided=False)
    two = tangent_distance(images, images[4:], cand, two_sided=True)
    assert (two <= one * (1 + 1e-12)).all()


def test_tangent_distance_is_exact_along_a_tangent(images):
    # Moving the reference exactly along its own tangents costs nothing (one-sided).
    T = tangent_vectors(images, tangents=("tx", "rotation"), sigma=1.0)
    Q = images + 0.7 * T[:, 0] - 0.02 * T[:, 1]
    cand = np.arange(len(images))[:, None]
    td = tangent_distance(images, Q, cand, tangents=("tx", "rotation"), two_sided=False)
    assert_allclose(td, 0.0, atol=1e-10)


def test_regularization_penalises_the_move(images):
    T = tangent_vectors(images, tangents=("tx",), sigma=1.0)
    Q = images + T[:, 0]
    cand = np.arange(len(images))[:, None]
    free = tangent_distance(images, Q, cand, tangents=("tx",), two_sided=False)
    lam = 1.0
    spring = tangent_distance(
        images, Q, cand, tangents=("tx",), two_sided=False, regularization=lam
    )
    # min_a |(1 - a) T|^2 + lam a^2 = lam |T|^2 / (|T|^2 + lam)
    tt = (T[:, 0] ** 2).sum(axis=(1, 2))
    assert_allclose(free[:, 0], 0.0, atol=1e-10)
    assert_allclose(spring[:, 0], lam * tt / (tt + lam), rtol=1e-9)


def test_tangent_distance_of_blank_images_is_l2():
    # All tangents of a blank image are zero: the solve must skip them, not divide by zero.
    X = np.zeros((2, SIDE, SIDE))
    X[1, 3, 4] = 1.0
    td = tangent_distance(X, X[:1], [[0, 1]], two_sided=True)
    assert_array_equal(td, [[0.0, 1.0]])


# --------------------------------------------------------------------------------------------------
# idm_distance
# --------------------------------------------------------------------------------------------------


def test_idm_without_warp_or_context_is_squared_l2_of_gradients(images):
    cand = all_candidates(3, len(images))
    G = sobel_gradients(images)
    D = idm_distance(images, images[:3], cand, warp=0, context=0)
    assert_allclose(D, sq_l2(G[:3], G), rtol=1e-12)


def test_idm_on_intensity_without_warp_or_context_is_squared_l2(images):
    cand = all_candidates(3, len(images))
    D = idm_distance(
        images, images[:3], cand, warp=0, context=0, use_gradients=False, use_intensity=True
    )
    assert_allclose(D, sq_l2(images[:3], images), rtol=1e-12)


def test_sobel_gradients_of_a_ramp():
    ramp = np.tile(np.arange(SIDE, dtype=np.float64), (SIDE, 1))[None]
    G = sobel_gradients(ramp)
    assert_allclose(G[0, 0, 1:-1, 1:-1], 1.0)  # d/dx inside the image
    assert_allclose(G[0, 1, 1:-1, 1:-1], 0.0)


@pytest.mark.parametrize("warp, context", [(0, 1), (1, 0), (2, 1), (1, 2)])
def test_idm_of_image_with_itself_is_zero(images, warp, context):
    cand = np.arange(len(images))[:, None]
    assert_array_equal(idm_distance(images, images, cand, warp=warp, context=context), 0.0)


def test_idm_of_locally_distorted_copy_is_small(images):
    # Move the top half of each image one pixel right and the bottom half one pixel down:
    # a deformation no single shift undoes, but each pixel moves at most one pixel.
    Q = images.copy()
    h = SIDE // 2
    Q[:, :h] = np.roll(images[:, :h], 1, axis=2)
    Q[:, h:] = np.roll(images, 1, axis=1)[:, h:]
    cand = all_candidates(len(images), len(images))
    D = idm_distance(images, Q, cand, warp=2, context=1)
    rigid = idm_distance(images, Q, cand, warp=0, context=1)
    own = np.diag(D)
    assert (own < 0.3 * np.diag(rigid)).all()
    others = D[~np.eye(len(images), dtype=bool)].reshape(len(images), -1)
    assert (own < others.min(axis=1)).all()  # the distorted copy is nearest to its original


def test_idm_decreases_with_warp(images):
    cand = all_candidates(4, len(images))
    D = [idm_distance(images, images[4:], cand, warp=w, context=1) for w in range(4)]
    for wider, narrower in zip(D[1:], D[:-1]):
        assert (wider <= narrower).all()


def test_idm_displacement_cost(images):
    cand = all_candidates(4, len(images))
    free = idm_distance(images, images[4:], cand, warp=2)
    assert_array_equal(idm_distance(images, images[4:], cand, warp=2, displacement_cost=0.0), free)
    some = idm_distance(images, images[4:], cand, warp=2, displacement_cost=0.05)
    assert (some >= free).all() and (some > free).any()
    # A prohibitive cost leaves every pixel where it is.
    stiff = idm_distance(images, images[4:], cand, warp=2, displacement_cost=1e6)
    assert_allclose(stiff, idm_distance(images, images[4:], cand, warp=0), rtol=1e-6)


def test_symmetric_idm_adds_both_directions(images):
    cand = all_candidates(3, 5)
    forward = idm_distance(images[:5], images[5:], cand)
    backward = idm_distance(images[5:], images[:5], all_candidates(5, 3)).T
    both = idm_distance(images[:5], images[5:], cand, symmetric=True)
    assert_allclose(both, forward + backward, rtol=1e-12)
    assert not np.allclose(forward, backward)  # one direction alone is not symmetric


def test_float32_images_give_close_distances(images):
    cand = all_candidates(3, len(images))
    X32 = images.astype(np.float32)
    for f in (idm_distance, tangent_distance, shift_distance):
        D64 = f(images, images[:3], cand)
        D32 = f(X32, X32[:3], cand)
        assert D32.dtype == np.float64
        assert_allclose(D32, D64, rtol=1e-4, atol=1e-4)


def test_flat_images_are_accepted(images):
    cand = all_candidates(2, len(images))
    flat = images.reshape(len(images), -1)
    assert_array_equal(idm_distance(flat, flat[:2], cand), idm_distance(images, images[:2], cand))


def test_candidates_subset_and_repeats(images):
    # Only the candidates are compared, in the given order; repeats give equal columns.
    cand = np.array([[5, 2, 5], [0, 7, 1]])
    D = idm_distance(images, images[:2], cand)
    full = idm_distance(images, images[:2], all_candidates(2, len(images)))
    assert_array_equal(D, np.take_along_axis(full, cand, axis=1))


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
def test_results_do_not_depend_on_thread_count(images):
    rng = np.random.default_rng(3)
    X = np.concatenate([images, rng.random((8, SIDE, SIDE))]).astype(np.float32)
    cand = rng.integers(0, len(X), size=(9, 6))
    calls = [
        lambda: shift_distance(X, X[:9], cand, max_shift=2, p=3),
        lambda: tangent_distance(X, X[:9], cand),
        lambda: tangent_distance(X, X[:9], cand, two_sided=False, regularization=0.1),
        lambda: idm_distance(X, X[:9], cand, warp=2, context=1, use_intensity=True),
        lambda: idm_distance(X, X[:9], cand, warp=1, context=2, symmetric=True),
        lambda: idm_distance(X, X[:9], cand, displacement_cost=0.01),
        lambda: idm_distance(X, X[:9], cand, keep=2),
        lambda: p2dhmdm_distance(X, X[:9], cand, warp=2, context=1),
    ]
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = [f() for f in calls]
        numba.set_num_threads(2)
        two = [f() for f in calls]
    finally:
        numba.set_num_threads(before)
    for a, b in zip(one, two):
        assert_array_equal(a, b)


# --------------------------------------------------------------------------------------------------
# rerank
# --------------------------------------------------------------------------------------------------


def test_rerank_sorts_and_keeps_k():
    cand = np.array([[10, 11, 12, 13], [20, 21, 22, 23]])
    D = np.array([[3.0, 1.0, 2.0, 0.5], [1.0, 1.0, 0.0, 1.0]])
    dist, idx = nearest_candidates(D, cand, k=3)
    assert_array_equal(idx, [[13, 11, 12], [22, 20, 21]])  # ties keep the original rank
    assert_array_equal(dist, [[0.5, 1.0, 2.0], [0.0, 1.0, 1.0]])
    assert idx.dtype == np.int64 and dist.dtype == np.float64


# --------------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------------


def test_negative_warp_raises(images):
    with pytest.raises(ValueError, match="warp must be an integer >= 0; got warp=-1"):
        idm_distance(images, images, [[0]] * 8, warp=-1)


def test_negative_context_raises(images):
    with pytest.raises(ValueError, match="got context=-2"):
        idm_distance(images, images, [[0]] * 8, context=-2)


def test_negative_displacement_cost_raises(images):
    with pytest.raises(ValueError, match="displacement_cost must be a finite number >= 0; got -0.1"):
        idm_distance(images, images, [[0]] * 8, displacement_cost=-0.1)


def test_no_idm_channel_raises(images):
    with pytest.raises(ValueError, match="use_gradients and use_intensity"):
        idm_distance(images, images, [[0]] * 8, use_gradients=False)


def test_candidate_out_of_range_raises(images):
    with pytest.raises(ValueError, match=r"indices in \[0, n_train=8\); got values in \[0, 8\]"):
        shift_distance(images, images[:1], [[0, 8]])
    with pytest.raises(ValueError, match=r"got values in \[-1, 0\]"):
        idm_distance(images, images[:1], [[-1, 0]])


def test_candidate_rows_must_match_queries(images):
    with pytest.raises(ValueError, match="candidates has 2 rows; X_query has 3 images"):
        tangent_distance(images, images[:3], [[0], [1]])


def test_candidates_must_be_2d_integers(images):
    with pytest.raises(ValueError, match="shape \\(n_query, n_cand\\); got shape \\(8,\\)"):
        idm_distance(images, images, np.arange(8))
    with pytest.raises(ValueError, match="integer indices; got dtype float64"):
        idm_distance(images, images, np.zeros((8, 1)))


def test_image_shape_mismatch_raises(images):
    with pytest.raises(ValueError, match="X_query has images of shape \\(10, 10\\)"):
        idm_distance(images, np.zeros((1, 10, 10)), [[0]])


def test_non_square_flat_images_raise():
    with pytest.raises(ValueError, match="15 pixels per image, which is not a square"):
        shift_distance(np.zeros((2, 15)), np.zeros((1, 15)), [[0]])


def test_nan_pixels_raise(images):
    bad = images.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="X_query must be finite; got NaN"):
        idm_distance(images, bad, [[0]] * 8)


def test_bad_shift_parameters_raise(images):
    with pytest.raises(ValueError, match="max_shift must be an integer >= 0; got max_shift=-1"):
        shift_distance(images, images, [[0]] * 8, max_shift=-1)
    with pytest.raises(ValueError, match="p must be a finite number > 0; got p=0.0"):
        shift_distance(images, images, [[0]] * 8, p=0)


def test_unknown_tangent_raises(images):
    with pytest.raises(ValueError, match="tangents must be distinct names"):
        tangent_distance(images, images, [[0]] * 8, tangents=("tx", "zoom"))
    with pytest.raises(ValueError, match="tangents must be distinct names"):
        tangent_distance(images, images, [[0]] * 8, tangents=("tx", "tx"))


def test_negative_regularization_raises(images):
    with pytest.raises(ValueError, match="regularization must be a finite number >= 0; got -1"):
        tangent_distance(images, images, [[0]] * 8, regularization=-1)


def test_negative_sigma_raises(images):
    with pytest.raises(ValueError, match="sigma must be a finite number >= 0; got sigma=-0.5"):
        tangent_vectors(images, sigma=-0.5)


@pytest.mark.parametrize("k", [0, 4, 1.5])
def test_rerank_bad_k_raises(k):
    with pytest.raises(ValueError, match=rf"k must be an integer in \[1, n_cand=3\]; got k={k}"):
        nearest_candidates(np.zeros((2, 3)), np.zeros((2, 3), dtype=int), k)


def test_rerank_shape_mismatch_raises():
    with pytest.raises(ValueError, match="got \\(2, 3\\) and \\(2, 4\\)"):
        nearest_candidates(np.zeros((2, 3)), np.zeros((2, 4), dtype=int), 1)


# --------------------------------------------------------------------------------------------------
# cached_distance
# --------------------------------------------------------------------------------------------------


_COUNTED_CALLS = []


def counting(X_train, X_query, candidates, **params):
    """idm_distance, counting its calls (module level: the cache refuses local functions)."""
    _COUNTED_CALLS.append(params)
    return idm_distance(X_train, X_query, candidates, **params)


def test_cached_distance_computes_once_and_recomputes_when_anything_changes(tmp_path):
    rng = np.random.default_rng(5)
    X_train = rng.integers(0, 256, (12, 8, 8), dtype=np.uint8)
    X_query = rng.integers(0, 256, (3, 8, 8), dtype=np.uint8)
    candidates = rng.integers(0, 12, (3, 4))
    calls = _COUNTED_CALLS
    calls.clear()

    first = cached_distance(counting, X_train, X_query, candidates, cache=tmp_path, warp=1)
    again = cached_distance(counting, X_train, X_query, candidates, cache=tmp_path, warp=1)
    np.testing.assert_array_equal(first, idm_distance(X_train, X_query, candidates, warp=1))
    np.testing.assert_array_equal(again, first)
    assert len(calls) == 1 and len(list(tmp_path.glob("*.npz"))) == 1

    cached_distance(counting, X_train, X_query, candidates, cache=tmp_path, warp=2)
    cached_distance(counting, X_train, X_query[::-1].copy(), candidates, cache=tmp_path, warp=1)
    assert len(calls) == 3 and len(list(tmp_path.glob("*.npz"))) == 3


def test_cached_distance_replaces_a_corrupt_file(tmp_path):
    rng = np.random.default_rng(6)
    X_train = rng.random((10, 6, 6))
    X_query = rng.random((2, 6, 6))
    candidates = np.array([[0, 1, 2], [3, 4, 5]])
    expected = cached_distance(shift_distance, X_train, X_query, candidates, cache=tmp_path)
    (path,) = tmp_path.glob("*.npz")
    path.write_bytes(b"not a numpy file")
    got = cached_distance(shift_distance, X_train, X_query, candidates, cache=tmp_path)
    np.testing.assert_array_equal(got, expected)
    with np.load(path) as stored:
        np.testing.assert_array_equal(stored["distances"], expected)
    assert not list(tmp_path.glob("*.tmp"))
