"""Comparing distances and preprocessing: one protocol for every (features, metric) configuration.

Notebook 03 runs many configurations (a metric on some representation of the images) through the
same steps, and this module holds those steps so that every configuration is treated alike:

1. **Search** (:meth:`Protocol.search`): the ``k_test`` nearest training digits of every test digit,
   and the ``k_subset`` nearest training digits of a fixed subset of *training* digits (themselves
   included), both exact and cached on disk.
2. **Hold out** the query's own writer (:func:`~mnist_knn.engine.search.exclude_group`): from the subset search, drop every
   neighbour written by the same person (the query itself included), which turns it into
   leave-one-*writer*-out, the way test digits meet the training set (no writer is in both). Plain
   leave-one-out (drop only the query itself) is kept for comparison.
3. **Vote** for every k in ``ks`` and **choose k on the training data** (:func:`choose_k`), then read
   the test error at that k (:class:`Evaluation`).

Plus the small pieces the comparisons need: a shortlist re-ranking for the Minkowski exponents the
exact search is too slow for (:meth:`Protocol.rerank`), a table of
all configurations (:func:`results_table`), pairwise McNemar tests (:func:`mcnemar_matrix`) and the
size of pixel differences between pairs of images (:func:`difference_histogram`, :func:`power_shares`).
"""

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..engine.distances import metric_code
from ..engine.rerank import rerank_by_metric
from ..engine.search import exclude_group, kneighbors
from ..engine.vote import predict_many
from .scores import mcnemar, wilson_interval

__all__ = [
    "Evaluation",
    "Protocol",
    "choose_k",
    "difference_histogram",
    "error_curves",
    "mcnemar_matrix",
    "power_shares",
    "query_time",
    "results_table",
]


# --------------------------------------------------------------------------- neighbours


def choose_k(errors, ks):
    """The k with the lowest error; among equal errors the smallest k.

    Parameters
    ----------
    errors : array-like of shape (n_ks,)
    ks : array-like of int, shape (n_ks,)

    Returns
    -------
    k : int
    """
    errors, ks = np.asarray(errors), np.asarray(ks)
    if errors.shape != ks.shape or errors.ndim != 1 or errors.size == 0:
        raise ValueError(f"errors and ks must be 1-D of one non-zero length; got {errors.shape} and {ks.shape}.")
    best = errors == errors.min()
    return int(ks[best].min())


@dataclass
class Evaluation:
    """One configuration's errors for every k, and the k chosen on the training data.

    Attributes
    ----------
    name, preprocessing, metric : str
        How the configuration is called in tables and figures.
    ks : ndarray of shape (n_ks,)
    loo_error, lowo_error : ndarray of shape (n_ks,)
        Error on the training subset, leave-one-out and leave-one-writer-out.
    test_error : ndarray of shape (n_ks,)
    test_pred : ndarray of shape (n_ks, n_test)
        Test predictions for every k.
    k : int
        Chosen by the lowest leave-one-writer-out error (smallest k among equals).
    n_test : int
    """

    name: str
    preprocessing: str
    metric: str
    ks: np.ndarray
    loo_error: np.ndarray
    lowo_error: np.ndarray
    test_error: np.ndarray
    test_pred: np.ndarray = field(repr=False)
    k: int
    n_test: int

    @property
    def _at_k(self):
        return int(np.flatnonzero(self.ks == self.k)[0])

    @property
    def error(self):
        """Test error at the chosen k."""
        return float(self.test_error[self._at_k])

    @property
    def y_pred(self):
        """Test predictions at the chosen k, shape (n_test,)."""
        return self.test_pred[self._at_k]

    @property
    def ci(self):
        """95% Wilson interval of the test error at the chosen k."""
        n_wrong = int(round(self.error * self.n_test))
        return wilson_interval(n_wrong, self.n_test)

    @property
    def train_error(self):
        """Leave-one-writer-out error at the chosen k."""
        return float(self.lowo_error[self._at_k])


@dataclass(frozen=True)
class Protocol:
    """The data and choices shared by every configuration of a comparison.

    Parameters
    ----------
    y_train : ndarray of shape (n_train,)
    y_test : ndarray of shape (n_test,)
    rows : ndarray of int, shape (n_subset,)
        Training digits used as queries to choose k (leave-one-writer-out).
    writers : ndarray of shape (n_train,)
        Writer of every training digit.
    ks : sequence of int
        The k compared, all ``<= k_test`` and small enough that every subset query keeps that many
        neighbours by other writers among its ``k_subset``.
    k_test, k_subset : int, default=50, 51
        Neighbours searched for test digits and for subset digits (the query itself among them).
    cache : bool or path-like, default=True
        Passed to :func:`~mnist_knn.kneighbors`.
    """

    y_train: np.ndarray
    y_test: np.ndarray
    rows: np.ndarray
    writers: np.ndarray
    ks: tuple
    k_test: int = 50
    k_subset: int = 51
    cache: object = True

    def search(self, X_train, X_test, metric="euclidean", p=2):
        """Exact neighbours of the test digits and of the subset digits: ``(test, subset)`` pairs of
        ``(distances, indices)``."""
        X_train = np.asarray(X_train)
        test = kneighbors(X_train, X_test, self.k_test, metric, p, cache=self.cache)
        subset = kneighbors(X_train, X_train[self.rows], self.k_subset, metric, p, cache=self.cache)
        return test, subset

    def rerank(self, X_train, X_test, neighbors, metric="minkowski", p=2):
        """:func:`~mnist_knn.engine.rerank.rerank_by_metric` both searches of :meth:`search` (shortlists) by another metric."""
        X_train = np.asarray(X_train)
        test, subset = neighbors
        return (
            rerank_by_metric(X_train, X_test, test[1], metric, p),
            rerank_by_metric(X_train, X_train[self.rows], subset[1], metric, p),
        )

    def evaluate(self, name, neighbors, *, preprocessing="none", metric=""):
        """Errors for every k from the searches of :meth:`search`; k chosen leave-one-writer-out.

        Returns
        -------
        Evaluation
        """
        (d_test, i_test), (d_sub, i_sub) = neighbors
        ks = np.asarray(self.ks)
        k_max = int(ks.max())
        y_sub = self.y_train[self.rows]
        loo = exclude_group(d_sub, i_sub, np.arange(len(self.y_train)), self.rows, k_max)
        lowo = exclude_group(d_sub, i_sub, self.writers, self.writers[self.rows], k_max)
        loo_err, lowo_err = (
            (predict_many(*nn, self.y_train, ks) != y_sub).mean(axis=1) for nn in (loo, lowo)
        )
        test_pred = predict_many(d_test, i_test, self.y_train, ks)
        test_err = (test_pred != self.y_test).mean(axis=1)
        return Evaluation(
            name=name, preprocessing=preprocessing, metric=metric, ks=ks, loo_error=loo_err,
            lowo_error=lowo_err, test_error=test_err, test_pred=test_pred,
            k=choose_k(lowo_err, ks), n_test=len(self.y_test),
        )

    def run(self, name, X_train, X_test, metric="euclidean", p=2, *, preprocessing="none", label=None):
        """:meth:`search` then :meth:`evaluate`; ``label`` names the metric in tables."""
        neighbors = self.search(X_train, X_test, metric, p)
        return self.evaluate(name, neighbors, preprocessing=preprocessing, metric=label or _label(metric, p))


def _label(metric, p):
    _, p = metric_code(metric, p)
    if metric == "cosine":
        return "cosine"
    return "L∞" if np.isinf(p) else f"L{p:g}"


def results_table(evaluations):
    """One row per configuration: its k (chosen on training data), training and test error.

    Parameters
    ----------
    evaluations : iterable of Evaluation

    Returns
    -------
    DataFrame
        Indexed by name, with columns preprocessing, metric, k, ``train error (%)`` (leave-one-writer-out
        at k), ``test error (%)``, ``95% CI low``, ``95% CI high`` and ``test digits``; errors in percent,
        rounded to 2 decimals.
    """
    rows = []
    for e in evaluations:
        lo, hi = e.ci
        rows.append({
            "configuration": e.name, "preprocessing": e.preprocessing, "metric": e.metric, "k": e.k,
            "train error (%)": round(100 * e.train_error, 2), "test error (%)": round(100 * e.error, 2),
            "95% CI low": round(100 * lo, 2), "95% CI high": round(100 * hi, 2), "test digits": e.n_test,
        })
    return pd.DataFrame(rows).set_index("configuration")


def mcnemar_matrix(y_true, predictions):
    """McNemar's exact test between every pair of classifiers on the same samples.

    Parameters
    ----------
    y_true : ndarray of shape (n_samples,)
    predictions : dict of str to ndarray of shape (n_samples,)

    Returns
    -------
    wins : DataFrame of int, names x names
        ``wins.loc[a, b]``: samples that ``a`` gets right and ``b`` gets wrong (0 on the diagonal).
    p_values : DataFrame of float, names x names
        Exact two-sided p-value of each pair (1 on the diagonal), symmetric.
    """
    names = list(predictions)
    wins = pd.DataFrame(0, index=names, columns=names)
    p_values = pd.DataFrame(1.0, index=names, columns=names)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            r = mcnemar(y_true, predictions[a], predictions[b])
            wins.loc[a, b], wins.loc[b, a] = r.n_a_only, r.n_b_only
            p_values.loc[a, b] = p_values.loc[b, a] = r.p_value
    return wins, p_values


def error_curves(evaluations, n_subset):
    """Training and test error against k for several configurations, as one long table for plotting.

    Parameters
    ----------
    evaluations : iterable of Evaluation
    n_subset : int
        Number of training queries behind the leave-one-writer-out errors (for their intervals).

    Returns
    -------
    DataFrame
        Columns configuration, k, set (``"training (leave-one-writer-out)"`` or ``"test"``),
        ``error (%)``, ``ci low (%)``, ``ci high (%)`` (95% Wilson), ``chosen`` (k is the chosen k).
    """
    frames = []
    for e in evaluations:
        for name, errors, n in (("training (leave-one-writer-out)", e.lowo_error, n_subset),
                                ("test", e.test_error, e.n_test)):
            lo, hi = wilson_interval(np.round(errors * n).astype(np.int64), n)
            frames.append(pd.DataFrame({
                "configuration": e.name, "k": e.ks, "set": name, "error (%)": 100 * errors,
                "ci low (%)": 100 * lo, "ci high (%)": 100 * hi, "chosen": e.ks == e.k,
            }))
    return pd.concat(frames, ignore_index=True)


def query_time(X_train, X_query, metric="euclidean", p=2, k=50):
    """Wall-clock seconds per query of an uncached exact search (for timing tables only)."""
    start = time.perf_counter()
    kneighbors(X_train, X_query, k, metric, p, cache=False)
    return (time.perf_counter() - start) / len(X_query)


# --------------------------------------------------------------------------- pixel differences


def difference_histogram(A, B, edges):
    """How many pixels of each pair of images differ by an amount in each bin.

    Parameters
    ----------
    A, B : array-like of shape (n_pairs, n_pixels) or (n_pairs, height, width)
        Pairs of images, row by row.
    edges : array-like of shape (n_bins + 1,)
        Increasing bin edges for ``|A - B|``; bin ``j`` is ``[edges[j], edges[j+1])``, the last one
        closed. Differences outside ``[edges[0], edges[-1]]`` are not counted.

    Returns
    -------
    counts : ndarray of shape (n_pairs, n_bins), int64
    """
    D = _abs_diff(A, B)
    edges = np.asarray(edges, dtype=np.float64)
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"edges must be 1-D and strictly increasing, with at least 2 entries; got {edges!r}.")
    n_bins = len(edges) - 1
    bins = np.searchsorted(edges, D, side="right") - 1
    bins[D == edges[-1]] = n_bins - 1
    inside = (bins >= 0) & (bins < n_bins)
    rows = np.broadcast_to(np.arange(len(D))[:, None], D.shape)
    return np.bincount((rows * n_bins + bins)[inside], minlength=len(D) * n_bins).reshape(len(D), n_bins)


def power_shares(A, B, ps, edges):
    """Share of each pair's ``sum |A - B|**p`` contributed by differences in each bin, for several p.

    Parameters
    ----------
    A, B : array-like of shape (n_pairs, n_pixels) or (n_pairs, height, width)
    ps : sequence of float
        Exponents (p >= 1).
    edges : array-like of shape (n_bins + 1,)
        As in :func:`difference_histogram`.

    Returns
    -------
    shares : ndarray of shape (len(ps), n_bins)
        For each p, the share of the total ``sum |A - B|**p`` over all pairs that comes from pixel
        differences in each bin; rows sum to 1 when every difference falls in a bin.
    """
    D = _abs_diff(A, B).ravel()
    edges = np.asarray(edges, dtype=np.float64)
    bins = np.clip(np.searchsorted(edges, D, side="right") - 1, 0, len(edges) - 2)
    inside = (D >= edges[0]) & (D <= edges[-1])
    out = []
    for p in ps:
        w = D**p
        out.append(np.bincount(bins[inside], weights=w[inside], minlength=len(edges) - 1) / w.sum())
    return np.array(out)


def _abs_diff(A, B):
    A, B = np.asarray(A), np.asarray(B)
    A = A.reshape(len(A), -1).astype(np.float64)
    B = B.reshape(len(B), -1).astype(np.float64)
    if A.shape != B.shape:
        raise ValueError(f"A and B must hold the same number of pairs and pixels; got {A.shape} and {B.shape}.")
    return np.abs(A - B)
