"""A scikit-learn-compatible k-NN classifier on top of the exact search and the vote rules."""

import numpy as np

from . import vote
from .distances import metric_code
from .search import kneighbors

__all__ = ["KNNClassifier"]

try:  # scikit-learn is the reference, not a dependency of the engine: use its base classes when present
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError:  # pragma: no cover - exercised only without scikit-learn
    BaseEstimator, ClassifierMixin = object, object
    check_is_fitted = validate_data = None


class KNNClassifier(ClassifierMixin, BaseEstimator):
    """k-nearest-neighbour classifier: exact search, explicit tie rules.

    Parameters
    ----------
    n_neighbors : int, default=5
        Number of neighbours that vote (k).
    metric : {"euclidean", "manhattan", "minkowski", "chebyshev", "cosine"}, default="euclidean"
    p : float, default=2
        Exponent of the minkowski metric (p >= 1).
    weights : {"uniform", "distance"} or callable, default="uniform"
        As in scikit-learn: equal votes, votes weighted by 1/distance, or a function of the
        (n_query, k) distance array.
    tie_break : {"smallest", "nearest", "random", "reduce_k", "distance_sum"}, default="smallest"
        What a tied vote returns; ``"smallest"`` is scikit-learn's rule (see :func:`mnist_knn.engine.vote.predict`).
    random_state : int or None, default=None
        Seed for ``tie_break="random"``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    n_samples_fit_ : int

    Notes
    -----
    Neighbours are exact, with equal distances taken in training order; with ``tie_break="smallest"``
    predictions equal ``sklearn.neighbors.KNeighborsClassifier(algorithm="brute")`` wherever the
    latter's order among exactly equidistant neighbours agrees (see :func:`mnist_knn.kneighbors`).
    """

    def __init__(self, n_neighbors=5, metric="euclidean", p=2, weights="uniform", tie_break="smallest",
                 random_state=None):
        self.n_neighbors = n_neighbors
        self.metric = metric
        self.p = p
        self.weights = weights
        self.tie_break = tie_break
        self.random_state = random_state

    def _check_params(self):
        metric_code(self.metric, self.p)
        if self.weights not in vote.WEIGHTS and not callable(self.weights):
            raise ValueError(f"weights must be one of {vote.WEIGHTS} or a callable; got {self.weights!r}.")
        if self.tie_break not in vote.TIE_RULES:
            raise ValueError(f"tie_break must be one of {vote.TIE_RULES}; got {self.tie_break!r}.")
        k = self.n_neighbors
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"n_neighbors must be a positive integer; got n_neighbors={k!r}.")

    def fit(self, X, y):
        """Store the training data (k-NN has no other fitting). Returns self."""
        self._check_params()
        X, y = validate_data(self, X, y, dtype="numeric", ensure_all_finite=True)
        from sklearn.utils.multiclass import check_classification_targets

        check_classification_targets(y)
        self.classes_, self._y = np.unique(y, return_inverse=True)
        self._X = X
        self.n_samples_fit_ = X.shape[0]
        return self

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
        """Distances and indices of the nearest training samples, nearest first.

        With ``X=None`` each training sample's neighbours exclude itself (as scikit-learn).
        """
        check_is_fitted(self)
        k = self.n_neighbors if n_neighbors is None else n_neighbors
        if X is None:
            from .search import kneighbors_loo

            dist, ind = kneighbors_loo(self._X, k, self.metric, self.p)
        else:
            X = validate_data(self, X, dtype="numeric", ensure_all_finite=True, reset=False)
            if not 1 <= k <= self.n_samples_fit_:
                raise ValueError(f"n_neighbors must be in [1, n_samples_fit={self.n_samples_fit_}]; got {k}.")
            dist, ind = kneighbors(self._X, X, k, self.metric, self.p)
        return (dist, ind) if return_distance else ind

    def _votes(self, X):
        self._check_params()
        dist, ind = self.kneighbors(X)
        return dist, ind

    def predict(self, X):
        """Predicted class of each sample of X: the vote of its k nearest neighbours."""
        dist, ind = self._votes(X)
        codes = vote.predict(
            dist, ind, self._y, dist.shape[1], weights=self.weights, tie_break=self.tie_break,
            n_classes=len(self.classes_), random_state=self.random_state,
        )
        return self.classes_[codes]

    def predict_proba(self, X):
        """Share of the (weighted) vote of each class, shape (n_samples, n_classes)."""
        dist, ind = self._votes(X)
        return vote.predict_proba(dist, ind, self._y, dist.shape[1], weights=self.weights,
                                  n_classes=len(self.classes_))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags
