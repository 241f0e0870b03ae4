"""Early abandoning in the IDM (``idm_distance(..., keep=k)``) changes no neighbour and no distance.

With ``keep=k`` a pair stops as soon as its partial sum shows it is farther than the k-th nearest of
the candidates before it, and its entry is +inf. The promise, tested here against the full
computation (``keep=None``, itself tested against the slow reference in test_reference_kernels.py):

- every finite entry is bit-identical to the full computation;
- for every prefix of the candidate list (the first n candidates, n >= k), the k nearest, their
  distances and their order, ties included, are the same as from the full computation;
- pairs are abandoned at all (the point of it), and never the first k of a list.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from mnist_knn.engine.idm import idm_distance
from mnist_knn.engine.rerank import nearest_candidates



def assert_same_prefix_neighbours(full, pruned, candidates, k):
    for n in range(k, candidates.shape[1] + 1):
        d_full, i_full = nearest_candidates(full[:, :n], candidates[:, :n], k)
        d_pruned, i_pruned = nearest_candidates(pruned[:, :n], candidates[:, :n], k)
        assert_array_equal(d_pruned, d_full)  # bit-identical, not close
        assert_array_equal(i_pruned, i_full)


@pytest.mark.parametrize(
    "params",
    [
        dict(warp=2, context=1),
        dict(warp=1, context=0),
        dict(warp=3, context=2),
        dict(warp=2, context=1, displacement_cost=0.5),
        dict(warp=1, context=1, symmetric=True),
        dict(warp=2, context=1, use_intensity=True),
    ],
    ids=["w2c1", "w1c0", "w3c2", "cost", "symmetric", "intensity"],
)
@pytest.mark.parametrize("keep", [1, 3, 6])
def test_abandoning_keeps_every_prefix_neighbours_and_their_exact_distances(params, keep, digit_like):
    rng = np.random.default_rng(keep)
    X_train, X_query = digit_like(rng, 60), digit_like(rng, 5)
    candidates = np.stack([rng.permutation(60)[:40] for _ in range(5)])
    full = idm_distance(X_train, X_query, candidates, **params)
    pruned = idm_distance(X_train, X_query, candidates, keep=keep, **params)
    finite = np.isfinite(pruned)
    assert_array_equal(pruned[finite], full[finite])
    assert finite[:, :keep].all()  # the first keep candidates are always finished
    assert (~finite).any()  # most of 40 candidates are far: the point of abandoning
    assert_same_prefix_neighbours(full, pruned, candidates, keep)


def test_ties_stay_in_list_order(digit_like):
    """Copies of one training image at different places in the list tie exactly; the stable order
    (the candidate the first search ranked higher wins) is the same with and without abandoning."""
    rng = np.random.default_rng(7)
    X_train = digit_like(rng, 12)
    X_train[5] = X_train[9] = X_train[2]  # three identical training images
    X_query = digit_like(rng, 3)
    candidates = np.tile([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], (3, 1))
    full = idm_distance(X_train, X_query, candidates)
    for keep in (1, 2, 3, 4):
        pruned = idm_distance(X_train, X_query, candidates, keep=keep)
        assert_same_prefix_neighbours(full, pruned, candidates, keep)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), keep=st.integers(1, 8), float_images=st.booleans())
def test_abandoning_on_random_images(seed, keep, float_images, digit_like):
    rng = np.random.default_rng(seed)
    if float_images:  # arbitrary float64 grey levels: sums round, the margin must hold
        X_train, X_query = rng.random((30, 9, 11)) ** 3, rng.random((3, 9, 11)) ** 3
    else:
        X_train, X_query = digit_like(rng, 30, side=10), digit_like(rng, 3, side=10)
    candidates = np.stack([rng.permutation(30)[:20] for _ in range(3)])
    full = idm_distance(X_train, X_query, candidates, warp=2, context=1)
    pruned = idm_distance(X_train, X_query, candidates, warp=2, context=1, keep=keep)
    finite = np.isfinite(pruned)
    assert_array_equal(pruned[finite], full[finite])
    assert_same_prefix_neighbours(full, pruned, candidates, keep)


def test_keep_as_long_as_the_list_abandons_nothing(digit_like):
    rng = np.random.default_rng(3)
    X_train, X_query = digit_like(rng, 20), digit_like(rng, 2)
    candidates = np.tile(np.arange(20), (2, 1))
    assert_array_equal(idm_distance(X_train, X_query, candidates, keep=20),
                       idm_distance(X_train, X_query, candidates))


@pytest.mark.parametrize("keep", [0, -1, 2.5, True, "3"])
def test_impossible_keep_is_refused(keep):
    X = np.zeros((3, 8, 8))
    with pytest.raises(ValueError, match=r"keep must be None or an integer >= 1; got keep="):
        idm_distance(X, X[:1], [[0, 1, 2]], keep=keep)


def test_asking_for_more_neighbours_than_kept_is_refused(digit_like):
    rng = np.random.default_rng(4)
    X_train, X_query = digit_like(rng, 30), digit_like(rng, 2)
    candidates = np.tile(np.arange(30), (2, 1))
    pruned = idm_distance(X_train, X_query, candidates, keep=2)
    nearest_candidates(pruned, candidates, 2)
    with pytest.raises(ValueError, match=r"\+inf among the 10 nearest"):
        nearest_candidates(pruned, candidates, 10)


@pytest.mark.parametrize("n_query, n_cand", [(2, 0), (0, 3)])
def test_no_pairs_give_an_empty_answer(n_query, n_cand):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(4, 7, 6)).astype(np.float32)
    candidates = np.zeros((n_query, n_cand), dtype=np.int64)
    for keep in (None, 1):
        D = idm_distance(X, X[:n_query], candidates, keep=keep)
        assert D.shape == (n_query, n_cand) and D.dtype == np.float64
