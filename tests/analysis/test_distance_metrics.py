"""Tests for mnist_knn.analysis.distance_metrics on small synthetic data built inside each test."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from mnist_knn import kneighbors, mcnemar, pairwise_distances, wilson_interval
from mnist_knn.analysis.distance_metrics import (
    Protocol,
    choose_k,
    difference_histogram,
    error_curves,
    mcnemar_matrix,
    power_shares,
    query_time,
    results_table,
)



# --------------------------------------------------------------------------- choose_k


def test_choose_k_takes_the_smallest_of_equal_errors():
    assert choose_k([0.3, 0.1, 0.2, 0.1], [1, 3, 5, 7]) == 3


def test_choose_k_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="1-D of one non-zero length"):
        choose_k([0.1, 0.2], [1])


# --------------------------------------------------------------------------- Protocol


def _writers_data():
    """Two clusters (labels 0 and 1) of 1-D points; each writer writes two near-identical copies of
    one digit, and every writer's copies sit a little away from the cluster's other writers."""
    X = np.array([[0], [1], [10], [11], [20], [21],  # label 0: writers 0, 1, 2
                  [100], [101], [110], [111], [120], [121]], dtype=np.uint8)  # label 1: writers 3, 4, 5
    y = np.repeat([0, 1], 6)
    writers = np.repeat(np.arange(6), 2)
    return X, y, writers


def test_protocol_leave_one_writer_out_ignores_the_writers_other_digits(tmp_path):
    X, y, writers = _writers_data()
    # A writer "3" of label 1 whose second digit sits in cluster 0: plain leave-one-out is fooled by
    # the writer's own first digit, leave-one-writer-out is not.
    X = np.vstack([X, [[45], [46]]]).astype(np.uint8)
    y = np.r_[y, 1, 1]
    writers = np.r_[writers, 6, 6]
    proto = Protocol(y_train=y, y_test=y[:2], rows=np.array([12, 13]), writers=writers, ks=(1,),
                     k_test=3, k_subset=4, cache=tmp_path)
    ev = proto.run("L2", X, X[:2])
    assert ev.loo_error[0] == 0.0  # each query's nearest other digit is its writer's twin
    assert ev.lowo_error[0] == 1.0  # without its writer, label 0 is nearest (45 -> 20s ... 21)
    assert list(tmp_path.glob("*.npz"))  # both searches cached


def test_protocol_chooses_k_on_training_and_reports_the_test_error_there(tmp_path):
    X, y, writers = _writers_data()
    X_test = np.array([[5], [115], [55]], dtype=np.uint8)
    y_test = np.array([0, 1, 1])
    proto = Protocol(y_train=y, y_test=y_test, rows=np.arange(12), writers=writers, ks=(1, 3),
                     k_test=4, k_subset=5, cache=False)
    ev = proto.run("L1", X, X_test, "manhattan")
    assert ev.k == 1 and ev.metric == "L1"
    assert_array_equal(ev.lowo_error, [0.0, 0.0])
    # 55 is nearer the 0s (21 at 34) than the 1s (100 at 45): one test error of three.
    assert ev.error == pytest.approx(1 / 3)
    assert_array_equal(ev.y_pred, [0, 1, 0])
    assert ev.ci == wilson_interval(1, 3)
    assert ev.train_error == 0.0


def test_protocol_rerank_reorders_the_shortlists(tmp_path):
    X, y, writers = _writers_data()
    proto = Protocol(y_train=y, y_test=y[:2], rows=np.arange(12), writers=writers, ks=(1,),
                     k_test=3, k_subset=4, cache=False)
    nn = proto.search(X, X[:2], "minkowski", 3)
    (d, i), (ds, _) = proto.rerank(X, X[:2], nn, "minkowski", 4)
    assert_array_equal(i, nn[0][1])  # 1-D: every Minkowski distance ranks alike
    assert_allclose(d, nn[0][0], rtol=1e-12)


def test_results_table_rounds_percentages(tmp_path):
    X, y, writers = _writers_data()
    X_test = np.array([[5], [115], [55]], dtype=np.uint8)
    proto = Protocol(y_train=y, y_test=np.array([0, 1, 1]), rows=np.arange(12), writers=writers, ks=(1,),
                     k_test=2, k_subset=5, cache=False)
    table = results_table([proto.run("raw L2", X, X_test, preprocessing="none")])
    row = table.loc["raw L2"]
    assert row["test error (%)"] == 33.33 and row["k"] == 1 and row["metric"] == "L2"
    assert row["95% CI low"] == round(100 * wilson_interval(1, 3)[0], 2)
    assert row["test digits"] == 3


# --------------------------------------------------------------------------- mcnemar_matrix


def test_mcnemar_matrix_counts_wins_and_is_symmetric_in_p():
    y = np.array([0, 1, 2, 3, 4])
    preds = {"a": np.array([0, 1, 2, 3, 0]), "b": np.array([0, 1, 0, 0, 4]), "c": y.copy()}
    wins, p = mcnemar_matrix(y, preds)
    assert wins.loc["a", "b"] == 2 and wins.loc["b", "a"] == 1 and wins.loc["c", "a"] == 1
    assert wins.loc["a", "a"] == 0
    assert p.loc["a", "b"] == p.loc["b", "a"] == mcnemar(y, preds["a"], preds["b"]).p_value
    assert p.loc["c", "c"] == 1.0


# --------------------------------------------------------------------------- pixel differences


def test_difference_histogram_counts_each_pair():
    A = np.array([[0, 0, 0, 255], [10, 20, 30, 40]], dtype=np.uint8)
    B = np.array([[0, 5, 200, 0], [10, 20, 30, 40]], dtype=np.uint8)
    counts = difference_histogram(A, B, [0, 1, 128, 255])
    assert_array_equal(counts, [[1, 1, 2], [4, 0, 0]])  # 255 falls in the last, closed bin


def test_difference_histogram_rejects_unsorted_edges():
    with pytest.raises(ValueError, match="strictly increasing"):
        difference_histogram(np.zeros((1, 2)), np.zeros((1, 2)), [0, 10, 5])


def test_power_shares_shift_towards_large_differences_as_p_grows():
    A = np.array([[0] * 10 + [0]], dtype=np.uint8)
    B = np.array([[10] * 10 + [100]], dtype=np.uint8)  # ten small differences, one large
    shares = power_shares(A, B, [1, 2, 3], [0, 50, 255])
    assert_allclose(shares.sum(axis=1), 1.0)
    assert_allclose(shares[0], [0.5, 0.5])  # L1: 10 x 10 = 100 against 100
    assert shares[1, 1] > 0.9 and shares[2, 1] > shares[1, 1]


# --------------------------------------------------------------------------- error_curves, query_time


def test_error_curves_has_one_row_per_set_and_k():
    X, y, writers = _writers_data()
    proto = Protocol(y_train=y, y_test=np.array([0, 1, 1]), rows=np.arange(12), writers=writers, ks=(1, 3),
                     k_test=4, k_subset=5, cache=False)
    ev = proto.run("L2", X, np.array([[5], [115], [55]], dtype=np.uint8))
    curves = error_curves([ev], n_subset=12)
    assert len(curves) == 4 and set(curves["set"]) == {"training (leave-one-writer-out)", "test"}
    test = curves[curves["set"] == "test"]
    assert_allclose(test["error (%)"], 100 * ev.test_error)
    assert (test["ci low (%)"] <= test["error (%)"]).all() and (test["error (%)"] <= test["ci high (%)"]).all()
    assert curves["chosen"].sum() == 2


def test_query_time_is_positive():
    X = np.arange(20, dtype=np.uint8).reshape(10, 2)
    assert query_time(X, X[:3], k=2) > 0
