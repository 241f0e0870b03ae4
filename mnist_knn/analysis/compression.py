"""Fewer stored digits for k-NN: condensing, editing and prototypes (notebook 07).

k-NN's memory and query time grow with the digits it stores. Three classic ways to store fewer:

- :func:`condensed_nearest_neighbour`: Hart's condensed nearest neighbour (*IEEE Trans. Inf. Theory*
  14, 1968): keep a subset on which 1-NN still classifies every training digit correctly, by adding
  each digit that the subset so far misclassifies;
- :func:`edited_nearest_neighbour`: Wilson's editing (*IEEE Trans. Syst. Man Cybern.* 2, 1972): drop
  each digit that the vote of its k nearest other digits misclassifies (noise and overlap), the usual
  step before condensing;
- :func:`kmeans_prototypes`: k-means within each class (seeded k-means++ start, Lloyd's iterations),
  storing the cluster centres as prototypes.

Every nearest-neighbour search here is the package's exact search
(:func:`~mnist_knn.engine.search.kneighbors`: ties to the lower index), so the results are exactly
reproducible.
"""

import numpy as np

from .. import validation
from ..engine.distances import pairwise_distances
from ..engine.search import kneighbors, kneighbors_loo
from ..engine.vote import TIE_RULES, predict as vote_predict
from ..progress import progress

__all__ = ["COMPRESSION_SEED", "condensed_nearest_neighbour", "edited_nearest_neighbour", "kmeans_prototypes"]

#: The seed of the visiting order of condensing and of k-means' starts.
COMPRESSION_SEED = 2026
_BLOCK = 2048


def _rows_and_labels(X, y):
    X = validation.feature_matrix(X.reshape(len(X), -1) if np.ndim(X) == 3 else X, "X")
    y = np.asarray(validation.not_masked(y, "y"))
    if y.ndim != 1 or len(y) != len(X):
        raise ValueError(f"y must be 1-D with one label per row of X ({len(X)}); got shape {y.shape}.")
    if y.dtype.kind not in "iu":
        raise ValueError(f"y must hold integer labels; got dtype {y.dtype}.")
    if len(X) == 0:
        raise ValueError("X must hold at least one digit.")
    return X, y


def _distances_to(rows, x, metric, p):
    """Distances of ``rows`` to one row ``x``, as the exact search computes them. Integer pixels under L2
    take NumPy's exact integer sum and one correctly rounded root (what the search returns; a compiled
    call costs more than it saves on one row); anything else the package's own kernel."""
    if metric == "euclidean" and rows.dtype.kind in "iu":
        diff = rows.astype(np.int64) - x.astype(np.int64)
        return np.sqrt(np.einsum("ij,ij->i", diff, diff).astype(np.float64))
    return pairwise_distances(rows, x[None, :], metric, p)[:, 0]


def condensed_nearest_neighbour(X, y, *, metric="euclidean", p=2, seed=COMPRESSION_SEED, max_passes=None):
    """Hart's condensed nearest neighbour: indices of a subset that 1-NN-classifies the rest correctly.

    The digits are visited in a seeded random order (the result depends on the order). The store starts
    with the first digit visited; each digit not yet stored whose nearest stored digit has another label
    is added to the store at once, so it counts for the digits visited after it. Passes repeat until one
    adds nothing (or ``max_passes``).

    Parameters
    ----------
    X : array-like of shape (n, n_pixels) or (n, height, width)
    y : array-like of int, shape (n,)
    metric, p
        As in :func:`~mnist_knn.engine.search.kneighbors`.
    seed : int, default=COMPRESSION_SEED
    max_passes : int or None, default=None
        ``None`` passes until the store is consistent.

    Returns
    -------
    ndarray of int64
        Indices into ``X`` of the stored digits, in increasing order. After convergence, 1-NN on them
        (ties to the lower index) classifies every digit of ``X`` not in the store correctly; a stored
        digit finds itself at distance 0 unless an exact duplicate with a lower index and another label
        is stored too.

    Examples
    --------
    >>> X = np.array([[0], [1], [2], [10], [11], [12]], dtype=np.uint8)
    >>> condensed_nearest_neighbour(X, np.array([0, 0, 0, 1, 1, 1]), seed=1).tolist()  # one digit per class
    [0, 4]
    """
    X, y = _rows_and_labels(X, y)
    if max_passes is not None:
        max_passes = validation.k_value(max_passes, np.iinfo(np.int64).max, "max_passes")
    order = np.random.default_rng(seed).permutation(len(X))
    stored = [int(order[0])]
    in_store = np.zeros(len(X), dtype=bool)
    in_store[order[0]] = True
    passes = 0
    while max_passes is None or passes < max_passes:
        passes += 1
        added = False
        for start in progress(range(0, len(order), _BLOCK), desc=f"condensing, pass {passes}", unit="block"):
            block = order[start:start + _BLOCK]
            block = block[~in_store[block]]
            if block.size == 0:
                continue
            store = np.asarray(stored)
            d, i = kneighbors(X[store], X[block], 1, metric, p)
            best_d, best_label = d[:, 0].copy(), y[store[i[:, 0]]]
            pos = 0
            while True:
                wrong = np.flatnonzero(best_label[pos:] != y[block[pos:]])
                if wrong.size == 0:
                    break
                j = pos + int(wrong[0])
                new = int(block[j])
                stored.append(new)
                in_store[new] = True
                added = True
                pos = j + 1
                if pos < block.size:
                    # the later digits of the block now also see the new one; a tie keeps the older
                    d_new = _distances_to(X[block[pos:]], X[new], metric, p)
                    closer = d_new < best_d[pos:]
                    best_d[pos:][closer] = d_new[closer]
                    best_label[pos:][closer] = y[new]
        if not added:
            break
    return np.sort(np.asarray(stored, dtype=np.int64))


def edited_nearest_neighbour(X, y, *, k=3, metric="euclidean", p=2, tie_break="smallest"):
    """Wilson's editing: indices of the digits that the vote of their ``k`` nearest other digits gets right.

    Parameters
    ----------
    X : array-like of shape (n, n_pixels) or (n, height, width)
    y : array-like of int, shape (n,)
    k : int, default=3
        Neighbours voting (leave-one-out: a digit never votes for itself).
    metric, p
        As in :func:`~mnist_knn.engine.search.kneighbors`.
    tie_break : str, default="smallest"
        A tie rule of :func:`~mnist_knn.engine.vote.predict`.

    Returns
    -------
    ndarray of int64
        Indices into ``X`` of the digits kept, in increasing order.

    Examples
    --------
    >>> X = np.array([[0], [1], [2], [3], [10], [11], [12]], dtype=np.uint8)
    >>> edited_nearest_neighbour(X, np.array([0, 0, 1, 0, 1, 1, 1]), k=2).tolist()  # digit 2 is an outlier
    [0, 1, 3, 4, 5, 6]
    """
    X, y = _rows_and_labels(X, y)
    k = validation.k_value(k, max(len(X) - 1, 1))
    if tie_break not in TIE_RULES:
        raise ValueError(f"tie_break must be one of {list(TIE_RULES)}; got {tie_break!r}.")
    if len(X) < 2:
        raise ValueError("X must hold at least two digits to edit (each is judged by the others).")
    codes_of, codes = np.unique(y, return_inverse=True)
    d, i = kneighbors_loo(X, k, metric, p)
    pred = vote_predict(d, i, codes, k, tie_break=tie_break, n_classes=len(codes_of))
    return np.flatnonzero(pred == codes).astype(np.int64)


def _kmeans(X, n_clusters, seed, max_iter):
    """Lloyd's k-means with a seeded k-means++ start; assignments by the exact search (ties to the lower
    centre). Returns the centres (float64)."""
    from sklearn.cluster import kmeans_plusplus

    Xf = X.astype(np.float64)
    centres, _ = kmeans_plusplus(Xf, n_clusters, random_state=seed)
    previous = None
    for _ in range(max_iter):
        assign = kneighbors(centres, Xf, 1)[1][:, 0]
        if previous is not None and np.array_equal(assign, previous):
            break
        previous = assign
        counts = np.bincount(assign, minlength=n_clusters)
        sums = np.zeros_like(centres)
        np.add.at(sums, assign, Xf)
        filled = counts > 0
        centres[filled] = sums[filled] / counts[filled, None]  # an empty cluster keeps its centre
    return centres


def kmeans_prototypes(X, y, n_per_class, *, seed=COMPRESSION_SEED, max_iter=100):
    """``n_per_class`` k-means centres within each class, as prototypes for k-NN.

    Parameters
    ----------
    X : array-like of shape (n, n_pixels) or (n, height, width)
    y : array-like of int, shape (n,)
    n_per_class : int
        Centres per class; a class with fewer digits keeps all of its digits.
    seed : int, default=COMPRESSION_SEED
        Seeds k-means++ (the same seed for each class).
    max_iter : int, default=100
        Lloyd's iterations at most (they stop earlier once no assignment changes).

    Returns
    -------
    prototypes : ndarray of shape (n_prototypes, n_pixels), float64
        Centres, class by class in increasing label order.
    labels : ndarray of shape (n_prototypes,)
        The class of each prototype (the dtype of ``y``).

    Examples
    --------
    >>> X = np.array([[0], [2], [10], [12], [50]], dtype=np.uint8)
    >>> P, labels = kmeans_prototypes(X, np.array([0, 0, 0, 0, 1]), 2)  # class 1 has one digit: kept
    >>> P.ravel().tolist(), labels.tolist()
    ([1.0, 11.0, 50.0], [0, 0, 1])
    """
    X, y = _rows_and_labels(X, y)
    n_per_class = validation.k_value(n_per_class, np.iinfo(np.int64).max, "n_per_class")
    max_iter = validation.k_value(max_iter, np.iinfo(np.int64).max, "max_iter")
    prototypes, labels = [], []
    for c in progress(np.unique(y), desc=f"k-means, {n_per_class} per class", unit="class"):
        members = X[y == c]
        if len(members) <= n_per_class:
            centres = members.astype(np.float64)
        else:
            centres = _kmeans(members, n_per_class, seed, max_iter)
        prototypes.append(centres)
        labels.append(np.full(len(centres), c, dtype=y.dtype))
    return np.concatenate(prototypes), np.concatenate(labels)
