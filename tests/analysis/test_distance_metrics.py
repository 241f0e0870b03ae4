"""Tests for mnist_knn.analysis.distance_metrics on small synthetic data built inside each test."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from mnist_knn.analysis import holm, paired_difference, writer_bootstrap
from mnist_knn.analysis.distance_metrics import (
    Protocol,
    difference_histogram,
    error_curves,
    paired_comparisons,
    power_shares,
    query_time,
    results_table,
)


# --------------------------------------------------------------------------- Protocol


def _writers_data():
    """Two clusters (labels 0 and 1) of 1-D points; each writer writes two near-identical copies of
    one digit, and every writer's copies sit a little away from the cluster's other writers."""
    X = np.array([[0], [1], [10], [11], [20], [21],  # label 0: writers 0, 1, 2
                  [100], [101], [110], [111], [120], [121]], dtype=np.uint8)  # label 1: writers 3, 4, 5
    y = np.repeat([0, 1], 6)
    writers = np.repeat(np.arange(6), 2)
    return X, y, writers


def _protocol(y, writers, y_test, **kw):
    return Protocol(y_train=y, y_test=y_test, writers=writers, writers_test=np.arange(len(y_test)), **kw)


def test_protocol_holds_out_the_query_writers_other_digits(tmp_path):
    X, y, writers = _writers_data()
    # A writer "6" of label 1 whose second digit sits in cluster 0: its own first digit (45) would be its
    # nearest neighbour; held out by writer, label 0 is nearest (45 -> 21).
    X = np.vstack([X, [[45], [46]]]).astype(np.uint8)
    y = np.r_[y, 1, 1]
    writers = np.r_[writers, 6, 6]
    proto = _protocol(y, writers, y[:2], queries=np.array([12, 13]), ks=(1,), k_test=3, cache=tmp_path)
    ev = proto.run("L2", X, X[:2])
    assert ev.held_out.loc[1, "smallest"] == 1.0 and ev.train_error == 1.0
    (_, _), (_, i_held) = proto.search(X, X[:2])
    assert not (writers[i_held] == 6).any()  # no neighbour by the query's own writer
    assert list(tmp_path.glob("*.npz"))  # both searches cached


def test_protocol_chooses_k_and_rule_on_held_out_writers_and_reports_the_test_error_there():
    X, y, writers = _writers_data()
    X_test = np.array([[5], [115], [55]], dtype=np.uint8)
    y_test = np.array([0, 1, 1])
    proto = _protocol(y, writers, y_test, ks=(1, 3), k_test=4, cache=False)
    ev = proto.run("L1", X, X_test, "manhattan")
    assert (ev.k, ev.rule) == (1, "smallest") and ev.metric == "L1"  # all zero: the first row and column
    assert list(ev.held_out.columns) == ["smallest", "nearest"] and list(ev.held_out.index) == [1, 3]
    assert (ev.held_out.to_numpy() == 0).all()
    # 55 is nearer the 0s (21 at 34) than the 1s (100 at 45): one test error of three.
    assert ev.error == pytest.approx(1 / 3)
    assert_array_equal(ev.y_pred, [0, 1, 0])
    assert_array_equal(ev.wrong, [0, 0, 1])
    assert ev.estimate == writer_bootstrap([0, 0, 1], np.arange(3))
    assert ev.train_error == 0.0


def test_protocol_with_queries_changes_only_the_selection_queries():
    X, y, writers = _writers_data()
    proto = _protocol(y, writers, y[:2], ks=(1,), k_test=2, cache=False)
    sub = proto.with_queries(np.array([0, 6]))
    (_, _), (d, _) = sub.search(X, X[:2])
    assert d.shape == (2, 1) and proto.queries is None


def test_protocol_rerank_reorders_the_shortlists():
    X, y, writers = _writers_data()
    proto = _protocol(y, writers, y[:2], ks=(1,), k_test=3, cache=False)
    nn = proto.search(X, X[:2], "minkowski", 3, k_held=3)
    (d, i), (ds, i_s) = proto.rerank(X, X[:2], nn, "minkowski", 4)
    assert_array_equal(i, nn[0][1])  # 1-D: every Minkowski distance ranks alike
    assert_allclose(d, nn[0][0], rtol=1e-12)
    assert_array_equal(i_s, nn[1][1]) and ds.shape == (12, 3)


def test_results_table_rounds_percentages():
    X, y, writers = _writers_data()
    X_test = np.array([[5], [115], [55]], dtype=np.uint8)
    proto = _protocol(y, writers, np.array([0, 1, 1]), ks=(1,), k_test=2, cache=False)
    table = results_table([proto.run("raw L2", X, X_test, preprocessing="none")])
    row = table.loc["raw L2"]
    assert row["test error (%)"] == 33.33 and row["k"] == 1 and row["metric"] == "L2" and row["tie rule"] == "smallest"
    assert row["95% CI low"] == round(100 * writer_bootstrap([0, 0, 1], np.arange(3)).low, 2)
    assert row["test digits"] == 3


# --------------------------------------------------------------------------- paired_comparisons


def test_paired_comparisons_match_paired_difference_and_holm():
    X, y, writers = _writers_data()
    X_test = np.array([[5], [115], [55], [60], [2]], dtype=np.uint8)
    proto = _protocol(y, writers, np.array([0, 1, 1, 1, 0]), ks=(1,), k_test=2, cache=False)
    runs = {"L1": proto.run("L1", X, X_test, "manhattan"), "L3": proto.run("L3", X, X_test, "minkowski", 3),
            "cos": proto.run("cos", X + 1, X_test + 1, "cosine")}
    table = paired_comparisons(runs, [("L3", "L1"), ("cos", "L1")])
    assert list(table["a"]) == ["L3", "cos"]
    r = paired_difference(runs["cos"].wrong, runs["L1"].wrong, np.arange(5))
    assert table.loc[1, "difference (points)"] == pytest.approx(100 * r.difference)
    assert table.loc[1, "p"] == r.p_value and table.loc[1, "low"] == pytest.approx(100 * r.low)
    assert_allclose(table["p (Holm)"], holm(table["p"]))


def test_paired_comparisons_refuse_different_test_digits():
    X, y, writers = _writers_data()
    a = _protocol(y, writers, y[:2], ks=(1,), k_test=2, cache=False).run("a", X, X[:2])
    b = _protocol(y, writers, y[:3], ks=(1,), k_test=2, cache=False).run("b", X, X[:3])
    with pytest.raises(ValueError, match="same test digits"):
        paired_comparisons({"a": a, "b": b}, [("a", "b")])


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
    proto = _protocol(y, writers, np.array([0, 1, 1]), ks=(1, 3), k_test=4, cache=False)
    ev = proto.run("L2", X, np.array([[5], [115], [55]], dtype=np.uint8))
    curves = error_curves([ev])
    assert len(curves) == 4 and set(curves["set"]) == {"held-out training writers", "test"}
    test = curves[curves["set"] == "test"]
    assert_allclose(test["error (%)"], 100 * ev.test_error)
    assert_allclose(curves[curves["set"] != "test"]["error (%)"], 100 * ev.held_out[ev.rule])
    assert curves["chosen"].sum() == 2


def test_query_time_is_positive():
    X = np.arange(20, dtype=np.uint8).reshape(10, 2)
    assert query_time(X, X[:3], k=2) > 0
