"""Writer adaptation (mnist_knn.analysis.adaptation): a writer's first digits join the training set."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from mnist_knn.analysis.adaptation import adapted_neighbors, first_digits
from mnist_knn.engine import kneighbors


def test_first_digits_in_file_order_per_writer():
    writers = np.array([5, 2, 5, 5, 2, 9])
    assert_array_equal(first_digits(writers, 0), [False] * 6)
    assert_array_equal(first_digits(writers, 2), [True, True, True, False, True, True])
    assert first_digits(writers, 10).all()


@pytest.mark.parametrize("m", [-1, 1.5, True])
def test_impossible_m_is_refused(m):
    with pytest.raises(ValueError, match="m must be an integer >= 0"):
        first_digits(np.zeros(3), m)


def test_adapted_neighbors_equal_a_search_over_training_plus_stored_digits():
    """The merge gives what one exact search over the training digits and the stored own digits gives."""
    rng = np.random.default_rng(0)
    X_train = rng.integers(0, 256, (80, 12), dtype=np.uint8)
    X_query = rng.integers(0, 256, (30, 12), dtype=np.uint8)
    writers = rng.integers(0, 4, 30)
    k, m = 5, 3
    d, i = kneighbors(X_train, X_query, k)
    dd, ii = adapted_neighbors(d, i, X_query, writers, m, n_train=len(X_train))
    stored = first_digits(writers, m)
    for q in range(len(X_query)):
        own = np.flatnonzero(stored & (writers == writers[q]) & (np.arange(30) != q))
        pool = np.concatenate([X_train, X_query[own]])
        d_ref, i_ref = kneighbors(pool, X_query[q : q + 1], k)
        ids = np.concatenate([np.arange(len(X_train)), len(X_train) + own])[i_ref[0]]
        np.testing.assert_allclose(dd[q], d_ref[0])
        assert_array_equal(ii[q], ids)
    assert (ii >= len(X_train)).any()  # some own digits were found


def test_m_zero_changes_nothing_and_a_digit_never_finds_itself():
    rng = np.random.default_rng(1)
    X_train = rng.integers(0, 256, (40, 6), dtype=np.uint8)
    X_query = rng.integers(0, 256, (10, 6), dtype=np.uint8)
    writers = np.zeros(10, dtype=int)
    d, i = kneighbors(X_train, X_query, 3)
    same = adapted_neighbors(d, i, X_query, writers, 0, n_train=40)
    assert_array_equal(same[0], d) and assert_array_equal(same[1], i)
    dd, ii = adapted_neighbors(d, i, X_query, writers, 10, n_train=40)  # every digit stored
    assert not (ii == 40 + np.arange(10)[:, None]).any()


def test_a_stored_copy_of_the_query_is_its_nearest_neighbour():
    X_train = np.full((5, 4), 200, dtype=np.uint8)
    X_query = np.array([[0, 0, 0, 0], [0, 0, 0, 0]], dtype=np.uint8)  # one writer, two identical digits
    d, i = kneighbors(X_train, X_query, 2)
    dd, ii = adapted_neighbors(d, i, X_query, np.array([3, 3]), 1, n_train=5)
    assert ii[1, 0] == 5 and dd[1, 0] == 0.0  # the second finds the first, stored
    assert_array_equal(ii[0], i[0])  # the first is stored, but never its own neighbour


def test_bad_shapes_and_indices_are_refused():
    X = np.zeros((3, 4), dtype=np.uint8)
    d, i = np.zeros((3, 2)), np.zeros((3, 2), dtype=int)
    with pytest.raises(ValueError, match="one row per query"):
        adapted_neighbors(d[:2], i[:2], X, np.zeros(3), 1, n_train=10)
    with pytest.raises(ValueError, match="training digits; got index 10"):
        adapted_neighbors(d, i + 10, X, np.zeros(3), 1, n_train=10)
