"""Inputs at the edges of what numbers and arrays can be: subnormal pixels, weights near the float64
maximum, masked arrays. Each gets a right answer or a clear error, never a crash or a silent NaN."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from mnist_knn.data.preprocess import deskew
from mnist_knn.engine.search import kneighbors
from mnist_knn.engine.vote import predict, predict_proba


def test_subnormal_images_are_searched_like_their_scaled_copies():
    rng = np.random.default_rng(0)
    X = rng.random((40, 12))
    Q = rng.random((5, 12))
    tiny = 1e-310  # subnormal: 2**e for the rescaling would overflow
    d, i = kneighbors(X * tiny, Q * tiny, 4)
    d0, i0 = kneighbors(X, Q, 4)
    assert_array_equal(i, i0)
    assert np.isfinite(d).all() and (d >= 0).all()
    np.testing.assert_allclose(d / tiny, d0, rtol=1e-3)  # subnormals keep only a few digits


@pytest.mark.parametrize("metric", ["euclidean", "manhattan", "cosine"])
def test_huge_float_images_are_searched_exactly(metric):
    rng = np.random.default_rng(1)
    X, Q = rng.random((30, 8)), rng.random((4, 8))
    i = kneighbors(X * 1e300, Q * 1e300, 3, metric)[1]
    assert_array_equal(i, kneighbors(X, Q, 3, metric)[1])


def test_weights_near_the_float64_maximum_vote_as_their_ratios():
    # Both labels' sums overflow to infinity unless the row is rescaled: a false tie (won by label 0
    # under the "smallest" rule) and NaN probabilities. Label 1 has the larger weights.
    D = np.array([[1.0, 2.0, 3.0, 4.0]])
    I = np.array([[0, 1, 2, 3]])
    y = np.array([1, 1, 0, 0])
    huge = lambda d: np.array([[1e308, 1e308, 9e307, 9e307]])  # noqa: E731
    scaled = lambda d: np.array([[1.0, 1.0, 0.9, 0.9]])  # noqa: E731
    assert predict(D, I, y, 4, weights=huge).tolist() == predict(D, I, y, 4, weights=scaled).tolist() == [1]
    proba = predict_proba(D, I, y, 4, weights=huge)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba, predict_proba(D, I, y, 4, weights=scaled))


def test_masked_arrays_are_refused_not_silently_unmasked():
    X = np.ma.masked_array(np.zeros((5, 4), dtype=np.uint8), mask=False)
    X.mask[0, 0] = True
    with pytest.raises(ValueError, match="X_train is a masked array"):
        kneighbors(X, np.zeros((2, 4), dtype=np.uint8), 1)
    with pytest.raises(ValueError, match="images is a masked array"):
        deskew(np.ma.masked_array(np.zeros((2, 4, 4))))
    with pytest.raises(ValueError, match="distances is a masked array"):
        predict(np.ma.masked_array([[0.0, 1.0]]), np.array([[0, 1]]), np.array([0, 1]), 1)
