"""Tests for mnist_knn.data.features (the PCA and standardisation tests are in test_preprocess.py,
beside the image pipeline they were written with)."""

import numpy as np
from numpy.testing import assert_allclose

from mnist_knn.data.features import centre_rows
from mnist_knn.engine.distances import pairwise_distances


def test_cosine_of_centred_rows_is_one_minus_correlation():
    rng = np.random.default_rng(1)
    X = rng.integers(0, 256, size=(6, 3, 3)).astype(np.uint8)
    C = centre_rows(X)
    assert C.shape == (6, 9) and C.dtype == np.float64
    assert_allclose(C.sum(axis=1), 0, atol=1e-9)
    flat = X.reshape(6, -1).astype(float)
    assert_allclose(pairwise_distances(C, C, "cosine"), 1 - np.corrcoef(flat), atol=1e-12)
