"""A scikit-learn-compatible k-NN classifier on top of the exact search and the vote rules.

scikit-learn is the reference, not a dependency of the engine: :mod:`~mnist_knn.engine.search` and
:mod:`~mnist_knn.engine.vote` work without it. This module imports without it too, but
:class:`KNNClassifier` is built on scikit-learn's estimator API (``get_params``, ``clone``, input
checks), so creating one (or unpickling one) without scikit-learn raises an :class:`ImportError` that
says so.
"""

import math
import numbers

import numpy as np

from . import vote
from .distances import METRICS
from .search import kneighbors, kneighbors_loo

__all__ = ["KNNClassifier"]

try:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as error:  # pragma: no cover - tested in a subprocess without scikit-learn
    _SKLEARN_IMPORT_ERROR = error

    def _missing_sklearn(*args, **kwargs):
        raise ImportError(
            "KNNClassifier needs scikit-learn (pip install scikit-learn), which provides its estimator API; "
            "without it, use the search and the vote directly (mnist_knn.engine.kneighbors, "
            f"mnist_knn.engine.predict). Importing scikit-learn failed with: {_SKLEARN_IMPORT_ERROR}"
        ) from _SKLEARN_IMPORT_ERROR

    class ClassifierMixin:
        """Stand-in for scikit-learn's mixin when scikit-learn is missing (never instantiated)."""

    class BaseEstimator:
        """Stand-in for scikit-learn's base class: creating an estimator raises the ImportError."""

        def __new__(cls, *args, **kwargs):
            _missing_sklearn()

    check_classification_targets = check_is_fitted = validate_data = _missing_sklearn


# --------------------------------------------------------------------------- parameter rules


class _Rule:
    """One allowed form of a parameter: ``accepts(value)`` and a description for messages."""

    def __init__(self, description, accepts):
        self.description = description
        self.accepts = accepts

    def __repr__(self):
        return self.description


def _number(value, kind):
    return isinstance(value, kind) and not isinstance(value, bool)


def _one_of(options):
    return _Rule(f"one of {options}", lambda v: isinstance(v, str) and v in options)


def _integer(low):
    return _Rule(f"an integer >= {low}", lambda v: _number(v, numbers.Integral) and v >= low)


def _real(low, high):
    # ``low <= v <= high`` is False for NaN.
    return _Rule(f"a real number in [{low}, {high}]", lambda v: _number(v, numbers.Real) and low <= v <= high)


def _instance_of(description, *types):
    return _Rule(description, lambda v: isinstance(v, types))


_NONE = _Rule("None", lambda v: v is None)
_CALLABLE = _Rule("a callable", callable)


def _allowed(rules):
    """``"A"``, ``"A or B"``, ``"A, B or C"``."""
    descriptions = [rule.description for rule in rules]
    return descriptions[0] if len(descriptions) == 1 else f"{', '.join(descriptions[:-1])} or {descriptions[-1]}"


class KNNClassifier(ClassifierMixin, BaseEstimator):
    """k-nearest-neighbour classifier: exact search, explicit tie rules.

    Parameters
    ----------
    n_neighbors : int, default=5
        Number of neighbours that vote (k); at most the number of training samples.
    metric : {"euclidean", "manhattan", "minkowski", "chebyshev", "cosine"}, default="euclidean"
    p : float, default=2
        Exponent of the minkowski metric, in [1, inf] (inf is chebyshev); checked for every metric,
        used only by minkowski.
    weights : {"uniform", "distance"} or callable, default="uniform"
        As in scikit-learn: equal votes, votes weighted by 1/distance, or a function of the
        (n_query, k) distance array.
    tie_break : {"smallest", "nearest", "random", "reduce_k", "distance_sum"}, default="smallest"
        What a tied vote returns; ``"smallest"`` is scikit-learn's rule (see :func:`mnist_knn.engine.vote.predict`).
    random_state : None, int >= 0, or numpy Generator, RandomState, BitGenerator or SeedSequence, default=None
        Seed for ``tie_break="random"`` (passed to :func:`numpy.random.default_rng`).

    All parameters but ``n_neighbors`` are keyword-only, as in scikit-learn. Each is checked against
    one table, :attr:`_parameter_rules`, by ``fit``, ``kneighbors`` and ``predict``/``predict_proba``
    (so a value changed by ``set_params`` after fitting is checked too); a value outside it raises a
    :class:`ValueError` naming the parameter, the allowed values and the value given.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    n_samples_fit_ : int

    Raises
    ------
    ImportError
        On creation, when scikit-learn is not installed.

    Notes
    -----
    Neighbours are exact, with equal distances taken in training order; with ``tie_break="smallest"``
    predictions equal ``sklearn.neighbors.KNeighborsClassifier(algorithm="brute")`` wherever the
    latter's order among exactly equidistant neighbours agrees (see :func:`mnist_knn.kneighbors`).
    """

    # Every constructor parameter and what it may be: a value is valid when one of its rules accepts it.
    # ``n_neighbors <= n_samples_fit_`` depends on the data and is checked when searching.
    _parameter_rules = {
        "n_neighbors": [_integer(1)],
        "metric": [_one_of(METRICS)],
        "p": [_real(1, math.inf)],
        "weights": [_one_of(vote.WEIGHTS), _CALLABLE],
        "tie_break": [_one_of(vote.TIE_RULES)],
        "random_state": [
            _NONE,
            _integer(0),
            _instance_of("a numpy Generator, RandomState, BitGenerator or SeedSequence", np.random.Generator,
                         np.random.RandomState, np.random.BitGenerator, np.random.SeedSequence),
        ],
    }

    def __init__(self, n_neighbors=5, *, metric="euclidean", p=2, weights="uniform", tie_break="smallest",
                 random_state=None):
        self.n_neighbors = n_neighbors
        self.metric = metric
        self.p = p
        self.weights = weights
        self.tie_break = tie_break
        self.random_state = random_state

    @classmethod
    def _check_param(cls, name, value):
        rules = cls._parameter_rules[name]
        if not any(rule.accepts(value) for rule in rules):
            raise ValueError(f"{name} must be {_allowed(rules)}; got {name}={value!r}.")

    def _validate_params(self):
        """Check every parameter against :attr:`_parameter_rules` (overrides scikit-learn's method of
        the same name and purpose, which reads its own private constraint classes)."""
        for name in self._parameter_rules:
            self._check_param(name, getattr(self, name))

    def fit(self, X, y):
        """Store the training data (k-NN has no other fitting). Returns self."""
        self._validate_params()
        X, y = validate_data(self, X, y, dtype="numeric", ensure_all_finite=True)
        check_classification_targets(y)
        self.classes_, self._y = np.unique(y, return_inverse=True)
        self._X = X
        self.n_samples_fit_ = X.shape[0]
        return self

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
        """Distances and indices of the nearest training samples, nearest first.

        ``n_neighbors`` defaults to the estimator's and is at most ``n_samples_fit_``. With ``X=None``
        each training sample's neighbours exclude itself (as scikit-learn), so at most
        ``n_samples_fit_ - 1``.
        """
        self._validate_params()
        check_is_fitted(self)
        if n_neighbors is None:
            k = self.n_neighbors
        else:
            self._check_param("n_neighbors", n_neighbors)
            k = n_neighbors
        n = self.n_samples_fit_
        if X is None:
            if k > n - 1:
                raise ValueError(
                    f"n_neighbors must be in [1, n_samples_fit - 1 = {n - 1}] when X is None (each training "
                    f"sample's neighbours exclude itself); got n_neighbors={k}."
                )
            dist, ind = kneighbors_loo(self._X, k, self.metric, self.p)
        else:
            X = validate_data(self, X, dtype="numeric", ensure_all_finite=True, reset=False)
            if k > n:
                raise ValueError(
                    f"n_neighbors must be in [1, n_samples_fit={n}]; got n_neighbors={k}: more neighbours "
                    "than training samples."
                )
            dist, ind = kneighbors(self._X, X, k, self.metric, self.p)
        return (dist, ind) if return_distance else ind

    def predict(self, X):
        """Predicted class of each sample of X: the vote of its k nearest neighbours."""
        dist, ind = self.kneighbors(X)
        codes = vote.predict(
            dist, ind, self._y, dist.shape[1], weights=self.weights, tie_break=self.tie_break,
            n_classes=len(self.classes_), random_state=self.random_state,
        )
        return self.classes_[codes]

    def predict_proba(self, X):
        """Share of the (weighted) vote of each class, shape (n_samples, n_classes)."""
        dist, ind = self.kneighbors(X)
        return vote.predict_proba(dist, ind, self._y, dist.shape[1], weights=self.weights,
                                  n_classes=len(self.classes_))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags
