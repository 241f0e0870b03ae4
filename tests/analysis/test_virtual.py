"""Virtual training digits (mnist_knn.analysis.virtual): distorted copies of each query's candidates, by IDM.

``virtual_distance`` must give, column ``v * n_cand + j``, exactly the IDM distance from each query to the
copy of ``candidates[:, j]`` under ``variants[v]`` (built here explicitly with :func:`virtual_images` and
compared with :func:`mnist_knn.engine.idm_distance` bit for bit), whatever the ``chunk``, and with
``keep`` the same nearest copies as without. Small digit-like 14 x 14 images keep every test fast.
"""

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from mnist_knn.analysis.virtual import VARIANT_KINDS, virtual_distance, virtual_images
from mnist_knn.data.preprocess import change_thickness, distort, to_uint8
from mnist_knn.engine import idm_distance, nearest_candidates

VARIANTS = [("rotation", 10.0), ("scale", 1.1), ("shear", -0.2), ("thickness", 1), ("thickness", -1),
            ("rotation", -7.5)]


@pytest.fixture(scope="module")
def data(digit_like):
    """12 training digits, 5 queries, 4 candidates per query (one repeated within a row)."""
    rng = np.random.default_rng(0)
    X_train, X_query = digit_like(rng, 12), digit_like(rng, 5)
    candidates = np.stack([rng.permutation(12)[:4] for _ in range(5)])
    candidates[1, 3] = candidates[1, 0]  # a candidate listed twice gets two identical copies
    return X_train, X_query, candidates


def explicit(X_train, X_query, candidates, variants, **params):
    """The expected layout, built the slow way: copy every training digit, then one IDM call per variant."""
    return np.concatenate(
        [idm_distance(virtual_images(X_train, v).astype(np.float32), X_query, candidates, **params) for v in variants],
        axis=1,
    )


# --------------------------------------------------------------------------- virtual_images


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize(
    "variant", [("rotation", 12.0), ("rotation", -3), ("scale", 0.9), ("scale", 1.2), ("shear", 0.25)]
)
def test_virtual_images_of_a_distortion_are_the_distorted_images_rounded_to_uint8(variant, dtype, digit_like):
    X = digit_like(np.random.default_rng(1), 4).astype(dtype)
    kind, amount = variant
    out = virtual_images(X, variant)
    assert out.dtype == np.uint8 and out.shape == X.shape
    assert_array_equal(out, to_uint8(distort(X, **{kind: amount})))


@pytest.mark.parametrize("steps", [1, -1, 2, 0, np.int64(-2)])
def test_virtual_images_of_a_thickness_are_the_thickened_images_as_uint8(steps, digit_like):
    X = digit_like(np.random.default_rng(2), 4)
    out = virtual_images(X, ("thickness", steps))
    assert out.dtype == np.uint8 and out.shape == X.shape
    assert_array_equal(out, to_uint8(change_thickness(X, int(steps))))


def test_virtual_images_accept_a_list_as_variant(digit_like):
    X = digit_like(np.random.default_rng(3), 2)
    assert_array_equal(virtual_images(X, ["shear", 0.1]), virtual_images(X, ("shear", 0.1)))


def test_virtual_images_with_identity_variant_give_the_integer_images_back(digit_like):
    X = digit_like(np.random.default_rng(4), 3)
    assert_array_equal(virtual_images(X, ("rotation", 0.0)), X.astype(np.uint8))
    assert_array_equal(virtual_images(X, ("thickness", 0)), X.astype(np.uint8))


def test_variant_kinds_are_the_four_documented_ones():
    assert VARIANT_KINDS == ("rotation", "scale", "shear", "thickness")


# --------------------------------------------------------------------------- virtual_distance


@pytest.mark.parametrize("params", [dict(warp=1, context=1), dict(warp=2, context=1)], ids=["w1c1", "w2c1"])
def test_virtual_distance_columns_are_the_idm_distances_to_the_copies(data, params):
    X_train, X_query, candidates = data
    D = virtual_distance(X_train, X_query, candidates, variants=VARIANTS, **params)
    assert D.shape == (5, len(VARIANTS) * 4) and D.dtype == np.float64
    assert_array_equal(D, explicit(X_train, X_query, candidates, VARIANTS, **params))
    # Column v * n_cand + j copies training digit np.tile(candidates, n_var)[:, v * n_cand + j]:
    # both listings of the repeated candidate give the same distance under every variant.
    tiled = np.tile(candidates, len(VARIANTS))
    assert_array_equal(D[1, tiled[1] == candidates[1, 0]].reshape(len(VARIANTS), 2)[:, 0],
                       D[1, tiled[1] == candidates[1, 0]].reshape(len(VARIANTS), 2)[:, 1])


def test_virtual_distance_of_one_variant_one_candidate_is_one_idm_pair(data):
    X_train, X_query, candidates = data
    copy = virtual_images(X_train[candidates[2, 1]][None], ("scale", 1.1)).astype(np.float32)
    D = virtual_distance(X_train, X_query, candidates, variants=[("scale", 1.1)], warp=1, context=1)
    assert D.shape == (5, 4)
    assert D[2, 1] == idm_distance(copy, X_query[2:3], [[0]], warp=1, context=1)[0, 0]


def test_virtual_distance_passes_other_idm_parameters(data):
    X_train, X_query, candidates = data
    params = dict(warp=1, context=1, use_intensity=True, displacement_cost=0.5, symmetric=True)
    variants = VARIANTS[:3]
    assert_array_equal(virtual_distance(X_train, X_query, candidates, variants=variants, **params),
                       explicit(X_train, X_query, candidates, variants, **params))


def test_virtual_distance_accepts_uint8_images(data):
    X_train, X_query, candidates = data
    D = virtual_distance(X_train.astype(np.uint8), X_query.astype(np.uint8), candidates, variants=VARIANTS,
                         warp=1, context=1)
    assert_array_equal(D, virtual_distance(X_train, X_query, candidates, variants=VARIANTS, warp=1, context=1))


@pytest.mark.parametrize("keep", [None, 2])
def test_virtual_distance_does_not_depend_on_chunk(data, keep):
    X_train, X_query, candidates = data
    reference = virtual_distance(X_train, X_query, candidates, variants=VARIANTS, warp=2, context=1, keep=keep)
    for chunk in (1, 2, 3, 5, 1000, np.int64(4)):
        D = virtual_distance(X_train, X_query, candidates, variants=VARIANTS, chunk=chunk, warp=2, context=1,
                             keep=keep)
        assert_array_equal(D, reference)


def nearest_columns(D, k):
    """The k nearest entries of each row and their column numbers (stable: ties go to the earlier column)."""
    columns = np.broadcast_to(np.arange(D.shape[1]), D.shape)
    return nearest_candidates(D, columns, k)


def test_virtual_distance_with_keep_gives_the_same_nearest_copies_alone_and_in_any_union(data):
    X_train, X_query, candidates = data
    keep = 3
    full = virtual_distance(X_train, X_query, candidates, variants=VARIANTS, warp=2, context=1)
    pruned = virtual_distance(X_train, X_query, candidates, variants=VARIANTS, warp=2, context=1, keep=keep)
    finite = np.isfinite(pruned)
    assert_array_equal(pruned[finite], full[finite])  # what is computed is computed exactly
    assert np.isfinite(full).all()
    # Other lists the copies may be merged with: the originals themselves, by IDM, and a list of
    # distances all smaller than any copy's.
    originals = idm_distance(X_train, X_query, candidates, warp=2, context=1)
    near = np.full((5, 2), 1.0)
    for k in range(1, keep + 1):
        d_full, i_full = nearest_columns(full, k)
        d_pruned, i_pruned = nearest_columns(pruned, k)
        assert_array_equal(d_pruned, d_full)
        assert_array_equal(i_pruned, i_full)
        for other in (originals, near):
            for union in (lambda copies: np.hstack([other, copies]), lambda copies: np.hstack([copies, other])):
                d_full, i_full = nearest_columns(union(full), k)
                d_pruned, i_pruned = nearest_columns(union(pruned), k)
                assert_array_equal(d_pruned, d_full)
                assert_array_equal(i_pruned, i_full)


def test_virtual_distance_abandons_over_the_copies_alone(data):
    """The keep nearest of the copies are all computed, so abandoning cannot touch them."""
    X_train, X_query, candidates = data
    for keep in (1, 2, 3):
        pruned = virtual_distance(X_train, X_query, candidates, variants=VARIANTS, warp=2, context=1, keep=keep)
        assert (np.isfinite(pruned).sum(axis=1) >= keep).all()
        assert np.isfinite(pruned[:, :keep]).all()  # the first keep of each list are never abandoned
        assert np.isinf(pruned).sum() > pruned.size // 2  # and abandoning does happen (the point of it)


def test_identity_variant_gives_the_idm_distance_to_the_candidates_themselves(data):
    X_train, X_query, candidates = data
    for params in (dict(warp=1, context=1), dict(warp=2, context=1)):
        D = virtual_distance(X_train, X_query, candidates, variants=[("rotation", 0.0)], **params)
        assert_array_equal(D, idm_distance(X_train, X_query, candidates, **params))
        D2 = virtual_distance(X_train, X_query, candidates, variants=[("thickness", 0), ("rotation", 0.0)], **params)
        assert_array_equal(D2, np.hstack([D, D]))


def test_virtual_distance_of_no_query_is_empty(data):
    X_train, X_query, _ = data
    D = virtual_distance(X_train, X_query[:0], np.zeros((0, 3), np.int64), variants=VARIANTS[:2], warp=1, context=1)
    assert D.shape == (0, 6)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        ([("rotate", 5.0)], r"a variant's kind must be one of \('rotation', 'scale', 'shear', 'thickness'\); got 'rotate'"),
        ([("rotation", 5.0), ("blur", 1.0)], r"a variant's kind must be one of .*; got 'blur'"),
        ([("rotation",)], r"a variant is a pair \(kind, amount\); got \('rotation',\)"),
        ([("rotation", 5.0, 1.0)], r"a variant is a pair \(kind, amount\)"),
        ([5.0], r"a variant is a pair \(kind, amount\); got 5.0"),
        (["rotation"], r"a variant is a pair \(kind, amount\); got 'rotation'"),
        ([("thickness", 1.0)], r"a thickness variant takes an integer number of steps; got 1.0"),
        ([("thickness", True)], r"a thickness variant takes an integer number of steps; got True"),
        ([("thickness", "1")], r"a thickness variant takes an integer number of steps; got '1'"),
        ([], r"variants must name at least one variant; got none"),
    ],
)
def test_virtual_distance_rejects_bad_variants(data, variants, message):
    X_train, X_query, candidates = data
    with pytest.raises(ValueError, match=message):
        virtual_distance(X_train, X_query, candidates, variants=variants)


@pytest.mark.parametrize(
    ("variant", "message"),
    [
        (("size", 1.0), r"a variant's kind must be one of"),
        (("rotation",), r"a variant is a pair \(kind, amount\)"),
        (("thickness", 0.5), r"a thickness variant takes an integer number of steps"),
        (("scale", 0.0), r"scale must be > 0"),
        (("rotation", np.nan), r"rotation must be a finite number"),
    ],
)
def test_virtual_images_rejects_bad_variants(variant, message):
    with pytest.raises(ValueError, match=message):
        virtual_images(np.zeros((2, 5, 5), np.uint8), variant)


@pytest.mark.parametrize("chunk", [0, -1, True, False, 2.0, None])
def test_virtual_distance_rejects_bad_chunk(data, chunk):
    X_train, X_query, candidates = data
    with pytest.raises(ValueError, match=rf"chunk must be an integer >= 1; got chunk={chunk!r}"):
        virtual_distance(X_train, X_query, candidates, variants=VARIANTS, chunk=chunk)


@pytest.mark.parametrize(
    ("shape", "got"),
    [((5,), r"\(5,\)"), ((4, 4), r"\(4, 4\)"), ((6, 4), r"\(6, 4\)"), ((5, 4, 1), r"\(5, 4, 1\)")],
)
def test_virtual_distance_rejects_candidates_of_the_wrong_shape(data, shape, got):
    X_train, X_query, _ = data
    with pytest.raises(ValueError, match=rf"candidates must have shape \(n_query, n_cand\) = \(5, n_cand\); got shape {got}"):
        virtual_distance(X_train, X_query, np.zeros(shape, np.int64), variants=VARIANTS)


@pytest.mark.parametrize(("bad", "values"), [(12, r"from \d+ to 12"), (-1, r"from -1 to \d+")])
def test_virtual_distance_rejects_candidates_out_of_range(data, bad, values):
    X_train, X_query, candidates = data
    candidates = candidates.copy()
    candidates[2, 1] = bad
    with pytest.raises(ValueError, match=rf"candidates must index X_train \(0 to 11\); got values {values}"):
        virtual_distance(X_train, X_query, candidates, variants=VARIANTS)


@pytest.mark.parametrize("dtype", [np.float64, bool])
def test_virtual_distance_rejects_candidates_that_are_not_integers(data, dtype):
    """Float indices must not reach ``X_train[...]`` (IndexError), nor booleans (a mask, not indices)."""
    X_train, X_query, candidates = data
    with pytest.raises(ValueError, match=r"candidates must hold integer indices"):
        virtual_distance(X_train, X_query, (candidates % 2).astype(dtype), variants=VARIANTS)


def test_virtual_distance_rejects_bad_idm_parameters(data):
    X_train, X_query, candidates = data
    with pytest.raises(ValueError, match=r"keep must be None or an integer >= 1; got keep=0"):
        virtual_distance(X_train, X_query, candidates, variants=VARIANTS, keep=0)
    with pytest.raises(ValueError, match=r"warp must be an integer >= 0"):
        virtual_distance(X_train, X_query, candidates, variants=VARIANTS, warp=-1)
