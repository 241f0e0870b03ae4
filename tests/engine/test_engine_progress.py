"""The engine's progress bars (mnist_knn.progress) change nothing: the search and every re-ranking give the same
result, to the bit, with bars forced on (re-rankings then run in chunks of queries) and off (one kernel call)."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from mnist_knn import progress
from mnist_knn.engine import idm_distance, kneighbors, rerank_by_metric, shift_distance, tangent_distance
from mnist_knn.engine.distances import thread_count
from mnist_knn.engine.rerank import query_chunks

N_QUERY = 64 * thread_count() * 3 + 17  # with bars on, three chunks of at least 64 queries per thread


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(18)
    X_train = rng.integers(0, 256, size=(60, 10, 9)).astype(np.float32)
    X_train[rng.random(X_train.shape) < 0.6] = 0  # mostly blank, as digits are
    X_query = rng.integers(0, 256, size=(N_QUERY, 10, 9)).astype(np.float32)
    candidates = np.stack([rng.permutation(60)[:12] for _ in range(N_QUERY)])
    return X_train, X_query, candidates


def test_query_chunks_split_only_when_bars_are_on(monkeypatch):
    monkeypatch.setenv(progress.ENV_VAR, "0")
    assert list(query_chunks(N_QUERY, "IDM")) == [(0, N_QUERY)]
    monkeypatch.setenv(progress.ENV_VAR, "1")
    chunks = list(query_chunks(N_QUERY, "IDM"))
    assert len(chunks) == 3 and chunks[0][0] == 0 and chunks[-1][1] == N_QUERY
    assert min(b - a for a, b in chunks) >= 64 * thread_count()


@pytest.mark.parametrize("distance, params", [
    (idm_distance, dict(warp=1, context=1)),
    (idm_distance, dict(warp=2, context=0, keep=3)),  # early abandoning: the bound is per query
    (idm_distance, dict(warp=1, context=1, symmetric=True, use_intensity=True, displacement_cost=50.0)),
    (tangent_distance, dict()),
    (tangent_distance, dict(two_sided=False, regularization=0.5)),
    (shift_distance, dict(max_shift=1, p=3)),
    (shift_distance, dict(max_shift=2, p=1.5)),
])
def test_re_rankings_are_bit_identical_with_bars_on_and_off(images, distance, params, both_ways):
    off, on = both_ways(lambda: distance(*images, **params))
    assert off.shape == images[2].shape
    assert_array_equal(on, off)


@pytest.mark.parametrize("metric, p", [("minkowski", 3), ("minkowski", 2.5), ("manhattan", 1)])
def test_rerank_by_metric_is_bit_identical_with_bars_on_and_off(images, metric, p, both_ways):
    X_train, X_query, candidates = (a.astype(np.uint8) if a.dtype == np.float32 else a for a in images)
    off, on = both_ways(lambda: rerank_by_metric(X_train, X_query, candidates, metric, p))
    assert_array_equal(on[0], off[0])
    assert_array_equal(on[1], off[1])


def test_the_search_with_a_bar_is_bit_identical_and_counts_every_query(monkeypatch, both_ways):
    """With no delay, the search makes its bar at the first look; the bar ends at the number of queries."""
    made = []

    def recording_bar(total, **kwargs):
        bar = real_bar(total, **kwargs)
        made.append((total, kwargs, bar))
        return bar

    real_bar = progress.progress_bar
    rng = np.random.default_rng(0)
    X_train = rng.integers(0, 256, size=(500, 30), dtype=np.uint8)
    X_query = rng.integers(0, 256, size=(700, 30), dtype=np.uint8)
    monkeypatch.setattr(progress, "progress_bar", recording_bar)
    monkeypatch.setattr(progress, "DELAY", 0.0)
    off, on = both_ways(lambda: kneighbors(X_train, X_query, 5, "minkowski", 3, block_size=64))
    assert_array_equal(on[0], off[0])
    assert_array_equal(on[1], off[1])
    assert len(made) == 1  # none with bars off
    total, kwargs, bar = made[0]
    assert total == 700 and kwargs["unit"] == "query" and bar.n == 700


def test_a_short_search_makes_no_bar(monkeypatch):
    """Bars on, default delay: a search shorter than progress.DELAY never creates one."""
    made = []
    monkeypatch.setattr(progress, "progress_bar", lambda *a, **k: made.append(1))
    monkeypatch.setenv(progress.ENV_VAR, "1")
    X = np.arange(200, dtype=np.uint8).reshape(20, 10)
    kneighbors(X, X, 3)
    assert made == []
