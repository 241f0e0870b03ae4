"""Tests for mnist_knn.engine.vote: weights, tie rules, many-k prediction, scikit-learn equivalence."""

import numpy as np
from numpy.testing import assert_array_equal
import pytest
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neighbors._base import _get_weights

from mnist_knn.engine.vote import (
    TIE_RULES,
    is_tied,
    neighbor_labels,
    predict,
    predict_many,
    predict_proba,
    tied_labels,
    vote_counts,
    vote_margin,
)


def one_query(labels, distances):
    """A search result for one query whose neighbours are training points 0..k-1.

    ``y_train`` is ``labels``, so neighbour j carries ``labels[j]``.
    """
    labels = np.asarray(labels)
    distances = np.asarray(distances, dtype=float)[None, :]
    indices = np.arange(len(labels))[None, :]
    return distances, indices, labels


# Four labels tied 2-2-2-2, where the four deterministic rules all differ (k = 8):
#   position  0  1  2  3  4   5   6   7
#   label     3  1  2  2  1   0   0   3
#   distance  1  1  5  5  6  50  50 100
# smallest     -> 0
# nearest      -> 3 (position 0)
# reduce_k     -> k=7 drops a 3: 1,2,0 tie at 2; k=6, k=5 drop the 0s: 1,2 tie; k=4 drops a 1 -> 2
# distance_sum -> 3: 1+100=101, 1: 1+6=7, 2: 5+5=10, 0: 50+50=100 -> 1
FOUR_WAY = one_query([3, 1, 2, 2, 1, 0, 0, 3], [1, 1, 5, 5, 6, 50, 50, 100])
FOUR_WAY_EXPECTED = {"smallest": 0, "nearest": 3, "reduce_k": 2, "distance_sum": 1}


@pytest.fixture
def tied_search():
    """A small search result on 3 classes with many vote ties and some equal distances."""
    rng = np.random.default_rng(0)
    n_query, k_max, n_train = 60, 12, 40
    distances = np.sort(rng.integers(1, 6, (n_query, k_max)).astype(float), axis=1)
    indices = rng.integers(0, n_train, (n_query, k_max))
    y_train = rng.integers(0, 3, n_train)
    return distances, indices, y_train


# ---------------------------------------------------------------- labels and votes


def test_neighbor_labels_looks_up_training_labels():
    y_train = np.array([7, 8, 9])
    assert_array_equal(neighbor_labels(np.array([[2, 0], [1, 1]]), y_train), [[9, 7], [8, 8]])


def test_vote_counts_uniform_counts_first_k_neighbours():
    D, I, y = one_query([2, 0, 2, 1], [1, 2, 3, 4])
    assert_array_equal(vote_counts(D, I, y, 3), [[1.0, 0.0, 2.0]])
    assert_array_equal(vote_counts(D, I, y, 4, n_classes=5), [[1.0, 1.0, 2.0, 0.0, 0.0]])


def test_vote_counts_distance_weights_are_inverse_distances():
    D, I, y = one_query([1, 0, 1], [1, 2, 4])
    assert_array_equal(vote_counts(D, I, y, 3, weights="distance"), [[0.5, 1.25]])


def test_distance_weights_with_zero_distance_count_only_exact_matches():
    # The zero-distance neighbour gets weight 1, the others 0 (uniform would say 0).
    D, I, y = one_query([2, 0, 0], [0, 1, 1])
    assert_array_equal(vote_counts(D, I, y, 3, weights="distance"), [[0.0, 0.0, 1.0]])
    assert_array_equal(predict(D, I, y, 3, weights="distance"), [2])
    assert_array_equal(predict(D, I, y, 3), [0])


def test_distance_weights_match_sklearn_get_weights_row_by_row():
    D = np.array([[0.0, 0.0, 2.0], [1.0, 2.0, 4.0], [0.0, 3.0, 3.0]])
    I = np.array([[0, 1, 2], [0, 1, 2], [0, 1, 2]])
    y = np.array([0, 1, 2])
    expected = _get_weights(D.copy(), "distance")  # rows are one-hot of each label here
    assert_array_equal(vote_counts(D, I, y, 3, weights="distance"), expected)


def test_callable_weights_receive_distances_and_decide_vote():
    D, I, y = one_query([0, 1, 1], [1, 2, 2])
    inverse_square = lambda d: 1.0 / d**2  # noqa: E731
    assert_array_equal(vote_counts(D, I, y, 3, weights=inverse_square), [[1.0, 0.5]])
    assert_array_equal(predict(D, I, y, 3, weights=inverse_square), [0])
    assert_array_equal(predict(D, I, y, 3), [1])  # uniform: two 1s beat one 0


def test_predict_proba_normalises_votes():
    D, I, y = one_query([1, 0, 1, 1], [1, 2, 4, 4])
    assert_array_equal(predict_proba(D, I, y, 4), [[0.25, 0.75]])
    assert_array_equal(predict_proba(D, I, y, 4, weights="distance"), [[0.5 / 2.0, 1.5 / 2.0]])


def test_vote_margin_is_top_minus_second():
    votes = np.array([[3.0, 1.0, 0.0], [2.0, 2.0, 0.0], [0.0, 0.0, 5.0]])
    assert_array_equal(vote_margin(votes), [2.0, 0.0, 5.0])


def test_is_tied_and_tied_labels_mark_shared_maximum():
    votes = np.array([[3, 1, 0], [2, 2, 0], [1, 1, 1]])
    assert_array_equal(is_tied(votes), [False, True, True])
    assert_array_equal(
        tied_labels(votes), [[True, False, False], [True, True, False], [True, True, True]]
    )


# ---------------------------------------------------------------- tie rules


@pytest.mark.parametrize("tie_break", TIE_RULES)
def test_all_rules_agree_without_a_tie(tie_break):
    D, I, y = one_query([2, 1, 2, 0, 2], [1, 2, 3, 4, 5])
    assert_array_equal(predict(D, I, y, 5, tie_break=tie_break, random_state=0), [2])


@pytest.mark.parametrize("tie_break", sorted(FOUR_WAY_EXPECTED))
def test_deterministic_rules_differ_on_four_way_tie(tie_break):
    D, I, y = FOUR_WAY
    assert vote_counts(D, I, y, 8).tolist() == [[2.0, 2.0, 2.0, 2.0]]
    assert_array_equal(predict(D, I, y, 8, tie_break=tie_break), [FOUR_WAY_EXPECTED[tie_break]])


def test_vote_tie_goes_to_smallest_label_even_if_nearest_has_other_label():
    # labels 3,1,1,3 at distances 1,2,3,4: 1 and 3 have two votes each.
    D, I, y = one_query([3, 1, 1, 3], [1, 2, 3, 4])
    assert_array_equal(predict(D, I, y, 4), [1])


def test_nearest_rule_takes_label_of_nearest_tied_neighbour():
    # Same case: smallest, reduce_k and distance_sum all say 1; the nearest neighbour says 3.
    D, I, y = one_query([3, 1, 1, 3], [1, 2, 3, 4])
    assert_array_equal(predict(D, I, y, 4, tie_break="nearest"), [3])
    assert_array_equal(predict(D, I, y, 4, tie_break="reduce_k"), [1])


def test_nearest_rule_skips_neighbours_with_untied_labels():
    # Votes 0:2, 1:2, 2:1; the nearest neighbour (label 2) is not tied, the next carries 1.
    D, I, y = one_query([2, 1, 0, 0, 1], [1, 2, 3, 4, 5])
    assert_array_equal(predict(D, I, y, 5, tie_break="nearest"), [1])
    assert_array_equal(predict(D, I, y, 5), [0])


def test_reduce_k_drops_farthest_neighbour_until_unique():
    # labels 1,3,3,1 at 1,2,3,3: k=3 leaves 1,3,3 -> 3. Others say 1
    # (distance_sum: 1 -> 1+3=4, 3 -> 2+3=5).
    D, I, y = one_query([1, 3, 3, 1], [1, 2, 3, 3])
    assert_array_equal(predict(D, I, y, 4, tie_break="reduce_k"), [3])
    for rule in ("smallest", "nearest", "distance_sum"):
        assert_array_equal(predict(D, I, y, 4, tie_break=rule), [1])


def test_reduce_k_winner_is_an_originally_tied_label(tied_search):
    D, I, y = tied_search
    for k in range(2, D.shape[1] + 1):
        tied = tied_labels(vote_counts(D, I, y, k))
        pred = predict(D, I, y, k, tie_break="reduce_k")
        assert tied[np.arange(len(pred)), pred].all()


def test_distance_sum_prefers_closer_tied_label():
    # labels 1,3,3,1 at 1,2,2,5: 1 -> 1+5=6, 3 -> 2+2=4.
    D, I, y = one_query([1, 3, 3, 1], [1, 2, 2, 5])
    assert_array_equal(predict(D, I, y, 4, tie_break="distance_sum"), [3])
    assert_array_equal(predict(D, I, y, 4, tie_break="nearest"), [1])


def test_distance_sum_equal_sums_go_to_smallest_label():
    # labels 3,1,1,3 at 1,2,3,4: 3 -> 1+4=5, 1 -> 2+3=5.
    D, I, y = one_query([3, 1, 1, 3], [1, 2, 3, 4])
    assert_array_equal(predict(D, I, y, 4, tie_break="distance_sum"), [1])


def test_distance_sum_ignores_untied_labels():
    # Votes 0:2, 2:2, 1:1; label 1 is nearest of all but not tied. 0 -> 2+3=5, 2 -> 4+5=9.
    D, I, y = one_query([1, 0, 0, 2, 2], [1, 2, 3, 4, 5])
    assert_array_equal(predict(D, I, y, 5, tie_break="distance_sum"), [0])


def test_rules_apply_to_exact_ties_of_weighted_vote():
    # labels 1,0,0 at 1,2,2: distance weights 1 vs 0.5+0.5 tie exactly.
    D, I, y = one_query([1, 0, 0], [1, 2, 2])
    assert is_tied(vote_counts(D, I, y, 3, weights="distance")).all()
    expected = {"smallest": 0, "nearest": 1, "reduce_k": 1, "distance_sum": 1}
    for rule, label in expected.items():
        assert_array_equal(predict(D, I, y, 3, weights="distance", tie_break=rule), [label])


def test_random_rule_is_reproducible_from_seed():
    D, I, y = FOUR_WAY
    D, I = np.repeat(D, 50, axis=0), np.repeat(I, 50, axis=0)
    first = predict(D, I, y, 8, tie_break="random", random_state=7)
    assert_array_equal(predict(D, I, y, 8, tie_break="random", random_state=7), first)
    assert_array_equal(
        predict(D, I, y, 8, tie_break="random", random_state=np.random.default_rng(7)), first
    )


def test_random_rule_covers_every_tied_label_and_only_those():
    # Votes 0:2, 1:2, 2:1, 3:1 -> only 0 and 1 may be drawn; then the four-way tie.
    D, I, y = one_query([2, 0, 1, 0, 1, 3], [1, 2, 3, 4, 5, 6])
    drawn = {int(predict(D, I, y, 6, tie_break="random", random_state=s)[0]) for s in range(100)}
    assert drawn == {0, 1}
    D, I, y = FOUR_WAY
    drawn = {int(predict(D, I, y, 8, tie_break="random", random_state=s)[0]) for s in range(100)}
    assert drawn == {0, 1, 2, 3}


def test_random_rule_is_roughly_uniform():
    D, I, y = FOUR_WAY
    D, I = np.repeat(D, 4000, axis=0), np.repeat(I, 4000, axis=0)
    counts = np.bincount(predict(D, I, y, 8, tie_break="random", random_state=0), minlength=4)
    assert (np.abs(counts - 1000) < 120).all(), counts  # about 4 standard deviations


# ---------------------------------------------------------------- many k at once


@pytest.mark.parametrize("weights", ["uniform", "distance", lambda d: np.exp(-d)])
@pytest.mark.parametrize("tie_break", TIE_RULES)
def test_predict_many_equals_predict_per_k(tied_search, weights, tie_break):
    D, I, y = tied_search
    ks = [5, 1, 12, 2, 8, 3]
    many = predict_many(
        D, I, y, ks, weights=weights, tie_break=tie_break, random_state=np.random.default_rng(3)
    )
    rng = np.random.default_rng(3)
    for row, k in zip(many, ks):
        one = predict(D, I, y, k, weights=weights, tie_break=tie_break, random_state=rng)
        assert_array_equal(row, one)


def test_predict_equals_argmax_of_vote_counts(tied_search):
    D, I, y = tied_search
    for weights in ("uniform", "distance"):
        for k in range(1, D.shape[1] + 1):
            votes = vote_counts(D, I, y, k, weights=weights)
            assert_array_equal(predict(D, I, y, k, weights=weights), votes.argmax(axis=1))


# ---------------------------------------------------------------- equivalence to scikit-learn


@pytest.fixture(scope="module")
def continuous_data():
    rng = np.random.default_rng(0)
    X_train = rng.normal(size=(150, 5))
    y_train = rng.integers(0, 3, 150)
    X_query = rng.normal(size=(200, 5))
    return X_train, y_train, X_query


@pytest.mark.parametrize("weights", ["uniform", "distance"])
@pytest.mark.parametrize("k", range(1, 11))
def test_predict_matches_sklearn(continuous_data, weights, k):
    X_train, y_train, X_query = continuous_data
    clf = KNeighborsClassifier(n_neighbors=k, weights=weights, algorithm="brute").fit(X_train, y_train)
    D, I = clf.kneighbors(X_query)
    assert_array_equal(predict(D, I, y_train, k, weights=weights), clf.predict(X_query))
    assert_array_equal(predict_proba(D, I, y_train, k, weights=weights), clf.predict_proba(X_query))


def test_sklearn_comparison_exercises_ties_against_nearest(continuous_data):
    # For the comparison above to test the smallest-label rule, even k must give
    # ties that the nearest neighbour would decide differently.
    X_train, y_train, X_query = continuous_data
    D, I = KNeighborsClassifier(n_neighbors=4, algorithm="brute").fit(X_train, y_train).kneighbors(X_query)
    assert is_tied(vote_counts(D, I, y_train, 4)).sum() >= 20
    assert (predict(D, I, y_train, 4) != predict(D, I, y_train, 4, tie_break="nearest")).any()


def test_predict_matches_sklearn_with_callable_weights(continuous_data):
    X_train, y_train, X_query = continuous_data
    weights = lambda d: np.exp(-(d**2))  # noqa: E731
    clf = KNeighborsClassifier(n_neighbors=7, weights=weights, algorithm="brute").fit(X_train, y_train)
    D, I = clf.kneighbors(X_query)
    assert_array_equal(predict(D, I, y_train, 7, weights=weights), clf.predict(X_query))
    assert_array_equal(predict_proba(D, I, y_train, 7, weights=weights), clf.predict_proba(X_query))


@pytest.mark.parametrize("weights", ["uniform", "distance"])
def test_predict_matches_sklearn_on_integer_data_with_exact_ties(weights):
    # Integer points: many equal distances and exactly tied weighted votes; k >= 8
    # checks the summation order (numpy's pairwise sum) of sklearn's weighted_mode.
    rng = np.random.default_rng(0)
    X_train = rng.integers(0, 3, (300, 4)).astype(float)
    y_train = rng.integers(0, 3, 300)
    X_query = rng.integers(0, 3, (200, 4)).astype(float)
    for k in (2, 4, 9, 16, 25):
        clf = KNeighborsClassifier(n_neighbors=k, weights=weights, algorithm="brute").fit(X_train, y_train)
        D, I = clf.kneighbors(X_query)
        assert_array_equal(predict(D, I, y_train, k, weights=weights), clf.predict(X_query))
        assert_array_equal(predict_many(D, I, y_train, [k], weights=weights)[0], clf.predict(X_query))


# ---------------------------------------------------------------- errors


def test_k_out_of_range_raises():
    D, I, y = one_query([0, 1, 0, 1], [1, 2, 3, 4])
    with pytest.raises(ValueError, match=r"k must be in \[1, k_max=4\]; got k=0\."):
        predict(D, I, y, 0)
    with pytest.raises(ValueError, match="got k=5"):
        vote_counts(D, I, y, 5)


def test_non_integer_k_raises():
    D, I, y = one_query([0, 1], [1, 2])
    with pytest.raises(ValueError, match="k must be an integer"):
        predict(D, I, y, 1.5)


def test_predict_many_bad_k_raises():
    D, I, y = one_query([0, 1], [1, 2])
    with pytest.raises(ValueError, match=r"k must be in \[1, k_max=2\]; got k=3"):
        predict_many(D, I, y, [1, 3])
    with pytest.raises(ValueError, match="ks must be a non-empty"):
        predict_many(D, I, y, [])


def test_mismatched_shapes_raise():
    D, I, y = one_query([0, 1, 0], [1, 2, 3])
    with pytest.raises(ValueError, match=r"indices must have the shape of distances \(1, 3\); got shape \(1, 2\)"):
        predict(D, I[:, :2], y, 1)


def test_one_dimensional_distances_raise():
    with pytest.raises(ValueError, match=r"distances must be 2-D .* got shape \(3,\)"):
        vote_counts(np.array([1.0, 2, 3]), np.array([0, 1, 2]), np.array([0, 1, 0]), 1)


def test_unknown_weights_raise():
    D, I, y = one_query([0, 1], [1, 2])
    with pytest.raises(ValueError, match=r"weights must be one of \('uniform', 'distance'\) or a callable; got weights='gaussian'"):
        predict(D, I, y, 1, weights="gaussian")


def test_unknown_tie_break_raises():
    D, I, y = one_query([0, 1], [1, 2])
    with pytest.raises(ValueError, match=r"tie_break must be one of \('smallest', 'nearest', 'random', 'reduce_k', 'distance_sum'\); got tie_break='vote'"):
        predict(D, I, y, 1, tie_break="vote")


def test_labels_out_of_range_raise():
    D, I, y = one_query([0, 1, 3], [1, 2, 3])
    with pytest.raises(ValueError, match=r"y_train labels must be in \[0, n_classes=3\); got labels in \[0, 3\]"):
        predict(D, I, y, 1, n_classes=3)
    with pytest.raises(ValueError, match=r"got labels in \[-1, 1\]"):
        predict(D, I, np.array([0, 1, -1]), 1)


def test_indices_out_of_range_raise():
    D, I, y = one_query([0, 1, 0], [1, 2, 3])
    with pytest.raises(ValueError, match=r"indices must be in \[0, n_train=2\)"):
        predict(D, I, y[:2], 1)


def test_nan_distances_raise():
    D, I, y = one_query([0, 1, 0], [1, np.nan, 3])
    with pytest.raises(ValueError, match="distances must not contain NaN; got NaN in 1 row"):
        predict(D, I, y, 1)


def test_negative_distances_raise():
    D, I, y = one_query([0, 1, 0], [-1, 2, 3])
    with pytest.raises(ValueError, match="distances must be non-negative"):
        predict(D, I, y, 1)


def test_unsorted_distances_raise():
    D, I, y = one_query([0, 1, 0], [1, 3, 2])
    with pytest.raises(ValueError, match="sorted nearest first along each row; row 0"):
        predict(D, I, y, 1)


def test_callable_weights_of_wrong_shape_raise():
    D, I, y = one_query([0, 1, 0], [1, 2, 3])
    with pytest.raises(ValueError, match=r"distances' shape \(1, 2\); got shape \(2,\)"):
        predict(D, I, y, 2, weights=lambda d: d[0])


def test_callable_weights_all_zero_raise():
    D, I, y = one_query([0, 1, 0], [1, 2, 3])
    with pytest.raises(ValueError, match="zero weight"):
        predict(D, I, y, 2, weights=np.zeros_like)


def test_votes_of_wrong_dimension_raise():
    with pytest.raises(ValueError, match=r"votes must be 2-D .* got shape \(3,\)"):
        vote_margin(np.array([1.0, 2.0, 3.0]))
