"""Comparing distances and preprocessing: one protocol for every (features, metric) configuration.

Notebook 03 runs many configurations (a metric on some representation of the images) through the
same steps, and this module holds those steps so that every configuration is treated alike:

1. **Search** (:meth:`Protocol.search`): the ``k_test`` nearest training digits of every test digit,
   and the ``k_subset`` nearest training digits of a fixed subset of *training* digits (themselves
   included), both exact and cached on disk.
2. **Hold out** the query's own writer (:func:`exclude_neighbors`): from the subset search, drop every
   neighbour written by the same person (the query itself included), which turns it into
   leave-one-*writer*-out, the way test digits meet the training set (no writer is in both). Plain
   leave-one-out (drop only the query itself) is kept for comparison.
3. **Vote** for every k in ``ks`` and **choose k on the training data** (:func:`choose_k`), then read
   the test error at that k (:class:`Evaluation`).

Plus the small pieces the comparisons need: a shortlist re-ranking for the Minkowski exponents the
exact search is too slow for (:func:`rerank`), the centred cosine (:func:`centre_rows`), a table of
all configurations (:func:`results_table`), pairwise McNemar tests (:func:`mcnemar_matrix`) and the
size of pixel differences between pairs of images (:func:`difference_histogram`, :func:`power_shares`).
"""

import time
from dataclasses import dataclass, field

import numba
import numpy as np
import pandas as pd

from .distances import LP, common_rows, finish_array, metric_code, power_sum
from .evaluate import mcnemar, wilson_interval
from .search import kneighbors
from .vote import predict_many

__all__ = [
    "Evaluation",
    "Protocol",
    "centre_rows",
    "choose_k",
    "difference_histogram",
    "error_curves",
    "exclude_neighbors",
    "mcnemar_matrix",
    "power_shares",
    "query_time",
    "rerank",
    "results_table",
    "to_uint8",
]


# --------------------------------------------------------------------------- neighbours


def exclude_neighbors(distances, indices, drop, k):
    """Remove some neighbours from a search result and keep the first ``k`` of the rest.

    Parameters
    ----------
    distances, indices : ndarray of shape (n_query, k_max)
        A search result, nearest first.
    drop : ndarray of bool, shape (n_query, k_max)
        True for the neighbours to remove, e.g. ``indices == rows[:, None]`` (the query itself:
        leave-one-out) or ``writers[indices] == writers[rows][:, None]`` (its writer's digits:
        leave-one-writer-out).
    k : int
        Neighbours to keep per query.

    Returns
    -------
    distances, indices : ndarray of shape (n_query, k)
        The first ``k`` remaining neighbours, in their original order.

    Raises
    ------
    ValueError
        If the shapes differ, or some query has fewer than ``k`` neighbours left.
    """
    distances, indices, drop = np.asarray(distances), np.asarray(indices), np.asarray(drop, dtype=bool)
    if not distances.shape == indices.shape == drop.shape or distances.ndim != 2:
        raise ValueError(
            f"distances, indices and drop must have one shape (n_query, k_max); got "
            f"{distances.shape}, {indices.shape} and {drop.shape}."
        )
    n_left = (~drop).sum(axis=1)
    if n_left.min() < k:
        raise ValueError(
            f"{int((n_left < k).sum())} queries keep fewer than k={k} neighbours (the fewest: "
            f"{int(n_left.min())}); search more neighbours."
        )
    order = np.argsort(drop, axis=1, kind="stable")[:, :k]  # kept columns first, in order
    return np.take_along_axis(distances, order, axis=1), np.take_along_axis(indices, order, axis=1)


@numba.njit(parallel=True, cache=True)
def _candidate_sums(Xq, Xt, indices, code, p, out):
    for r in numba.prange(indices.shape[0]):
        for c in range(indices.shape[1]):
            out[r, c] = power_sum(Xq[r], Xt[indices[r, c]], code, p)


@numba.njit(parallel=True, cache=True)
def _candidate_sums_int(Xq, Xt, indices, p, out):
    """Exact sum |a - b|**p of uint8 rows for an integer p <= 6 (at most 784 * 255**6 < 2**63 per
    row of 784 pixels), by repeated multiplication in int64."""
    for r in numba.prange(indices.shape[0]):
        a = Xq[r]
        for c in range(indices.shape[1]):
            b = Xt[indices[r, c]]
            s = np.int64(0)
            for d in range(a.shape[0]):
                x = np.int64(a[d]) - np.int64(b[d])
                x = x if x >= 0 else -x
                t = x
                for _ in range(p - 1):
                    t *= x
                s += t
            out[r, c] = s


def rerank(X_train, X_query, indices, metric="minkowski", p=2):
    """Re-order each query's candidate neighbours by another metric (a shortlist re-ranking).

    Not an exact search: a training row missing from the shortlist is never considered. It is the
    exact ranking *of the candidates*: for uint8 images the power sums are exact integers for
    p = 1, 2, 3 and for integer p up to 6 (int64), otherwise they are summed in float64, as in
    :func:`~mnist_knn.kneighbors`; equal distances keep the lower training index first.

    Parameters
    ----------
    X_train : array-like of shape (n_train, n_pixels) or (n_train, height, width)
    X_query : array-like of shape (n_query, n_pixels) or (n_query, height, width)
    indices : ndarray of shape (n_query, n_candidates)
        Candidate training rows of each query, e.g. the indices of an L3 search.
    metric, p
        As in :func:`~mnist_knn.kneighbors`.

    Returns
    -------
    distances : ndarray of shape (n_query, n_candidates), float64
        Nearest first.
    indices : ndarray of shape (n_query, n_candidates), int64
    """
    code, p = metric_code(metric, p)
    Xt, Xq = common_rows(X_train, X_query, names=("X_train", "X_query"))
    indices = np.asarray(indices, dtype=np.int64)
    if indices.ndim != 2 or indices.shape[0] != Xq.shape[0]:
        raise ValueError(f"indices must have shape (n_query={Xq.shape[0]}, n_candidates); got {indices.shape}.")
    if indices.size and not (0 <= indices.min() and indices.max() < Xt.shape[0]):
        raise ValueError(f"indices must be training rows in [0, {Xt.shape[0]}).")
    if code == LP and Xt.dtype == np.uint8 and p == int(p) and p <= 6 and Xt.shape[1] <= 784:
        sums = np.empty(indices.shape, dtype=np.int64)
        _candidate_sums_int(Xq, Xt, indices, int(p), sums)
    else:
        sums = np.empty(indices.shape, dtype=np.float64)
        _candidate_sums(Xq, Xt, indices, code, p, sums)
    order = np.lexsort((indices, sums), axis=1) if indices.size else indices
    sums = np.take_along_axis(sums, order, axis=1).astype(np.float64)
    return finish_array(sums, code, p), np.take_along_axis(indices, order, axis=1)


def to_uint8(images):
    """Round preprocessed images back to 8-bit pixels, as MNIST stores them.

    Each pixel moves by at most 0.5 on the 0-255 scale; in exchange every distance between the
    images is again an exact integer (see :mod:`mnist_knn.search`), and the search is faster.

    Parameters
    ----------
    images : array-like of float, any shape
        Intensities on the 0-255 scale (values outside are clipped).

    Returns
    -------
    ndarray of uint8, same shape
    """
    return np.clip(np.rint(np.asarray(images)), 0, 255).astype(np.uint8)


def centre_rows(X):
    """Subtract each row's mean: cosine distance on centred rows is 1 - Pearson correlation.

    Parameters
    ----------
    X : array-like of shape (n, n_pixels) or (n, height, width)

    Returns
    -------
    centred : ndarray of shape (n, n_pixels), float64
        Each row minus its own mean, so each row sums to 0 (up to rounding).
    """
    X = np.asarray(X)
    X = X.reshape(len(X), -1).astype(np.float64)
    return X - X.mean(axis=1, keepdims=True)


# --------------------------------------------------------------------------- evaluation


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
        """:func:`rerank` both searches of :meth:`search` (shortlists) by another metric."""
        X_train = np.asarray(X_train)
        test, subset = neighbors
        return (
            rerank(X_train, X_test, test[1], metric, p),
            rerank(X_train, X_train[self.rows], subset[1], metric, p),
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
        loo = exclude_neighbors(d_sub, i_sub, i_sub == self.rows[:, None], k_max)
        lowo = exclude_neighbors(d_sub, i_sub, self.writers[i_sub] == self.writers[self.rows][:, None], k_max)
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
