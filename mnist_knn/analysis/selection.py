"""One protocol for every choice the report makes: chosen on training writers, never on the test set.

MNIST's test digits come from writers who wrote none of the training digits. A choice (k, tie rule,
metric, preprocessing, warp, ...) is therefore judged the way the test set will judge it: each training
digit is classified by the digits of *other* writers only (QMNIST gives every digit's writer), and the
configuration with the fewest such errors wins. Plain leave-one-out lets a writer's other digits vote
for each of their digits, which flatters small k and distances that match a writer's own style.

- :func:`other_writer_neighbors`: the exact ``k`` nearest training digits of each query digit among
  the digits of other writers (one search, widened only for the queries that need it);
- :func:`held_out_errors`: the error of every (k, tie rule) from those neighbours;
- :func:`choose`: the best entry of a table of held-out errors, ties to the simplest (first) option;
- :func:`writer_folds`: K folds with each writer's digits kept together, for models that are refitted
  (notebook 07);
- :func:`selection_queries`: the one seeded subset of training digits used as queries wherever a
  notebook cannot afford all 60,000 (the same subset in every notebook).
"""

import numpy as np
import pandas as pd

from .. import validation
from ..engine.search import exclude_group, kneighbors
from ..engine.vote import TIE_RULES, predict_many

__all__ = [
    "SELECTION_SEED",
    "choose",
    "held_out_errors",
    "other_writer_neighbors",
    "selection_queries",
    "writer_folds",
]

#: The seed of :func:`selection_queries` and :func:`writer_folds`: one subset, one set of folds, report-wide.
SELECTION_SEED = 2026


def selection_queries(writers, size, *, seed=SELECTION_SEED):
    """A seeded subset of ``size`` training digits to use as queries, in increasing index order.

    Whole writers are drawn in a seeded random order until ``size`` digits are reached (the last writer
    is cut), so the subset is a sample of writers, as the test set is. Every notebook that cannot
    afford all 60,000 queries uses this subset with the same seed.

    Parameters
    ----------
    writers : array-like of shape (n_train,)
    size : int
        1 <= size <= n_train.
    seed : int, default=SELECTION_SEED

    Returns
    -------
    ndarray of int64, shape (size,)
    """
    writers = np.asarray(writers)
    size = validation.k_value(size, len(writers), "size")
    rng = np.random.default_rng(seed)
    ids = np.unique(writers)
    order = rng.permutation(ids)
    rank = np.empty(len(ids), dtype=np.int64)
    rank[np.searchsorted(ids, order)] = np.arange(len(ids))
    writer_rank = rank[np.searchsorted(ids, writers)]
    # digits of earlier-drawn writers first; within a writer, in index order
    chosen = np.lexsort((np.arange(len(writers)), writer_rank))[:size]
    return np.sort(chosen).astype(np.int64)


def writer_folds(writers, n_folds, *, seed=SELECTION_SEED):
    """Fold number (0 .. n_folds - 1) of every digit, with all digits of a writer in one fold.

    Writers are dealt to folds in a seeded random order, each to the fold with the fewest digits so far,
    so folds hold about equal numbers of digits.
    """
    writers = np.asarray(writers)
    ids, counts = np.unique(writers, return_counts=True)
    n_folds = validation.k_value(n_folds, len(ids), "n_folds")
    rng = np.random.default_rng(seed)
    fold_of_writer = np.empty(len(ids), dtype=np.int64)
    sizes = np.zeros(n_folds, dtype=np.int64)
    for w in rng.permutation(len(ids)):
        f = int(np.argmin(sizes))
        fold_of_writer[w] = f
        sizes[f] += counts[w]
    return fold_of_writer[np.searchsorted(ids, writers)]


def other_writer_neighbors(X_train, writers, k, metric="euclidean", p=2, *, queries=None, cache=True):
    """The ``k`` nearest training digits of each query digit written by someone else, exactly.

    Parameters
    ----------
    X_train : array-like of shape (n_train, n_pixels) or (n_train, height, width)
    writers : array-like of shape (n_train,)
        Writer of every training digit.
    k : int
    metric, p
        As in :func:`~mnist_knn.engine.search.kneighbors`.
    queries : array-like of int or None, default=None
        Indices of the training digits to use as queries; ``None`` uses all of them.
    cache : bool or path-like, default=True
        Passed to :func:`~mnist_knn.engine.search.kneighbors`.

    Returns
    -------
    distances, indices : ndarray of shape (n_query, k)
        Nearest first; no neighbour shares the query's writer (the query itself included).

    Notes
    -----
    One search of ``k + 64`` neighbours serves almost every query; the few whose own writer fills too
    much of that list are searched again with a longer one, until ``k`` others remain. The result is
    the same as a search among other writers' digits only.
    """
    X_train = np.asarray(X_train)
    writers = np.asarray(writers)
    if writers.shape != (len(X_train),):
        raise ValueError(f"writers must have shape ({len(X_train)},), one per training digit; got {writers.shape}.")
    queries = np.arange(len(X_train)) if queries is None else np.asarray(queries, dtype=np.int64)
    n_other = len(X_train) - np.bincount(np.unique(writers, return_inverse=True)[1]).max()
    k = validation.k_value(k, max(n_other, 1))
    out_d = np.empty((len(queries), k))
    out_i = np.empty((len(queries), k), dtype=np.int64)
    todo = np.arange(len(queries))
    k_search = min(len(X_train), k + 64)
    while todo.size:
        d, i = kneighbors(X_train, X_train[queries[todo]], k_search, metric, p, cache=cache)
        keep = writers[i] != writers[queries[todo]][:, None]
        enough = keep.sum(axis=1) >= k
        if k_search == len(X_train):
            enough[:] = True  # every other writer's digit is in the list
        done = todo[enough]
        if done.size:
            out_d[done], out_i[done] = exclude_group(d[enough], i[enough], writers, writers[queries[done]], k)
        todo = todo[~enough]
        k_search = min(len(X_train), 4 * k_search)
    return out_d, out_i


def held_out_errors(distances, indices, y_train, y_query, ks, rules=TIE_RULES[:2]):
    """Error of every (k, tie rule) on held-out neighbours (e.g. from :func:`other_writer_neighbors`).

    Returns
    -------
    pandas.DataFrame
        Index ``k``, one column per rule, values the share of queries misclassified.
    """
    y_query = np.asarray(y_query)
    ks = [int(k) for k in ks]
    table = {}
    for rule in rules:
        pred = predict_many(distances, indices, y_train, ks, tie_break=rule)
        table[rule] = (pred != y_query[None, :]).mean(axis=1)
    return pd.DataFrame(table, index=pd.Index(ks, name="k"))


def choose(errors):
    """The (row, column) of the smallest held-out error in a table; ties go to the first row, then column.

    Order the table's rows and columns from the simplest option to the most elaborate (for example k
    increasing, the plainer tie rule first), so that a tie is resolved in favour of simplicity.

    Returns
    -------
    tuple
        ``(row label, column label)``.
    """
    values = np.asarray(errors, dtype=np.float64)
    if values.ndim != 2 or values.size == 0 or np.isnan(values).any():
        raise ValueError(f"errors must be a non-empty 2-D table without NaN; got shape {values.shape}.")
    r, c = np.unravel_index(np.argmin(values), values.shape)  # argmin returns the first minimum
    return errors.index[r], errors.columns[c]
