"""Tests for the "virtual digit" distortions of mnist_knn.data.preprocess: distort and change_thickness.

``distort`` rotates, scales and shears each image about its centre ``((side-1)/2, (side-1)/2)`` with the
forward map ``A = scale * R(rotation) @ [[1, 0], [shear, 1]]`` on (row, column) offsets, bilinear, zeros
outside, clipped to [0, 255], float32. ``change_thickness`` is a grey-level dilation (steps > 0) or
erosion (steps < 0) with a 3x3 cross, zeros outside, dtype preserved. Images are built inside each test.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import ndimage

from mnist_knn.data.preprocess import change_thickness, distort, moments

SIDE = 28
ROWS, COLS = np.mgrid[:SIDE, :SIDE].astype(np.float64)
CROSS = ndimage.generate_binary_structure(2, 1)  # the 3x3 cross: centre and its four neighbours


def blob(row=13.0, col=15.0, sigma=3.0, side=SIDE):
    """A smooth Gaussian blob, peak 255, as float64."""
    r, c = np.mgrid[:side, :side].astype(np.float64)
    return 255 * np.exp(-((r - row) ** 2 + (c - col) ** 2) / (2 * sigma**2))


def random_images(n, side, seed=0, dtype=np.uint8):
    """Random 0-255 images, about half the pixels 0 (sharp ink/no-ink edges everywhere)."""
    rng = np.random.default_rng(seed)
    X = rng.integers(1, 256, size=(n, side, side))
    X[rng.random((n, side, side)) < 0.5] = 0
    return X.astype(dtype)


def forward_matrix(rotation, scale, shear):
    """The documented forward map on (row, column) offsets."""
    t = np.deg2rad(rotation)
    turn = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    return scale * turn @ np.array([[1.0, 0.0], [shear, 1.0]])


def scipy_distort(image, rotation=0.0, scale=1.0, shear=0.0):
    """The same distortion by scipy: output[p] = input[inverse @ p + offset], bilinear, zeros outside."""
    side = image.shape[-1]
    inverse = np.linalg.inv(forward_matrix(rotation, scale, shear))
    centre = np.full(2, (side - 1) / 2)
    offset = centre - inverse @ centre
    out = ndimage.affine_transform(
        np.asarray(image, np.float64), inverse, offset=offset, order=1, mode="grid-constant", cval=0.0
    )
    return np.clip(out, 0, 255)


def centre_of_mass(image):
    m = moments(image)
    return float(m.row), float(m.col)


# --------------------------------------------------------------------------- distort


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64, np.int64])
def test_distort_with_identity_parameters_returns_the_input_exactly(dtype):
    X = random_images(3, SIDE, dtype=dtype)
    for kwargs in ({}, dict(rotation=0.0, scale=1.0, shear=0.0), dict(rotation=0, scale=1, shear=0)):
        out = distort(X, **kwargs)
        assert out.dtype == np.float32
        assert out.shape == X.shape
        assert_array_equal(out, X.astype(np.float32))


def test_distort_identity_keeps_fractional_float32_values_exactly():
    X = (np.random.default_rng(1).random((2, 9, 9)) * 255).astype(np.float32)
    assert_array_equal(distort(X), X)


@pytest.mark.parametrize("side", [5, 6, 7, 28])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_distort_by_quarter_turns_is_exactly_rot90(side, k):
    X = random_images(4, side, seed=side + k)
    expected = np.rot90(X, k, axes=(1, 2)).astype(np.float32)
    assert_array_equal(distort(X, rotation=90.0 * k), expected)


@pytest.mark.parametrize(("rotation", "k"), [(-90.0, 3), (360.0, 0), (450.0, 1), (-180.0, 2)])
def test_distort_by_other_multiples_of_90_degrees_is_exactly_rot90(rotation, k):
    X = random_images(3, 6, seed=7)
    assert_array_equal(distort(X, rotation=rotation), np.rot90(X, k, axes=(1, 2)).astype(np.float32))


def test_distort_rotation_is_counter_clockwise_as_displayed():
    """A quarter turn counter-clockwise takes the top row to the left column (read bottom to top)."""
    image = np.zeros((5, 5), np.uint8)
    image[0] = [10, 20, 30, 40, 50]
    out = distort(image, rotation=90)
    assert_array_equal(out[:, 0], [50, 40, 30, 20, 10])
    assert out.sum() == image.sum()


@pytest.mark.parametrize("rotation", [7.0, -15.0, 30.0])
def test_distort_rotation_then_opposite_rotation_approximately_restores_a_smooth_blob(rotation):
    image = blob(row=12.0, col=15.5, sigma=3.0)
    turned = distort(image, rotation=rotation)
    back = distort(turned, rotation=-rotation)
    error = np.abs(back - image)
    # Two bilinear resamplings blur a little (the peak of 255 drops by about 10): not exact...
    assert 0 < error.max() < 16.0
    assert error.mean() < 0.6
    # ...but much closer than the turned blob, pixel by pixel.
    assert np.abs(back - image).sum() < 0.5 * np.abs(turned - image).sum()
    assert centre_of_mass(back) == pytest.approx(centre_of_mass(image), abs=0.02)


@pytest.mark.parametrize(
    ("rotation", "scale", "shear"),
    [(13.0, 1.15, 0.2), (-21.5, 0.85, -0.3), (0.0, 1.0, 0.4), (5.0, 1.0, 0.0), (0.0, 0.9, 0.0), (200.0, 1.3, -0.1)],
)
def test_distort_matches_scipy_affine_transform(rotation, scale, shear):
    rng = np.random.default_rng(3)
    smooth = blob(row=11.0, col=16.0, sigma=2.5) + blob(row=18.0, col=9.0, sigma=1.5)
    X = np.concatenate([random_images(3, SIDE, seed=4), np.clip(smooth, 0, 255)[None],
                        rng.integers(0, 256, (1, SIDE, SIDE))]).astype(np.float32)
    out = distort(X, rotation=rotation, scale=scale, shear=shear)
    assert out.dtype == np.float32
    expected = np.stack([scipy_distort(x, rotation, scale, shear) for x in X])
    assert_allclose(out, expected, rtol=0, atol=1e-3)


def test_distort_matches_scipy_on_an_odd_side():
    X = random_images(2, 9, seed=5)
    expected = np.stack([scipy_distort(x, 33.0, 1.2, -0.25) for x in X])
    assert_allclose(distort(X, rotation=33.0, scale=1.2, shear=-0.25), expected, rtol=0, atol=1e-3)


def test_distort_output_is_clipped_to_0_255():
    X = random_images(2, SIDE, seed=6)
    out = distort(X, rotation=11.0, scale=1.4, shear=0.3)
    assert out.min() >= 0 and out.max() <= 255


@pytest.mark.parametrize(("scale", "bigger"), [(1.25, True), (0.8, False)])
def test_distort_scale_changes_the_spread_of_the_ink(scale, bigger):
    image = blob(row=13.5, col=13.5, sigma=2.5)
    m0 = moments(image)
    m = moments(distort(image, scale=scale))
    spread0, spread = m0.mu20 + m0.mu02, m.mu20 + m.mu02
    if bigger:
        assert spread > 1.3 * spread0
    else:
        assert spread < 0.75 * spread0
    assert spread / spread0 == pytest.approx(scale**2, rel=0.1)  # up to the blur of the interpolation
    assert centre_of_mass(distort(image, scale=scale)) == pytest.approx((13.5, 13.5), abs=1e-6)


def test_distort_shear_moves_rows_below_the_centre_right_and_rows_above_left():
    image = np.zeros((SIDE, SIDE))
    image[24, 12] = 200  # 10.5 rows below the centre (13.5)
    image[3, 15] = 100  # 10.5 rows above it
    out = distort(image, shear=0.2)
    bottom, top = np.zeros_like(image), np.zeros_like(image)
    bottom[24], top[3] = out[24], out[3]
    assert_array_equal(out[[r for r in range(SIDE) if r not in (3, 24)]], 0)  # rows stay rows
    # Linear interpolation keeps the centre of mass of a sampled hat: exactly c + shear * 10.5.
    assert centre_of_mass(bottom) == pytest.approx((24.0, 12 + 0.2 * 10.5), abs=1e-4)
    assert centre_of_mass(top) == pytest.approx((3.0, 15 - 0.2 * 10.5), abs=1e-4)
    left = distort(image, shear=-0.2)
    left[:24] = 0
    assert centre_of_mass(left) == pytest.approx((24.0, 12 - 0.2 * 10.5), abs=1e-4)


def test_distort_of_a_single_image_returns_a_single_image():
    image = np.clip(blob(), 0, 255).astype(np.uint8)
    out = distort(image, rotation=12.0, scale=1.1, shear=0.1)
    assert out.shape == (SIDE, SIDE) and out.dtype == np.float32
    assert_array_equal(out, distort(image[None], rotation=12.0, scale=1.1, shear=0.1)[0])


def test_distort_treats_each_image_of_a_batch_on_its_own():
    X = random_images(5, 12, seed=8)
    batch = distort(X, rotation=-8.0, shear=0.15)
    for x, out in zip(X, batch):
        assert_array_equal(out, distort(x, rotation=-8.0, shear=0.15))


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_distort_leaves_its_input_unchanged(dtype):
    X = random_images(3, SIDE, seed=9, dtype=dtype)
    before = X.copy()
    distort(X, rotation=25.0, scale=0.9, shear=0.2)
    distort(X)
    assert_array_equal(X, before)


def test_distort_accepts_numpy_scalars():
    X = random_images(2, 10, seed=10)
    assert_array_equal(
        distort(X, rotation=np.float32(10.0), scale=np.float64(1.1), shear=np.int64(0)),
        distort(X, rotation=10.0, scale=1.1, shear=0.0),
    )


@pytest.mark.parametrize("scale", [0, 0.0, -1.0, -0.5])
def test_distort_rejects_a_non_positive_scale(scale):
    with pytest.raises(ValueError, match=rf"scale must be > 0; got scale={scale!r}"):
        distort(np.zeros((2, 5, 5)), scale=scale)


@pytest.mark.parametrize("name", ["rotation", "scale", "shear"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, True, False, "1.0", None, [1.0]])
def test_distort_rejects_a_parameter_that_is_not_a_finite_number(name, value):
    with pytest.raises(ValueError, match=f"{name} must be a finite number; got {name}="):
        distort(np.zeros((2, 5, 5)), **{name: value})


@pytest.mark.parametrize("images", [np.zeros((2, 5, 6)), np.zeros(25), np.zeros((2, 25)), np.zeros((2, 5, 5), bool)])
def test_distort_rejects_images_of_the_wrong_shape_or_dtype(images):
    with pytest.raises(ValueError, match="images must"):
        distort(images, rotation=5.0)


# --------------------------------------------------------------------------- change_thickness


def dot_image(dtype=np.uint8, side=7, value=200):
    image = np.zeros((side, side), dtype)
    image[side // 2, side // 2] = value
    return image


def test_change_thickness_with_zero_steps_is_a_copy():
    X = random_images(3, 8, seed=11)
    out = change_thickness(X, 0)
    assert_array_equal(out, X)
    assert out.dtype == X.dtype
    assert out is not X and not np.shares_memory(out, X)
    single = change_thickness(X[0], 0)
    assert_array_equal(single, X[0])
    assert not np.shares_memory(single, X)


def test_dilating_a_dot_gives_the_five_pixel_cross():
    out = change_thickness(dot_image(), 1)
    expected = np.zeros((7, 7), np.uint8)
    expected[2:5, 3] = expected[3, 2:5] = 200
    assert_array_equal(out, expected)


def test_eroding_the_cross_gives_the_dot_back():
    cross = change_thickness(dot_image(), 1)
    assert_array_equal(change_thickness(cross, -1), dot_image())


def test_two_dilation_steps_of_a_dot_give_the_diamond_of_radius_two():
    out = change_thickness(dot_image(), 2)
    r, c = np.mgrid[:7, :7]
    assert_array_equal(out, np.where(np.abs(r - 3) + np.abs(c - 3) <= 2, 200, 0))


def test_eroding_a_one_pixel_stroke_removes_it():
    image = np.zeros((9, 9), np.uint8)
    image[1:8, 4] = 255
    assert_array_equal(change_thickness(image, -1), 0)


def test_erosion_treats_the_outside_as_zero():
    full = np.full((6, 6), 100, np.uint8)
    expected = np.zeros((6, 6), np.uint8)
    expected[1:-1, 1:-1] = 100
    assert_array_equal(change_thickness(full, -1), expected)


@pytest.mark.parametrize("steps", [1, 2, -1, -2, 3, -3])
def test_change_thickness_matches_scipy_grey_dilation_and_erosion(steps):
    X = random_images(4, 12, seed=12 + steps)
    morph = ndimage.grey_dilation if steps > 0 else ndimage.grey_erosion
    expected = X.copy()
    for _ in range(abs(steps)):
        expected = np.stack([morph(x, footprint=CROSS, mode="constant", cval=0) for x in expected])
    assert_array_equal(change_thickness(X, steps), expected)


@pytest.mark.parametrize("steps", [2, -2, 3])
def test_several_steps_are_repeated_single_steps(steps):
    X = random_images(3, 10, seed=20)
    one = int(np.sign(steps))
    expected = X
    for _ in range(abs(steps)):
        expected = change_thickness(expected, one)
    assert_array_equal(change_thickness(X, steps), expected)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("steps", [0, 1, -1])
def test_change_thickness_preserves_the_dtype_and_shape(dtype, steps):
    X = random_images(2, 8, seed=13, dtype=dtype)
    out = change_thickness(X, steps)
    assert out.dtype == np.dtype(dtype) and out.shape == X.shape
    single = change_thickness(X[0], steps)
    assert single.dtype == np.dtype(dtype) and single.shape == X[0].shape
    assert_array_equal(single, out[0])


def test_change_thickness_keeps_fractional_float_values():
    X = (np.random.default_rng(14).random((2, 6, 6)) * 255).astype(np.float32)
    expected = np.stack([ndimage.grey_dilation(x, footprint=CROSS, mode="constant", cval=0) for x in X])
    assert_array_equal(change_thickness(X, 1), expected)


def test_change_thickness_accepts_numpy_integer_steps():
    X = random_images(2, 8, seed=15)
    assert_array_equal(change_thickness(X, np.int64(-1)), change_thickness(X, -1))
    assert_array_equal(change_thickness(X, np.uint8(1)), change_thickness(X, 1))


def test_change_thickness_leaves_its_input_unchanged():
    X = random_images(2, 8, seed=16)
    before = X.copy()
    change_thickness(X, 2)
    change_thickness(X, -2)
    assert_array_equal(X, before)


@pytest.mark.parametrize("steps", [1.0, 0.5, -1.0, True, False, "1", None, np.float64(1.0)])
def test_change_thickness_rejects_non_integer_steps(steps):
    with pytest.raises(ValueError, match=r"steps must be an integer; got steps="):
        change_thickness(np.zeros((2, 5, 5), np.uint8), steps)
