"""Tests for mnist_knn.engine.rerank (re-ranking a shortlist by an exact metric) and for
mnist_knn.engine.search.exclude_group (dropping neighbours of the query's own group)."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from mnist_knn.engine.distances import pairwise_distances
from mnist_knn.engine.rerank import rerank_by_metric
from mnist_knn.engine.search import exclude_group, kneighbors


# --------------------------------------------------------------------------- exclude_group


def test_exclude_group_keeps_the_rest_in_order():
    d = np.array([[0.0, 1.0, 2.0, 3.0], [0.0, 0.0, 5.0, 6.0]])
    i = np.array([[7, 3, 9, 1], [2, 4, 8, 0]])
    # Leave-one-out: each row its own group; query 0 is training row 7, query 1 is row 4.
    d2, i2 = exclude_group(d, i, np.arange(10), np.array([7, 4]), 2)
    assert_array_equal(i2, [[3, 9], [2, 8]])
    assert_array_equal(d2, [[1.0, 2.0], [0.0, 5.0]])


def test_exclude_group_raises_when_too_few_are_left():
    d, i = np.zeros((2, 3)), np.array([[0, 1, 2], [0, 1, 2]])
    with pytest.raises(ValueError, match="1 queries have fewer than k=2"):
        exclude_group(d, i, np.array([5, 5, 6]), np.array([5, 7]), 2)


def test_exclude_group_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="one shape"):
        exclude_group(np.zeros((2, 3)), np.zeros((2, 2), dtype=int), np.zeros(3), np.zeros(2), 1)


def test_exclude_group_rejects_groups_of_the_wrong_length():
    with pytest.raises(ValueError, match="groups_query must have shape"):
        exclude_group(np.zeros((2, 3)), np.zeros((2, 3), dtype=int), np.zeros(3), np.zeros(3), 1)


# --------------------------------------------------------------------------- rerank_by_metric


@pytest.mark.parametrize("metric,p", [("euclidean", 2), ("manhattan", 1), ("minkowski", 3), ("minkowski", 4),
                                      ("minkowski", 1.5), ("chebyshev", 2), ("cosine", 2)])
def test_rerank_of_all_rows_equals_the_exact_search(metric, p):
    rng = np.random.default_rng(0)
    X_train = rng.integers(0, 256, size=(40, 16), dtype=np.uint8)
    X_query = rng.integers(0, 256, size=(5, 16), dtype=np.uint8)
    shuffled = np.stack([rng.permutation(40) for _ in range(5)])
    d, i = rerank_by_metric(X_train, X_query, shuffled, metric, p)
    d_ref, i_ref = kneighbors(X_train, X_query, 40, metric, p)
    assert_array_equal(i, i_ref)
    assert_allclose(d, d_ref, rtol=1e-12)
    assert_allclose(d, np.take_along_axis(pairwise_distances(X_query, X_train, metric, p), i, 1), rtol=1e-12)


def test_rerank_orders_equal_distances_by_training_index():
    X_train = np.array([[1, 0], [0, 1], [1, 0], [5, 5]], dtype=np.uint8)
    X_query = np.array([[0, 0]], dtype=np.uint8)
    d, i = rerank_by_metric(X_train, X_query, np.array([[3, 2, 1, 0]]), "minkowski", 4)
    assert_array_equal(i, [[0, 1, 2, 3]])
    assert_allclose(d[0, :3], 1.0)


def test_rerank_of_uint8_images_with_p4_is_exact():
    # 255**4 * 784 > 2**31: the sums must not overflow or round.
    X_train = np.full((2, 784), 255, dtype=np.uint8)
    X_train[1, 0] = 254
    X_query = np.zeros((1, 784), dtype=np.uint8)
    d, i = rerank_by_metric(X_train, X_query, np.array([[0, 1]]), "minkowski", 4)
    assert_array_equal(i, [[1, 0]])
    assert d[0, 0] < d[0, 1]


def test_rerank_rejects_indices_out_of_range():
    X = np.zeros((3, 4), dtype=np.uint8)
    with pytest.raises(ValueError, match="training rows"):
        rerank_by_metric(X, X[:1], np.array([[0, 3]]))


def test_rerank_with_p6_ranks_by_the_exact_integer_sums():
    rng = np.random.default_rng(2)
    X_train = rng.integers(0, 256, size=(30, 784), dtype=np.uint8)
    X_query = rng.integers(0, 256, size=(2, 784), dtype=np.uint8)
    candidates = np.tile(np.arange(30), (2, 1))
    d, i = rerank_by_metric(X_train, X_query, candidates, "minkowski", 6)
    for q in range(2):
        exact = [sum(abs(int(a) - int(b)) ** 6 for a, b in zip(X_query[q], X_train[j])) for j in range(30)]
        assert_array_equal(i[q], sorted(range(30), key=lambda j: (exact[j], j)))
        assert_allclose(d[q], [exact[j] ** (1 / 6) for j in i[q]], rtol=1e-14)
