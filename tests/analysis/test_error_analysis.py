"""Tests for mnist_knn.analysis.error_analysis: measurements, causes, rejection curves, concentration, pairs."""

import numpy as np
from numpy.testing import assert_allclose, assert_array_equal
import pytest

from mnist_knn.analysis.error_analysis import (
    assign_causes,
    bad_neighbour_counts,
    binned_error,
    binomial_top_share,
    class_percentile,
    concentration_curve,
    confused_pairs,
    digit_measurements,
    distance_ratio,
    nearest_distance_per_class,
    neighbour_distance_ratio,
    rejection_curve,
    top_share,
    unanimous_against,
)
from mnist_knn.analysis.uncertainty import writer_bootstrap
from mnist_knn.engine.search import kneighbors


def bar_image(top, bottom, left, right, side=10, value=255):
    image = np.zeros((side, side), np.uint8)
    image[top : bottom + 1, left : right + 1] = value
    return image


# ---------------------------------------------------------------- digit_measurements


def test_measurements_of_a_bar_give_its_box_and_ink():
    m = digit_measurements(bar_image(2, 7, 4, 5)[None]).iloc[0]
    assert (m["box_height"], m["box_width"]) == (6, 2)
    assert (m["box_row"], m["box_col"]) == (4.5, 4.5)
    assert m["box_offset"] == 0.0  # box centre = image centre (4.5, 4.5) of a 10 x 10 image
    assert m["ink"] == 12.0  # 12 pixels at 255


def test_measurements_box_offset_is_distance_of_box_centre_from_image_centre():
    m = digit_measurements(bar_image(0, 2, 0, 3)[None]).iloc[0]  # centre (1, 1.5)
    assert_allclose(m["box_offset"], np.hypot(4.5 - 1, 4.5 - 1.5))


def test_measurements_skew_is_negative_for_a_digit_leaning_right():
    image = np.zeros((10, 10), np.uint8)
    for r in range(10):
        image[r, 9 - r] = 255  # like "/": higher rows further right
    assert digit_measurements(image[None])["skew"].iloc[0] < 0


def test_measurements_of_a_blank_image_are_zero_size_at_the_centre():
    m = digit_measurements(np.zeros((1, 10, 10), np.uint8)).iloc[0]
    assert (m["ink"], m["box_height"], m["box_width"], m["box_offset"]) == (0, 0, 0, 0)


def test_measurements_reject_flat_images():
    with pytest.raises(ValueError, match="shape \\(n, side, side\\)"):
        digit_measurements(np.zeros((2, 100)))


# ---------------------------------------------------------------- class_percentile


def test_class_percentile_uses_only_the_reference_of_the_same_class():
    ref_values = np.array([1.0, 2.0, 3.0, 4.0, 100.0, 200.0])
    ref_labels = np.array([0, 0, 0, 0, 1, 1])
    out = class_percentile(np.array([2.5, 2.5]), np.array([0, 1]), ref_values, ref_labels, n_classes=2)
    assert_allclose(out, [0.5, 0.0])


def test_class_percentile_counts_equal_values_half():
    out = class_percentile(np.array([2.0]), np.array([0]), np.array([1.0, 2.0, 3.0, 4.0]), np.zeros(4, int))
    assert_allclose(out, [(1 + 0.5) / 4])


def test_class_percentile_without_reference_for_a_class_raises():
    with pytest.raises(ValueError, match="class 1 has no reference values"):
        class_percentile(np.array([1.0]), np.array([1]), np.array([1.0]), np.array([0]), n_classes=2)


# ---------------------------------------------------------------- nearest distance per class, ratio


def test_nearest_distance_per_class_finds_a_class_beyond_any_k():
    X_train = np.array([[0.0], [1.0], [2.0], [3.0], [50.0]])
    y_train = np.array([0, 0, 0, 0, 1])
    D = nearest_distance_per_class(X_train, y_train, np.array([[0.5], [49.0]]), n_classes=2)
    assert_allclose(D, [[0.5, 49.5], [46.0, 1.0]])


def test_nearest_distance_per_class_matches_a_full_search_for_the_nearest_class():
    rng = np.random.default_rng(0)
    X_train, y_train, X_query = rng.random((60, 5)), rng.integers(0, 3, 60), rng.random((7, 5))
    D = nearest_distance_per_class(X_train, y_train, X_query, n_classes=3)
    d, i = kneighbors(X_train, X_query, 1)
    assert_allclose(D.min(axis=1), d[:, 0])
    assert_array_equal(D.argmin(axis=1), y_train[i[:, 0]])


def test_nearest_distance_per_class_with_a_missing_class_raises():
    with pytest.raises(ValueError, match="no image of class 2"):
        nearest_distance_per_class(np.zeros((2, 3)), np.array([0, 1]), np.zeros((1, 3)), n_classes=3)


def test_distance_ratio_is_own_class_over_nearest_other_class():
    D = np.array([[1.0, 4.0, 2.0], [3.0, 6.0, 1.5]])
    assert_allclose(distance_ratio(D, np.array([0, 1])), [0.5, 4.0])


def test_distance_ratio_of_zero_distances():
    D = np.array([[0.0, 0.0], [1.0, 0.0]])
    assert_array_equal(distance_ratio(D, np.array([0, 0])), [1.0, np.inf])


# ---------------------------------------------------------------- label noise, bad neighbours, causes


def test_neighbour_distance_ratio_equals_distance_ratio_when_both_classes_are_listed():
    rng = np.random.default_rng(0)
    X_train, y_train = rng.random((60, 5)), np.arange(60) % 3
    X_query = rng.random((8, 5))
    d, i = kneighbors(X_train, X_query, 60)  # every training digit listed: both classes always present
    labels = np.arange(8) % 3
    ratio, exact = neighbour_distance_ratio(d, i, y_train, labels)
    D = nearest_distance_per_class(X_train, y_train, X_query, n_classes=3)
    assert exact.all()
    assert_allclose(ratio, distance_ratio(D, labels))


def test_neighbour_distance_ratio_bounds_a_class_missing_from_the_list():
    d = np.array([[1.0, 2.0, 4.0], [1.0, 2.0, 4.0]])
    i = np.array([[0, 1, 2], [0, 1, 2]])
    y_train = np.array([7, 7, 7])
    ratio, exact = neighbour_distance_ratio(d, i, y_train, np.array([7, 3]))
    # row 0: no other class listed, the denominator is the last distance; row 1: no own class listed
    assert_allclose(ratio, [1 / 4, 4 / 1])
    assert_array_equal(exact, [False, False])


def test_neighbour_distance_ratio_with_mismatched_shapes_raises():
    with pytest.raises(ValueError, match="one 2-D shape"):
        neighbour_distance_ratio(np.zeros((2, 3)), np.zeros((2, 2), int), np.zeros(3, int), np.zeros(2, int))


def test_unanimous_against_requires_all_k_neighbours_to_agree_on_another_label():
    y_train = np.array([3, 3, 3, 5, 7])
    indices = np.array([[0, 1, 2], [0, 1, 3], [0, 1, 2], [3, 0, 1]])
    y_true = np.array([7, 7, 3, 7])
    assert_array_equal(unanimous_against(indices, y_train, y_true, 3), [True, False, False, False])
    assert_array_equal(unanimous_against(indices, y_train, y_true, 2), [True, True, False, False])


def test_unanimous_against_with_k_too_large_raises():
    with pytest.raises(ValueError, match="got k=4"):
        unanimous_against(np.zeros((1, 3), int), np.zeros(1, int), np.zeros(1, int), 4)


def test_bad_neighbour_counts_blame_only_neighbours_with_the_wrong_predicted_label():
    y_train = np.array([9, 9, 4, 4])
    indices = np.array([[0, 2, 1], [1, 0, 3], [0, 1, 2]])
    y_true = np.array([4, 4, 9])
    y_pred = np.array([9, 9, 9])  # the third query is right: nobody is at fault there
    assert_array_equal(bad_neighbour_counts(indices, y_train, y_true, y_pred, 3), [2, 2, 0, 0])


def test_bad_neighbour_counts_look_only_at_the_first_k():
    y_train = np.array([9, 9])
    counts = bad_neighbour_counts(np.array([[0, 1]]), y_train, np.array([4]), np.array([9]), 1)
    assert_array_equal(counts, [1, 0])


def test_assign_causes_takes_the_first_flag_in_order():
    flags = {"noise": np.array([True, False, False]), "slant": np.array([True, True, False])}
    assert_array_equal(assign_causes(flags, default="other"), ["noise", "slant", "other"])


def test_assign_causes_without_flags_raises():
    with pytest.raises(ValueError, match="flags is empty"):
        assign_causes({})


# ---------------------------------------------------------------- binned error


def test_binned_error_counts_digits_and_errors_per_bin():
    values = np.array([0.0, 0.1, 0.5, 0.9, 1.0])
    errors = np.array([True, False, False, True, True])
    out = binned_error(values, errors, [0.0, 0.5, 1.0])
    assert_array_equal(out["digits"], [2, 3])
    assert_array_equal(out["errors"], [1, 2])
    assert_allclose(out["error"], [0.5, 2 / 3])
    assert (out["ci_low"] < out["error"]).all() and (out["error"] < out["ci_high"]).all()


def test_binned_error_with_writers_takes_each_bins_interval_from_a_writer_bootstrap():
    rng = np.random.default_rng(1)
    values, errors = rng.random(200), rng.random(200) < 0.3
    writers = rng.integers(0, 20, 200)
    out = binned_error(values, errors, [0.0, 0.5, 1.0], writers=writers)
    lower = values < 0.5
    est = writer_bootstrap(errors[lower], writers[lower])
    assert (out.loc[0, "ci_low"], out.loc[0, "ci_high"]) == (est.low, est.high)
    assert_array_equal(out["errors"], [errors[lower].sum(), errors[~lower].sum()])


def test_binned_error_with_writers_of_the_wrong_length_raises():
    with pytest.raises(ValueError, match="writers must have the shape"):
        binned_error(np.array([0.1, 0.2]), np.array([False, True]), [0.0, 1.0], writers=[1])


def test_binned_error_of_an_empty_bin_is_nan():
    out = binned_error(np.array([0.1]), np.array([False]), [0.0, 0.5, 1.0])
    assert out["digits"].tolist() == [1, 0] and np.isnan(out["error"].iloc[1])


def test_binned_error_with_decreasing_edges_raises():
    with pytest.raises(ValueError, match="edges must be increasing"):
        binned_error(np.array([0.1]), np.array([False]), [1.0, 0.0])


# ---------------------------------------------------------------- rejection curve


def test_rejection_curve_removes_the_least_confident_first():
    correct = np.array([False, True, True, True])
    confidence = np.array([0.1, 0.9, 0.8, 0.7])
    assert_allclose(rejection_curve(correct, confidence, [0.0, 0.25]), [0.25, 0.0])


def test_rejection_curve_shares_a_tied_group_in_proportion():
    # Two digits tie at the lowest confidence, one of them wrong: rejecting one of the four
    # removes half an error on average, leaving 0.5 expected errors among 3 kept digits.
    correct = np.array([False, True, True, True])
    confidence = np.array([0.0, 0.0, 1.0, 1.0])
    assert_allclose(rejection_curve(correct, confidence, [0.25, 0.5]), [0.5 / 3, 0.0])


def test_rejection_curve_with_a_fraction_of_one_raises():
    with pytest.raises(ValueError, match="fractions must be in"):
        rejection_curve(np.array([True]), np.array([1.0]), [1.0])


# ---------------------------------------------------------------- concentration


def test_top_share_counts_the_worst_groups():
    errors = np.array([0, 5, 1, 3, 1, 0, 0, 0, 0, 0])
    assert top_share(errors, 0.1) == 5 / 10
    assert top_share(errors, 0.2) == 8 / 10


def test_top_share_rounds_the_number_of_groups_up():
    assert top_share(np.array([1, 2, 3]), 0.1) == 3 / 6  # ceil(0.3) = 1 group


def test_top_share_works_row_by_row():
    assert_allclose(top_share(np.array([[1, 0, 0], [1, 1, 1]]), 0.34), [1.0, 2 / 3])


def test_binomial_top_share_is_seeded_and_one_with_a_single_erring_group():
    n_digits = np.array([10, 10, 10])
    a = binomial_top_share(n_digits, [0.5, 0.0, 0.0], 0.3, 5, np.random.default_rng(0))
    b = binomial_top_share(n_digits, [0.5, 0.0, 0.0], 0.3, 5, np.random.default_rng(0))
    assert_array_equal(a, b)
    assert_allclose(a, 1.0)


def test_concentration_curve_runs_from_zero_to_one_worst_first():
    groups, shares = concentration_curve(np.array([1, 3, 0, 1]))
    assert_allclose(groups, [0, 0.25, 0.5, 0.75, 1])
    assert_allclose(shares, [0, 0.6, 0.8, 1.0, 1.0])


# ---------------------------------------------------------------- confused pairs


def test_confused_pairs_lists_both_directions_and_tests_symmetry():
    C = np.zeros((3, 3), int)
    C[0, 1], C[1, 0] = 10, 0  # one-sided
    C[1, 2], C[2, 1] = 3, 3  # symmetric
    out = confused_pairs(C)
    assert out[["a", "b", "a_as_b", "b_as_a", "total"]].values.tolist() == [[0, 1, 10, 0, 10], [1, 2, 3, 3, 6]]
    assert_allclose(out["p_value"], [2 * 0.5**10, 1.0])


def test_confused_pairs_leaves_out_pairs_never_confused():
    assert confused_pairs(np.eye(3, dtype=int) * 5).empty
