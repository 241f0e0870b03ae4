"""Tests for mnist_knn.analysis.ties: vote-tie statistics, duplicates, distance ties at the k-th place."""

import numpy as np
from numpy.testing import assert_array_equal
import pytest

from mnist_knn.engine.search import kneighbors
from mnist_knn.analysis.ties import (
    boundary_ties,
    exact_duplicates,
    expected_random_accuracy,
    gains_and_losses,
    inclusive_vote_counts,
    k_step_changes,
    near_duplicates,
    order_sensitive,
    tie_table,
)
from mnist_knn.engine.vote import predict


def search_result(label_rows, distance_rows=None):
    """A search result whose neighbour j of query q is training row ``q * k_max + j``.

    ``y_train`` is the flattened label rows, so row q's neighbours carry ``label_rows[q]``.
    """
    L = np.asarray(label_rows)
    n, k_max = L.shape
    D = np.tile(np.arange(1.0, k_max + 1), (n, 1)) if distance_rows is None else np.asarray(distance_rows, float)
    I = np.arange(n * k_max).reshape(n, k_max)
    return D, I, L.ravel()


@pytest.fixture
def small_integer_data():
    """Integer points on a coarse grid: many exact distance ties, as on MNIST with L1."""
    rng = np.random.default_rng(0)
    X_train = rng.integers(0, 5, (60, 2)).astype(np.uint8)
    y_train = rng.integers(0, 3, 60)
    X_query = rng.integers(0, 5, (25, 2)).astype(np.uint8)
    return X_train, y_train, X_query


# ---------------------------------------------------------------- vote ties


def test_tie_table_counts_two_way_and_multi_way_ties():
    D, I, y = search_result([[0, 1, 2, 2], [0, 1, 2, 3], [4, 4, 1, 2]])
    table = tie_table(D, I, y, np.array([0, 0, 4]), ks=[2, 3])
    assert table["k"].tolist() == [2, 3]
    assert table["tied"].tolist() == [2, 2]  # k=2: rows 0, 1 split 1-1; k=3: rows 0, 1 split 1-1-1
    assert table["two_way"].tolist() == [2, 0]
    assert table["multi_way"].tolist() == [0, 2]


def test_tie_table_counts_ties_that_include_the_true_label():
    D, I, y = search_result([[0, 1], [0, 1], [3, 3]])
    table = tie_table(D, I, y, np.array([1, 5, 3]), ks=[2])
    assert table.loc[0, "tied"] == 2 and table.loc[0, "true_in_tie"] == 1


def test_tie_table_k_out_of_range_raises():
    D, I, y = search_result([[0, 1]])
    with pytest.raises(ValueError, match="got k=3"):
        tie_table(D, I, y, np.array([0]), ks=[3])


def test_expected_random_accuracy_is_one_over_number_of_tied_labels():
    votes = np.array([[2, 2, 0], [1, 1, 1], [3, 0, 0], [0, 2, 2]])
    y_true = np.array([0, 2, 0, 0])  # right with probability 1/2, 1/3, 1, 0
    assert expected_random_accuracy(votes, y_true) == pytest.approx((1 / 2 + 1 / 3 + 1) / 4)


def test_expected_random_accuracy_matches_random_rule_on_average():
    rng = np.random.default_rng(1)
    D, I, y = search_result(rng.integers(0, 3, (200, 4)))
    y_true = rng.integers(0, 3, 200)
    votes = np.stack([np.bincount(y[row], minlength=3) for row in I])
    runs = [(predict(D, I, y, 4, tie_break="random", random_state=rng) == y_true).mean() for _ in range(400)]
    assert np.mean(runs) == pytest.approx(expected_random_accuracy(votes, y_true), abs=0.005)


def test_gains_and_losses_count_per_true_class():
    y_true = np.array([0, 0, 1, 2, 2])
    pred_a = np.array([0, 1, 1, 2, 0])
    pred_b = np.array([1, 0, 1, 0, 2])
    gains, losses = gains_and_losses(y_true, pred_a, pred_b, n_classes=3)
    assert_array_equal(gains, [1, 0, 1])
    assert_array_equal(losses, [1, 0, 1])


def test_gains_and_losses_sum_over_runs():
    y_true = np.array([0, 1])
    pred_a = np.array([[0, 1], [0, 0]])
    pred_b = np.array([[1, 1], [1, 1]])
    gains, losses = gains_and_losses(y_true, pred_a, pred_b, n_classes=2)
    assert_array_equal(gains, [2, 0])
    assert_array_equal(losses, [0, 1])


def test_gains_and_losses_shape_mismatch_raises():
    with pytest.raises(ValueError, match="share a shape"):
        gains_and_losses(np.array([0, 1]), np.array([0, 1]), np.array([0, 1, 1]))


def test_k_step_changes_never_change_without_a_tie():
    rng = np.random.default_rng(2)
    D, I, y = search_result(rng.integers(0, 3, (300, 8)))
    y_true = rng.integers(0, 3, 300)
    for rule in ("smallest", "nearest", "reduce_k", "distance_sum"):
        table = k_step_changes(D, I, y, y_true, range(1, 7), tie_break=rule)
        assert table["changed"].sum() > 0
        assert (table["without_tie"] == 0).all()


def test_k_step_changes_count_gains_and_losses():
    # k=1 predicts 1; k=2 ties 1-0 and goes to 0 (smallest): row 0 is right at k=2, row 1 at k=1.
    D, I, y = search_result([[1, 0, 2], [1, 0, 2]])
    table = k_step_changes(D, I, y, np.array([0, 1]), [1])
    assert table.loc[0, ["changed", "without_tie", "gained", "lost"]].tolist() == [2, 0, 1, 1]


def test_k_step_changes_rejects_random_rule():
    D, I, y = search_result([[1, 0, 2]])
    with pytest.raises(ValueError, match="deterministic"):
        k_step_changes(D, I, y, np.array([0]), [1], tie_break="random")


# ---------------------------------------------------------------- duplicates


def test_exact_duplicates_within_one_set():
    X = np.array([[1, 2], [3, 4], [1, 2], [0, 0], [1, 2]], dtype=np.uint8)
    assert_array_equal(exact_duplicates(X), [[0, 2], [0, 4], [2, 4]])


def test_exact_duplicates_between_two_sets():
    X = np.array([[1, 2], [3, 4], [1, 2]], dtype=np.uint8)
    Y = np.array([[9, 9], [1, 2], [3, 4]], dtype=np.uint8)
    assert_array_equal(exact_duplicates(X, Y), [[0, 1], [1, 2], [2, 1]])


def test_exact_duplicates_none_gives_empty_pairs():
    X = np.arange(12, dtype=np.uint8).reshape(3, 2, 2)
    assert exact_duplicates(X).shape == (0, 2)


def test_exact_duplicates_dtype_mismatch_raises():
    with pytest.raises(ValueError, match="share dtype"):
        exact_duplicates(np.zeros((2, 3), np.uint8), np.zeros((2, 3), np.float64))


def test_near_duplicates_include_the_threshold():
    D = np.array([[1.0, 2.0, 9.0], [3.0, 4.0, 9.0]])
    I = np.array([[5, 6, 7], [8, 9, 7]])
    pairs, dist = near_duplicates(D, I, threshold=3.0)
    assert_array_equal(pairs, [[0, 5], [0, 6], [1, 8]])
    assert_array_equal(dist, [1.0, 2.0, 3.0])


def test_near_duplicates_symmetric_reports_each_pair_once():
    # Leave-one-out lists of three rows: 0 and 1 are 1 apart, 2 is far from both.
    D = np.array([[1.0, 5.0], [1.0, 6.0], [5.0, 6.0]])
    I = np.array([[1, 2], [0, 2], [0, 1]])
    pairs, dist = near_duplicates(D, I, threshold=2.0, symmetric=True)
    assert_array_equal(pairs, [[0, 1]])
    assert_array_equal(dist, [1.0])


def test_near_duplicates_search_too_short_raises():
    D = np.array([[1.0, 2.0]])
    with pytest.raises(ValueError, match="search with a larger k"):
        near_duplicates(D, np.array([[0, 1]]), threshold=2.0)


# ---------------------------------------------------------------- distance ties at the k-th place


def test_boundary_ties_flag_equal_kth_and_next_distance_and_mixed_labels():
    D, I, y = search_result(
        [[0, 1, 1, 2], [0, 1, 2, 2], [0, 1, 2, 2]],
        [[1, 2, 2, 9], [1, 2, 2, 9], [1, 2, 3, 9]],
    )
    tied, mixed = boundary_ties(D, I, y, k=2)
    assert_array_equal(tied, [True, True, False])
    assert_array_equal(mixed, [False, True, False])  # row 0: both equidistant rows carry label 1


def test_boundary_ties_group_reaching_last_column_raises():
    D, I, y = search_result([[0, 1, 2]], [[1, 2, 2]])
    with pytest.raises(ValueError, match="search with a larger k"):
        boundary_ties(D, I, y, k=2)


def test_order_sensitive_when_the_equidistant_labels_decide_the_vote():
    # k=2: the nearest neighbour is fixed, one of the two equidistant rows at distance 2 joins it.
    # Row 0: labels 1 | 1, 3: the vote goes to 1 either way (2-0, or 1-1 tied to the smaller 1).
    # Row 1: labels 1 | 3, 0: the vote ties 1-3 (-> 1) or 1-0 (-> 0): the order decides.
    D, I, y = search_result([[1, 1, 3, 7], [1, 3, 0, 7]], [[1, 2, 2, 9], [1, 2, 2, 9]])
    assert_array_equal(boundary_ties(D, I, y, k=2)[1], [True, True])
    assert_array_equal(order_sensitive(D, I, y, k=2), [False, True])


def test_order_sensitive_agrees_with_changes_under_permutation(small_integer_data):
    X_train, y_train, X_query = small_integer_data
    k = 5
    D, I = kneighbors(X_train, X_query, 40, metric="manhattan")
    sensitive = order_sensitive(D, I, y_train, k)
    base = predict(D, I, y_train, k)
    rng = np.random.default_rng(3)
    changed = np.zeros(len(X_query), bool)
    for _ in range(30):
        perm = rng.permutation(len(X_train))
        Dp, Ip = kneighbors(X_train[perm], X_query, 40, metric="manhattan")
        changed |= predict(Dp, Ip, y_train[perm], k) != base
    assert changed.any()
    assert not (changed & ~sensitive).any()  # only sensitive queries ever change


def test_inclusive_vote_counts_include_every_neighbour_tied_with_the_kth():
    D, I, y = search_result([[0, 1, 2, 3], [0, 1, 2, 3]], [[1, 2, 2, 9], [1, 2, 3, 9]])
    votes = inclusive_vote_counts(D, I, y, k=2, n_classes=4)
    assert_array_equal(votes, [[1, 1, 1, 0], [1, 1, 0, 0]])


def test_inclusive_vote_counts_do_not_depend_on_training_order(small_integer_data):
    X_train, y_train, X_query = small_integer_data
    D, I = kneighbors(X_train, X_query, 40, metric="manhattan")
    votes = inclusive_vote_counts(D, I, y_train, 3)
    assert (votes.sum(axis=1) > 3).any()  # some queries have extra equidistant voters
    perm = np.random.default_rng(4).permutation(len(X_train))
    Dp, Ip = kneighbors(X_train[perm], X_query, 40, metric="manhattan")
    assert_array_equal(inclusive_vote_counts(Dp, Ip, y_train[perm], 3), votes)


def test_order_sensitive_under_the_nearest_rule():
    # k=3: two fixed neighbours, one of the equidistant rows at distance 3 joins them.
    # Row 0: labels 2, 5 | 5, 1: 2-5-5 (5 wins) or 2-5-1 (a 2-5-1 tie, to 2: nearer): sensitive for both rules.
    # Row 1: labels 2, 4 | 4, 2: 2-4-4 (4 wins) or 2-4-2 (2 wins): sensitive for both rules.
    # Row 2: labels 6, 7 | 1, 1: 6-7-1 either way, a three-way tie: smallest gives 1, nearest gives 6; no order changes it.
    D, I, y = search_result([[2, 5, 5, 1, 0], [2, 4, 4, 2, 0], [6, 7, 1, 1, 0]], [[1, 2, 3, 3, 9]] * 3)
    for rule in ("smallest", "nearest"):
        assert_array_equal(order_sensitive(D, I, y, k=3, tie_break=rule), [True, True, False])
    # k=2, one fixed neighbour of label 6 and two equidistant rows 1 and 3 behind it: 6-1 or 6-3 tie.
    # Smallest: 1 or 3 (sensitive). Nearest: the fixed 6 comes first either way (not sensitive).
    D, I, y = search_result([[6, 1, 3, 9]], [[1, 2, 2, 5]])
    assert_array_equal(order_sensitive(D, I, y, k=2), [True])
    assert_array_equal(order_sensitive(D, I, y, k=2, tie_break="nearest"), [False])
    # k=2, both places from an equidistant group of labels 1, 3, 3: a 1-3 tie or 3-3. Smallest: 1 or 3;
    # nearest: 1 or 3 from the tie (whichever the order puts first), 3 from 3-3.
    D, I, y = search_result([[1, 3, 3, 9]], [[2, 2, 2, 5]])
    for rule in ("smallest", "nearest"):
        assert_array_equal(order_sensitive(D, I, y, k=2, tie_break=rule), [True])
    # k=2, no tie across the k-th place, but the two nearest (labels 4 and 2, a 1-1 vote tie) are equally far:
    # smallest always gives 2; nearest gives whichever of them the order puts first.
    D, I, y = search_result([[4, 2, 0]], [[1, 1, 5]])
    assert_array_equal(order_sensitive(D, I, y, k=2), [False])
    assert_array_equal(order_sensitive(D, I, y, k=2, tie_break="nearest"), [True])
    with pytest.raises(ValueError, match="tie_break"):
        order_sensitive(D, I, y, k=2, tie_break="random")


def test_order_sensitive_nearest_agrees_with_changes_under_permutation(small_integer_data):
    X_train, y_train, X_query = small_integer_data
    D, I = kneighbors(X_train, X_query, 40, metric="manhattan")
    any_changed = False
    for k in (2, 4, 5):
        sensitive = order_sensitive(D, I, y_train, k, tie_break="nearest")
        base = predict(D, I, y_train, k, tie_break="nearest")
        rng = np.random.default_rng(k)
        changed = np.zeros(len(X_query), bool)
        for _ in range(30):
            perm = rng.permutation(len(X_train))
            Dp, Ip = kneighbors(X_train[perm], X_query, 40, metric="manhattan")
            changed |= predict(Dp, Ip, y_train[perm], k, tie_break="nearest") != base
        assert not (changed & ~sensitive).any()  # only sensitive queries ever change
        any_changed |= changed.any()
    assert any_changed
