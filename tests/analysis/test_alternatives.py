"""Tests for mnist_knn.analysis.alternatives: the other classifiers, chosen on writer folds and costed."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from mnist_knn.analysis.alternatives import (
    ALTERNATIVES,
    GRID_POINTS,
    Cost,
    NCAKNNClassifier,
    choose_hyperparameters,
    fit_and_measure,
    make_model,
    measure_cost,
    pixels,
)
from mnist_knn.analysis.selection import writer_folds

pytest.importorskip("sklearn")


def digits(seed=0, n_per_class=40, n_classes=3, side=4, n_writers=12):
    """Tiny 'digits': each class a bright square in its own corner, plus noise; writers interleaved."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), n_per_class)
    X = rng.integers(0, 90, (len(y), side, side))
    for c in range(n_classes):
        r, col = divmod(c, 2)
        X[y == c, r * 2:r * 2 + 2, col * 2:col * 2 + 2] += 160
    writers = rng.integers(0, n_writers, len(y))
    return X.astype(np.uint8), y, writers


def test_every_model_has_the_same_budget_of_care():
    for alt in ALTERNATIVES.values():
        assert len(alt.grid) == GRID_POINTS, alt.name
        assert len({repr(sorted(g.items())) for g in alt.grid}) == GRID_POINTS, f"{alt.name}: repeated grid points"


@pytest.mark.parametrize("name", [n for n in ALTERNATIVES if n != "convnet"])
def test_every_model_is_seeded_and_builds_at_every_grid_point(name):
    for settings in ALTERNATIVES[name].grid:
        model = make_model(name, **settings)
        params = model.get_params() if hasattr(model, "get_params") else vars(model)
        seeds = {k: v for k, v in params.items() if k.endswith("random_state") or k == "seed"}
        assert all(v is not None for v in seeds.values()), f"{name}: unseeded {seeds}"


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("name", [n for n in ALTERNATIVES if n != "convnet"])
def test_every_model_fits_and_beats_chance_on_tiny_digits(name):
    X, y, _ = digits()
    Xin = pixels(X) if ALTERNATIVES[name].scaled else X.reshape(len(X), -1)
    model = make_model(name, **ALTERNATIVES[name].grid[0])
    if name == "rbf_svm":
        model.set_params(nystroem__n_components=50)
    if name == "hist_gradient_boosting":
        # fast here (OpenMP threads spin when the cores are busy); fewer components than the tiny digits' pixels
        model.set_params(histgradientboostingclassifier__max_iter=10, pca__n_components=10)
    model.fit(Xin, y)
    assert (model.predict(Xin) == y).mean() > 0.8


def test_make_model_refuses_unknown_names_and_settings():
    with pytest.raises(ValueError, match="unknown model 'svm'"):
        make_model("svm")
    with pytest.raises(ValueError, match=r"takes the settings \['C'\]; got unknown \['gamma'\]"):
        make_model("logistic_regression", gamma=1)


def test_pixels_scales_to_unit_float32_rows_and_validates():
    X = np.full((2, 3, 3), 255, np.uint8)
    out = pixels(X)
    assert out.dtype == np.float32 and out.shape == (2, 9) and (out == 1).all()
    assert_array_equal(pixels(X.reshape(2, 9)), out)
    with pytest.raises(ValueError, match="not a square number"):
        pixels(np.zeros((2, 10)))


def test_choose_hyperparameters_scores_each_setting_on_writer_folds(tmp_path):
    X, y, writers = digits()
    s = choose_hyperparameters("logistic_regression", X, y, writers, n_folds=3, cache=False)
    folds = writer_folds(writers, 3)
    # the held-out prediction of a digit comes from a model fitted without its writer's digits
    from sklearn.linear_model import LogisticRegression

    for i, settings in enumerate(s.grid):
        expected = np.empty(len(y), dtype=np.int64)
        for f in range(3):
            held = folds == f
            m = LogisticRegression(max_iter=200, random_state=2026, **settings).fit(pixels(X)[~held], y[~held])
            expected[held] = m.predict(pixels(X)[held])
        assert_array_equal(s.predictions[i], expected)
    assert_array_equal(s.errors, (s.predictions != y).mean(axis=1))
    assert s.best == s.grid[int(np.argmin(s.errors))]
    assert list(s.table().columns) == ["C", "held_out_error"]


def test_choose_hyperparameters_ties_go_to_the_simplest_setting():
    X, y, writers = digits()
    s = choose_hyperparameters("nearest_centroid", X, y, writers, grid=[{"shrink_threshold": None}] * 2, cache=False)
    assert s.errors[0] == s.errors[1] and s.best == {"shrink_threshold": None}


def test_choose_hyperparameters_caches_the_held_out_predictions(tmp_path):
    X, y, writers = digits()
    first = choose_hyperparameters("nearest_centroid", X, y, writers, cache=tmp_path)
    files = list(tmp_path.glob("alt-select-nearest_centroid-*.npz"))
    assert len(files) == 1
    second = choose_hyperparameters("nearest_centroid", X, y, writers, cache=tmp_path)
    assert_array_equal(first.predictions, second.predictions)
    # another grid is another entry
    choose_hyperparameters("nearest_centroid", X, y, writers, grid=[{"shrink_threshold": 0.5}], cache=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 2


def test_choose_hyperparameters_validates_its_inputs():
    X, y, writers = digits()
    with pytest.raises(ValueError, match="writers must have shape"):
        choose_hyperparameters("nearest_centroid", X, y, writers[:-1], cache=False)
    with pytest.raises(ValueError, match="one label per row"):
        choose_hyperparameters("nearest_centroid", X, y[:-1], writers, cache=False)
    with pytest.raises(ValueError, match="unknown"):
        choose_hyperparameters("nearest_centroid", X, y, writers, grid=[{"C": 1}], cache=False)
    with pytest.raises(ValueError, match="at least one setting"):
        choose_hyperparameters("nearest_centroid", X, y, writers, grid=[], cache=False)
    with pytest.raises(ValueError, match="n_folds"):
        choose_hyperparameters("nearest_centroid", X, y, writers, n_folds=0, cache=False)


def test_fit_and_measure_predicts_like_a_direct_fit_and_reports_its_cost(tmp_path):
    X, y, _ = digits()
    Xe, ye, _ = digits(seed=1)
    fitted = fit_and_measure("logistic_regression", {"C": 1.0}, X, y, Xe, timing_rows=10, repeats=2, cache=False)
    direct = make_model("logistic_regression", C=1.0).fit(pixels(X), y)
    assert_array_equal(fitted.predictions, direct.predict(pixels(Xe)))
    np.testing.assert_allclose(fitted.scores, direct.predict_proba(pixels(Xe)), rtol=1e-6)
    c = fitted.cost
    assert isinstance(c, Cost) and c.fit_seconds > 0 and c.predict_seconds_per_digit > 0
    assert c.model_bytes > 0 and c.timing_rows == 10 and c.repeats == 2
    assert not fitted.from_cache


def test_fit_and_measure_caches_predictions_scores_and_cost(tmp_path):
    X, y, _ = digits()
    Xe, _, _ = digits(seed=1)
    cold = fit_and_measure("nearest_centroid", {}, X, y, Xe, timing_rows=5, cache=tmp_path)
    warm = fit_and_measure("nearest_centroid", {}, X, y, Xe, timing_rows=5, cache=tmp_path)
    assert not cold.from_cache and warm.from_cache
    assert_array_equal(cold.predictions, warm.predictions)
    assert cold.cost == warm.cost  # the cost measured when the entry was written
    # a damaged entry is recomputed
    (path,) = tmp_path.glob("alt-fit-*.npz")
    path.write_bytes(b"not a zip")
    again = fit_and_measure("nearest_centroid", {}, X, y, Xe, timing_rows=5, cache=tmp_path)
    assert not again.from_cache
    assert_array_equal(again.predictions, cold.predictions)


def test_fit_and_measure_validates_its_inputs():
    X, y, _ = digits()
    with pytest.raises(ValueError, match="timing_rows"):
        fit_and_measure("nearest_centroid", {}, X, y, X, timing_rows=0, cache=False)
    with pytest.raises(ValueError, match="integer labels"):
        fit_and_measure("nearest_centroid", {}, X, y.astype(float), X, cache=False)
    with pytest.raises(ValueError, match="at least two classes"):
        fit_and_measure("nearest_centroid", {}, X, np.zeros_like(y), X, cache=False)


def test_measure_cost_times_an_already_fitted_model():
    X, y, _ = digits()
    model = make_model("knn", n_neighbors=1).fit(X.reshape(len(X), -1), y)
    _, cost = measure_cost(model, None, None, X.reshape(len(X), -1)[:7], fit=False, repeats=1)
    assert np.isnan(cost.fit_seconds) and cost.timing_rows == 7
    assert cost.model_bytes >= X.nbytes  # k-NN keeps its training matrix
    with pytest.raises(ValueError, match="repeats"):
        measure_cost(model, None, None, X[:1], fit=False, repeats=0)


def test_nca_knn_learns_on_a_stratified_subset():
    X, y, _ = digits()
    model = NCAKNNClassifier(n_components=4, n_neighbors=1, nca_digits=30, max_iter=10).fit(pixels(X), y)
    assert model.transform(pixels(X)).shape == (len(y), 4)
    assert (model.predict(pixels(X)) == y).mean() > 0.9
    assert model.predict_proba(pixels(X)).shape == (len(y), 3)


def test_knn_is_chosen_and_costed_like_the_others_on_images():
    X, y, writers = digits()
    s = choose_hyperparameters("knn", X, y, writers, cache=False)  # (n, side, side) images are fed as rows
    assert s.predictions.shape == (GRID_POINTS, len(y))
    fitted = fit_and_measure("knn", s.best, X, y, X[:20], timing_rows=20, repeats=1, cache=False)
    assert fitted.cost.model_bytes >= X.nbytes  # the training matrix is what k-NN stores
    assert fitted.scores.shape == (20, 3)


class Remembered:
    """A model that reports its own training time (as a net whose weights came from a cache does)."""

    def fit(self, X, y):
        self.fit_seconds_ = 123.0
        return self

    def predict(self, X):
        return np.zeros(len(X), dtype=int)


def test_measure_cost_reports_a_model_s_own_training_time():
    X, y, _ = digits()
    _, cost = measure_cost(Remembered(), X.reshape(len(X), -1), y, X[:5].reshape(5, -1), repeats=1)
    assert cost.fit_seconds == 123.0
