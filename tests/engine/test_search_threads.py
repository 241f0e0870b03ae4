"""The search called from several threads at once, and interrupted.

Searches keep work buffers between calls; each call takes a workspace of its own, so concurrent calls
(several threads, or a fitted KNNClassifier's predict in a thread pool) never share a buffer. An
interrupt (Ctrl-C) stops every worker within a query row and returns only once they all have.
"""

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from mnist_knn.engine import search
from mnist_knn.engine.estimator import KNNClassifier
from mnist_knn.engine.search import kneighbors


def problems(n, seed=0):
    """``n`` search problems of different shapes (the buffers' shapes differ between them)."""
    rng = np.random.default_rng(seed)
    out = []
    for j in range(n):
        n_train, n_query, width = 200 + 37 * j, 150 + 11 * j, 30 + 3 * (j % 5)
        out.append((rng.integers(0, 256, (n_train, width), dtype=np.uint8),
                    rng.integers(0, 256, (n_query, width), dtype=np.uint8)))
    return out


@pytest.mark.parametrize("metric", ["euclidean", "manhattan"])
def test_concurrent_searches_equal_serial_ones(metric):
    cases = problems(12)
    expected = [kneighbors(Xt, Xq, 5, metric, block_size=64) for Xt, Xq in cases]
    with ThreadPoolExecutor(6) as pool:
        for _ in range(3):
            got = list(pool.map(lambda c: kneighbors(c[0], c[1], 5, metric, block_size=64), cases))
            for (d, i), (d0, i0) in zip(got, expected):
                assert_array_equal(i, i0)
                assert_array_equal(d, d0)


def test_concurrent_predictions_of_one_fitted_classifier_are_right():
    rng = np.random.default_rng(1)
    X = rng.integers(0, 256, (400, 40), dtype=np.uint8)
    y = rng.integers(0, 10, 400)
    clf = KNNClassifier(3).fit(X, y)
    queries = [rng.integers(0, 256, (120 + 7 * j, 40), dtype=np.uint8) for j in range(16)]
    expected = [clf.predict(Q) for Q in queries]
    with ThreadPoolExecutor(8) as pool:
        for got, want in zip(pool.map(clf.predict, queries), expected):
            assert_array_equal(got, want)


def test_release_buffers_during_other_searches_is_safe():
    cases = problems(6, seed=2)
    expected = [kneighbors(Xt, Xq, 3) for Xt, Xq in cases]
    stop = threading.Event()

    def release():
        while not stop.is_set():
            search.release_buffers()

    releaser = threading.Thread(target=release)
    releaser.start()
    try:
        with ThreadPoolExecutor(3) as pool:
            got = list(pool.map(lambda c: kneighbors(c[0], c[1], 3), cases))
    finally:
        stop.set()
        releaser.join()
    for (d, i), (d0, i0) in zip(got, expected):
        assert_array_equal(i, i0)
        assert_array_equal(d, d0)


def test_an_interrupt_stops_a_search_of_one_huge_block_promptly_and_leaves_no_worker(monkeypatch):
    # A small training set gets one huge block per thread (the default block grows as the training set
    # shrinks); on random images the L3 bound prunes little, so that block is slow. Ctrl-C must not wait
    # for it. The search is timed first, to compare the interrupt's delay with the work it cuts short.
    rng = np.random.default_rng(3)
    X_train = rng.integers(0, 256, (400, 784), dtype=np.uint8)
    X_query = rng.integers(0, 256, (16000, 784), dtype=np.uint8)
    start = time.perf_counter()
    kneighbors(X_train, X_query, 5, "minkowski", 3)
    full = time.perf_counter() - start

    # A real SIGINT, as Ctrl-C sends, 0.1 s after the first block has started.
    sent = []

    def interrupt_soon():
        time.sleep(0.1)
        sent.append(time.perf_counter())
        os.kill(os.getpid(), signal.SIGINT)

    kernel = search._search_block
    interrupter = threading.Thread(target=interrupt_soon)
    start_once = threading.Lock()

    def first_block_starts_the_interrupter(*args):
        with start_once:
            if interrupter.ident is None:
                interrupter.start()
        return kernel(*args)

    monkeypatch.setattr(search, "_search_block", first_block_starts_the_interrupter)
    # Python's own Ctrl-C handler, whatever this process inherited: a process started in the background
    # by a non-interactive shell (as CI may be) ignores SIGINT unless a handler is installed.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    before = threading.active_count()
    try:
        with pytest.raises(KeyboardInterrupt):
            kneighbors(X_train, X_query, 5, "minkowski", 3)
        delay = time.perf_counter() - sent[0]
        interrupter.join()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert delay < 0.25 * full, f"the interrupt took {delay:.2f} s to stop a {full:.2f} s search"
    assert threading.active_count() == before  # every worker has returned
    monkeypatch.undo()
    # and the next search is right
    assert_array_equal(kneighbors(X_train, X_query[:50], 5, "minkowski", 3)[1],
                       kneighbors(X_train, X_query[:50], 5, "minkowski", 3, block_size=7)[1])
