"""The classifiers a reader would otherwise pick, chosen and costed with the report's one protocol (notebook 07).

Every model is a named entry of :data:`ALTERNATIVES`: a seeded factory and a grid of hyper-parameter
settings, each grid the same size (:data:`GRID_POINTS`), ordered from the simplest setting to the most
elaborate, so that every model gets the same budget of care and a tie goes to simplicity.

- :func:`make_model`: a fresh, seeded estimator of a named model at given settings;
- :func:`choose_hyperparameters`: each grid point judged on writer-grouped folds of the *training*
  set (:func:`~mnist_knn.analysis.selection.writer_folds`: a fold's writers wrote none of the digits
  the model was fitted on, as for the test set); the smallest held-out error wins;
- :func:`fit_and_measure`: the chosen model fitted on all training digits, its predictions (and
  scores) on the evaluation digits, and its :class:`Cost`: fit seconds, prediction seconds per digit,
  and the bytes of its pickle;
- :func:`measure_cost`: the same measurement for any estimator (a compressed or approximate k-NN).

Held-out predictions and fitted models' predictions, scores and costs are cached under
``data/cache/`` (keyed by a digest of the inputs, the model, its settings, scikit-learn's version and
:data:`ALTERNATIVES_CACHE_VERSION`), so a warm notebook run refits nothing. A cached cost is the one
measured when the entry was written: timings are reported, never compared by a test.

The models
----------
``nearest_centroid``
    One mean image per class (optionally shrunken centroids).
``logistic_regression``
    Multinomial logistic regression (L-BFGS, 200 iterations at most).
``linear_svm``
    A linear support-vector machine (liblinear, squared hinge, primal).
``rbf_svm``
    An RBF-kernel SVM *approximated*: a Nystroem feature map of 1,500 components (Williams & Seeger,
    2001) followed by a linear SVM. The exact kernel SVM (``rbf_svm_exact``) was measured here too slow
    for the notebook's budget: fitting on 5,000 digits took 4.4 s and on 2,500 took 1.5 s (growth
    about n^1.6), so some 4-10 minutes on 60,000 for one setting, before the selection's refits and
    about 2 ms per digit to predict with 2,800 support vectors (more with more digits).
``rbf_svm_exact``
    scikit-learn's ``SVC`` (libsvm), exact, for runs that can afford it.
``random_forest``
    100 trees, the share of pixels tried at each split chosen.
``hist_gradient_boosting``
    Histogram gradient boosting, 100 rounds (one tree per class each), no early stopping, on the first 50
    principal components of the pixels: on all 784 pixels one fit on 5,000 digits took over half a minute
    here (the selection's eight fits more than five minutes), too slow for the notebook's budget. Leaf
    values carry an L2 penalty of 1: without one, the rate 0.3 diverged when fitted on all 60,000 digits
    (huge class scores, a tenth of its own training digits misclassified: notebook 07 shows it).
``mlp``
    A multi-layer perceptron, one hidden layer of 256 ReLU units, Adam, 30 epochs.
``nca_knn``
    k-NN on a learned linear metric: scikit-learn's neighbourhood components analysis, fitted on a
    seeded class-stratified subset of 2,000 training digits (its cost grows with the square of the
    digits), then this package's exact k-NN on all training digits projected.
``knn``
    This package's exact k-NN on raw pixels (:class:`~mnist_knn.engine.estimator.KNNClassifier`).
``convnet``
    The small convolutional network of :mod:`mnist_knn.analysis.convnet` (needs PyTorch).

Every model but ``knn`` and ``convnet`` sees pixels scaled to [0, 1] as float32 (:func:`pixels`);
``knn`` sees the pixels as given; ``convnet`` scales them itself.
"""

import io
import pickle
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import validation
from ..engine.estimator import KNNClassifier
from ..paths import CACHE_DIR
from ..progress import progress
from ..store import cached_arrays, digest
from .selection import SELECTION_SEED, writer_folds

__all__ = [
    "ALTERNATIVES",
    "ALTERNATIVES_CACHE_VERSION",
    "ALTERNATIVES_SEED",
    "Alternative",
    "Cost",
    "Fitted",
    "GRID_POINTS",
    "N_JOBS",
    "NCAKNNClassifier",
    "Selection",
    "choose_hyperparameters",
    "fit_and_measure",
    "make_model",
    "measure_cost",
    "pixels",
]

#: The seed of every model (and of NCA's subset): one value, report-wide.
ALTERNATIVES_SEED = 2026
#: Grid points per model: the same budget of care for each.
GRID_POINTS = 4
#: Worker processes or threads for the models that take a count (random forest): the machine's two cores.
N_JOBS = 2
#: Bump when a change here could change any cached prediction or cost.
ALTERNATIVES_CACHE_VERSION = 2


def pixels(X, name="X"):
    """Images as float32 rows scaled to [0, 1]: ``(n, 28, 28)`` or ``(n, 784)`` in 0-255 ink -> ``(n, 784)``.

    Examples
    --------
    >>> pixels(np.array([[[0, 255], [51, 102]]], dtype=np.uint8)).tolist()
    [[0.0, 1.0, 0.20000000298023224, 0.4000000059604645]]
    """
    X = validation.images(X, name)
    return (X.reshape(len(X), -1).astype(np.float32) / np.float32(255)).astype(np.float32, copy=False)


# --------------------------------------------------------------------------- the models


def _nearest_centroid(shrink_threshold=None):
    from sklearn.neighbors import NearestCentroid

    return NearestCentroid(shrink_threshold=shrink_threshold)


def _logistic_regression(C=1.0):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, max_iter=200, random_state=ALTERNATIVES_SEED)


def _linear_svm(C=1.0):
    from sklearn.svm import LinearSVC

    return LinearSVC(C=C, dual=False, max_iter=1000, random_state=ALTERNATIVES_SEED)


def _rbf_svm(gamma=0.02, C=1.0, n_components=1500):
    from sklearn.kernel_approximation import Nystroem
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    return make_pipeline(
        Nystroem(kernel="rbf", gamma=gamma, n_components=n_components, random_state=ALTERNATIVES_SEED),
        LinearSVC(C=C, dual=False, max_iter=1000, random_state=ALTERNATIVES_SEED),
    )


def _rbf_svm_exact(gamma=0.02, C=1.0):
    from sklearn.svm import SVC

    return SVC(kernel="rbf", gamma=gamma, C=C, cache_size=1000, random_state=ALTERNATIVES_SEED)


def _random_forest(max_features="sqrt"):
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=100, max_features=max_features, n_jobs=N_JOBS,
                                  random_state=ALTERNATIVES_SEED)


def _hist_gradient_boosting(pca_components=50, learning_rate=0.1, max_leaf_nodes=31):
    from sklearn.decomposition import PCA
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import make_pipeline

    return make_pipeline(
        PCA(n_components=pca_components, svd_solver="full", random_state=ALTERNATIVES_SEED),
        HistGradientBoostingClassifier(learning_rate=learning_rate, max_leaf_nodes=max_leaf_nodes, max_iter=100,
                                       l2_regularization=1.0, early_stopping=False, random_state=ALTERNATIVES_SEED),
    )


def _mlp(alpha=1e-4):
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(hidden_layer_sizes=(256,), alpha=alpha, max_iter=30, early_stopping=False,
                         random_state=ALTERNATIVES_SEED)


def _nca_knn(n_components=32, n_neighbors=3):
    return NCAKNNClassifier(n_components=n_components, n_neighbors=n_neighbors)


def _knn(n_neighbors=3):
    # the seed serves only tie_break="random"; it is set so that every model is seeded
    return KNNClassifier(n_neighbors=n_neighbors, random_state=ALTERNATIVES_SEED)


def _convnet(learning_rate=1e-3, weight_decay=0.0):
    from .convnet import ConvNetClassifier

    # Weights cached: a notebook reloads the trained net (for its learned features) without training it again;
    # the net reports the time its training took (fit_seconds_), which measure_cost uses.
    return ConvNetClassifier(learning_rate=learning_rate, weight_decay=weight_decay, seed=ALTERNATIVES_SEED,
                             cache=True)


@dataclass(frozen=True)
class Alternative:
    """A named model: its factory, grid of settings (simplest first) and what it is fed.

    Attributes
    ----------
    name : str
    label : str
        A short human name, for tables and figures.
    factory : callable
        ``factory(**settings)`` returns a fresh, seeded, unfitted estimator.
    grid : tuple of dict
        :data:`GRID_POINTS` settings, ordered from the simplest (most regularised, cheapest) first.
    scaled : bool
        Whether the model is fed :func:`pixels` (float32 in [0, 1]) rather than the images as given.
    """

    name: str
    label: str
    factory: object = field(repr=False)
    grid: tuple
    scaled: bool = True


def _grid(**axes):
    """The product of the axes' values, the first axis varying slowest, as a tuple of dicts."""
    keys = list(axes)
    points = [{}]
    for key in keys:
        points = [{**p, key: v} for p in points for v in axes[key]]
    return tuple(points)


#: Every model, by name (see the module's docstring).
ALTERNATIVES = {
    a.name: a
    for a in [
        Alternative("nearest_centroid", "nearest centroid", _nearest_centroid,
                    _grid(shrink_threshold=[None, 0.1, 0.3, 1.0])),
        Alternative("logistic_regression", "logistic regression", _logistic_regression,
                    _grid(C=[0.01, 0.1, 1.0, 10.0])),
        Alternative("linear_svm", "linear SVM", _linear_svm, _grid(C=[0.001, 0.01, 0.1, 1.0])),
        Alternative("rbf_svm", "RBF SVM (Nystroem approximation)", _rbf_svm,
                    _grid(gamma=[0.01, 0.03], C=[1.0, 10.0])),
        Alternative("rbf_svm_exact", "RBF SVM (exact)", _rbf_svm_exact, _grid(gamma=[0.01, 0.03], C=[1.0, 10.0])),
        Alternative("random_forest", "random forest", _random_forest,
                    _grid(max_features=["log2", "sqrt", 0.05, 0.1])),
        Alternative("hist_gradient_boosting", "gradient boosting (on 50 principal components)",
                    _hist_gradient_boosting, _grid(pca_components=[50], learning_rate=[0.1, 0.3],
                                                   max_leaf_nodes=[15, 31])),
        Alternative("mlp", "multi-layer perceptron", _mlp, _grid(alpha=[1e-1, 1e-2, 1e-3, 1e-4])),
        Alternative("nca_knn", "k-NN on NCA's learned metric", _nca_knn,
                    _grid(n_components=[32, 64], n_neighbors=[1, 3])),
        Alternative("knn", "k-NN (raw pixels)", _knn, _grid(n_neighbors=[1, 3, 5, 7]), scaled=False),
        Alternative("convnet", "convolutional net", _convnet,
                    _grid(learning_rate=[1e-3, 3e-3], weight_decay=[0.0, 1e-4]), scaled=False),
    ]
}


def _alternative(name):
    if name not in ALTERNATIVES:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(ALTERNATIVES)}.")
    return ALTERNATIVES[name]


def make_model(name, **settings):
    """A fresh, seeded, unfitted estimator of the model ``name`` at ``settings``.

    Parameters
    ----------
    name : str
        A key of :data:`ALTERNATIVES`.
    **settings
        Hyper-parameters, as in the model's grid; those not given keep the factory's defaults.

    Raises
    ------
    ValueError
        For an unknown name or a setting the model does not take.

    Examples
    --------
    >>> make_model("logistic_regression", C=0.1)
    LogisticRegression(C=0.1, max_iter=200, random_state=2026)
    """
    alt = _alternative(name)
    allowed = set().union(*alt.grid)
    extra = sorted(set(settings) - allowed)
    if extra:
        raise ValueError(f"model {name!r} takes the settings {sorted(allowed)}; got unknown {extra}.")
    return alt.factory(**settings)


def _fit(model, X, y):
    """Fit, with the convergence warnings of a fixed iteration budget silenced (the budget is part of the
    model's definition, and a warning would differ between runs' outputs only in noise), and nearest
    centroid's note on blank pixels."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # NearestCentroid's shrinkage notes pixels blank throughout a class (the border): expected, not a fault
        warnings.filterwarnings("ignore", message=".*zero standard deviation", category=UserWarning)
        return model.fit(X, y)


def _inputs(alt, X):
    """What the model is fed: :func:`pixels`, or the pixels as given, as rows."""
    return pixels(X) if alt.scaled else np.asarray(X).reshape(len(X), -1)


def _settings_key(settings):
    return repr(sorted(settings.items()))


def _key(*parts, arrays=()):
    """A cache-file stem: a digest of the arrays and the textual parts (model, settings, versions)."""
    import sklearn

    text = "|".join([*map(str, parts), f"sklearn={sklearn.__version__}", f"v{ALTERNATIVES_CACHE_VERSION}"])
    return digest(*arrays, np.frombuffer(text.encode(), np.uint8))


def _cache_path(cache, stem):
    return Path(CACHE_DIR if cache is True else cache) / f"{stem}.npz"


def _check_training(X, y, name_X="X_train", name_y="y_train"):
    X = np.asarray(validation.not_masked(X, name_X))
    y = np.asarray(validation.not_masked(y, name_y))
    if y.ndim != 1 or len(y) != len(X):
        raise ValueError(f"{name_y} must be 1-D with one label per row of {name_X} ({len(X)}); got shape {y.shape}.")
    if y.dtype.kind not in "iu":
        raise ValueError(f"{name_y} must hold integer labels; got dtype {y.dtype}.")
    if len(np.unique(y)) < 2:
        raise ValueError(f"{name_y} must hold at least two classes.")
    validation.images(X, name_X)
    return X, y


# --------------------------------------------------------------------------- choosing the settings


@dataclass(frozen=True)
class Selection:
    """Hyper-parameters chosen on writer-grouped folds of the training set.

    Attributes
    ----------
    name : str
    grid : tuple of dict
    errors : ndarray of shape (n_grid,)
        Held-out error of each grid point: the share of training digits misclassified by the model
        fitted on the other folds (other writers).
    best : dict
        The grid point with the smallest held-out error (ties to the first, the simplest).
    predictions : ndarray of shape (n_grid, n_digits)
        Every digit's held-out prediction at each grid point.
    """

    name: str
    grid: tuple
    errors: np.ndarray
    best: dict
    predictions: np.ndarray = field(repr=False)

    def table(self):
        """The held-out errors as a DataFrame, one row per grid point (settings as columns)."""
        frame = pd.DataFrame(list(self.grid))
        frame["held_out_error"] = self.errors
        return frame


def choose_hyperparameters(name, X, y, writers, *, n_folds=3, grid=None, seed=SELECTION_SEED, cache=True):
    """The best grid point of model ``name``, judged on writer-grouped folds of the training digits.

    Each fold in turn is held out; the model is fitted on the digits of the other folds' writers and
    predicts the held-out digits. A grid point's error is the share of all digits so misclassified.

    Parameters
    ----------
    name : str
        A key of :data:`ALTERNATIVES`.
    X : array-like of shape (n, 28, 28) or (n, 784)
        Training digits (all of them, or a subset of whole writers, e.g. from
        :func:`~mnist_knn.analysis.selection.selection_queries`, the same subset for every model).
    y : array-like of int, shape (n,)
    writers : array-like of shape (n,)
        Writer of each digit (QMNIST's ``writer_id``).
    n_folds : int, default=3
    grid : sequence of dict, optional
        Settings to try; defaults to the model's grid (:data:`GRID_POINTS` points).
    seed : int, default=SELECTION_SEED
        Seed of :func:`~mnist_knn.analysis.selection.writer_folds`.
    cache : bool or path-like, default=True
        Store the held-out predictions under ``data/cache/`` (or the given directory).

    Returns
    -------
    Selection

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 30)
    >>> X = (rng.integers(0, 60, (60, 16)) + 150 * y[:, None]).astype(np.uint8)
    >>> s = choose_hyperparameters("nearest_centroid", X, y, np.arange(60) % 6, cache=False)
    >>> s.best, s.errors.tolist()
    ({'shrink_threshold': None}, [0.0, 0.0, 0.0, 0.0])
    """
    alt = _alternative(name)
    X, y = _check_training(X, y, "X", "y")
    writers = np.asarray(writers)
    if writers.shape != y.shape:
        raise ValueError(f"writers must have shape {y.shape}, one per digit; got {writers.shape}.")
    grid = tuple(dict(g) for g in (alt.grid if grid is None else grid))
    if not grid:
        raise ValueError("grid must hold at least one setting.")
    for g in grid:
        make_model(name, **g)  # refuses unknown settings before any fitting
    folds = writer_folds(writers, n_folds, seed=seed)
    Xin = _inputs(alt, X)

    def compute():
        out = np.empty((len(grid), len(y)), dtype=np.int64)
        fits = [(i, f) for i in range(len(grid)) for f in range(n_folds)]  # grid point by grid point
        for i, f in progress(fits, desc=f"{name}: grid x folds", unit="fit"):
            held = folds == f
            model = _fit(make_model(name, **grid[i]), Xin[~held], y[~held])
            out[i, held] = model.predict(Xin[held])
        return {"predictions": out}

    def accept(stored):
        p = stored.get("predictions")
        return stored if p is not None and p.shape == (len(grid), len(y)) and p.dtype.kind in "iu" else None

    if cache:
        stem = "alt-select-" + name + "-" + _key(name, [_settings_key(g) for g in grid], n_folds, seed,
                                                 arrays=(X, y, writers))
        predictions = cached_arrays(_cache_path(cache, stem), compute, accept=accept)["predictions"]
    else:
        predictions = compute()["predictions"]
    errors = (predictions != y[None, :]).mean(axis=1)
    best = dict(grid[int(np.argmin(errors))])  # argmin: the first minimum
    return Selection(name=name, grid=grid, errors=errors, best=best, predictions=predictions)


# --------------------------------------------------------------------------- fitting and costing


@dataclass(frozen=True)
class Cost:
    """What a fitted model costs, measured on this machine.

    Attributes
    ----------
    fit_seconds : float
        Wall-clock seconds of one fit on all training digits.
    predict_seconds_per_digit : float
        The best of ``repeats`` timed predictions of a fixed slice of evaluation digits, per digit.
    model_bytes : int
        Bytes of the fitted model's pickle: the memory it needs to be kept or shipped (for k-NN, the
        training matrix it stores, in the dtype it was given).
    timing_rows : int
        Digits in the timed slice.
    repeats : int
    """

    fit_seconds: float
    predict_seconds_per_digit: float
    model_bytes: int
    timing_rows: int
    repeats: int


@dataclass(frozen=True)
class Fitted:
    """A model fitted on all training digits: its predictions and scores on the evaluation digits, its cost.

    ``scores`` are ``predict_proba`` where the model has it, else ``decision_function`` (one column per
    class), else ``None``; ``from_cache`` says whether they (and the cost) were read from the cache.
    """

    name: str
    settings: dict
    predictions: np.ndarray = field(repr=False)
    scores: np.ndarray = field(repr=False)
    cost: Cost
    from_cache: bool = False


def _scores(model, X):
    for method in ("predict_proba", "decision_function"):
        if hasattr(model, method):
            try:
                s = np.asarray(getattr(model, method)(X), dtype=np.float32)
            except (AttributeError, NotImplementedError):
                continue
            return s if s.ndim == 2 else None
    return None


def _model_bytes(model):
    buffer = io.BytesIO()
    pickle.dump(model, buffer, protocol=pickle.HIGHEST_PROTOCOL)
    return buffer.tell()


def measure_cost(model, X_train, y_train, X_timing, *, repeats=3, fit=True):
    """Fit ``model`` (timed once), then time its prediction of ``X_timing``, best of ``repeats``.

    Parameters
    ----------
    model : estimator
        Anything with ``fit(X, y)`` and ``predict(X)``, fed as given (scale the inputs first if the model
        expects it).
    X_train, y_train
        What to fit on.
    X_timing : array-like
        The fixed slice of digits whose prediction is timed (e.g. the first 1,000 test digits).
    repeats : int, default=3
    fit : bool, default=True
        ``False`` times only the prediction of an already fitted model (``fit_seconds`` is then NaN). A
        model with a ``fit_seconds_`` attribute after fitting (:class:`~.convnet.ConvNetClassifier`, whose
        weights may be loaded from a cache) is costed by it: the training's time, not the load's.

    Returns
    -------
    model : estimator
        The fitted model.
    cost : Cost
    """
    if isinstance(repeats, bool) or not isinstance(repeats, (int, np.integer)) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer; got repeats={repeats!r}.")
    if len(X_timing) == 0:
        raise ValueError("X_timing must hold at least one digit.")
    fit_seconds = float("nan")
    if fit:
        start = time.perf_counter()
        _fit(model, X_train, y_train)
        # a model that measures its own training (a net whose weights may come from a cache) reports that
        fit_seconds = getattr(model, "fit_seconds_", time.perf_counter() - start)
    best = float("inf")
    for _ in range(int(repeats)):
        start = time.perf_counter()
        model.predict(X_timing)
        best = min(best, time.perf_counter() - start)
    return model, Cost(fit_seconds=fit_seconds, predict_seconds_per_digit=best / len(X_timing),
                       model_bytes=_model_bytes(model), timing_rows=len(X_timing), repeats=int(repeats))


def fit_and_measure(name, settings, X_train, y_train, X_eval, *, timing_rows=1000, repeats=3, cache=True):
    """Fit model ``name`` at ``settings`` on all training digits; predict ``X_eval``; measure its cost.

    Parameters
    ----------
    name : str
        A key of :data:`ALTERNATIVES`.
    settings : dict
        E.g. :attr:`Selection.best`.
    X_train, y_train
        The training digits and labels.
    X_eval : array-like of shape (n_eval, 28, 28) or (n_eval, 784)
        The digits to predict (the test set); its first ``timing_rows`` are the timed slice.
    timing_rows : int, default=1000
    repeats : int, default=3
    cache : bool or path-like, default=True
        Store predictions, scores and cost under ``data/cache/`` (or the given directory); a warm call
        fits nothing and returns the cost measured when the entry was written.

    Returns
    -------
    Fitted
    """
    alt = _alternative(name)
    settings = dict(settings)
    make_model(name, **settings)  # refuses unknown settings
    X_train, y_train = _check_training(X_train, y_train)
    X_eval = np.asarray(validation.not_masked(X_eval, "X_eval"))
    validation.images(X_eval, "X_eval")
    timing_rows = validation.k_value(timing_rows, max(len(X_eval), 1), "timing_rows")

    def compute():
        Xt, Xe = _inputs(alt, X_train), _inputs(alt, X_eval)
        model, cost = measure_cost(make_model(name, **settings), Xt, y_train, Xe[:timing_rows], repeats=repeats)
        scores = _scores(model, Xe)
        arrays = {
            "predictions": np.asarray(model.predict(Xe)).astype(np.int64),
            "cost": np.array([cost.fit_seconds, cost.predict_seconds_per_digit, cost.model_bytes,
                              cost.timing_rows, cost.repeats], dtype=np.float64),
        }
        if scores is not None:
            arrays["scores"] = scores
        return arrays

    def accept(stored):
        p, c = stored.get("predictions"), stored.get("cost")
        if p is None or c is None or p.shape != (len(X_eval),) or c.shape != (5,) or not np.isfinite(c).all():
            return None
        s = stored.get("scores")
        if s is not None and (s.ndim != 2 or len(s) != len(X_eval)):
            return None
        return stored

    warm = False
    if cache:
        stem = "alt-fit-" + name + "-" + _key(name, _settings_key(settings), timing_rows, repeats,
                                              arrays=(X_train, y_train, X_eval))
        path = _cache_path(cache, stem)
        computed = []
        arrays = cached_arrays(path, lambda: computed.append(1) or compute(), accept=accept)
        warm = not computed
    else:
        arrays = compute()
    c = arrays["cost"]
    cost = Cost(fit_seconds=float(c[0]), predict_seconds_per_digit=float(c[1]), model_bytes=int(c[2]),
                timing_rows=int(c[3]), repeats=int(c[4]))
    return Fitted(name=name, settings=settings, predictions=arrays["predictions"], scores=arrays.get("scores"),
                  cost=cost, from_cache=warm)


# --------------------------------------------------------------------------- k-NN on a learned metric


def _stratified_subset(y, size, seed):
    """``size`` indices (sorted), as equal a share of each class as the classes allow, seeded."""
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    per_class = [rng.permutation(np.flatnonzero(y == c)) for c in classes]
    chosen, round_ = [], 0
    while len(chosen) < size:
        row = [p[round_] for p in per_class if round_ < len(p)]
        if not row:
            break
        chosen.extend(row[: size - len(chosen)])
        round_ += 1
    return np.sort(np.asarray(chosen, dtype=np.int64))


class NCAKNNClassifier:
    """k-NN on a linear metric learned by neighbourhood components analysis (Goldberger et al., 2004).

    NCA's objective costs the square of the number of digits per iteration, so it is fitted on a seeded,
    class-stratified subset of ``nca_digits`` training digits; every training digit is then projected
    and searched exactly (:func:`~mnist_knn.engine.search.kneighbors`, ties to the smallest label).

    Parameters
    ----------
    n_components : int, default=32
        Dimension of the learned projection.
    n_neighbors : int, default=3
    nca_digits : int, default=2000
    max_iter : int, default=50
        NCA's L-BFGS iterations.
    seed : int, default=ALTERNATIVES_SEED
    """

    def __init__(self, n_components=32, n_neighbors=3, *, nca_digits=2000, max_iter=50, seed=ALTERNATIVES_SEED):
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.nca_digits = nca_digits
        self.max_iter = max_iter
        self.seed = seed

    def fit(self, X, y):
        """Learn the projection on the subset; store every training digit projected. Returns self."""
        from sklearn.neighbors import NeighborhoodComponentsAnalysis

        X = validation.feature_matrix(X)
        y = np.asarray(y)
        subset = _stratified_subset(y, min(int(self.nca_digits), len(y)), self.seed)
        n_components = min(int(self.n_components), X.shape[1])
        self.nca_ = NeighborhoodComponentsAnalysis(n_components=n_components, max_iter=self.max_iter,
                                                   random_state=self.seed)
        self.nca_.fit(X[subset], y[subset])
        self.knn_ = KNNClassifier(n_neighbors=self.n_neighbors).fit(self.transform(X), y)
        self.classes_ = self.knn_.classes_
        return self

    def transform(self, X):
        """Digits projected by the learned metric, float64."""
        return np.asarray(self.nca_.transform(validation.feature_matrix(X)), dtype=np.float64)

    def predict(self, X):
        """The k-NN vote in the projected space."""
        return self.knn_.predict(self.transform(X))

    def predict_proba(self, X):
        """Share of the vote of each class."""
        return self.knn_.predict_proba(self.transform(X))
