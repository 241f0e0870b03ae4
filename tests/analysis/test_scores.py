"""Tests for mnist_knn.analysis.scores: accuracy, Wilson intervals, McNemar, confusion matrices."""

import math

import numpy as np
from numpy.testing import assert_allclose, assert_array_equal
import pytest
from scipy import stats
import sklearn.metrics

from mnist_knn.analysis.scores import (
    accuracy,
    confusion_matrix,
    error_rate,
    mcnemar,
    paired_difference_ci,
    wilson_interval,
)


def wilson_by_hand(x, n, confidence):
    """statsmodels' proportion_confint(method="wilson"), written out independently."""
    z = stats.norm.ppf(1 - (1 - confidence) / 2)
    p = x / n
    centre = (x + z * z / 2) / (n + z * z)
    half = z * math.sqrt(n) / (n + z * z) * math.sqrt(p * (1 - p) + z * z / (4 * n))
    return centre - half, centre + half


# ---------------------------------------------------------------- accuracy


def test_accuracy_and_error_rate_count_matches():
    y_true = np.array([0, 1, 2, 3])
    y_pred = np.array([0, 1, 0, 0])
    assert accuracy(y_true, y_pred) == 0.5
    assert error_rate(y_true, y_pred) == 0.5
    assert error_rate(y_true, y_true) == 0.0


def test_accuracy_of_mismatched_shapes_raises():
    with pytest.raises(ValueError, match=r"y_pred must have the shape of y_true \(3,\); got shape \(2,\)"):
        accuracy(np.array([0, 1, 2]), np.array([0, 1]))


def test_accuracy_of_empty_arrays_raises():
    with pytest.raises(ValueError, match="must not be empty"):
        error_rate(np.array([], dtype=int), np.array([], dtype=int))


# ---------------------------------------------------------------- Wilson interval


def test_wilson_interval_matches_formula_for_mnist_sized_counts():
    low, high = wilson_interval(9691, 10000)
    assert_allclose((low, high), wilson_by_hand(9691, 10000, 0.95), rtol=1e-12)
    assert 0.96552 < low < 0.96553 and 0.97231 < high < 0.97232  # 96.55% to 97.23%, by hand


def test_wilson_interval_zero_successes_known_value():
    # 0 of 10 at 95%: (0, 0.2775), the textbook example of a non-degenerate interval.
    low, high = wilson_interval(0, 10)
    assert low == 0.0
    assert_allclose(high, 0.27753, atol=1e-5)


def test_wilson_interval_other_confidence():
    assert_allclose(wilson_interval(30, 50, confidence=0.99), wilson_by_hand(30, 50, 0.99), rtol=1e-12)


def test_wilson_interval_is_vectorised():
    x = np.array([0, 5, 9691, 10])
    n = np.array([10, 20, 10000, 10])
    low, high = wilson_interval(x, n)
    expected = np.array([wilson_by_hand(a, b, 0.95) for a, b in zip(x, n)])
    assert_allclose(low, expected[:, 0], atol=1e-15)
    assert_allclose(high, expected[:, 1], atol=1e-15)
    assert high[3] == 1.0


def test_wilson_interval_success_above_n_raises():
    with pytest.raises(ValueError, match=r"n_success must be in \[0, n\]; got n_success=11, n=10"):
        wilson_interval(11, 10)


def test_wilson_interval_bad_confidence_raises():
    with pytest.raises(ValueError, match=r"confidence must be in \(0, 1\); got confidence=95"):
        wilson_interval(5, 10, confidence=95)


def test_wilson_interval_zero_trials_raises():
    with pytest.raises(ValueError, match="n must be at least 1; got n=0"):
        wilson_interval(0, 0)


# ---------------------------------------------------------------- McNemar


def test_mcnemar_counts_discordant_pairs():
    y_true = np.array([0, 0, 0, 0, 0, 0])
    pred_a = np.array([0, 0, 0, 1, 1, 0])  # right on 0, 1, 2, 5
    pred_b = np.array([0, 1, 1, 1, 0, 2])  # right on 0, 4
    r = mcnemar(y_true, pred_a, pred_b)
    assert (r.n_a_only, r.n_b_only, r.n_both, r.n_neither) == (3, 1, 1, 1)


def test_mcnemar_exact_p_value_by_hand():
    # 3 vs 1 discordant: P(X <= 1 | n=4, 1/2) = 5/16, two-sided 10/16.
    # mid-p: 2 * (5/16) - P(X = 1) = 10/16 - 4/16 = 6/16.
    y_true = np.zeros(6, dtype=int)
    pred_a = np.array([0, 0, 0, 1, 1, 0])
    pred_b = np.array([0, 1, 1, 1, 0, 2])
    r = mcnemar(y_true, pred_a, pred_b)
    assert_allclose(r.p_value, 10 / 16)
    assert_allclose(r.mid_p_value, 6 / 16)


def test_mcnemar_lopsided_discordance_is_significant():
    # 10 vs 0: p = 2 / 2**10.
    y_true = np.zeros(10, dtype=int)
    r = mcnemar(y_true, y_true, np.ones(10, dtype=int))
    assert_allclose(r.p_value, 2 / 1024)
    assert_allclose(r.mid_p_value, 1 / 1024)


def test_mcnemar_identical_predictions_give_p_one():
    y_true = np.array([0, 1, 2])
    r = mcnemar(y_true, np.array([0, 1, 1]), np.array([0, 1, 1]))
    assert (r.n_a_only, r.n_b_only, r.p_value, r.mid_p_value) == (0, 0, 1.0, 1.0)


def test_mcnemar_mismatched_shapes_raise():
    with pytest.raises(ValueError, match=r"pred_b must have the shape of y_true \(3,\)"):
        mcnemar(np.array([0, 1, 2]), np.array([0, 1, 2]), np.array([0, 1]))


# ---------------------------------------------------------------- paired difference


def test_paired_difference_ci_agresti_min_by_hand():
    # 100 samples, A only right on 10, B only right on 2.
    # Adjusted: b=10.5, c=2.5, n=102; d = 8/102; se = sqrt(13 - 64/102)/102.
    y_true = np.zeros(100, dtype=int)
    pred_a = np.zeros(100, dtype=int)
    pred_b = np.zeros(100, dtype=int)
    pred_a[:2] = 1  # A wrong, B right
    pred_b[2:12] = 1  # B wrong, A right
    low, high = paired_difference_ci(y_true, pred_a, pred_b)
    z = stats.norm.ppf(0.975)
    se = math.sqrt(13 - 64 / 102) / 102
    assert_allclose((low, high), (8 / 102 - z * se, 8 / 102 + z * se), rtol=1e-12)
    assert low > 0  # A is significantly better here, as McNemar says (p = 0.039)


def test_paired_difference_ci_is_not_a_point_without_discordance():
    y_true = np.array([0, 1, 2, 3])
    low, high = paired_difference_ci(y_true, y_true, y_true)
    assert low < 0 < high


# ---------------------------------------------------------------- confusion matrix


def test_confusion_matrix_rows_are_true_labels():
    C = confusion_matrix(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 1]), n_classes=3)
    assert_array_equal(C, [[1, 1, 0], [0, 1, 0], [0, 1, 0]])
    assert C.dtype == np.int64


def test_confusion_matrix_matches_sklearn():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 10, 500)
    y_pred = np.where(rng.random(500) < 0.8, y_true, rng.integers(0, 10, 500))
    expected = sklearn.metrics.confusion_matrix(y_true, y_pred, labels=range(10))
    assert_array_equal(confusion_matrix(y_true, y_pred), expected)


def test_confusion_matrix_label_out_of_range_raises():
    with pytest.raises(ValueError, match=r"y_pred labels must be in \[0, n_classes=3\); got labels in \[0, 3\]"):
        confusion_matrix(np.array([0, 1]), np.array([0, 3]), n_classes=3)
