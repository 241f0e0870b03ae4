"""Tests for mnist_knn.analysis.compression: condensing, editing and k-means prototypes for k-NN."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from mnist_knn.analysis.compression import condensed_nearest_neighbour, edited_nearest_neighbour, kmeans_prototypes
from mnist_knn.engine.distances import pairwise_distances
from mnist_knn.engine.search import kneighbors


def blobs(seed=0, n=300, dims=6, n_classes=3, spread=60):
    """Overlapping classes of integer points (so that condensing has work to do)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    centres = rng.integers(60, 200, (n_classes, dims))
    X = np.clip(centres[y] + rng.normal(0, spread, (n, dims)), 0, 255).astype(np.uint8)
    return X, y


def one_nn(X_store, y_store, X):
    return y_store[kneighbors(X_store, X, 1)[1][:, 0]]


def test_condensing_is_consistent_it_classifies_its_whole_training_set_correctly():
    X, y = blobs()
    kept = condensed_nearest_neighbour(X, y)
    assert 0 < len(kept) < len(X) and np.all(np.diff(kept) > 0)
    assert_array_equal(one_nn(X[kept], y[kept], X), y)


def test_condensing_follows_harts_sequential_rule():
    """Against a literal one-digit-at-a-time implementation of Hart's algorithm."""
    X, y = blobs(seed=3, n=120)
    order = np.random.default_rng(7).permutation(len(X))
    D = pairwise_distances(X, X)
    store = [order[0]]
    changed = True
    while changed:
        changed = False
        for i in order:
            if i in store:
                continue
            s = np.array(store)
            nearest = s[np.lexsort((np.arange(len(s)), D[i, s]))[0]]  # ties: the earlier-stored digit
            if y[nearest] != y[i]:
                store.append(i)
                changed = True
    assert_array_equal(condensed_nearest_neighbour(X, y, seed=7), np.sort(store))


def test_condensing_is_seeded_and_max_passes_stops_early():
    X, y = blobs(seed=1)
    assert_array_equal(condensed_nearest_neighbour(X, y, seed=4), condensed_nearest_neighbour(X, y, seed=4))
    one_pass = condensed_nearest_neighbour(X, y, max_passes=1)
    assert set(one_pass) <= set(condensed_nearest_neighbour(X, y))


def test_condensing_terminates_on_contradictory_duplicates():
    X = np.array([[0], [0], [5]], dtype=np.uint8)
    kept = condensed_nearest_neighbour(X, np.array([0, 1, 1]), seed=0)
    assert set(kept) >= {0, 1}


def test_editing_drops_what_the_leave_one_out_vote_gets_wrong():
    X, y = blobs(seed=2, n=200)
    kept = edited_nearest_neighbour(X, y, k=3)
    D = pairwise_distances(X, X)
    np.fill_diagonal(D, np.inf)
    expected = []
    for i in range(len(X)):
        nn = np.lexsort((np.arange(len(X)), D[i]))[:3]
        counts = np.bincount(y[nn], minlength=3)
        if np.argmax(counts) == y[i]:  # ties to the smallest label
            expected.append(i)
    assert_array_equal(kept, expected)
    assert len(kept) < len(X)


def test_editing_then_condensing_stores_fewer_digits():
    X, y = blobs(seed=5)
    edited = edited_nearest_neighbour(X, y)
    both = edited[condensed_nearest_neighbour(X[edited], y[edited])]
    assert len(both) < len(condensed_nearest_neighbour(X, y))


def test_kmeans_prototypes_are_fixed_points_of_lloyds_iteration():
    X, y = blobs(seed=6)
    P, labels = kmeans_prototypes(X, y, 4)
    assert P.shape == (12, X.shape[1]) and P.dtype == np.float64
    assert_array_equal(labels, np.repeat([0, 1, 2], 4))
    for c in range(3):
        members = X[y == c].astype(np.float64)
        centres = P[labels == c]
        assign = kneighbors(centres, members, 1)[1][:, 0]
        for j in range(4):
            np.testing.assert_allclose(centres[j], members[assign == j].mean(axis=0), rtol=1e-12)
    P2, _ = kmeans_prototypes(X, y, 4)
    assert_array_equal(P, P2)


def test_kmeans_prototypes_classify_well():
    X, y = blobs(seed=8, spread=30)
    P, labels = kmeans_prototypes(X, y, 3)
    assert (one_nn(P, labels, X) == y).mean() > 0.9


@pytest.mark.parametrize("func, kwargs", [
    (condensed_nearest_neighbour, {}),
    (edited_nearest_neighbour, {}),
    (kmeans_prototypes, {"n_per_class": 2}),
])
def test_invalid_inputs_are_refused(func, kwargs):
    X, y = blobs(n=20)
    with pytest.raises(ValueError, match="one label per row"):
        func(X, y[:-1], **kwargs)
    with pytest.raises(ValueError, match="integer labels"):
        func(X, y.astype(float), **kwargs)
    with pytest.raises(ValueError, match="finite"):
        func(np.full((20, 3), np.nan), y, **kwargs)


def test_invalid_settings_are_refused():
    X, y = blobs(n=20)
    with pytest.raises(ValueError, match="k must be"):
        edited_nearest_neighbour(X, y, k=0)
    with pytest.raises(ValueError, match="tie_break"):
        edited_nearest_neighbour(X, y, tie_break="coin")
    with pytest.raises(ValueError, match="n_per_class"):
        kmeans_prototypes(X, y, 0)
    with pytest.raises(ValueError, match="max_passes"):
        condensed_nearest_neighbour(X, y, max_passes=0)
