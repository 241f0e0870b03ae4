"""Tests for mnist_knn.engine.distances: every metric against scipy, exact integer sums on uint8, input checks."""

import math

import numba
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.spatial.distance import cdist

from mnist_knn.engine.distances import METRICS, as_rows, metric_code, pairwise_distances, thread_count

# (our metric, p, scipy's name, scipy's keyword arguments)
SCIPY = [
    ("euclidean", 2, "euclidean", {}),
    ("manhattan", 2, "cityblock", {}),
    ("minkowski", 1, "cityblock", {}),
    ("minkowski", 1.5, "minkowski", {"p": 1.5}),
    ("minkowski", 2, "euclidean", {}),
    ("minkowski", 3, "minkowski", {"p": 3}),
    ("minkowski", 4, "minkowski", {"p": 4}),
    ("minkowski", math.inf, "chebyshev", {}),
    ("chebyshev", 2, "chebyshev", {}),
    ("cosine", 2, "cosine", {}),
]
IDS = [f"{m}-p{p}" for m, p, _, _ in SCIPY]


def exact_power_sums(X, Y, metric, p=2):
    """The quantity each metric ranks by, in numpy int64 arithmetic (exact for uint8 images)."""
    diff = X.astype(np.int64)[:, None, :] - Y.astype(np.int64)[None, :, :]
    if metric == "euclidean":
        return (diff**2).sum(axis=2)
    if metric == "manhattan":
        return np.abs(diff).sum(axis=2)
    if metric == "minkowski" and p == 3:
        return (np.abs(diff) ** 3).sum(axis=2)
    if metric == "chebyshev":
        return np.abs(diff).max(axis=2)
    raise ValueError(metric)


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize(("metric", "p", "name", "kw"), SCIPY, ids=IDS)
def test_matches_scipy_on_continuous_data(metric, p, name, kw):
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(7, 13)), rng.normal(size=(9, 13))
    assert_allclose(pairwise_distances(X, Y, metric, p), cdist(X, Y, name, **kw), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(("metric", "p", "name", "kw"), SCIPY, ids=IDS)
def test_matches_scipy_on_uint8_images(metric, p, name, kw):
    rng = np.random.default_rng(1)
    X, Y = rng.integers(0, 256, (6, 784), dtype=np.uint8), rng.integers(0, 256, (5, 784), dtype=np.uint8)
    expected = cdist(X.astype(float), Y.astype(float), name, **kw)
    assert_allclose(pairwise_distances(X, Y, metric, p), expected, rtol=1e-12)


@pytest.mark.parametrize(("metric", "p", "finish"), [
    ("euclidean", 2, np.sqrt),
    ("manhattan", 2, lambda s: s),
    ("minkowski", 3, np.cbrt),
    ("chebyshev", 2, lambda s: s),
])
def test_uint8_distances_are_one_rounding_of_the_exact_integer_sum(metric, p, finish):
    """Squared L2, L1, cubed L3 and L-inf of uint8 images are integers: the kernels sum them exactly.

    The distance is then one correctly rounded root of that integer, the same value the search returns
    (``np.cbrt`` in numpy; numba's ``np.cbrt`` is off by one ulp for about 40% of inputs).
    """
    rng = np.random.default_rng(2)
    X, Y = rng.integers(0, 256, (8, 784), dtype=np.uint8), rng.integers(0, 256, (9, 784), dtype=np.uint8)
    sums = exact_power_sums(X, Y, metric, p)
    assert_array_equal(pairwise_distances(X, Y, metric, p), finish(sums.astype(np.float64)))


def test_uint8_differences_do_not_wrap_around():
    """0 - 16 in uint8 arithmetic is 240; the distance must be 16."""
    X, Y = np.array([[0, 255]], dtype=np.uint8), np.array([[16, 0]], dtype=np.uint8)
    assert pairwise_distances(X, Y, "manhattan")[0, 0] == 16 + 255
    assert pairwise_distances(X, Y, "euclidean")[0, 0] == math.sqrt(16**2 + 255**2)
    assert pairwise_distances(X, Y, "chebyshev")[0, 0] == 255
    assert_allclose(pairwise_distances(X, Y, "minkowski", p=3)[0, 0], (16.0**3 + 255.0**3) ** (1 / 3), rtol=1e-15)


def test_cosine_matches_sklearn_including_zero_vectors():
    """As scikit-learn: a zero vector is at cosine distance 1 from everything (itself included)."""
    from sklearn.metrics import pairwise_distances as sk_pairwise

    X = np.array([[0, 0, 0], [1, 2, 3], [2, 4, 6], [3, 0, 1]], dtype=float)
    Y = np.array([[0, 0, 0], [1, 2, 3], [-1, -2, -3]], dtype=float)
    D = pairwise_distances(X, Y, "cosine")
    assert_allclose(D, sk_pairwise(X, Y, metric="cosine"), atol=1e-15)
    assert D[0, 0] == 1.0 and D[0, 1] == 1.0 and D[1, 0] == 1.0
    assert D[1, 2] == 2.0  # opposite directions: clipped to [0, 2]
    assert D.min() >= 0.0  # parallel vectors never come out slightly negative


def test_image_shaped_input_equals_flat_rows():
    rng = np.random.default_rng(3)
    X, Y = rng.integers(0, 256, (4, 28, 28), dtype=np.uint8), rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    assert_array_equal(pairwise_distances(X, Y), pairwise_distances(X.reshape(4, -1), Y.reshape(3, -1)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16, np.int64, np.uint16])
def test_integer_valued_images_take_the_exact_uint8_path(dtype):
    rng = np.random.default_rng(4)
    X = rng.integers(0, 256, (5, 20), dtype=np.uint8)
    assert as_rows(X.astype(dtype), "X").dtype == np.uint8
    assert_array_equal(pairwise_distances(X.astype(dtype), X[:2].astype(dtype), "manhattan"),
                       pairwise_distances(X, X[:2], "manhattan"))


def test_values_outside_0_255_or_fractional_are_summed_in_float64():
    assert as_rows(np.array([[0.5, 1.0]]), "X").dtype == np.float64
    assert as_rows(np.array([[-1, 3]]), "X").dtype == np.float64
    assert as_rows(np.array([[256, 3]]), "X").dtype == np.float64
    # A uint8 array against a float one: both go to float64.
    D = pairwise_distances(np.array([[1, 2]], dtype=np.uint8), np.array([[1.5, 2.0]]))
    assert D[0, 0] == 0.5


def test_bool_images_are_read_as_0_and_1():
    X = np.array([[True, False, True]])
    assert as_rows(X, "X").dtype == np.uint8
    assert pairwise_distances(X, np.array([[0, 0, 0]]), "manhattan")[0, 0] == 2


@pytest.mark.parametrize(("metric", "p", "same_as"), [
    ("minkowski", 1, ("manhattan", 2)),
    ("minkowski", 2, ("euclidean", 2)),
    ("minkowski", math.inf, ("chebyshev", 2)),
])
def test_minkowski_special_cases_are_routed_to_the_exact_kernels(metric, p, same_as):
    assert metric_code(metric, p) == metric_code(*same_as)
    rng = np.random.default_rng(5)
    X = rng.integers(0, 256, (3, 50), dtype=np.uint8)
    assert_array_equal(pairwise_distances(X, X, metric, p), pairwise_distances(X, X, *same_as))


def test_thread_count_is_numbas():
    assert thread_count() == numba.get_num_threads()


# --------------------------------------------------------------------------- bad input


def test_unknown_metric_raises():
    with pytest.raises(ValueError, match=r"metric must be one of .*'euclidean'.*; got metric='hamming'"):
        pairwise_distances(np.ones((1, 2)), np.ones((1, 2)), "hamming")


@pytest.mark.parametrize("p", [0.5, 0, -1, float("nan")])
def test_minkowski_p_below_1_raises(p):
    with pytest.raises(ValueError, match=r"minkowski needs p >= 1; got p="):
        pairwise_distances(np.ones((1, 2)), np.ones((1, 2)), "minkowski", p=p)


def test_mismatched_widths_raise():
    with pytest.raises(ValueError, match="Y has 3 features .* per sample; X has 4"):
        pairwise_distances(np.ones((2, 4)), np.ones((2, 3)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_infinity_raises(bad):
    Y = np.ones((2, 3))
    Y[1, 2] = bad
    with pytest.raises(ValueError, match="Y contains NaN or infinity; expected finite numbers"):
        pairwise_distances(np.ones((2, 3)), Y)


@pytest.mark.parametrize("shape", [(0, 4), (3, 0), (0, 28, 28)])
def test_empty_arrays_raise(shape):
    with pytest.raises(ValueError, match=r"X is empty \(shape \(.*\)\); expected at least one sample and one feature"):
        pairwise_distances(np.ones(shape), np.ones((1, 4)))


def test_one_dimensional_input_raises():
    with pytest.raises(ValueError, match=r"must have shape \(n_samples, n_features\).*got shape \(4,\)"):
        pairwise_distances(np.ones(4), np.ones((1, 4)))


def test_non_numeric_input_raises():
    with pytest.raises(ValueError, match="X must hold numbers; got dtype <U1"):
        pairwise_distances(np.array([["a", "b"]]), np.ones((1, 2)))


def test_metrics_constant_lists_every_metric():
    assert set(METRICS) == {"euclidean", "manhattan", "minkowski", "chebyshev", "cosine"}
