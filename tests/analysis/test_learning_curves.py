"""Tests for mnist_knn.analysis.learning_curves: subsampling, learning curves, power-law fits, selection optimism, timing."""

import numpy as np
from numpy.testing import assert_allclose, assert_array_equal
import pytest

from mnist_knn.analysis.learning_curves import (
    PowerLaw,
    bootstrap_power_law,
    fit_power_law,
    learning_curve,
    query_times,
    selection_optimism,
    stratified_counts,
    subsample,
)
from mnist_knn.engine.search import exclude_group, kneighbors
from mnist_knn.engine.vote import predict


def labels(counts):
    """Labels 0, 1, ... repeated ``counts[label]`` times, interleaved by a fixed permutation."""
    y = np.repeat(np.arange(len(counts)), counts)
    return y[np.random.default_rng(0).permutation(len(y))]


def blobs(n_per_class, n_classes=3, n_features=4, seed=0):
    """Integer points around well-separated class centres, labels in training order."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), n_per_class)
    X = 40 * y[:, None] + rng.integers(0, 30, size=(len(y), n_features))
    perm = rng.permutation(len(y))
    return X[perm].astype(np.uint8), y[perm]


# ---------------------------------------------------------------- stratified_counts


def test_stratified_counts_are_proportional_when_exact():
    assert_array_equal(stratified_counts(labels([20, 40, 40]), 10), [2, 4, 4])


def test_stratified_counts_give_leftover_to_largest_remainders():
    # quotas 1.5, 3.0, 5.5 -> floors 1, 3, 5; one row left, equal remainders: the smaller label.
    assert_array_equal(stratified_counts(labels([3, 6, 11]), 10), [2, 3, 5])


def test_stratified_counts_sum_to_size():
    y = labels([7, 13, 29, 51])
    for size in range(1, len(y) + 1):
        counts = stratified_counts(y, size)
        assert counts.sum() == size and (counts <= np.bincount(y)).all()


def test_stratified_counts_reject_size_zero():
    with pytest.raises(ValueError, match="got size=0"):
        stratified_counts(labels([5, 5]), 0)


# ---------------------------------------------------------------- subsample


def test_subsample_first_takes_leading_rows():
    assert_array_equal(subsample(labels([5, 5]), 4, "first"), [0, 1, 2, 3])


def test_subsample_random_is_sorted_and_distinct():
    S = subsample(labels([50, 50]), 30, "random", np.random.default_rng(1))
    assert len(S) == 30 and (np.diff(S) > 0).all()


def test_subsample_random_repeats_with_the_same_seed():
    y = labels([50, 50])
    assert_array_equal(subsample(y, 30, "random", np.random.default_rng(1)), subsample(y, 30, "random", np.random.default_rng(1)))


def test_subsample_stratified_has_exact_label_counts():
    y = labels([20, 30, 50])
    S = subsample(y, 10, "stratified", np.random.default_rng(0))
    assert_array_equal(np.bincount(y[S], minlength=3), [2, 3, 5])


def test_subsample_of_everything_is_every_row():
    y = labels([4, 6])
    assert_array_equal(subsample(y, 10, "stratified", np.random.default_rng(0)), np.arange(10))


def test_subsample_unknown_scheme_raises():
    with pytest.raises(ValueError, match="got scheme='bootstrap'"):
        subsample(labels([5, 5]), 3, "bootstrap", np.random.default_rng(0))


def test_subsample_random_without_rng_raises():
    with pytest.raises(ValueError, match="needs rng"):
        subsample(labels([5, 5]), 3, "random")


# ---------------------------------------------------------------- learning_curve


def test_learning_curve_matches_a_direct_search_and_vote():
    X, y = blobs(30)
    X_test, y_test = blobs(10, seed=1)
    errors, correct = learning_curve(
        X, y, X_test, y_test, [12], 1, scheme="stratified", rng=np.random.default_rng(5), k_max=5, keep_ks=(3,)
    )
    S = subsample(y, 12, "stratified", np.random.default_rng(5))
    d, i = kneighbors(X[S], X_test, 5)
    pred = predict(d, i, y[S], 3)
    row = errors[errors["k"] == 3].iloc[0]
    assert row["n_errors"] == (pred != y_test).sum()
    assert_array_equal(correct[0, 0], pred == y_test)


def test_learning_curve_votes_with_the_tie_rule_it_is_given():
    X, y = blobs(30)
    X_test, y_test = blobs(10, seed=1)
    for rule in ("smallest", "nearest"):
        errors, correct = learning_curve(
            X, y, X_test, y_test, [40], 1, scheme="random", rng=np.random.default_rng(2), k_max=6,
            keep_ks=(2, 4), tie_break=rule,
        )
        S = subsample(y, 40, "random", np.random.default_rng(2))
        d, i = kneighbors(X[S], X_test, 6)
        for j, k in enumerate((2, 4)):
            pred = predict(d, i, y[S], k, tie_break=rule)
            assert errors[errors["k"] == k].iloc[0]["n_errors"] == (pred != y_test).sum()
            assert_array_equal(correct[0, j], pred == y_test)


def test_learning_curve_nearest_rule_makes_2nn_equal_1nn():
    rng = np.random.default_rng(3)
    X, y = rng.integers(0, 50, size=(80, 3)).astype(np.uint8), rng.integers(0, 3, size=80)  # labels ignore X
    X_test, y_test = rng.integers(0, 50, size=(40, 3)).astype(np.uint8), rng.integers(0, 3, size=40)
    runs = {
        rule: learning_curve(X, y, X_test, y_test, [80], 1, scheme="first", k_max=2, keep_ks=(1, 2), tie_break=rule)
        for rule in ("smallest", "nearest")
    }
    _, nearest = runs["nearest"]
    _, smallest = runs["smallest"]
    assert_array_equal(nearest[0, 0], nearest[0, 1])  # a 1-1 tie goes to the nearest neighbour's label
    assert (smallest[0, 1] != nearest[0, 1]).any()  # and some 2-NN votes here are such ties


def test_learning_curve_runs_repeats_and_caps_k_at_size():
    X, y = blobs(10)
    errors, correct = learning_curve(
        X, y, X[:5], y[:5], [3, 20], [4, 2], scheme="random", rng=np.random.default_rng(0), k_max=5
    )
    per_size = errors.groupby("size").agg(runs=("repeat", "nunique"), k_hi=("k", "max"))
    assert per_size.loc[3].tolist() == [4, 3] and per_size.loc[20].tolist() == [2, 5]
    assert correct.shape == (6, 1, 5)


def test_learning_curve_runs_the_full_set_once():
    X, y = blobs(5)
    errors, correct = learning_curve(X, y, X, y, [15], 3, scheme="random", rng=np.random.default_rng(0), k_max=1)
    assert errors["repeat"].tolist() == [0] and errors["error"].tolist() == [0.0] and correct.all()


def test_learning_curve_rejects_mismatched_repeats():
    X, y = blobs(5)
    with pytest.raises(ValueError, match="repeats has 3 entries; sizes has 2"):
        learning_curve(X, y, X, y, [5, 10], [1, 1, 1], scheme="first")


# ---------------------------------------------------------------- power laws


def test_power_law_evaluates_floor_plus_power():
    assert_allclose(PowerLaw(scale=2.0, exponent=0.5, floor=0.1)([4, 100]), [1.1, 0.3])


def test_fit_power_law_recovers_an_exact_power_law():
    n = np.array([100, 1_000, 10_000, 100_000])
    law = fit_power_law(n, 3.0 * n**-0.4)
    assert_allclose([law.scale, law.exponent, law.floor], [3.0, 0.4, 0.0], rtol=1e-10)


def test_fit_power_law_with_floor_recovers_the_floor():
    n = np.geomspace(100, 1e6, 9)
    law = fit_power_law(n, 0.01 + 2.0 * n**-0.5, floor=True)
    assert_allclose([law.scale, law.exponent, law.floor], [2.0, 0.5, 0.01], rtol=1e-5)


def test_fit_power_law_with_floor_needs_three_sizes():
    with pytest.raises(ValueError, match="at least 3 distinct sizes; got 2"):
        fit_power_law([10, 100], [0.5, 0.2], floor=True)


def test_fit_power_law_rejects_zero_error():
    with pytest.raises(ValueError, match="must be positive"):
        fit_power_law([10, 100], [0.5, 0.0])


def test_bootstrap_power_law_centres_on_the_fit_of_the_means():
    rng = np.random.default_rng(0)
    sizes = np.repeat([100, 1_000, 10_000], 3)
    p_wrong = 2.0 * sizes**-0.4
    correct = rng.random((len(sizes), 20_000)) >= p_wrong[:, None]
    means = [(~correct[sizes == s]).mean() for s in np.unique(sizes)]
    direct = fit_power_law(np.unique(sizes), means)
    params, predicted = bootstrap_power_law(correct, sizes, [1e5], n_boot=200, rng=rng)
    assert params.shape == (200, 3) and predicted.shape == (200, 1)
    assert abs(np.median(params[:, 1]) - direct.exponent) < 0.01
    lo, hi = np.percentile(predicted[:, 0], [2.5, 97.5])
    assert lo < direct(1e5) < hi


def test_bootstrap_power_law_rejects_mismatched_runs():
    with pytest.raises(ValueError, match="n_runs=2"):
        bootstrap_power_law(np.ones((3, 5), bool), [10, 100], [1e3], n_boot=1, rng=np.random.default_rng(0))


# ---------------------------------------------------------------- exclude_group


def test_exclude_group_drops_same_group_neighbours_in_order():
    distances = np.array([[0.0, 1.0, 2.0, 3.0]])
    indices = np.array([[4, 2, 0, 1]])
    groups_train = np.array([7, 8, 7, 9, 7])  # rows 4, 2 and 0 share the query's group 7
    d, i = exclude_group(distances, indices, groups_train, np.array([8]), 2)
    assert_array_equal(i, [[4, 2]])
    assert_array_equal(d, [[0.0, 1.0]])
    d, i = exclude_group(distances, indices, groups_train, np.array([7]), 1)
    assert_array_equal(i, [[1]])
    assert_array_equal(d, [[3.0]])


def test_exclude_group_with_too_few_left_raises():
    with pytest.raises(ValueError, match="fewest is 1"):
        exclude_group(np.zeros((1, 3)), np.array([[0, 1, 2]]), np.array([5, 5, 6]), np.array([5]), 2)


# ---------------------------------------------------------------- selection_optimism


def test_selection_optimism_is_zero_for_a_single_candidate():
    rng = np.random.default_rng(0)
    correct = rng.random((1, 1_000)) < 0.9
    # One candidate: A and B are halves of the same digits, so the differences average out.
    assert abs(selection_optimism(correct, 400, rng=rng).mean()) < 0.003


def test_selection_optimism_is_positive_among_equal_candidates():
    rng = np.random.default_rng(0)
    correct = rng.random((50, 1_000)) < 0.9  # 50 equally good candidates: any winner is luck
    assert selection_optimism(correct, 200, rng=rng).mean() > 0.01


# ---------------------------------------------------------------- query_times


def test_query_times_reports_one_positive_time_per_size():
    X, _ = blobs(20)
    times = query_times(X, X[:7], [10, 60], k=1, repeats=2)
    assert times["size"].tolist() == [10, 60] and (times["seconds_per_query"] > 0).all()


def test_power_law_bootstrap_by_groups():
    rng = np.random.default_rng(0)
    sizes = np.repeat([100, 300, 1000], 3)
    correct = rng.random((len(sizes), 60)) < (1 - 0.3 * (sizes[:, None] / 100.0) ** -0.5)
    digitwise = bootstrap_power_law(correct, sizes, [3000], 50, rng=np.random.default_rng(1))
    one_each = bootstrap_power_law(correct, sizes, [3000], 50, rng=np.random.default_rng(1), groups=np.arange(60))
    assert all(np.array_equal(a, b) for a, b in zip(digitwise, one_each))  # one digit per group: the digit bootstrap
    # Whole groups: a group's digits are drawn together, so duplicated digits move as one.
    twins = np.concatenate([correct, correct], axis=1)
    paired = bootstrap_power_law(twins, sizes, [3000], 50, rng=np.random.default_rng(1), groups=np.tile(np.arange(60), 2))
    assert all(np.allclose(a, b) for a, b in zip(digitwise, paired))
    with pytest.raises(ValueError, match="one per test digit"):
        bootstrap_power_law(correct, sizes, [3000], 5, rng=rng, groups=np.arange(59))
