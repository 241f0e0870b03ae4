"""Ties: split votes, equal distances and duplicate images, measured from one search result.

Two kinds of tie decide k-NN predictions without the data saying anything:

- a **vote tie**: several labels share the largest vote among the k neighbours (the tie rules of
  :mod:`.vote` settle it);
- a **distance tie**: the k-th and the (k+1)-th neighbour are equally far, so *which* training row
  votes depends on how equidistant rows are ordered (by training index in :mod:`.search`, unspecified
  in scikit-learn, whose documentation warns that results then depend on the order of the training data).

Everything here works on a search result ``(distances, indices)`` of shape (n_query, k_max), nearest
first, as returned by :func:`mnist_knn.engine.search.kneighbors`; nothing searches again.
"""

import hashlib
import itertools

import numpy as np
import pandas as pd

from .. import validation
from ..engine.vote import is_tied, predict_many, tied_labels, vote_counts

__all__ = [
    "boundary_ties",
    "exact_duplicates",
    "expected_random_accuracy",
    "gains_and_losses",
    "inclusive_vote_counts",
    "k_step_changes",
    "near_duplicates",
    "order_sensitive",
    "tie_table",
]


def _check_truth(y_true, n_query):
    y_true = np.asarray(y_true)
    if y_true.shape != (n_query,) or not np.issubdtype(y_true.dtype, np.integer):
        raise ValueError(f"y_true must be integer labels of shape ({n_query},); got {y_true.dtype} {y_true.shape}.")
    return y_true.astype(np.intp, copy=False)


def _check_ks(ks, k_max):
    ks_arr = np.asarray(ks)
    if ks_arr.ndim != 1 or ks_arr.size == 0:
        raise ValueError(f"ks must be a non-empty 1-D sequence of integers; got {ks!r}.")
    return [validation.k_value(k, k_max) for k in ks_arr.tolist()]


def tie_table(distances, indices, y_train, y_true, ks):
    """How often the uniform vote of the first k neighbours is tied, for each k.

    Parameters
    ----------
    distances, indices : ndarray of shape (n_query, k_max)
        A search result, nearest first.
    y_train : ndarray of shape (n_train,)
        Integer training labels.
    y_true : ndarray of shape (n_query,)
        True labels of the queries.
    ks : sequence of int
        Values of k, each in ``[1, k_max]``.

    Returns
    -------
    table : DataFrame with one row per k and integer columns
        ``k``; ``n`` (queries); ``tied`` (queries whose top vote is shared by two or more labels);
        ``two_way`` and ``multi_way`` (shared by exactly two, by three or more labels);
        ``true_in_tie`` (tied queries whose true label is among the tied labels).

    Raises
    ------
    ValueError
        If a k is out of range, or the shapes or labels are invalid.
    """
    D, I = validation.search_result(distances, indices)
    y_true = _check_truth(y_true, D.shape[0])
    n_classes = int(max(np.max(y_train), y_true.max(initial=0))) + 1
    rows = []
    for k in _check_ks(ks, D.shape[1]):
        T = tied_labels(vote_counts(D, I, y_train, k, n_classes=n_classes))
        n_tied = T.sum(axis=1)
        tied = n_tied > 1
        rows.append({
            "k": k,
            "n": len(y_true),
            "tied": int(tied.sum()),
            "two_way": int((n_tied == 2).sum()),
            "multi_way": int((n_tied > 2).sum()),
            "true_in_tie": int((tied & T[np.arange(len(y_true)), y_true]).sum()),
        })
    return pd.DataFrame(rows)


def expected_random_accuracy(votes, y_true):
    """Expected accuracy of breaking vote ties uniformly at random, computed exactly.

    A query is right with probability 1 if its true label wins outright, ``1/m`` if the true label is
    one of ``m`` tied labels, and 0 otherwise.

    Parameters
    ----------
    votes : ndarray of shape (n_query, n_classes)
        Votes, e.g. from :func:`mnist_knn.engine.vote.vote_counts`.
    y_true : ndarray of shape (n_query,)

    Returns
    -------
    accuracy : float
        The mean over queries of the probability of a correct prediction.

    Raises
    ------
    ValueError
        If the shapes disagree or a label is out of range.
    """
    T = tied_labels(votes)
    y_true = _check_truth(y_true, T.shape[0])
    if y_true.size and (y_true.min() < 0 or y_true.max() >= T.shape[1]):
        raise ValueError(f"y_true must be in [0, {T.shape[1]}); got labels in [{y_true.min()}, {y_true.max()}].")
    hit = T[np.arange(len(y_true)), y_true] / T.sum(axis=1)
    return float(hit.mean())


def gains_and_losses(y_true, pred_a, pred_b, n_classes=10):
    """Per true class: how many queries rule ``a`` gets right and ``b`` wrong, and the reverse.

    Parameters
    ----------
    y_true : ndarray of shape (n_query,)
    pred_a, pred_b : ndarray of shape (n_query,) or (n_runs, n_query)
        Predictions of two rules; with several runs (e.g. one per k) the counts are summed.
    n_classes : int, default=10

    Returns
    -------
    gains, losses : ndarray of shape (n_classes,)
        ``gains[c]``: queries of class ``c`` right under ``a`` and wrong under ``b``;
        ``losses[c]``: right under ``b`` and wrong under ``a``.

    Raises
    ------
    ValueError
        If the predictions' shapes differ or do not end in n_query.
    """
    y_true = np.asarray(y_true)
    pred_a, pred_b = np.asarray(pred_a), np.asarray(pred_b)
    if pred_a.shape != pred_b.shape or pred_a.shape[-1:] != y_true.shape:
        raise ValueError(
            f"pred_a and pred_b must share a shape ending in n_query={len(y_true)}; "
            f"got {pred_a.shape} and {pred_b.shape}."
        )
    y = np.broadcast_to(y_true, pred_a.shape)
    right_a, right_b = pred_a == y, pred_b == y
    gains = np.bincount(y[right_a & ~right_b], minlength=n_classes)
    losses = np.bincount(y[right_b & ~right_a], minlength=n_classes)
    return gains, losses


def k_step_changes(distances, indices, y_train, y_true, ks, *, tie_break="smallest"):
    """What changes between k and k + 1 neighbours, and whether a vote tie is involved.

    Adding one neighbour can change the uniform vote's winner only if the vote is tied at k or at
    k + 1 (a unique winner with ``a`` votes can be overtaken only by a label with ``a`` votes already,
    and a label catching up to ``a`` makes a tie); ``without_tie`` counts the exceptions, which must be 0.

    Parameters
    ----------
    distances, indices, y_train, y_true
        As in :func:`tie_table`.
    ks : sequence of int
        Values of k; each k + 1 must be at most k_max.
    tie_break : str, default="smallest"
        Any rule of :data:`mnist_knn.engine.vote.TIE_RULES` except ``"random"``.

    Returns
    -------
    table : DataFrame with one row per k
        ``k``; ``changed`` (queries predicted differently with k and k + 1 neighbours); ``without_tie``
        (changed queries whose vote is tied neither at k nor at k + 1); ``gained`` (wrong at k, right at
        k + 1); ``lost`` (right at k, wrong at k + 1).

    Raises
    ------
    ValueError
        If a k + 1 exceeds k_max, or ``tie_break`` is ``"random"`` or unknown.
    """
    if tie_break == "random":
        raise ValueError("tie_break='random' changes from run to run; use a deterministic rule.")
    D, I = validation.search_result(distances, indices)
    y_true = _check_truth(y_true, D.shape[0])
    ks = _check_ks(ks, D.shape[1] - 1)
    all_ks = sorted(set(ks) | {k + 1 for k in ks})
    at = dict(zip(all_ks, predict_many(D, I, y_train, all_ks, tie_break=tie_break)))
    rows = []
    for k in ks:
        changed = at[k] != at[k + 1]
        tied = is_tied(vote_counts(D, I, y_train, k)) | is_tied(vote_counts(D, I, y_train, k + 1))
        rows.append({
            "k": k,
            "changed": int(changed.sum()),
            "without_tie": int((changed & ~tied).sum()),
            "gained": int((changed & (at[k + 1] == y_true)).sum()),
            "lost": int((changed & (at[k] == y_true)).sum()),
        })
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- duplicate images


def _row_digests(X):
    X = np.ascontiguousarray(X).reshape(len(X), -1)
    return [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in X]


def exact_duplicates(X, Y=None):
    """Pairs of identical images, found by hashing each row's bytes (and confirmed byte by byte).

    Parameters
    ----------
    X : ndarray of shape (n, ...)
        Images (any trailing shape); rows are compared as raw bytes, so dtypes must match.
    Y : ndarray of shape (m, ...), optional
        A second set: pairs are then (row of X, row of Y). Without it, pairs within X with ``i < j``.

    Returns
    -------
    pairs : ndarray of shape (n_pairs, 2), int64
        Sorted by the first, then the second index.

    Raises
    ------
    ValueError
        If X and Y differ in dtype or row shape.
    """
    X = np.asarray(X)
    if Y is not None:
        Y = np.asarray(Y)
        if X.dtype != Y.dtype or X.shape[1:] != Y.shape[1:]:
            raise ValueError(
                f"X and Y must share dtype and row shape; got {X.dtype} {X.shape[1:]} and {Y.dtype} {Y.shape[1:]}."
            )
    groups = {}
    for i, h in enumerate(_row_digests(X)):
        groups.setdefault(h, []).append(i)
    pairs = []
    if Y is None:
        for members in groups.values():
            pairs += [(a, b) for a, b in itertools.combinations(members, 2) if np.array_equal(X[a], X[b])]
    else:
        for j, h in enumerate(_row_digests(Y)):
            pairs += [(a, j) for a in groups.get(h, ()) if np.array_equal(X[a], Y[j])]
    return np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)


def near_duplicates(distances, indices, threshold, *, symmetric=False):
    """Pairs (query, training row) at distance at most ``threshold``, read off a search result.

    Parameters
    ----------
    distances, indices : ndarray of shape (n_query, k_max)
        A search result, nearest first; for pairs within one set, a leave-one-out result
        (:func:`mnist_knn.engine.search.kneighbors_loo`).
    threshold : float
        Largest distance that counts as a near-duplicate.
    symmetric : bool, default=False
        The queries are the training set itself (leave-one-out): report each unordered pair once,
        as ``(i, j)`` with ``i < j``.

    Returns
    -------
    pairs : ndarray of shape (n_pairs, 2), int64
        (query row, training row), sorted.
    pair_distances : ndarray of shape (n_pairs,)

    Raises
    ------
    ValueError
        If some query has all k_max neighbours within ``threshold`` (the search was too short to
        see all its near-duplicates), or ``threshold`` is negative.
    """
    D, I = validation.search_result(distances, indices)
    if not threshold >= 0:
        raise ValueError(f"threshold must be non-negative; got {threshold!r}.")
    if D.size and (D[:, -1] <= threshold).any():
        n_bad = int((D[:, -1] <= threshold).sum())
        raise ValueError(
            f"{n_bad} queries have all {D.shape[1]} neighbours within threshold={threshold}: "
            f"search with a larger k."
        )
    q, c = np.nonzero(D <= threshold)
    pairs = np.stack([q, I[q, c]], axis=1).astype(np.int64)
    dist = D[q, c]
    if symmetric:
        pairs = np.sort(pairs, axis=1)
    order = np.lexsort((pairs[:, 1], pairs[:, 0]))
    pairs, dist = pairs[order], dist[order]
    if symmetric and len(pairs):
        first = np.r_[True, (np.diff(pairs, axis=0) != 0).any(axis=1)]
        pairs, dist = pairs[first], dist[first]
    return pairs, dist


# ---------------------------------------------------------------------------- distance ties at k


def _boundary_group(D, k):
    """Mask of the neighbours as far as the k-th one; raise if the group may go beyond k_max."""
    if k >= D.shape[1]:
        raise ValueError(f"k must be below k_max={D.shape[1]} to see the (k+1)-th neighbour; got k={k}.")
    group = D == D[:, [k - 1]]
    if group[:, -1].any():
        raise ValueError(
            f"{int(group[:, -1].sum())} queries have neighbours tied with the k-th up to the last column "
            f"(k_max={D.shape[1]}): search with a larger k."
        )
    return group


def boundary_ties(distances, indices, y_train, k):
    """Which queries have a distance tie across the k-th place, and whether its labels differ.

    Parameters
    ----------
    distances, indices : ndarray of shape (n_query, k_max)
        A search result, nearest first.
    y_train : ndarray of shape (n_train,)
    k : int
        In ``[1, k_max - 1]``.

    Returns
    -------
    tied : ndarray of shape (n_query,), bool
        The (k+1)-th neighbour is exactly as far as the k-th: which of the equidistant training rows
        vote depends on their order.
    mixed : ndarray of shape (n_query,), bool
        Tied, and the rows at that distance do not all carry the same label.

    Raises
    ------
    ValueError
        If ``k`` is out of range or the equidistant group reaches the last column.
    """
    D, I = validation.search_result(distances, indices)
    y, _ = validation.labels_for(I, y_train, None)
    k = validation.k_value(k, D.shape[1] - 1)
    group = _boundary_group(D, k)
    tied = D[:, k] == D[:, k - 1]
    L = y[I]
    lo = np.where(group, L, np.iinfo(np.intp).max).min(axis=1)
    hi = np.where(group, L, -1).max(axis=1)
    return tied, tied & (lo != hi)


def _allocations(counts, m):
    """Every way to pick m items from bins holding ``counts`` items: arrays of picks per bin."""
    if len(counts) == 0:
        if m == 0:
            yield []
        return
    for a in range(min(counts[0], m) + 1):
        for rest in _allocations(counts[1:], m - a):
            yield [a] + rest


def order_sensitive(distances, indices, y_train, k, n_classes=None, *, tie_break="smallest"):
    """Queries whose uniform-vote prediction depends on the order of equidistant rows.

    When the k-th and (k+1)-th neighbours are equally far, any m of the equidistant rows may fill the
    last m places, in any order. This tries every choice (as label counts) and reports whether the
    predicted label of the uniform vote can differ: it is the exact set of queries a reordering of the
    training data could change.

    With ``tie_break="smallest"`` (scikit-learn's rule) only the labels of the chosen rows matter. With
    ``"nearest"`` their order matters too, and not only across the k-th place: a vote tie goes to the
    tied label met first, nearest first, and among equally distant neighbours holding different tied
    labels (anywhere among the first k) any may come first.

    Parameters
    ----------
    distances, indices, y_train, k
        As in :func:`boundary_ties`.
    n_classes : int, optional
        Default ``y_train.max() + 1``.
    tie_break : {"smallest", "nearest"}, default="smallest"
        The vote's tie rule.

    Returns
    -------
    sensitive : ndarray of shape (n_query,), bool

    Raises
    ------
    ValueError
        As :func:`boundary_ties`, or if ``tie_break`` is not one of the two rules.
    """
    if tie_break not in ("smallest", "nearest"):
        raise ValueError(f"tie_break must be 'smallest' or 'nearest'; got {tie_break!r}.")
    D, I = validation.search_result(distances, indices)
    y, n_classes = validation.labels_for(I, y_train, n_classes)
    k = validation.k_value(k, D.shape[1] - 1)
    group = _boundary_group(D, k)
    _, mixed = boundary_ties(D, I, y, k)
    L = y[I]
    rows = mixed
    if tie_break == "nearest":  # equidistant neighbours inside the first k can also decide which tied label is met first
        equal_inside = (D[:, 1:k] == D[:, : k - 1]).any(axis=1)
        rows = mixed | (equal_inside & is_tied(vote_counts(D, I, y, k, n_classes=n_classes)))
    out = np.zeros(D.shape[0], dtype=bool)
    for r in np.flatnonzero(rows):
        first = int(np.argmax(group[r]))
        fixed = np.bincount(L[r, :first], minlength=n_classes)
        labels = np.flatnonzero(np.bincount(L[r][group[r]], minlength=n_classes))
        counts = np.bincount(L[r][group[r]], minlength=n_classes)[labels]
        runs = np.split(L[r, :first], np.flatnonzero(np.diff(D[r, :first])) + 1)  # equidistant runs, nearest first
        winners = set()
        for alloc in _allocations(list(counts), k - first):
            votes = fixed.copy()
            votes[labels] += alloc
            tied = np.flatnonzero(votes == votes.max())
            if tie_break == "smallest" or len(tied) == 1:
                winners.add(int(tied[0]))
                continue
            # The first run holding a tied label decides; within a run (or the group) any of its tied labels may come first.
            met = next((np.intersect1d(run, tied) for run in runs if np.isin(run, tied).any()), tied)
            winners.update(met.tolist())
        out[r] = len(winners) > 1
    return out


def inclusive_vote_counts(distances, indices, y_train, k, n_classes=None):
    """Uniform votes of every neighbour at most as far as the k-th (R's ``class::knn``, ``use.all=TRUE``).

    All rows tied in distance with the k-th neighbour vote, so the vote is the same whatever the order
    of the training data.

    Parameters
    ----------
    distances, indices, y_train, k
        As in :func:`boundary_ties`.
    n_classes : int, optional
        Default ``y_train.max() + 1``.

    Returns
    -------
    votes : ndarray of shape (n_query, n_classes), float64
        Counts; a row sums to k plus the number of extra equidistant neighbours.

    Raises
    ------
    ValueError
        As :func:`boundary_ties`.
    """
    D, I = validation.search_result(distances, indices)
    y, n_classes = validation.labels_for(I, y_train, n_classes)
    k = validation.k_value(k, D.shape[1] - 1)
    use = D <= D[:, [k - 1]]
    _boundary_group(D, k)
    rows = np.broadcast_to(np.arange(D.shape[0])[:, None], D.shape)[use]
    flat = rows * n_classes + y[I][use]
    return np.bincount(flat, minlength=D.shape[0] * n_classes).reshape(-1, n_classes).astype(np.float64)
