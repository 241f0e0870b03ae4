"""Tests for mnist_knn.analysis.selection: choices made on held-out training writers only."""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_array_equal

from mnist_knn.analysis.selection import (
    choose,
    held_out_errors,
    other_writer_neighbors,
    selection_queries,
    writer_folds,
)
from mnist_knn.engine.distances import pairwise_distances


def writers_data(seed=0, n_writers=12):
    """Digits of writers with very different numbers of digits, each writer's digits close together
    (a writer's own style), so that plain leave-one-out would find them first."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 40, n_writers)
    writers = np.repeat(np.arange(100, 100 + n_writers), sizes)
    centres = rng.integers(0, 200, (n_writers, 10))
    X = (centres[writers - 100] + rng.integers(0, 20, (len(writers), 10))).astype(np.uint8)
    y = rng.integers(0, 3, len(writers))
    return X, writers, y


def brute_force_other_writers(X, writers, k):
    """The k nearest digits of other writers, by a full distance matrix (ties by lower index)."""
    D = pairwise_distances(X, X)
    out = []
    for q in range(len(X)):
        cand = np.flatnonzero(writers != writers[q])
        order = np.lexsort((cand, D[q, cand]))[:k]
        out.append(cand[order])
    return np.array(out)


@pytest.mark.parametrize("k", [1, 5, 30])
def test_other_writer_neighbors_equal_a_brute_force_search_among_other_writers(k, tmp_path):
    X, writers, _ = writers_data()
    d, i = other_writer_neighbors(X, writers, k, cache=False)
    assert_array_equal(i, brute_force_other_writers(X, writers, k))
    assert np.all(np.diff(d, axis=1) >= 0)


def test_a_writer_never_chooses_for_themselves():
    X, writers, _ = writers_data(seed=1)
    queries = selection_queries(writers, 60)
    _, i = other_writer_neighbors(X, writers, 8, queries=queries, cache=False)
    assert not np.any(writers[i] == writers[queries][:, None])


def test_queries_with_a_prolific_writer_are_searched_again_until_k_others_remain():
    # One writer wrote 150 near-identical digits: the first list of k + 64 is all theirs.
    rng = np.random.default_rng(2)
    X = np.vstack([np.full((150, 6), 100, np.uint8) + rng.integers(0, 2, (150, 6)).astype(np.uint8),
                   rng.integers(0, 256, (40, 6)).astype(np.uint8)])
    writers = np.r_[np.zeros(150, int), np.arange(1, 41)]
    _, i = other_writer_neighbors(X, writers, 5, queries=np.arange(3), cache=False)
    assert_array_equal(i, brute_force_other_writers(X, writers, 5)[:3])


def test_held_out_errors_and_choose():
    D = np.array([[0.0, 1.0, 2.0], [0.0, 1.0, 1.0]])
    I = np.array([[0, 1, 2], [2, 1, 0]])
    y_train = np.array([0, 1, 1])
    table = held_out_errors(D, I, y_train, y_query=np.array([1, 1]), ks=[1, 3], rules=["smallest", "nearest"])
    assert table.index.tolist() == [1, 3] and table.columns.tolist() == ["smallest", "nearest"]
    assert table.loc[1, "smallest"] == 0.5 and table.loc[3, "smallest"] == 0.0
    assert choose(table) == (3, "smallest")


def test_choose_breaks_ties_towards_the_first_row_and_column():
    table = pd.DataFrame([[0.2, 0.1], [0.1, 0.1]], index=[1, 2], columns=["plain", "fancy"])
    assert choose(table) == (1, "fancy")
    assert choose(table.loc[[2, 1]]) == (2, "plain")
    with pytest.raises(ValueError, match="without NaN"):
        choose(pd.DataFrame([[np.nan]]))


def test_selection_queries_are_whole_writers_seeded_and_sorted():
    writers = np.repeat(np.arange(50), 20)
    q = selection_queries(writers, 200)
    assert len(q) == 200 and np.all(np.diff(q) > 0)
    assert len(np.unique(writers[q])) == 10  # ten whole writers
    assert_array_equal(q, selection_queries(writers, 200))
    assert not np.array_equal(q, selection_queries(writers, 200, seed=1))
    with pytest.raises(ValueError, match="size must be in"):
        selection_queries(writers, 1001)


def test_writer_folds_keep_writers_whole_and_balance_digits():
    rng = np.random.default_rng(3)
    writers = rng.integers(0, 300, 9000)
    folds = writer_folds(writers, 5)
    for w in np.unique(writers):
        assert len(np.unique(folds[writers == w])) == 1
    sizes = np.bincount(folds)
    assert sizes.min() > 0.95 * sizes.max()
    assert_array_equal(folds, writer_folds(writers, 5))
