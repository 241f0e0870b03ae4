"""Votes of the k nearest neighbours: weights, tie rules and predictions.

Search once, vote many times. The neighbour search returns ``(distances,
indices)`` of shape (n_query, k_max), nearest first. Every function here takes
that result and computes the vote for any ``k <= k_max`` without searching
again; :func:`predict_many` does it for several ``k`` at once.

Labels are encoded integers ``0 .. n_classes - 1``.

With ``weights="uniform"`` or ``"distance"`` and ``tie_break="smallest"``,
:func:`predict` and :func:`predict_proba` reproduce
``sklearn.neighbors.KNeighborsClassifier`` bit for bit, given the same
neighbours: the weighted vote is summed in the order of
``sklearn.utils.extmath.weighted_mode`` and the probabilities in the order of
``KNeighborsClassifier.predict_proba``.
"""

import numbers

import numpy as np

from .. import validation

__all__ = [
    "TIE_RULES",
    "WEIGHTS",
    "is_tied",
    "neighbor_labels",
    "predict",
    "predict_many",
    "predict_proba",
    "tied_labels",
    "vote_counts",
    "vote_margin",
]

TIE_RULES = ("smallest", "nearest", "random", "reduce_k", "distance_sum")
"""Names accepted by ``tie_break``; ``"smallest"`` is scikit-learn's rule."""

WEIGHTS = ("uniform", "distance")
"""Names accepted by ``weights`` (a callable is accepted too)."""

# Elements per block of the (n_block, n_classes, k) array summed for a weighted vote.
_BLOCK_ELEMENTS = 1 << 21


# --------------------------------------------------------------------------
# Validation (public functions call these; private helpers trust their callers)
# --------------------------------------------------------------------------


def _check_weights(weights):
    if callable(weights) or (isinstance(weights, str) and weights in WEIGHTS):
        return weights
    raise ValueError(
        f"weights must be one of {WEIGHTS} or a callable; got weights={weights!r}."
    )


def _check_tie_break(tie_break):
    if not (isinstance(tie_break, str) and tie_break in TIE_RULES):
        raise ValueError(f"tie_break must be one of {TIE_RULES}; got tie_break={tie_break!r}.")
    return tie_break


def _check_votes(votes):
    votes = np.asarray(votes, dtype=np.float64)
    if votes.ndim != 2 or votes.shape[1] < 1:
        raise ValueError(
            f"votes must be 2-D of shape (n_query, n_classes) with n_classes >= 1; "
            f"got shape {votes.shape}."
        )
    return votes


def _validated(distances, indices, y_train, n_classes, weights):
    """Validate a search result, labels and weights; return ``(D, L, n_classes)``."""
    D, I = validation.search_result(distances, indices)
    y, n_classes = validation.labels_for(I, y_train, n_classes)
    _check_weights(weights)
    return D, y[I], n_classes


# --------------------------------------------------------------------------
# Private helpers: inputs are already validated
# --------------------------------------------------------------------------


def _weights(dist, weights):
    """Weights of shape (n_query, k) for distances ``dist``, or None for uniform.

    Assume ``weights`` has already been validated. ``"distance"`` follows
    ``sklearn.neighbors._base._get_weights``: weight ``1/d``, except that in a row
    with a zero distance the zero-distance neighbours weigh 1 and the others 0.
    The output of a callable is checked here, since only now is it known.
    """
    if weights == "uniform":
        return None
    if weights == "distance":
        with np.errstate(divide="ignore"):
            w = 1.0 / dist
        inf_mask = np.isinf(w)
        inf_row = inf_mask.any(axis=1)
        w[inf_row] = inf_mask[inf_row]
        return w
    w = np.asarray(weights(dist), dtype=np.float64)
    if w.shape != dist.shape:
        raise ValueError(
            f"weights callable must return an array of the distances' shape {dist.shape}; "
            f"got shape {w.shape}."
        )
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("weights callable must return finite, non-negative weights.")
    if w.shape[1] and (w == 0).all(axis=1).any():
        raise ValueError(
            "All neighbours of some query get zero weight from the weights callable; "
            "every query needs at least one positive weight."
        )
    with np.errstate(over="ignore"):
        overflow = ~np.isfinite(w.sum(axis=1))
    if overflow.any():
        # Huge weights (near 1e308) would sum to infinity: a row's vote depends only on the ratios of
        # its weights, so divide those rows by their largest weight.
        w[overflow] /= w[overflow].max(axis=1, keepdims=True)
    return w


def _uniform_votes(L, n_classes):
    """Counts of each label in the rows of ``L`` (n_query, k), as float64."""
    n = L.shape[0]
    flat = (np.arange(n)[:, None] * n_classes + L).ravel()
    return np.bincount(flat, minlength=n * n_classes).reshape(n, n_classes).astype(np.float64)


def _weighted_votes(L, w, n_classes):
    """Sum of the weights ``w`` per label, summed exactly as sklearn's ``weighted_mode``.

    ``weighted_mode`` sums, for each label, an (n_query, k) array holding ``w``
    where the label matches and 0 elsewhere, along axis 1. Summing the same
    values laid out the same way (last axis, contiguous) gives the same bits,
    even for k >= 8 where numpy's pairwise summation regroups the terms.
    """
    n, k = L.shape
    out = np.empty((n, n_classes))
    classes = np.arange(n_classes)[None, :, None]
    step = max(1, _BLOCK_ELEMENTS // max(1, n_classes * k))
    for start in range(0, n, step):
        sl = slice(start, start + step)
        template = np.where(L[sl, None, :] == classes, w[sl, None, :], 0.0)
        out[sl] = template.sum(axis=2)
    return out


def _sequential_votes(L, w, n_classes):
    """Sum of the weights ``w`` per label, accumulated nearest first.

    This is the order of ``KNeighborsClassifier.predict_proba``. It takes k
    vectorised passes over the queries, far cheaper than :func:`_weighted_votes`.
    """
    n, k = L.shape
    rows = np.arange(n)
    out = np.zeros((n, n_classes))
    for j in range(k):
        out[rows, L[:, j]] += w[:, j]
    return out


# Rows whose two top votes are closer than this (relative to the top vote) are
# re-summed in scikit-learn's order. Summing k non-negative terms in any two orders
# differs by at most about 2 k 2**-53 of the sum, far below this for any usable k.
_NEAR_TIE_RTOL = 1e-9


def _votes(D, L, k, weights, n_classes, rows=None, exact=True):
    """Votes (len(rows), n_classes) from the first ``k`` neighbours of ``rows``.

    With ``exact=True`` weighted votes are summed in ``weighted_mode``'s order.
    With ``exact=False`` they are summed nearest first and only rows with a near
    tie are re-summed in that order: the argmax and the exact ties are the same,
    the other entries may differ in the last bit.
    """
    if rows is not None:
        D, L = D[rows], L[rows]
    Lk = L[:, :k]
    w = _weights(D[:, :k], weights)
    if w is None:
        return _uniform_votes(Lk, n_classes)
    if exact or n_classes == 1:
        return _weighted_votes(Lk, w, n_classes)
    V = _sequential_votes(Lk, w, n_classes)
    top2 = np.partition(V, n_classes - 2, axis=1)[:, -2:]
    near = np.flatnonzero(top2[:, 1] - top2[:, 0] <= _NEAR_TIE_RTOL * top2[:, 1])
    if near.size:
        V[near] = _weighted_votes(Lk[near], w[near], n_classes)
    return V


class _CumulativeCounts:
    """Uniform votes for every k from one cumulative count, for :func:`predict_many`."""

    def __init__(self, L, k_hi, n_classes):
        dtype = np.int16 if k_hi < 2**15 else np.int32
        onehot = L[:, :k_hi, None] == np.arange(n_classes)
        self.cum = np.cumsum(onehot, axis=1, dtype=dtype)

    def __call__(self, k, rows=None):
        c = self.cum[:, k - 1] if rows is None else self.cum[rows, k - 1]
        return c.astype(np.float64)


def _tie_mask(V):
    return V == V.max(axis=1, keepdims=True)


def _resolve(V, D, L, k, tie_break, rng, votes_at):
    """Predicted labels from votes ``V`` under ``tie_break``.

    ``votes_at(k, rows)`` returns the votes of the first ``k`` neighbours of
    ``rows`` (used by ``reduce_k``). ``rng`` is a Generator for ``"random"``.
    """
    pred = V.argmax(axis=1)  # first maximum: the smallest tied label
    if tie_break == "smallest" or V.shape[0] == 0:
        return pred
    tied = _tie_mask(V)
    rows = np.flatnonzero(tied.sum(axis=1) > 1)
    if rows.size == 0:
        return pred
    T = tied[rows]
    Lk = L[rows, :k]
    r = np.arange(rows.size)
    if tie_break == "nearest":
        carries = np.take_along_axis(T, Lk, axis=1)
        pred[rows] = Lk[r, carries.argmax(axis=1)]
    elif tie_break == "random":
        pick = rng.integers(0, T.sum(axis=1))
        pred[rows] = (np.cumsum(T, axis=1) > pick[:, None]).argmax(axis=1)
    elif tie_break == "distance_sum":
        # Sequential sum, nearest first: equal multisets of distances give equal sums.
        S = np.zeros(T.shape)
        Dk = D[rows, :k]
        for j in range(k):
            S[r, Lk[:, j]] += Dk[:, j]
        S[~T] = np.inf
        pred[rows] = S.argmin(axis=1)
    elif tie_break == "reduce_k":
        active = rows
        for kk in range(k - 1, 0, -1):
            Vk = votes_at(kk, active)
            unique = _tie_mask(Vk).sum(axis=1) == 1
            pred[active[unique]] = Vk[unique].argmax(axis=1)
            active = active[~unique]
            if active.size == 0:
                break
        # Rows still tied at k=1 (only possible with zero weights) keep the smallest label.
    return pred


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def neighbor_labels(indices, y_train):
    """Labels of the neighbours found by the search.

    Parameters
    ----------
    indices : ndarray of shape (n_query, k_max)
        Training indices of the neighbours, nearest first.
    y_train : ndarray of shape (n_train,)
        Training labels.

    Returns
    -------
    labels : ndarray of shape (n_query, k_max)
        ``y_train[indices]``.

    Raises
    ------
    ValueError
        If ``indices`` is not 2-D of integers, ``y_train`` is not 1-D, or an
        index is outside ``[0, n_train)``.
    """
    indices = np.asarray(indices)
    y_train = np.asarray(y_train)
    if indices.ndim != 2:
        raise ValueError(f"indices must be 2-D of shape (n_query, k_max); got shape {indices.shape}.")
    if not np.issubdtype(indices.dtype, np.integer):
        raise ValueError(f"indices must be integers; got dtype {indices.dtype}.")
    if y_train.ndim != 1:
        raise ValueError(f"y_train must be 1-D of shape (n_train,); got shape {y_train.shape}.")
    n_train = len(y_train)
    if indices.size and (indices.min() < 0 or indices.max() >= n_train):
        raise ValueError(
            f"indices must be in [0, n_train={n_train}); "
            f"got values in [{indices.min()}, {indices.max()}]."
        )
    return y_train[indices]


def vote_counts(distances, indices, y_train, k, *, weights="uniform", n_classes=None):
    """Votes for each class from the first ``k`` neighbours.

    Parameters
    ----------
    distances : ndarray of shape (n_query, k_max)
        Distances to the neighbours, nearest first (non-negative, no NaN).
    indices : ndarray of shape (n_query, k_max)
        Training indices of the neighbours, in the same order.
    y_train : ndarray of shape (n_train,)
        Integer label codes in ``[0, n_classes)``.
    k : int
        Number of neighbours that vote, in ``[1, k_max]``.
    weights : {"uniform", "distance"} or callable, default="uniform"
        ``"uniform"``: each neighbour has one vote. ``"distance"``: weight
        ``1/d``; in a row with a zero distance the zero-distance neighbours weigh
        1 and the others 0 (as scikit-learn). A callable receives the
        (n_query, k) distance array and returns non-negative weights of the same
        shape; it should act row by row (``tie_break="reduce_k"`` calls it on
        subsets of rows and shorter prefixes).
    n_classes : int, optional
        Number of classes; default ``y_train.max() + 1``.

    Returns
    -------
    votes : ndarray of shape (n_query, n_classes)
        float64 sum of the weights of the neighbours carrying each label. With
        uniform weights these are integer counts.

    Raises
    ------
    ValueError
        If the shapes disagree, ``k`` is not in ``[1, k_max]``, ``weights`` is
        unknown, a label or index is out of range, or a distance is NaN or
        negative, or the distances are not sorted.

    Notes
    -----
    Weighted votes are summed as ``sklearn.utils.extmath.weighted_mode`` sums
    them, so that exact float ties (and near ties) fall the same way as in
    ``KNeighborsClassifier.predict``. For k >= 8 numpy's pairwise summation makes
    that sum depend on the neighbours' positions, so two labels with equal sets
    of weights can, rarely, differ in the last bit.
    """
    D, L, n_classes = _validated(distances, indices, y_train, n_classes, weights)
    k = validation.k_value(k, D.shape[1])
    return _votes(D, L, k, weights, n_classes)


def predict(
    distances,
    indices,
    y_train,
    k,
    *,
    weights="uniform",
    tie_break="smallest",
    n_classes=None,
    random_state=None,
):
    """Predict labels by the vote of the first ``k`` neighbours.

    Parameters
    ----------
    distances : ndarray of shape (n_query, k_max)
        Distances to the neighbours, nearest first.
    indices : ndarray of shape (n_query, k_max)
        Training indices of the neighbours, in the same order.
    y_train : ndarray of shape (n_train,)
        Integer label codes in ``[0, n_classes)``.
    k : int
        Number of neighbours that vote, in ``[1, k_max]``.
    weights : {"uniform", "distance"} or callable, default="uniform"
        See :func:`vote_counts`.
    tie_break : {"smallest", "nearest", "random", "reduce_k", "distance_sum"}, default="smallest"
        How to choose among labels that share the largest vote exactly:

        - ``"smallest"``: the smallest label (scikit-learn's ``argmax``).
        - ``"nearest"``: the label of the nearest neighbour carrying a tied label.
        - ``"random"``: uniformly at random among the tied labels.
        - ``"reduce_k"``: vote again with ``k-1, k-2, ...`` neighbours (drop the
          farthest) until one label wins. With uniform weights the winner is the
          tied label that reached the top count first, always one of the
          originally tied labels.
        - ``"distance_sum"``: the tied label whose neighbours among the ``k``
          have the smallest total distance (summed nearest first); if those are
          equal too, the smallest label.

        With weights the same rules apply to exact ties of the weighted vote.
    n_classes : int, optional
        Number of classes; default ``y_train.max() + 1``.
    random_state : None, int or numpy.random.Generator, optional
        Seed or generator for ``tie_break="random"``; ignored otherwise.

    Returns
    -------
    y_pred : ndarray of shape (n_query,)
        Predicted label codes (intp).

    Raises
    ------
    ValueError
        As :func:`vote_counts`, or if ``tie_break`` is unknown.

    Notes
    -----
    With ``weights`` in {"uniform", "distance"} and ``tie_break="smallest"`` this
    equals ``KNeighborsClassifier(n_neighbors=k, weights=weights).predict`` given
    the same neighbours.

    Examples
    --------
    Two queries, three neighbours each (as :func:`~mnist_knn.engine.search.kneighbors`
    returns them), four training labels:

    >>> import numpy as np
    >>> distances = np.array([[0.5, 1.0, 2.0], [1.0, 1.0, 3.0]])
    >>> indices = np.array([[0, 1, 2], [2, 3, 0]])
    >>> y_train = np.array([0, 1, 1, 0])
    >>> predict(distances, indices, y_train, k=3).tolist()  # votes: 0, 1, 1 and 1, 0, 0
    [1, 0]
    >>> predict(distances, indices, y_train, k=2).tolist()  # one vote each: the smallest label wins
    [0, 0]
    >>> predict(distances, indices, y_train, k=2, tie_break="nearest").tolist()
    [0, 1]
    """
    D, L, n_classes = _validated(distances, indices, y_train, n_classes, weights)
    k = validation.k_value(k, D.shape[1])
    _check_tie_break(tie_break)
    rng = np.random.default_rng(random_state) if tie_break == "random" else None
    V = _votes(D, L, k, weights, n_classes, exact=False)

    def votes_at(kk, rows):
        return _votes(D, L, kk, weights, n_classes, rows, exact=False)

    return _resolve(V, D, L, k, tie_break, rng, votes_at)


def predict_many(
    distances,
    indices,
    y_train,
    ks,
    *,
    weights="uniform",
    tie_break="smallest",
    n_classes=None,
    random_state=None,
):
    """Predict labels for several ``k`` from one search result.

    Parameters
    ----------
    distances, indices, y_train
        As in :func:`predict`.
    ks : sequence of int
        Values of ``k``, each in ``[1, k_max]``, in any order.
    weights, tie_break, n_classes
        As in :func:`predict`.
    random_state : None, int or numpy.random.Generator, optional
        One generator is made from it and used for each ``k`` in the order of
        ``ks``; so ``predict_many(..., random_state=np.random.default_rng(s))``
        equals calling :func:`predict` for each ``k`` in turn with one shared
        ``default_rng(s)``.

    Returns
    -------
    y_pred : ndarray of shape (n_ks, n_query)
        ``y_pred[i]`` equals ``predict(..., k=ks[i], ...)``.

    Raises
    ------
    ValueError
        As :func:`predict`, or if ``ks`` is empty or not 1-D.

    Notes
    -----
    With uniform weights the votes for every ``k`` come from one cumulative
    count over the neighbours, so the cost is one pass over
    (n_query, max(ks), n_classes) plus the tie rules.
    """
    D, L, n_classes = _validated(distances, indices, y_train, n_classes, weights)
    ks_arr = np.asarray(ks)
    if ks_arr.ndim != 1 or ks_arr.size == 0:
        raise ValueError(f"ks must be a non-empty 1-D sequence of integers; got {ks!r}.")
    ks = [validation.k_value(kk, D.shape[1]) for kk in ks_arr.tolist()]
    _check_tie_break(tie_break)
    rng = np.random.default_rng(random_state) if tie_break == "random" else None

    if weights == "uniform":
        votes_at = _CumulativeCounts(L, max(ks), n_classes)
    else:
        def votes_at(kk, rows=None):
            return _votes(D, L, kk, weights, n_classes, rows, exact=False)

    out = np.empty((len(ks), D.shape[0]), dtype=np.intp)
    for i, kk in enumerate(ks):
        out[i] = _resolve(votes_at(kk), D, L, kk, tie_break, rng, votes_at)
    return out


def predict_proba(distances, indices, y_train, k, *, weights="uniform", n_classes=None):
    """Class probabilities: the votes of the first ``k`` neighbours, normalised.

    Parameters
    ----------
    distances, indices, y_train, k, weights, n_classes
        As in :func:`vote_counts`.

    Returns
    -------
    proba : ndarray of shape (n_query, n_classes)
        Votes divided by their row sum; each row sums to 1.

    Raises
    ------
    ValueError
        As :func:`vote_counts`.

    Notes
    -----
    The weights are accumulated nearest first and divided by their sum, as in
    ``KNeighborsClassifier.predict_proba``, so the result equals scikit-learn's
    bit for bit given the same neighbours. Its argmax can differ from
    :func:`predict` in the last bit of a near tie, exactly as in scikit-learn,
    whose ``predict`` sums in another order.
    """
    D, L, n_classes = _validated(distances, indices, y_train, n_classes, weights)
    k = validation.k_value(k, D.shape[1])
    Lk = L[:, :k]
    w = _weights(D[:, :k], weights)
    if w is None:
        proba = _uniform_votes(Lk, n_classes)
    else:
        proba = _sequential_votes(Lk, w, n_classes)
    proba /= proba.sum(axis=1, keepdims=True)
    return proba


def vote_margin(votes):
    """Top vote minus the second-highest vote of each row.

    Parameters
    ----------
    votes : ndarray of shape (n_query, n_classes)
        Votes, e.g. from :func:`vote_counts` or :func:`predict_proba`.

    Returns
    -------
    margin : ndarray of shape (n_query,)
        0 for a tied vote. With a single class the margin is the top vote.

    Raises
    ------
    ValueError
        If ``votes`` is not 2-D with at least one column.
    """
    V = _check_votes(votes)
    if V.shape[1] == 1:
        return V[:, 0].copy()
    top2 = np.partition(V, V.shape[1] - 2, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def tied_labels(votes):
    """Mask of the labels that share the largest vote in each row.

    Parameters
    ----------
    votes : ndarray of shape (n_query, n_classes)

    Returns
    -------
    mask : ndarray of shape (n_query, n_classes)
        Boolean; ``mask[i, c]`` is True when label ``c`` has the largest vote of
        row ``i`` (exactly).

    Raises
    ------
    ValueError
        If ``votes`` is not 2-D with at least one column.
    """
    return _tie_mask(_check_votes(votes))


def is_tied(votes):
    """Whether several labels share the largest vote exactly.

    Parameters
    ----------
    votes : ndarray of shape (n_query, n_classes)

    Returns
    -------
    tied : ndarray of shape (n_query,)
        Boolean.

    Raises
    ------
    ValueError
        If ``votes`` is not 2-D with at least one column.
    """
    return tied_labels(votes).sum(axis=1) > 1
