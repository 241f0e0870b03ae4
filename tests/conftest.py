"""Shared fixtures for the search, distance, estimator and scikit-learn tests.

Unit tests build their data inside the test. Only the tests on real digits (the slow scikit-learn
comparisons, a small sample in test_search.py) use the MNIST files, through the session-scoped
:func:`mnist` fixture, which skips (with the reason) when ``data/`` does not hold them: tests never
download anything.
"""

import pytest

from mnist_knn.data.datasets import MNIST_FILES
from mnist_knn.paths import DATA_DIR


def _missing_mnist_files():
    return [name for pair in MNIST_FILES.values() for name in pair if not (DATA_DIR / name).is_file()]


@pytest.fixture(scope="session")
def mnist():
    """Full MNIST as flat rows: ``(X_train (60000, 784) uint8, y_train, X_test (10000, 784) uint8, y_test)``.

    Skips when the files are not in DATA_DIR (``make data`` fetches them).
    """
    missing = _missing_mnist_files()
    if missing:
        pytest.skip(f"MNIST files not in {DATA_DIR}: {', '.join(missing)}; run `make data`")
    from mnist_knn import load_mnist

    X_train, y_train = load_mnist("train")
    X_test, y_test = load_mnist("test")
    return X_train.reshape(len(X_train), -1), y_train, X_test.reshape(len(X_test), -1), y_test


@pytest.fixture
def both_ways(monkeypatch):
    """``both_ways(compute)``: ``compute()`` with progress bars forced off, then on (mnist_knn.progress), as
    ``(off, on)``; the progress tests check that a bar changes nothing."""
    from mnist_knn import progress

    def run(compute):
        monkeypatch.setenv(progress.ENV_VAR, "0")
        off = compute()
        monkeypatch.setenv(progress.ENV_VAR, "1")
        return off, compute()

    return run


@pytest.fixture(scope="module")
def one_numba_thread():
    """Run a module's compiled kernels on one numba thread (``pytestmark = pytest.mark.usefixtures(...)``): their
    results do not depend on the thread count (tested in tests/engine/test_deformation.py), and on tiny inputs a
    parallel launch costs far more than the work."""
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(before)


def _digit_like(rng, n, side=14):
    """``n`` random blobby images of integer grey levels 0-255 (float32), some ink-free rows."""
    import numpy as np

    X = np.zeros((n, side, side), dtype=np.float32)
    for image in X:
        for _ in range(3):
            y, x = rng.integers(2, side - 4, size=2)
            h, w = rng.integers(1, 4, size=2)
            image[y : y + h, x : x + w] += rng.integers(60, 256)
    return np.minimum(X, 255)


@pytest.fixture(scope="session")
def digit_like():
    """``digit_like(rng, n, side=14)``: ``n`` random blobby digit-like images, integer grey levels, float32."""
    return _digit_like
