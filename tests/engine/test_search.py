"""Tests for mnist_knn.engine.search: the exact k-NN search, its leave-one-out form and its on-disk cache.

The reference is brute force: every distance, then ``np.argsort(..., kind="stable")`` (ties go to the
lower training index). For uint8 data the reference distances are exact integers from numpy int64
arithmetic; for float data they come from the same compiled kernel the search ranks by, so the two
must agree to the last bit.
"""

import math

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numba import njit, prange
from numpy.testing import assert_allclose, assert_array_equal

from mnist_knn.engine import search
from mnist_knn.engine.distances import metric_code, pairwise_distances, power_sum
from mnist_knn.engine.search import cache_key, kneighbors, kneighbors_loo

METRIC_PS = [
    ("euclidean", 2), ("manhattan", 2), ("chebyshev", 2), ("cosine", 2),
    ("minkowski", 1.5), ("minkowski", 3), ("minkowski", 4),
]
METRIC_IDS = [m if m != "minkowski" else f"minkowski-p{p}" for m, p in METRIC_PS]
INTEGER_METRICS = [("euclidean", 2), ("manhattan", 2), ("minkowski", 3), ("chebyshev", 2)]

PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------- references


@njit(parallel=True, cache=True)
def _kernel_power_sums(X, Y, code, p):
    out = np.empty((X.shape[0], Y.shape[0]))
    for i in prange(X.shape[0]):
        for j in range(Y.shape[0]):
            out[i, j] = power_sum(X[i], Y[j], code, p)
    return out


def kernel_reference(X_train, X_query, k, metric="euclidean", p=2):
    """Brute force on the quantity the search ranks by, from the same compiled kernel.

    Returns the indices (stable sort: ties to the lower index) and the finished distances.
    """
    code, p = metric_code(metric, p)
    # Writeable C copies: one compiled signature, whatever the callers pass (e.g. read-only MNIST).
    S = _kernel_power_sums(np.array(X_query, order="C"), np.array(X_train, order="C"), code, p)
    order = np.argsort(S, axis=1, kind="stable")[:, :k]
    s = np.take_along_axis(S, order, axis=1)
    return finish(s, metric, p), order


def integer_reference(X_train, X_query, k, metric="euclidean", p=2):
    """Brute force in numpy int64 arithmetic (exact for integer images), stable sort."""
    diff = X_query.astype(np.int64)[:, None, :] - X_train.astype(np.int64)[None, :, :]
    if metric == "euclidean":
        S = (diff**2).sum(axis=2)
    elif metric == "manhattan" or (metric == "minkowski" and p == 1):
        S = np.abs(diff).sum(axis=2)
    elif metric == "minkowski" and p == 3:
        S = (np.abs(diff) ** 3).sum(axis=2)
    elif metric == "chebyshev":
        S = np.abs(diff).max(axis=2)
    else:
        raise ValueError(metric)
    order = np.argsort(S, axis=1, kind="stable")[:, :k]
    return finish(np.take_along_axis(S, order, axis=1).astype(np.float64), metric, p), order


def finish(s, metric, p):
    if metric == "euclidean":
        return np.sqrt(s)
    if metric == "minkowski" and p == 3:
        return np.cbrt(s)
    if metric == "minkowski" and p not in (1, math.inf):
        return s ** (1.0 / p)
    return s


def assert_same_neighbours(got, expected, rtol=0.0):
    (d, i), (d_ref, i_ref) = got, expected
    assert d.dtype == np.float64 and i.dtype == np.int64
    assert_array_equal(i, i_ref)
    if rtol:
        assert_allclose(d, d_ref, rtol=rtol)
    else:
        assert_array_equal(d, d_ref)


# --------------------------------------------------------------------------- strategies


@st.composite
def integer_problems(draw, metrics=INTEGER_METRICS):
    """uint8 data, often with very few grey levels (hence many exactly equal distances)."""
    n_feat = draw(st.integers(1, 12))
    n_train = draw(st.integers(1, 40))
    n_query = draw(st.integers(1, 8))
    hi = draw(st.sampled_from([1, 2, 255]))
    values = st.integers(0, hi)
    X_train = draw(arrays(np.uint8, (n_train, n_feat), elements=values))
    X_query = draw(arrays(np.uint8, (n_query, n_feat), elements=values))
    k = draw(st.integers(1, n_train))
    metric, p = draw(st.sampled_from(metrics))
    return X_train, X_query, k, metric, p


@st.composite
def float_problems(draw):
    """Float data on a 0.001 grid in [-1000, 1000]: mostly continuous, with ties still possible."""
    n_feat = draw(st.integers(1, 10))
    n_train = draw(st.integers(1, 30))
    n_query = draw(st.integers(1, 6))
    values = st.integers(-10**6, 10**6).map(lambda v: v / 1000)
    X_train = draw(arrays(np.float64, (n_train, n_feat), elements=values))
    X_query = draw(arrays(np.float64, (n_query, n_feat), elements=values))
    k = draw(st.integers(1, n_train))
    metric, p = draw(st.sampled_from(METRIC_PS))
    return X_train, X_query, k, metric, p


@st.composite
def any_problems(draw):
    return draw(st.one_of(integer_problems(METRIC_PS), float_problems()))


# --------------------------------------------------------------------------- against brute force


@pytest.mark.parametrize(("metric", "p"), METRIC_PS, ids=METRIC_IDS)
def test_continuous_data_matches_brute_force(metric, p):
    rng = np.random.default_rng(0)
    X_train, X_query = rng.normal(size=(300, 16)), rng.normal(size=(40, 16))
    got = kneighbors(X_train, X_query, 10, metric, p)
    assert_same_neighbours(got, kernel_reference(X_train, X_query, 10, metric, p), rtol=1e-14)
    # The distances are the metric's own (checked against scipy in test_distances.py).
    rows = np.arange(len(X_query))[:, None]
    assert_allclose(got[0], pairwise_distances(X_query, X_train, metric, p)[rows, got[1]], rtol=1e-14)


def sparse_digits(rng, n, n_feat=784):
    """MNIST-like rows: mostly 0, a blob of ink per row, values 0..255."""
    X = np.zeros((n, n_feat), dtype=np.uint8)
    for r in range(n):
        start = rng.integers(0, n_feat - 200)
        ink = rng.integers(0, 256, 200) * (rng.random(200) < 0.6)
        X[r, start : start + 200] = ink
    return X


@pytest.mark.parametrize(("metric", "p"), METRIC_PS, ids=METRIC_IDS)
def test_sparse_uint8_images_match_brute_force(metric, p):
    """Images with few ink pixels exercise the ink-count bounds and the candidate shortcut."""
    rng = np.random.default_rng(1)
    X_train, X_query = sparse_digits(rng, 2000), sparse_digits(rng, 30)
    X_train[1500] = X_train[7]  # an exact duplicate, and a query equal to a training image
    X_query[3] = X_train[7]
    got = kneighbors(X_train, X_query, 12, metric, p, block_size=7)
    assert_same_neighbours(got, kernel_reference(X_train, X_query, 12, metric, p))
    assert got[1][3, :2].tolist() == [7, 1500]


@pytest.mark.parametrize(("metric", "p"), METRIC_PS, ids=METRIC_IDS)
def test_pixels_blank_in_one_set_only_match_brute_force(metric, p):
    """The product skips pixels blank in every training image or in every query: skipping must not
    change a distance, whichever side is blank (a pixel inked only in the queries still counts)."""
    rng = np.random.default_rng(3)
    X_train = rng.integers(0, 256, (400, 40)).astype(np.uint8)
    X_query = rng.integers(0, 256, (25, 40)).astype(np.uint8)
    X_train[:, 0:5] = 0  # blank in training only
    X_query[:, 5:10] = 0  # blank in the queries only
    X_train[:, 10:12] = X_query[:, 10:12] = 0  # blank in both
    assert search.inked_columns(X_train, X_query).tolist() == list(range(12, 40))
    got = kneighbors(X_train, X_query, 15, metric, p)
    assert_same_neighbours(got, kernel_reference(X_train, X_query, 15, metric, p))
    if (metric, p) in INTEGER_METRICS:
        assert_same_neighbours(got, integer_reference(X_train, X_query, 15, metric, p))


def test_all_pixels_blank_in_the_queries():
    """Nothing left to multiply: every distance is the training row's own norm."""
    X_train = np.arange(30, dtype=np.uint8).reshape(10, 3)
    got = kneighbors(X_train, np.zeros((2, 3), dtype=np.uint8), 4)
    assert_same_neighbours(got, integer_reference(X_train, np.zeros((2, 3), dtype=np.uint8), 4))


def test_search_leaves_the_blas_thread_count_as_it_was():
    """The search runs the BLAS single-threaded inside its own threads, then restores the limit."""
    from threadpoolctl import threadpool_info

    before = [(lib["filepath"], lib["num_threads"]) for lib in threadpool_info()]
    rng = np.random.default_rng(4)
    kneighbors(sparse_digits(rng, 500), sparse_digits(rng, 50), 5, block_size=4)
    assert [(lib["filepath"], lib["num_threads"]) for lib in threadpool_info()] == before


def test_an_error_in_one_thread_stops_the_others_and_reaches_the_caller(monkeypatch, thread_counts):
    numba.set_num_threads(2)
    real, calls = search._search_block, []

    def failing_block(G, *args):
        calls.append(len(G))
        if len(calls) == 2:
            raise RuntimeError("block failed")
        return real(G, *args)

    monkeypatch.setattr(search, "_search_block", failing_block)
    rng = np.random.default_rng(5)
    with pytest.raises(RuntimeError, match="block failed"):
        kneighbors(sparse_digits(rng, 300), sparse_digits(rng, 200), 3, block_size=4)  # 100 blocks of 2 rows
    assert len(calls) < 10  # the search stopped soon after the failure instead of finishing all 100 blocks


@given(integer_problems())
@PROPERTY
def test_integer_data_with_many_ties_matches_int64_brute_force(problem):
    X_train, X_query, k, metric, p = problem
    got = kneighbors(X_train, X_query, k, metric, p)
    assert_same_neighbours(got, integer_reference(X_train, X_query, k, metric, p))


@given(float_problems())
@PROPERTY
def test_float_data_matches_brute_force(problem):
    X_train, X_query, k, metric, p = problem
    got = kneighbors(X_train, X_query, k, metric, p)
    assert_same_neighbours(got, kernel_reference(X_train, X_query, k, metric, p), rtol=1e-14)


@pytest.mark.parametrize("scale", [1e-30, 1e-10, 1e10, 1e30, 1e200])
@pytest.mark.parametrize("metric", ["euclidean", "manhattan", "cosine"])
def test_float_data_far_from_unit_scale_matches_brute_force(metric, scale):
    """Finite inputs of any magnitude are valid. The float32 product would overflow above about 1e19
    and lose its relative error bound (underflow) below about 1e-19, so the search rescales such data
    by a power of two; the reference is pairwise_distances, which rescales the same way (raw power
    sums of 1e200-sized data overflow to infinity and would tie everything)."""
    rng = np.random.default_rng(0)
    X_train, X_query = rng.random((30, 5)) * scale, rng.random((4, 5)) * scale
    got = kneighbors(X_train, X_query, 5, metric)
    D = pairwise_distances(X_query, X_train, metric)
    order = np.argsort(D, axis=1, kind="stable")[:, :5]
    assert np.isfinite(D).all()
    assert_same_neighbours(got, (np.take_along_axis(D, order, axis=1), order), rtol=1e-14)


@pytest.mark.parametrize(("big", "small"), [(1.0, 1e-25), (1e30, 1.0)], ids=["tiny-rows", "one-huge-row"])
def test_cosine_of_rows_far_below_the_largest_matches_brute_force(big, small):
    """Cosine distance ignores each row's scale, so rows whose norms are tiny next to the largest
    must be ranked as exactly as the others: their float32 dot products underflow to 0, with or without
    the rescaling of far-from-unit data (which brings the largest magnitude near 1)."""
    rng = np.random.default_rng(0)
    base = rng.random((1, 8))
    X_train = np.vstack([np.full((1, 8), big), (base + 0.01 * rng.random((40, 8))) * small])
    X_query = (base + 0.01 * rng.random((5, 8))) * small
    got = kneighbors(X_train, X_query, 3, "cosine")
    assert_same_neighbours(got, kernel_reference(X_train, X_query, 3, "cosine"), rtol=1e-14)


# --------------------------------------------------------------------------- invariances


@given(any_problems(), st.data())
@PROPERTY
def test_block_size_never_changes_results(problem, data):
    X_train, X_query, k, metric, p = problem
    block_size = data.draw(st.integers(1, len(X_query) + 2), label="block_size")
    assert_same_neighbours(kneighbors(X_train, X_query, k, metric, p, block_size=block_size),
                           kneighbors(X_train, X_query, k, metric, p))


@pytest.fixture
def thread_counts():
    """1 and 2 numba threads (if numba may use 2); the thread count is restored afterwards."""
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba may use only 1 thread here (NUMBA_NUM_THREADS=1)")
    before = numba.get_num_threads()
    yield (1, 2)
    numba.set_num_threads(before)


@given(problem=any_problems())
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_thread_count_never_changes_results(thread_counts, problem):
    X_train, X_query, k, metric, p = problem
    results = []
    for n_threads in thread_counts:
        numba.set_num_threads(n_threads)
        results.append(kneighbors(X_train, X_query, k, metric, p, block_size=2))
    assert_same_neighbours(results[0], results[1])


def test_thread_count_never_changes_results_on_larger_data(thread_counts):
    rng = np.random.default_rng(2)
    X_train, X_query = sparse_digits(rng, 3000), sparse_digits(rng, 64)
    for metric, p in METRIC_PS:
        results = []
        for n_threads in thread_counts:
            numba.set_num_threads(n_threads)
            results.append(kneighbors(X_train, X_query, 9, metric, p))
        assert_same_neighbours(results[0], results[1])


@given(any_problems(), st.randoms(use_true_random=False))
@PROPERTY
def test_query_order_never_changes_results(problem, random):
    X_train, X_query, k, metric, p = problem
    perm = np.array(random.sample(range(len(X_query)), len(X_query)))
    d, i = kneighbors(X_train, X_query, k, metric, p)
    d_perm, i_perm = kneighbors(X_train, X_query[perm], k, metric, p)
    assert_same_neighbours((d_perm, i_perm), (d[perm], i[perm]))


@given(integer_problems(), st.data())
@PROPERTY
def test_duplicated_training_points_come_in_index_order(problem, data):
    X_train, X_query, _, metric, p = problem
    copies = data.draw(st.lists(st.integers(0, len(X_train) - 1), min_size=1, max_size=10), label="copies")
    X_dup = np.concatenate([X_train, X_train[copies], X_train])
    k = data.draw(st.integers(1, len(X_dup)), label="k")
    assert_same_neighbours(kneighbors(X_dup, X_query, k, metric, p),
                           integer_reference(X_dup, X_query, k, metric, p))


@pytest.mark.parametrize(("metric", "p"), METRIC_PS, ids=METRIC_IDS)
def test_identical_training_points_are_returned_in_index_order(metric, p):
    X_train = np.tile(np.array([[3, 1, 4, 1, 5]], dtype=np.uint8), (20, 1))
    d, i = kneighbors(X_train, np.array([[2, 7, 1, 8, 2]]), 20, metric, p)
    assert_array_equal(i, np.arange(20)[None, :])
    assert (d == d[0, 0]).all()


@given(any_problems())
@PROPERTY
def test_k_equal_to_n_train_orders_every_training_point(problem):
    X_train, X_query, _, metric, p = problem
    k = len(X_train)
    d, i = kneighbors(X_train, X_query, k, metric, p)
    assert_same_neighbours((d, i), kernel_reference(X_train, X_query, k, metric, p), rtol=1e-14)
    assert_array_equal(np.sort(i, axis=1), np.tile(np.arange(k), (len(X_query), 1)))


@pytest.mark.parametrize(("metric", "p"), METRIC_PS, ids=METRIC_IDS)
def test_one_query_and_one_training_point(metric, p):
    rng = np.random.default_rng(3)
    X_train = rng.integers(0, 256, (50, 784), dtype=np.uint8)
    x = rng.integers(0, 256, (1, 784), dtype=np.uint8)
    got = kneighbors(X_train, x, 5, metric, p)
    assert got[0].shape == got[1].shape == (1, 5)
    assert_same_neighbours(got, kernel_reference(X_train, x, 5, metric, p))
    d, i = kneighbors(X_train[:1], x, 1, metric, p)
    assert i.tolist() == [[0]]
    assert_allclose(d, pairwise_distances(x, X_train[:1], metric, p), rtol=1e-15)


def test_image_shaped_input_equals_flat_rows():
    rng = np.random.default_rng(4)
    X_train, X_query = rng.integers(0, 256, (40, 28, 28), dtype=np.uint8), rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    assert_same_neighbours(kneighbors(X_train, X_query, 4),
                           kneighbors(X_train.reshape(40, -1), X_query.reshape(3, -1), 4))


# --------------------------------------------------------------------------- exactness on near-ties


def near_tie_problem(deltas, n_distractors=200, seed=5):
    """A query with a large norm and training images that differ from it by the given small deltas.

    ``deltas[j]`` lists absolute pixel differences of training image j; they are placed on distinct
    pixels with random signs. Distractors are far away. Returns (X_train, x, rows of the near images).
    """
    rng = np.random.default_rng(seed)
    x = rng.integers(200, 225, 784).astype(np.uint8)
    near = []
    for delta in deltas:
        t = x.astype(np.int64)
        pixels = rng.choice(784, len(delta), replace=False)
        t[pixels] += np.array(delta) * rng.choice([-1, 1], len(delta))
        near.append(t.astype(np.uint8))
    X_train = rng.integers(0, 256, (n_distractors + len(deltas), 784)).astype(np.uint8)
    rows = rng.choice(len(X_train), len(deltas), replace=False)
    X_train[rows] = near
    return X_train, x[None, :], rows


# For each metric, differences whose exact power sums differ by 1 or are equal:
NEAR_TIES = {
    # squared L2: 10, 9, 9, 8, 10, 11 -- placed so that index order is not distance order
    ("euclidean", 2): [(3, 1), (3,), (2, 2, 1), (2, 2), (1,) * 10, (3, 1, 1)],
    # L1: 31, 30, 30, 29, 31
    ("manhattan", 2): [(31,), (30,), (15, 15), (29,), (10, 10, 11)],
    # L3 (sum of cubes): 28, 27, 27, 26, 28
    ("minkowski", 3): [(3, 1), (3,), (2, 2, 2, 1, 1, 1), (2, 2, 2, 1, 1), (1,) * 28],
    # L-inf: 5, 4, 4, 3
    ("chebyshev", 2): [(5, 1), (4, 4), (4,), (3, 3, 3)],
}


@pytest.mark.parametrize(("metric", "p"), list(NEAR_TIES), ids=[m for m, _ in NEAR_TIES])
def test_near_ties_beyond_float32_resolution_are_ordered_exactly(metric, p):
    X_train, x, rows = near_tie_problem(NEAR_TIES[(metric, p)])
    # float32 has a 24-bit mantissa: above 2**25 its spacing is 4, so the GEMM alone
    # cannot tell squared distances 8, 9 and 10 apart.
    assert (x.astype(np.int64) ** 2).sum() > 2**25
    d, i = kneighbors(X_train, x, len(rows) + 3, metric, p)
    d_ref, i_ref = integer_reference(X_train, x, len(rows) + 3, metric, p)
    assert_array_equal(i, i_ref)
    assert set(i[0, : len(rows)]) == set(rows)
    assert_array_equal(d, d_ref)  # one rounding of the exact integer sum (sqrt, cbrt) or the sum itself


def test_euclidean_distances_are_exactly_the_root_of_integer_sums():
    X_train, x, rows = near_tie_problem(NEAR_TIES[("euclidean", 2)])
    d, i = kneighbors(X_train, x, len(rows))
    sums = ((X_train[i[0]].astype(np.int64) - x.astype(np.int64)) ** 2).sum(axis=1)
    assert sums.tolist() == [8, 9, 9, 10, 10, 11]
    assert_array_equal(d[0], np.sqrt(sums.astype(np.float64)))
    # Equal sums come in training order.
    for s in (9, 10):
        tied = i[0][sums == s]
        assert tied.tolist() == sorted(tied.tolist())


def test_search_distances_equal_pairwise_distances():
    """kneighbors and pairwise_distances give the same float for the same pair (one rounding)."""
    X_train, x, _ = near_tie_problem(NEAR_TIES[("minkowski", 3)])
    for metric, p in METRIC_PS:
        d, i = kneighbors(X_train, x, 10, metric, p)
        assert_array_equal(d[0], pairwise_distances(x, X_train[i[0]], metric, p)[0], err_msg=f"{metric} p={p}")


# --------------------------------------------------------------------------- bad input

X4 = np.arange(20, dtype=np.uint8).reshape(5, 4)


def test_mismatched_widths_raise():
    with pytest.raises(ValueError, match=r"X_query has 3 features \(pixels\) per sample; X_train has 4"):
        kneighbors(X4, np.zeros((2, 3)), 1)


@pytest.mark.parametrize("k", [0, -1, 6])
def test_k_outside_1_to_n_train_raises(k):
    with pytest.raises(ValueError, match=rf"k must be in \[1, n_train=5\]; got k={k}\."):
        kneighbors(X4, X4, k)


@pytest.mark.parametrize("k", [2.0, True, "3", None])
def test_k_not_an_integer_raises(k):
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, n_train=5\]; got k="):
        kneighbors(X4, X4, k)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", ["X_train", "X_query"])
def test_nan_or_infinity_raises(where, bad):
    X = X4.astype(float)
    X[2, 1] = bad
    args = (X, X4) if where == "X_train" else (X4, X)
    with pytest.raises(ValueError, match=f"{where} contains NaN or infinity; expected finite numbers"):
        kneighbors(*args, 1)


@pytest.mark.parametrize("where", ["X_train", "X_query"])
@pytest.mark.parametrize("shape", [(0, 4), (5, 0)])
def test_empty_arrays_raise(where, shape):
    args = (np.zeros(shape), X4) if where == "X_train" else (X4, np.zeros(shape))
    with pytest.raises(ValueError, match=rf"{where} is empty \(shape \({shape[0]}, {shape[1]}\)\); expected at least one"):
        kneighbors(*args, 1)


def test_unknown_metric_raises():
    with pytest.raises(ValueError, match=r"metric must be one of \(.*\); got metric='correlation'"):
        kneighbors(X4, X4, 1, metric="correlation")


@pytest.mark.parametrize("p", [0.99, 0, -2])
def test_minkowski_p_below_1_raises(p):
    with pytest.raises(ValueError, match=rf"minkowski needs p >= 1; got p={float(p)}"):
        kneighbors(X4, X4, 1, metric="minkowski", p=p)


@pytest.mark.parametrize("block_size", [0, -3, 2.5])
def test_bad_block_size_raises(block_size):
    with pytest.raises(ValueError, match=rf"block_size must be a positive integer; got block_size={block_size}"):
        kneighbors(X4, X4, 1, block_size=block_size)


# --------------------------------------------------------------------------- the cache


@pytest.fixture
def data():
    rng = np.random.default_rng(6)
    return rng.integers(0, 256, (60, 30), dtype=np.uint8), rng.integers(0, 256, (7, 30), dtype=np.uint8)


@pytest.fixture
def no_search(monkeypatch):
    """After this fixture, any real search raises: results can only come from the cache."""

    def fail(*args, **kwargs):
        raise AssertionError("searched instead of loading the cache")

    monkeypatch.setattr(search, "_search", fail)


def cache_files(directory):
    return sorted(p.name for p in directory.iterdir())


def test_cache_stores_one_file_named_by_the_key(tmp_path, data):
    X_train, X_query = data
    result = kneighbors(X_train, X_query, 5, cache=tmp_path)
    assert cache_files(tmp_path) == [cache_key(X_train, X_query) + ".npz"]
    assert_same_neighbours(result, kneighbors(X_train, X_query, 5))


def test_cache_true_uses_the_data_cache_directory(tmp_path, monkeypatch, data):
    monkeypatch.setattr(search, "CACHE_DIR", tmp_path / "cache")
    kneighbors(*data, 3, cache=True)
    assert len(cache_files(tmp_path / "cache")) == 1


def test_second_call_loads_the_cache(tmp_path, data, request):
    first = kneighbors(*data, 5, "manhattan", cache=tmp_path)
    request.getfixturevalue("no_search")
    assert_same_neighbours(kneighbors(*data, 5, "manhattan", cache=tmp_path), first)


def test_smaller_k_is_served_from_a_larger_cached_search(tmp_path, data, request):
    fresh = kneighbors(*data, 4)
    kneighbors(*data, 10, cache=tmp_path)
    request.getfixturevalue("no_search")
    assert_same_neighbours(kneighbors(*data, 4, cache=tmp_path), fresh)


def test_larger_k_searches_again_and_replaces_the_file(tmp_path, data):
    kneighbors(*data, 3, cache=tmp_path)
    result = kneighbors(*data, 8, cache=tmp_path)
    assert result[0].shape == (7, 8)
    (path,) = tmp_path.iterdir()
    with np.load(path) as f:
        assert f["indices"].shape == (7, 8)


def test_changed_data_or_parameters_never_load_a_stale_result(tmp_path, data, request):
    X_train, X_query = data
    kneighbors(X_train, X_query, 5, "minkowski", p=3, cache=tmp_path)
    X_changed = X_train.copy()
    X_changed[17, 3] ^= 1
    variants = [
        (X_changed, X_query, "minkowski", 3),  # one pixel of the training set
        (X_train, X_query[:6], "minkowski", 3),  # fewer queries
        (X_train[:-1], X_query, "minkowski", 3),  # fewer training rows
        (X_train, X_query, "euclidean", 2),  # another metric
        (X_train, X_query, "minkowski", 4),  # another p
        (X_train.astype(float) + 0.5, X_query, "minkowski", 3),  # float data
        (X_query, X_train[:7], "minkowski", 3),  # roles swapped
    ]
    keys = {cache_key(X_train, X_query, "minkowski", 3)}
    for X_t, X_q, metric, p in variants:
        keys.add(cache_key(X_t, X_q, metric, p))
    assert len(keys) == len(variants) + 1
    request.getfixturevalue("no_search")
    for X_t, X_q, metric, p in variants:
        with pytest.raises(AssertionError, match="searched instead of loading the cache"):
            kneighbors(X_t, X_q, 5, metric, p, cache=tmp_path)


def test_close_but_different_p_gets_its_own_cache_entry(tmp_path, data):
    """The key must tell p=4 from p=4.000001 (their distances differ): ``f"{p:g}"`` keeps 6 digits."""
    X_train, X_query = data
    assert cache_key(X_train, X_query, "minkowski", 4) != cache_key(X_train, X_query, "minkowski", 4.000001)
    kneighbors(X_train, X_query, 5, "minkowski", p=4, cache=tmp_path)
    cached = kneighbors(X_train, X_query, 5, "minkowski", p=4.000001, cache=tmp_path)
    assert_same_neighbours(cached, kneighbors(X_train, X_query, 5, "minkowski", p=4.000001))


def test_equivalent_inputs_share_a_key(data):
    """Integer-valued float or image-shaped copies of uint8 data are the same search."""
    X_train, X_query = data
    key = cache_key(X_train, X_query)
    assert cache_key(X_train.astype(np.float32), X_query.astype(np.int64)) == key
    assert cache_key(X_train, X_query, "minkowski", 2) == key
    assert cache_key(X_train, X_query, "cosine", 1) == cache_key(X_train, X_query, "cosine", 7)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "wrong arrays", "too few rows"])
def test_corrupt_cache_file_is_ignored_and_rewritten(tmp_path, data, damage):
    fresh = kneighbors(*data, 5)
    kneighbors(*data, 5, cache=tmp_path)
    (path,) = tmp_path.iterdir()
    content = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(content[: len(content) // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a zip file at all" * 10)
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "wrong arrays":
        np.savez(path, something_else=np.zeros(3))
    else:
        np.savez(path, distances=fresh[0][:3], indices=fresh[1][:3])
    assert_same_neighbours(kneighbors(*data, 5, cache=tmp_path), fresh)
    assert cache_files(tmp_path) == [path.name]  # rewritten in place, no temporary file left
    with np.load(path) as f:
        assert_array_equal(f["indices"], fresh[1])


def test_deleting_the_cache_is_safe(tmp_path, data):
    directory = tmp_path / "cache"
    first = kneighbors(*data, 5, cache=directory)
    for path in directory.iterdir():
        path.unlink()
    directory.rmdir()
    assert_same_neighbours(kneighbors(*data, 5, cache=directory), first)
    assert len(cache_files(directory)) == 1


def test_cached_arrays_are_private_copies(tmp_path, data):
    kneighbors(*data, 5, cache=tmp_path)
    d, i = kneighbors(*data, 3, cache=tmp_path)
    d[:] = -1
    i[:] = -1
    d2, i2 = kneighbors(*data, 3, cache=tmp_path)
    assert (d2 >= 0).all() and (i2 >= 0).all()


# --------------------------------------------------------------------------- leave-one-out


def loo_reference(X, k, metric, p):
    """Brute force with each row's own distance set to infinity."""
    X = X.reshape(len(X), -1)
    diff = X.astype(np.int64)[:, None, :] - X.astype(np.int64)[None, :, :]
    S = (diff**2).sum(axis=2) if metric == "euclidean" else np.abs(diff).sum(axis=2)
    S = S.astype(np.float64)
    np.fill_diagonal(S, np.inf)
    order = np.argsort(S, axis=1, kind="stable")[:, :k]
    return finish(np.take_along_axis(S, order, axis=1), metric, p), order


@given(integer_problems(metrics=[("euclidean", 2), ("manhattan", 2)]), st.data())
@PROPERTY
def test_loo_never_returns_the_row_itself(problem, data):
    X, _, _, metric, p = problem
    copies = data.draw(st.lists(st.integers(0, len(X) - 1), max_size=8), label="copies")
    X = np.concatenate([X, X[copies], X[copies[:2]]])  # exact duplicates, some more than twice
    if len(X) < 2:
        return
    k = data.draw(st.integers(1, len(X) - 1), label="k")
    d, i = kneighbors_loo(X, k, metric, p)
    assert not (i == np.arange(len(X))[:, None]).any()
    assert_same_neighbours((d, i), loo_reference(X, k, metric, p))


def test_loo_with_more_duplicates_than_k():
    """Row 4 of five identical rows: its k + 1 = 3 nearest are rows 0, 1, 2, and it keeps 0 and 1."""
    X = np.ones((5, 3), dtype=np.uint8)
    d, i = kneighbors_loo(X, 2)
    assert i.tolist() == [[1, 2], [0, 2], [0, 1], [0, 1], [0, 1]]
    assert (d == 0).all()


def test_loo_duplicate_with_a_lower_index_comes_first():
    X = np.array([[0, 0], [5, 5], [0, 1], [5, 5]], dtype=np.uint8)
    d, i = kneighbors_loo(X, 2)
    assert i[3].tolist() == [1, 2] and d[3, 0] == 0.0  # row 1 is row 3's exact duplicate
    assert i[1].tolist() == [3, 2]


@pytest.mark.parametrize("k", [0, 5, 2.0])
def test_loo_k_outside_1_to_n_minus_1_raises(k):
    with pytest.raises(ValueError, match=rf"k must be an integer in \[1, n - 1 = 4\] for leave-one-out; got k={k}"):
        kneighbors_loo(X4, k)


def test_loo_uses_the_cache(tmp_path, data, request):
    X = data[0]
    first = kneighbors_loo(X, 4, "manhattan", cache=tmp_path)
    request.getfixturevalue("no_search")
    assert_same_neighbours(kneighbors_loo(X, 3, "manhattan", cache=tmp_path), (first[0][:, :3], first[1][:, :3]))


# --------------------------------------------------------------------------- real digits, if present


@pytest.mark.parametrize(("metric", "p"), METRIC_PS, ids=METRIC_IDS)
def test_real_digits_match_brute_force(mnist, metric, p):
    """A seeded sample of test digits against the first 10,000 training digits."""
    X_train, _, X_test, _ = mnist
    n_query = 10 if metric == "minkowski" and p not in (1, 3) else 40  # pow() makes the reference slow
    rows = np.random.default_rng(7).choice(len(X_test), n_query, replace=False)
    got = kneighbors(X_train[:10_000], X_test[rows], 10, metric, p)
    assert_same_neighbours(got, kernel_reference(X_train[:10_000], X_test[rows], 10, metric, p))
