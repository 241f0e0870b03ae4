"""Comparing distances and preprocessing: every (features, metric) configuration through the report's protocol.

Notebook 03 runs many configurations (a metric on some representation of the images) through the
same steps, and this module holds those steps so that every configuration is treated alike. The steps
themselves are the report's yardstick (:mod:`.selection` and :mod:`.uncertainty`); :class:`Protocol`
only calls them in order:

1. **Search** (:meth:`Protocol.search`): the ``k_test`` nearest training digits of every test digit
   (:func:`~mnist_knn.engine.search.kneighbors`), and the nearest training digits *by other writers*
   of the selection queries (:func:`~mnist_knn.analysis.selection.other_writer_neighbors`), both exact
   and cached on disk.
2. **Choose** k and the tie rule on the held-out training writers
   (:func:`~mnist_knn.analysis.selection.held_out_errors`, :func:`~mnist_knn.analysis.selection.choose`),
   then read the test error there, with a bootstrap interval over test writers
   (:func:`~mnist_knn.analysis.uncertainty.writer_bootstrap`) (:class:`Evaluation`).

Plus the small pieces the comparisons need: a shortlist re-ranking for the Minkowski exponents the
exact search is too slow for (:meth:`Protocol.rerank`), a table of all configurations
(:func:`results_table`), error against k (:func:`error_curves`), paired writer-level comparisons with a
Holm correction over a named family (:func:`paired_comparisons`) and the size of pixel differences
between pairs of images (:func:`difference_histogram`, :func:`power_shares`).
"""

import dataclasses
import time
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from ..engine.distances import metric_code
from ..engine.rerank import rerank_by_metric
from ..engine.search import kneighbors
from ..engine.vote import TIE_RULES, predict_many
from .selection import choose, held_out_errors, other_writer_neighbors
from .uncertainty import holm, paired_difference, writer_bootstrap

__all__ = [
    "Evaluation",
    "Protocol",
    "difference_histogram",
    "error_curves",
    "paired_comparisons",
    "power_shares",
    "query_time",
    "results_table",
]


# --------------------------------------------------------------------------- neighbours


@dataclass
class Evaluation:
    """One configuration's held-out errors, the (k, tie rule) chosen there, and its test errors.

    Attributes
    ----------
    name, preprocessing, metric : str
        How the configuration is called in tables and figures.
    ks : ndarray of shape (n_ks,)
    held_out : DataFrame
        Error of every (k, rule) on the selection queries, their own writers held out
        (:func:`~mnist_knn.analysis.selection.held_out_errors`): index k, one column per rule.
    k : int
    rule : str
        Chosen by :func:`~mnist_knn.analysis.selection.choose` on ``held_out``.
    test_error : ndarray of shape (n_ks,)
        Test error for every k, with the chosen rule.
    test_pred : ndarray of shape (n_ks, n_test)
        Test predictions for every k, with the chosen rule.
    y_test, writers_test : ndarray of shape (n_test,)
    """

    name: str
    preprocessing: str
    metric: str
    ks: np.ndarray
    held_out: pd.DataFrame = field(repr=False)
    k: int
    rule: str
    test_error: np.ndarray = field(repr=False)
    test_pred: np.ndarray = field(repr=False)
    y_test: np.ndarray = field(repr=False)
    writers_test: np.ndarray = field(repr=False)

    @property
    def _at_k(self):
        return int(np.flatnonzero(self.ks == self.k)[0])

    @property
    def n_test(self):
        return len(self.y_test)

    @property
    def error(self):
        """Test error at the chosen k and rule."""
        return float(self.test_error[self._at_k])

    @property
    def y_pred(self):
        """Test predictions at the chosen k and rule, shape (n_test,)."""
        return self.test_pred[self._at_k]

    @property
    def wrong(self):
        """1 where the test digit is misclassified at the chosen k and rule, shape (n_test,)."""
        return (self.y_pred != self.y_test).astype(np.int8)

    @cached_property
    def estimate(self):
        """The test error with its 95% bootstrap interval over test writers (an
        :class:`~mnist_knn.analysis.uncertainty.Estimate`, default replicates and seed)."""
        return writer_bootstrap(self.wrong, self.writers_test)

    @property
    def train_error(self):
        """Held-out error at the chosen k and rule."""
        return float(self.held_out.loc[self.k, self.rule])


@dataclass(frozen=True)
class Protocol:
    """The data and choices shared by every configuration of a comparison.

    Parameters
    ----------
    y_train : ndarray of shape (n_train,)
    y_test : ndarray of shape (n_test,)
    writers : ndarray of shape (n_train,)
        Writer of every training digit.
    writers_test : ndarray of shape (n_test,)
        Writer of every test digit (for the bootstrap intervals).
    queries : ndarray of int or None
        Training digits that choose k and the rule (e.g.
        :func:`~mnist_knn.analysis.selection.selection_queries`); ``None``: all of them.
    ks : sequence of int, default=1..20
        The k compared, increasing, all ``<= k_test``.
    rules : sequence of str, default=("smallest", "nearest")
        The tie rules compared, simplest first.
    k_test : int, default=50
        Neighbours searched for test digits.
    cache : bool or path-like, default=True
        Passed to the searches.
    """

    y_train: np.ndarray
    y_test: np.ndarray
    writers: np.ndarray
    writers_test: np.ndarray
    queries: object = None
    ks: tuple = tuple(range(1, 21))
    rules: tuple = TIE_RULES[:2]
    k_test: int = 50
    cache: object = True

    def with_queries(self, queries):
        """The same protocol with other selection queries."""
        return dataclasses.replace(self, queries=queries)

    @property
    def _rows(self):
        return np.arange(len(self.y_train)) if self.queries is None else np.asarray(self.queries)

    def search(self, X_train, X_test, metric="euclidean", p=2, *, k_held=None):
        """Exact neighbours ``(test, held_out)``, each a ``(distances, indices)`` pair: the ``k_test`` nearest
        training digits of the test digits, and the ``k_held`` (default ``max(ks)``) nearest training digits
        of the selection queries among other writers' digits."""
        X_train = np.asarray(X_train)
        test = kneighbors(X_train, X_test, self.k_test, metric, p, cache=self.cache)
        held = other_writer_neighbors(X_train, self.writers, k_held or max(self.ks), metric, p,
                                      queries=self.queries, cache=self.cache)
        return test, held

    def rerank(self, X_train, X_test, neighbors, metric="minkowski", p=2):
        """:func:`~mnist_knn.engine.rerank.rerank_by_metric` both searches of :meth:`search` (shortlists) by another
        metric; the held-out shortlists contain other writers' digits only, and so do their re-rankings."""
        X_train = np.asarray(X_train)
        test, held = neighbors
        return (
            rerank_by_metric(X_train, X_test, test[1], metric, p),
            rerank_by_metric(X_train, X_train[self._rows], held[1], metric, p),
        )

    def evaluate(self, name, neighbors, *, preprocessing="none", metric=""):
        """Held-out errors, the chosen (k, rule), and the test errors, from the searches of :meth:`search`.

        Returns
        -------
        Evaluation
        """
        (d_test, i_test), (d_held, i_held) = neighbors
        ks = np.asarray(self.ks)
        table = held_out_errors(d_held, i_held, self.y_train, self.y_train[self._rows], ks, self.rules)
        k, rule = choose(table)
        test_pred = predict_many(d_test, i_test, self.y_train, ks, tie_break=rule)
        return Evaluation(
            name=name, preprocessing=preprocessing, metric=metric, ks=ks, held_out=table, k=int(k), rule=rule,
            test_error=(test_pred != self.y_test).mean(axis=1), test_pred=test_pred,
            y_test=np.asarray(self.y_test), writers_test=np.asarray(self.writers_test),
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
    """One row per configuration: its k and tie rule (chosen on held-out training writers), held-out and test error.

    Parameters
    ----------
    evaluations : iterable of Evaluation

    Returns
    -------
    DataFrame
        Indexed by name, with columns preprocessing, metric, k, ``tie rule``, ``held-out error (%)`` (at the
        chosen k and rule), ``test error (%)``, ``95% CI low``, ``95% CI high`` (bootstrap over test writers)
        and ``test digits``; errors in percent, rounded to 2 decimals.
    """
    rows = []
    for e in evaluations:
        est = e.estimate
        rows.append({
            "configuration": e.name, "preprocessing": e.preprocessing, "metric": e.metric, "k": e.k,
            "tie rule": e.rule, "held-out error (%)": round(100 * e.train_error, 2),
            "test error (%)": round(100 * e.error, 2), "95% CI low": round(100 * est.low, 2),
            "95% CI high": round(100 * est.high, 2), "test digits": e.n_test,
        })
    return pd.DataFrame(rows).set_index("configuration")


def paired_comparisons(evaluations, pairs):
    """Paired writer-level comparisons of configurations on the same test digits, Holm-corrected as one family.

    Parameters
    ----------
    evaluations : mapping of str to Evaluation
        Each at its own chosen k and rule; all on the same test digits and writers.
    pairs : sequence of (str, str)
        The family: ``(a, b)`` compares ``a`` minus ``b``.

    Returns
    -------
    DataFrame
        One row per pair, in order: ``a``, ``b``, ``difference (points)`` (error of a minus error of b),
        ``low``, ``high`` (95% bootstrap interval over test writers, in points), ``p`` (writer sign-flip
        test), ``p (Holm)`` (adjusted over the pairs given), ``writers differing``.
    """
    rows = []
    for a, b in pairs:
        ea, eb = evaluations[a], evaluations[b]
        if not (np.array_equal(ea.y_test, eb.y_test) and np.array_equal(ea.writers_test, eb.writers_test)):
            raise ValueError(f"{a!r} and {b!r} were not evaluated on the same test digits; a paired test needs them.")
        r = paired_difference(ea.wrong, eb.wrong, ea.writers_test)
        rows.append({"a": a, "b": b, "difference (points)": 100 * r.difference, "low": 100 * r.low,
                     "high": 100 * r.high, "p": r.p_value, "writers differing": r.n_writers_differing})
    table = pd.DataFrame(rows, columns=["a", "b", "difference (points)", "low", "high", "p", "writers differing"])
    table.insert(6, "p (Holm)", holm(table["p"].to_numpy()) if len(table) else [])
    return table


def error_curves(evaluations):
    """Held-out and test error against k for several configurations (each with its chosen rule), as one long
    table for plotting.

    Returns
    -------
    DataFrame
        Columns configuration, k, set (``"held-out training writers"`` or ``"test"``), ``error (%)``,
        ``chosen`` (k is the chosen k).
    """
    frames = []
    for e in evaluations:
        for name, errors in (("held-out training writers", e.held_out[e.rule].to_numpy()), ("test", e.test_error)):
            frames.append(pd.DataFrame({
                "configuration": e.name, "k": e.ks, "set": name, "error (%)": 100 * errors, "chosen": e.ks == e.k,
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
