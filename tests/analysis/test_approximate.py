"""Tests for mnist_knn.analysis.approximate: faiss HNSW and IVF indexes and their recall (needs faiss)."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from mnist_knn.analysis.approximate import (
    approximate_kneighbors,
    hnsw_index,
    index_bytes,
    ivf_index,
    recall,
    timed_search,
)
from mnist_knn.engine.search import kneighbors

faiss = pytest.importorskip("faiss")


def points(seed=0, n=1500, n_query=60, dims=32):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, dims)).astype(np.uint8), rng.integers(0, 256, (n_query, dims)).astype(np.uint8)


def test_ivf_scanning_every_bucket_is_exact():
    X, Q = points()
    d, i = kneighbors(X, Q, 5)
    index = ivf_index(X, nlist=16)
    da, ia = approximate_kneighbors(index, Q, 5, nprobe=16)
    assert_array_equal(ia, i)
    np.testing.assert_allclose(da, d, rtol=1e-5)
    assert recall(ia, i) == 1.0
    assert recall(approximate_kneighbors(index, Q, 5, nprobe=1)[1], i) < 1.0


def test_hnsw_recall_rises_with_ef_search():
    X, Q = points()
    i = kneighbors(X, Q, 10)[1]
    index = hnsw_index(X, M=8, ef_construction=40)
    low = recall(approximate_kneighbors(index, Q, 10, ef_search=10)[1], i)
    high = recall(approximate_kneighbors(index, Q, 10, ef_search=400)[1], i)
    assert low <= high and high > 0.95


def test_indexes_are_reproducible():
    X, Q = points(seed=1)
    for build, settings in [(hnsw_index, {"ef_search": 16}), (ivf_index, {"nprobe": 2})]:
        a = approximate_kneighbors(build(X), Q, 5, **settings)
        b = approximate_kneighbors(build(X), Q, 5, **settings)
        assert_array_equal(a[1], b[1])
        assert_array_equal(a[0], b[0])


def test_images_are_accepted_and_costs_reported():
    X, Q = points(dims=16)
    index = hnsw_index(X.reshape(len(X), 4, 4), M=4)
    (d, i), seconds = timed_search(index, Q.reshape(len(Q), 4, 4), 3, repeats=2, ef_search=8)
    assert d.shape == i.shape == (len(Q), 3) and seconds > 0
    assert index_bytes(index) > X.size * 4  # float32 vectors plus the graph


def test_recall_counts_shared_neighbours_per_query():
    assert recall([[1, 2], [3, -1]], [[2, 1], [3, 4]]) == 0.75
    assert recall([[-1]], [[-1]]) == 0.0  # a missing neighbour matches nothing
    with pytest.raises(ValueError, match="one shape"):
        recall([[1, 2]], [[1]])
    with pytest.raises(ValueError, match="integers"):
        recall([[1.0]], [[1]])


def test_invalid_settings_are_refused():
    X, Q = points(n=200)
    hnsw, ivf = hnsw_index(X, M=4), ivf_index(X, nlist=4)
    with pytest.raises(ValueError, match="HNSW indexes only"):
        approximate_kneighbors(ivf, Q, 1, ef_search=4)
    with pytest.raises(ValueError, match="IVF indexes only"):
        approximate_kneighbors(hnsw, Q, 1, nprobe=2)
    with pytest.raises(ValueError, match="nprobe"):
        approximate_kneighbors(ivf, Q, 1, nprobe=5)
    with pytest.raises(ValueError, match="columns"):
        approximate_kneighbors(hnsw, Q[:, :5], 1)
    with pytest.raises(ValueError, match="nlist"):
        ivf_index(X[:3], nlist=4)
    with pytest.raises(ValueError, match="M must be"):
        hnsw_index(X, M=0)
    with pytest.raises(ValueError, match="finite"):
        hnsw_index(np.full((3, 2), np.inf))
