"""The analysis layer's progress bars (mnist_knn.progress) change nothing: every loop that shows one gives the same
result with bars forced on and off (random draws included: a bar never consumes one)."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from mnist_knn.analysis import compression, error_analysis, learning_curves


def blobs(seed=0, n=240, dims=8, n_classes=3):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    X = np.clip(rng.integers(60, 200, (n_classes, dims))[y] + rng.normal(0, 50, (n, dims)), 0, 255).astype(np.uint8)
    return X, y


def test_learning_curve(both_ways):
    X, y = blobs()
    Xt, yt = blobs(seed=1, n=50)
    off, on = both_ways(lambda: learning_curves.learning_curve(
        X, y, Xt, yt, [10, 30, 240], [3, 2, 5], scheme="random", rng=np.random.default_rng(4), k_max=5))
    assert off[0].equals(on[0]) and len(off[0]) == (3 + 2 + 1) * 5  # the full-size subsample runs once
    assert_array_equal(on[1], off[1])


def test_learning_curve_shows_one_bar_over_its_searches(monkeypatch):
    seen = []
    monkeypatch.setattr(learning_curves, "progress", lambda it, **kw: seen.append((list(it), kw)) or seen[-1][0])
    X, y = blobs()
    learning_curves.learning_curve(X, y, X[:20], y[:20], [10, 240], [2, 3], scheme="random",
                                   rng=np.random.default_rng(0), k_max=3)
    (runs, kw), = seen
    assert runs == [(10, 0), (10, 1), (240, 0)] and kw["unit"] == "search"


def test_bootstrap_power_law(both_ways):
    rng = np.random.default_rng(0)
    sizes = np.repeat([100, 1_000, 10_000], 2)
    correct = rng.random((len(sizes), 2_000)) >= (2.0 * sizes ** -0.4)[:, None]
    off, on = both_ways(lambda: learning_curves.bootstrap_power_law(
        correct, sizes, [1e5], n_boot=20, rng=np.random.default_rng(1), groups=np.arange(2_000) % 37))
    assert_array_equal(on[0], off[0])
    assert_array_equal(on[1], off[1])


def test_nearest_distance_per_class(both_ways):
    X, y = blobs()
    off, on = both_ways(lambda: error_analysis.nearest_distance_per_class(X, y, X[:30], n_classes=3))
    assert_array_equal(on, off)


def test_condensed_nearest_neighbour_and_kmeans_prototypes(both_ways):
    X, y = blobs(n=300)
    off, on = both_ways(lambda: compression.condensed_nearest_neighbour(X, y))
    assert_array_equal(on, off)
    off, on = both_ways(lambda: compression.kmeans_prototypes(X, y, 4))
    assert_array_equal(on[0], off[0])
    assert_array_equal(on[1], off[1])


def test_choose_hyperparameters(both_ways):
    pytest.importorskip("sklearn")
    from mnist_knn.analysis.alternatives import choose_hyperparameters

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 30)
    X = rng.integers(0, 90, (len(y), 4, 4))
    for c in range(3):
        X[y == c, c, :] += 160
    X = X.astype(np.uint8)
    writers = rng.integers(0, 9, len(y))
    off, on = both_ways(lambda: choose_hyperparameters("nearest_centroid", X, y, writers, cache=False))
    assert_array_equal(on.predictions, off.predictions)
    assert on.best == off.best


def test_convnet_training(both_ways):
    pytest.importorskip("torch")
    from mnist_knn.analysis.convnet import fit_convnet

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 12)
    X = rng.integers(0, 40, (len(y), 28, 28)).astype(np.uint8)
    X[y == 1, 10:14, :] = 255
    off, on = both_ways(lambda: fit_convnet(X, y, epochs=2, batch_size=8, seed=0).state_)
    assert off.keys() == on.keys()
    for name in off:
        assert_array_equal(on[name], off[name])
