"""Tests for mnist_knn.data.preprocess on small synthetic images built inside each test."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import ndimage

from mnist_knn.data.preprocess import (
    binarize,
    blur,
    bounding_box_center,
    center_of_mass_center,
    deskew,
    downsample,
    moments,
    pipeline,
    remove_noise,
    skew,
    to_uint8,
)
from mnist_knn.data.features import (
    pca_fit,
    pca_inverse_transform,
    pca_transform,
    standardize_fit,
    standardize_transform,
)

SIDE = 28
ROWS, COLS = np.mgrid[:SIDE, :SIDE].astype(np.float64)

# Every function that maps images to images (or to per-image measurements), with its arguments.
IMAGE_FUNCTIONS = {
    "moments": lambda X: np.array(moments(X)),
    "skew": skew,
    "deskew": deskew,
    "blur": lambda X: blur(X, 1.0),
    "center_of_mass_center": center_of_mass_center,
    "center_of_mass_center_subpixel": lambda X: center_of_mass_center(X, subpixel=True),
    "bounding_box_center": bounding_box_center,
    "remove_noise": remove_noise,
    "downsample": lambda X: downsample(X, 2),
    "binarize": binarize,
    "pipeline": lambda X: pipeline(X, ["deskew", ("blur", 1.0)]),
}


def slanted_bar(slope, rows=range(4, 25)):
    """A bar 3 pixels wide whose centre is at column 14 + slope * (row - 14): anti-aliased, 0-255."""
    centre = 14 + slope * (ROWS - 14)
    image = 255 * np.clip(1.5 - np.abs(COLS - centre), 0, 1)
    image[~np.isin(ROWS, list(rows))] = 0
    return image


def row_centroids(image):
    """Column centre of mass of each row that has ink."""
    ink = image.sum(axis=1)
    has_ink = ink > 0
    return (image @ np.arange(SIDE))[has_ink] / ink[has_ink]


def random_digits(n=6, seed=0):
    """uint8 images with strokes, specks and values at both ends of 0-255."""
    rng = np.random.default_rng(seed)
    X = np.zeros((n, SIDE, SIDE), np.uint8)
    for i in range(n):
        r, c = rng.integers(3, 20, size=2)
        X[i, r : r + 6, c : c + 3] = 255
        X[i, r + 6 : r + 8, c + 2 : c + 5] = rng.integers(1, 255, size=(2, 3))
        X[i, rng.integers(0, SIDE), rng.integers(0, SIDE)] = 254
        X[i, r - 1, c : c + 3] = 1
    return X


# --------------------------------------------------------------------------- moments, deskew


def test_skew_of_slanted_bar_is_its_slope():
    assert skew(slanted_bar(0.4)) == pytest.approx(0.4, abs=1e-12)


def test_skew_is_negative_for_a_bar_leaning_right():
    # "/" : the bottom is further left than the top, and rows grow downwards.
    assert skew(slanted_bar(-0.3)) == pytest.approx(-0.3, abs=1e-12)


def test_moments_of_a_single_pixel():
    image = np.zeros((SIDE, SIDE))
    image[5, 9] = 7
    m = moments(image)
    assert (m.total, m.row, m.col, m.mu20, m.mu11, m.mu02) == (7, 5, 9, 0, 0, 0)


def test_deskew_straightens_a_slanted_bar():
    before = slanted_bar(0.4)
    assert np.ptp(row_centroids(before)) > 7  # clearly slanted: 20 rows x 0.4
    after = deskew(before)
    assert abs(skew(after)) < 1e-3
    assert_allclose(row_centroids(after), 14, atol=1e-3)


def test_deskew_moves_centre_of_mass_to_image_centre():
    image = np.roll(slanted_bar(-0.3, rows=range(6, 23)), (-5, 4), axis=(0, 1))
    m = moments(deskew(image))
    assert (m.row, m.col) == pytest.approx((14, 14), abs=1e-3)


def test_deskew_of_centred_symmetric_blob_is_identity():
    blob = 255 * np.clip(1 - ((ROWS - 14) / 6) ** 2 - ((COLS - 14) / 4) ** 2, 0, 1)
    assert_allclose(deskew(blob), blob, atol=1e-3)


def test_deskew_matches_scipy_affine_transform():
    X = random_digits()
    for image, got in zip(X, deskew(X)):
        m = moments(image)
        alpha = m.mu11 / m.mu02
        matrix = np.array([[1, 0], [alpha, 1]])
        offset = np.array([m.row, m.col]) - matrix @ [14, 14]
        want = ndimage.affine_transform(image.astype(float), matrix, offset, order=1, mode="grid-constant")
        assert_allclose(got, np.clip(want, 0, 255), atol=1e-3)


@pytest.mark.parametrize(
    "func", [deskew, center_of_mass_center, bounding_box_center, remove_noise, lambda X: blur(X, 1.0)]
)
def test_blank_image_stays_blank(func):
    assert_array_equal(func(np.zeros((2, SIDE, SIDE), np.uint8)), 0)


def test_blank_image_has_centre_of_mass_at_image_centre_and_no_skew():
    m = moments(np.zeros((SIDE, SIDE)))
    assert (m.total, m.row, m.col, m.mu11, m.mu02) == (0, 14, 14, 0, 0)
    assert skew(np.zeros((SIDE, SIDE))) == 0


# --------------------------------------------------------------------------- blur


def test_blur_preserves_total_ink_of_an_interior_blob():
    image = np.zeros((SIDE, SIDE), np.uint8)
    image[10:18, 11:17] = 200
    blurred = blur(image, 1.5)
    assert blurred.max() < 200  # it did blur
    assert blurred.sum() == pytest.approx(image.sum(dtype=float), rel=1e-6)


def test_blur_with_sigma_zero_is_identity():
    X = random_digits()
    out = blur(X, 0)
    assert out.dtype == np.float32
    assert_array_equal(out, X)


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.5])
def test_blur_matches_scipy_gaussian_filter(sigma):
    X = random_digits()
    want = np.stack([ndimage.gaussian_filter(x.astype(float), sigma, mode="constant") for x in X])
    assert_allclose(blur(X, sigma), want, atol=1e-3)


@pytest.mark.parametrize("sigma", [-1, np.nan, "1"])
def test_blur_rejects_bad_sigma(sigma):
    with pytest.raises(ValueError, match="sigma must be a finite number >= 0"):
        blur(np.zeros((SIDE, SIDE)), sigma)


# --------------------------------------------------------------------------- centring


@pytest.fixture
def comet():
    """A 3 x 3 head at rows 2-4, columns 2-4, and a tail along row 3 to column 12.

    Bounding box: rows 2-4, columns 2-12. Centre of mass: row 3, column 95/17 = 5.59.
    """
    image = np.zeros((SIDE, SIDE), np.uint8)
    image[2:5, 2:5] = 255
    image[3, 5:13] = 255
    return image


def ink_box(image):
    rows, cols = np.nonzero(image)
    return rows.min(), rows.max(), cols.min(), cols.max()


def test_center_of_mass_center_shifts_by_whole_pixels(comet):
    out = center_of_mass_center(comet)
    # Shift rows by 14 - 3 = 11 and columns by round(14 - 5.59) = 8, copying pixels exactly.
    assert_array_equal(out, np.roll(comet, (11, 8), axis=(0, 1)))
    m = moments(out)
    assert m.row == 14 and 13.5 <= m.col < 14.5


def test_center_of_mass_center_rounds_half_pixel_shifts_up():
    image = np.zeros((SIDE, SIDE))
    image[14, 11:13] = 80  # centre of mass at column 11.5: shift by 2.5, rounded to 3
    assert ink_box(center_of_mass_center(image)) == (14, 14, 14, 15)


def test_center_of_mass_center_subpixel_puts_centre_of_mass_on_image_centre(comet):
    m = moments(center_of_mass_center(comet, subpixel=True))
    assert (m.row, m.col) == pytest.approx((14, 14), abs=1e-4)


def test_bounding_box_center_gives_equal_margins(comet):
    out = bounding_box_center(comet)
    # Box of 3 rows: margins 13 above, 12 below; box of 11 columns: 9 left, 8 right.
    assert ink_box(out) == (13, 15, 9, 19)
    assert sorted(out[out > 0]) == sorted(comet[comet > 0])


def test_bounding_box_and_centre_of_mass_centring_differ_for_a_lopsided_blob(comet):
    assert ink_box(center_of_mass_center(comet))[2:] == (10, 20)  # the heavy head pulls it left
    assert ink_box(bounding_box_center(comet))[2:] == (9, 19)


# --------------------------------------------------------------------------- noise removal


def test_remove_noise_deletes_an_isolated_pixel_but_keeps_the_stroke():
    image = slanted_bar(0.2)
    image[2, 25] = 255
    out = remove_noise(image)
    assert out[2, 25] == 0
    assert_allclose(out, slanted_bar(0.2), rtol=1e-6)


def test_remove_noise_keeps_small_components_of_at_least_min_size():
    image = slanted_bar(0.2)
    image[1:3, 24:26] = 100  # a 2 x 2 speck: 4 pixels
    assert (remove_noise(image, min_size=4)[1:3, 24:26] == 100).all()
    assert (remove_noise(image, min_size=5)[1:3, 24:26] == 0).all()


def test_remove_noise_never_removes_the_largest_component():
    image = np.zeros((SIDE, SIDE))
    image[5, 5:7] = 90  # the largest component has 2 pixels
    image[20, 20] = 90
    out = remove_noise(image, min_size=10)
    assert_array_equal(out[5, 5:7], 90)
    assert out[20, 20] == 0


def test_remove_noise_diagonal_neighbours_touch_only_with_connectivity_8():
    image = np.zeros((SIDE, SIDE))
    image[10:20, 10:13] = 255
    image[20, 13] = 255  # touches the bar at a corner only
    assert remove_noise(image, min_size=2, connectivity=8)[20, 13] == 255
    assert remove_noise(image, min_size=2, connectivity=4)[20, 13] == 0


def test_remove_noise_matches_scipy_label():
    rng = np.random.default_rng(1)
    X = (rng.random((20, SIDE, SIDE)) < 0.25) * rng.integers(1, 256, (20, SIDE, SIDE))
    for image, got in zip(X, remove_noise(X, min_size=4)):
        labels, _ = ndimage.label(image > 0, structure=np.ones((3, 3)))
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        keep = (sizes >= 4) | (sizes == sizes.max())
        keep[0] = False
        assert_array_equal(got, np.where(keep[labels], image, 0))


def test_remove_noise_rejects_bad_connectivity():
    with pytest.raises(ValueError, match="connectivity must be 4 or 8; got connectivity=6"):
        remove_noise(np.zeros((SIDE, SIDE)), connectivity=6)


# --------------------------------------------------------------------------- downsample, binarize


@pytest.mark.parametrize("factor", [1, 2, 4, 7])
def test_downsample_of_constant_image_is_constant(factor):
    out = downsample(np.full((3, SIDE, SIDE), 255, np.uint8), factor)
    assert out.shape == (3, SIDE // factor, SIDE // factor)
    assert_array_equal(out, 255)  # 4 x 255 would wrap in uint8


def test_downsample_averages_blocks():
    image = np.arange(16).reshape(4, 4)
    assert_array_equal(downsample(image, 2), [[2.5, 4.5], [10.5, 12.5]])


def test_downsample_recovers_block_values_under_zero_mean_texture():
    values = np.random.default_rng(2).integers(1, 255, (7, 7))
    checker = np.indices((SIDE, SIDE)).sum(axis=0) % 2 * 2 - 1  # +-1, zero mean in every 4 x 4 block
    image = np.kron(values, np.ones((4, 4))) + checker
    assert_array_equal(downsample(image, 4), values)


@pytest.mark.parametrize("factor", [0, 3, 2.0, True])
def test_downsample_rejects_factor_not_dividing_side(factor):
    with pytest.raises(ValueError, match=f"dividing side=28; got factor={factor!r}"):
        downsample(np.zeros((SIDE, SIDE)), factor)


def test_binarize_splits_at_threshold():
    out = binarize(np.array([[0, 127], [128, 255]], np.uint8))
    assert out.dtype == np.uint8
    assert_array_equal(out, [[0, 0], [1, 1]])


# --------------------------------------------------------------------------- PCA, standardize


def test_pca_with_full_rank_reconstructs_exactly():
    X = np.random.default_rng(3).normal(100, 30, size=(40, 9))
    model = pca_fit(X, 9)
    assert_allclose(pca_inverse_transform(model, pca_transform(model, X)), X, atol=1e-3)
    assert_allclose(model.components @ model.components.T, np.eye(9), atol=1e-12)


def test_pca_is_deterministic_and_independent_of_row_order():
    X = np.random.default_rng(4).normal(size=(50, 6)) * [5, 4, 3, 2, 1, 0.5]
    first, again = pca_fit(X, 4), pca_fit(X, 4)
    for a, b in zip(first, again):
        assert_array_equal(a, b)
    shuffled = pca_fit(X[np.random.default_rng(5).permutation(50)], 4)
    assert_allclose(shuffled.components, first.components, atol=1e-12)
    biggest = np.abs(first.components).argmax(axis=1)
    assert (first.components[np.arange(4), biggest] > 0).all()


def test_pca_matches_scikit_learn():
    from sklearn.decomposition import PCA

    X = np.random.default_rng(6).normal(size=(60, 8)) @ np.random.default_rng(7).normal(size=(8, 8))
    model, reference = pca_fit(X, 5), PCA(5, svd_solver="full").fit(X)
    assert_allclose(model.components, reference.components_, atol=1e-10)
    assert_allclose(model.explained_variance, reference.explained_variance_, rtol=1e-10)
    assert_allclose(pca_transform(model, X), reference.transform(X), atol=1e-4)


@pytest.mark.parametrize("n_components", [0, 7, 2.0])
def test_pca_rejects_n_components_out_of_range(n_components):
    expected = rf"in \[1, min\(n_samples, n_features\)=6\]; got n_components={n_components}"
    with pytest.raises(ValueError, match=expected):
        pca_fit(np.zeros((10, 6)), n_components)


def test_pca_transform_rejects_wrong_number_of_features():
    model = pca_fit(np.random.default_rng(8).normal(size=(10, 8)), 3)
    with pytest.raises(ValueError, match="X has 5 features; the model was fitted on 8"):
        pca_transform(model, np.zeros((2, 5)))


def test_standardize_gives_zero_mean_unit_variance_and_zero_for_constant_pixels():
    X = np.random.default_rng(9).integers(0, 256, size=(30, 5)).astype(np.uint8)
    X[:, 2] = 0  # a pixel blank in every training image
    model = standardize_fit(X)
    Z = standardize_transform(model, X)
    varies = [0, 1, 3, 4]
    assert_allclose(Z[:, varies].mean(axis=0), 0, atol=1e-6)
    assert_allclose(Z[:, varies].var(axis=0), 1, rtol=1e-5)
    assert model.std[2] == 0
    new = np.full((1, 5), 200, np.uint8)  # ink where training had none
    assert standardize_transform(model, new)[0, 2] == 0


def test_standardize_matches_scikit_learn_on_varying_pixels():
    from sklearn.preprocessing import StandardScaler

    X = np.random.default_rng(10).integers(0, 256, size=(30, 6)).astype(float)
    assert_allclose(standardize_transform(standardize_fit(X), X), StandardScaler().fit_transform(X), atol=1e-5)


def test_standardize_rejects_images():
    with pytest.raises(ValueError, match=r"shape \(n_samples, n_features\); got shape \(2, 28, 28\)"):
        standardize_fit(np.zeros((2, SIDE, SIDE)))


# --------------------------------------------------------------------------- pipeline


def test_pipeline_equals_the_composed_calls():
    X = random_digits()
    got = pipeline(X, ["deskew", ("blur", 1.0), ("remove_noise", {"min_size": 3}), ("downsample", 2)])
    assert_array_equal(got, downsample(remove_noise(blur(deskew(X), 1.0), min_size=3), 2))


def test_pipeline_without_steps_returns_float32_images():
    X = random_digits()
    out = pipeline(X, [])
    assert out.dtype == np.float32
    assert_array_equal(out, X)


def test_pipeline_rejects_unknown_step_before_running_any():
    with pytest.raises(ValueError, match="unknown step 'sharpen'"):
        pipeline(np.zeros((SIDE, SIDE)), ["deskew", "sharpen"])


def test_pipeline_rejects_malformed_step():
    with pytest.raises(ValueError, match=r"each step must be a name or a \(name, \*args"):
        pipeline(np.zeros((SIDE, SIDE)), [(1.0, "blur")])


# --------------------------------------------------------------------------- boundary checks


@pytest.mark.parametrize("func", IMAGE_FUNCTIONS.values(), ids=IMAGE_FUNCTIONS.keys())
def test_flattened_images_raise(func):
    with pytest.raises(ValueError, match=r"got shape \(5, 784\)\. Flattened images\?"):
        func(np.zeros((5, 784), np.uint8))


@pytest.mark.parametrize("func", IMAGE_FUNCTIONS.values(), ids=IMAGE_FUNCTIONS.keys())
@pytest.mark.parametrize("shape", [(SIDE,), (2, 1, SIDE, SIDE), (2, SIDE, 14)])
def test_wrong_image_shape_raises(func, shape):
    if func is IMAGE_FUNCTIONS["blur"] and shape == (2, SIDE, 14):
        pytest.skip("blur takes batches of rectangular images (see test_blur_of_rectangular_images)")
    with pytest.raises(ValueError, match=r"shape \(n, side, side\) or \(side, side\).*got shape"):
        func(np.zeros(shape, np.uint8))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blur_of_rectangular_images_matches_scipy(dtype):
    # The one Gaussian filter of the package also serves the tangent distance, whose images may be
    # rectangular, in float64.
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, size=(3, SIDE, 14)).astype(np.uint8)
    out = blur(images, 1.3, truncate=3.0, dtype=dtype)
    assert out.dtype == dtype and out.shape == images.shape
    expected = np.stack([ndimage.gaussian_filter(im.astype(np.float64), 1.3, mode="constant", truncate=3.0)
                         for im in images])
    assert_allclose(out, expected, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-3 if dtype == np.float32 else 1e-9)


@pytest.mark.parametrize("func", IMAGE_FUNCTIONS.values(), ids=IMAGE_FUNCTIONS.keys())
@pytest.mark.parametrize("dtype", [bool, complex, object])
def test_non_numeric_dtype_raises(func, dtype):
    with pytest.raises(ValueError, match=f"integer or floating-point array.*got dtype {np.dtype(dtype)}"):
        func(np.zeros((2, SIDE, SIDE), dtype))


@pytest.mark.parametrize("func", IMAGE_FUNCTIONS.values(), ids=IMAGE_FUNCTIONS.keys())
def test_nan_raises(func):
    X = np.zeros((2, SIDE, SIDE))
    X[1, 3, 4] = np.nan
    with pytest.raises(ValueError, match="must be finite"):
        func(X)


@pytest.mark.parametrize("func", IMAGE_FUNCTIONS.values(), ids=IMAGE_FUNCTIONS.keys())
def test_uint8_input_never_wraps_around(func):
    X = random_digits()  # 0 next to 255, 254 and 1
    assert_allclose(func(X), func(X.astype(np.float64)), atol=1e-3)


@pytest.mark.parametrize("name", IMAGE_FUNCTIONS)
def test_single_image_gives_the_same_as_a_batch_of_one(name):
    X = random_digits(n=1)
    single, batch = np.asarray(IMAGE_FUNCTIONS[name](X[0])), np.asarray(IMAGE_FUNCTIONS[name](X))
    expected = batch[:, 0] if name == "moments" else batch[0]  # moments: (6, n)
    assert single.shape == expected.shape
    assert_array_equal(single, expected)


def test_fitted_transforms_accept_uint8_without_wrapping():
    X = random_digits().reshape(6, -1)
    for fit, transform in [(standardize_fit, standardize_transform), (lambda X: pca_fit(X, 5), pca_transform)]:
        assert_allclose(transform(fit(X), X), transform(fit(X.astype(float)), X.astype(float)), atol=1e-3)


def test_to_uint8_rounds_and_clips():
    assert_array_equal(to_uint8(np.array([[-3.0, 0.49, 0.5, 1.5, 254.6, 300.0]])), [[0, 0, 0, 2, 255, 255]])
    assert to_uint8(np.zeros((2, 3, 3), dtype=np.float32)).dtype == np.uint8
