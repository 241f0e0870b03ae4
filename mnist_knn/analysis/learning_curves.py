"""Learning curves: accuracy over training-set size and k, power-law fits, and the cost of a query.

Search once, vote many times: each training subsample is searched once for ``k_max`` neighbours of
every test digit, and the accuracy of every ``k <= k_max`` is read off that one search.

- :func:`subsample` draws a training subsample by one of :data:`SCHEMES`;
- :func:`learning_curve` runs the searches for a grid of sizes and repeats and returns the error of
  every (size, repeat, k), plus which test digits each run got right at a few chosen k;
- :func:`fit_power_law` fits ``error = c + a * n**-b`` and :func:`bootstrap_power_law` says how sure
  an extrapolation of it is, by resampling test digits and subsamples;
- :func:`selection_optimism` measures how much choosing k on a test set flatters the chosen k;
- :func:`query_times` times the engine's search per query against training sets of several sizes.
"""

import numbers
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize

from ..engine.search import kneighbors
from ..engine.vote import predict_many
from ..progress import progress

__all__ = [
    "SCHEMES",
    "PowerLaw",
    "bootstrap_power_law",
    "fit_power_law",
    "learning_curve",
    "query_times",
    "selection_optimism",
    "stratified_counts",
    "subsample",
]

SCHEMES = ("random", "stratified", "first")
"""Ways to draw a training subsample: plain random, stratified by label, or the first ``size`` rows."""


def _check_size(size, n):
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or not 1 <= size <= n:
        raise ValueError(f"size must be an integer in [1, n_train={n}]; got size={size!r}.")
    return int(size)


def stratified_counts(y, size):
    """How many rows of each label a stratified subsample of ``size`` rows takes.

    Proportional allocation by the largest-remainder method: each label gets the integer part of
    ``size * share``; the rows left over go to the labels with the largest fractional parts (the
    smaller label first among equal parts).

    Parameters
    ----------
    y : ndarray of shape (n,)
        Integer labels 0..n_classes-1.
    size : int
        In [1, n].

    Returns
    -------
    counts : ndarray of shape (n_classes,), int64
        Sums to ``size``; no count exceeds the label's rows in ``y``.

    Raises
    ------
    ValueError
        If ``size`` is not an integer in [1, n].
    """
    y = np.asarray(y)
    size = _check_size(size, len(y))
    available = np.bincount(y)
    quota = size * available / len(y)
    counts = np.floor(quota).astype(np.int64)
    order = np.argsort(-(quota - counts), kind="stable")
    counts[order[: size - counts.sum()]] += 1
    return counts


def subsample(y, size, scheme="random", rng=None):
    """Indices of a training subsample, sorted ascending.

    Parameters
    ----------
    y : ndarray of shape (n,)
        Integer labels of the full training set.
    size : int
        Rows to draw, in [1, n].
    scheme : {"random", "stratified", "first"}, default="random"
        ``"random"``: ``size`` rows uniformly without replacement (label counts vary).
        ``"stratified"``: :func:`stratified_counts` rows of each label, uniformly within the label.
        ``"first"``: rows ``0 .. size - 1`` (no randomness; the classic "first N" protocol).
    rng : numpy.random.Generator, optional
        Required for ``"random"`` and ``"stratified"``.

    Returns
    -------
    indices : ndarray of shape (size,), int64
        Sorted, so the subsample keeps the training order (and the search its tie order).

    Raises
    ------
    ValueError
        If ``size`` or ``scheme`` is invalid, or ``rng`` is missing for a random scheme.
    """
    y = np.asarray(y)
    size = _check_size(size, len(y))
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}; got scheme={scheme!r}.")
    if scheme == "first":
        return np.arange(size, dtype=np.int64)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"scheme={scheme!r} needs rng, a numpy.random.Generator; got {rng!r}.")
    if scheme == "random":
        return np.sort(rng.choice(len(y), size=size, replace=False)).astype(np.int64)
    parts = [
        rng.choice(np.flatnonzero(y == label), size=count, replace=False)
        for label, count in enumerate(stratified_counts(y, size))
    ]
    return np.sort(np.concatenate(parts)).astype(np.int64)


def learning_curve(
    X_train, y_train, X_test, y_test, sizes, repeats, *, scheme, rng=None, k_max=50,
    keep_ks=(1,), cache_from=None, tie_break="smallest",
):
    """Test error of the uniform k-NN vote for every (size, repeat, k), one search per subsample.

    Parameters
    ----------
    X_train : ndarray of shape (n_train, n_pixels) or (n_train, height, width)
    y_train : ndarray of shape (n_train,)
    X_test : ndarray of shape (n_test, n_pixels) or (n_test, height, width)
    y_test : ndarray of shape (n_test,)
    sizes : sequence of int
        Training-set sizes.
    repeats : int or sequence of int
        Subsamples per size (one number for all sizes, or one per size). A size equal to
        ``n_train`` (or the scheme ``"first"``) gives the same set every time: it is run once.
    scheme : {"random", "stratified", "first"}
        As in :func:`subsample`.
    rng : numpy.random.Generator, optional
        Draws every subsample, in the order of ``sizes`` then repeats.
    k_max : int, default=50
        Largest k; a subsample smaller than ``k_max`` is scored for ``k <= size`` only.
    keep_ks : sequence of int, default=(1,)
        The k whose per-digit correctness is returned (for bootstraps).
    cache_from : int, optional
        Searches of subsamples with at least this many rows are cached on disk
        (:func:`mnist_knn.kneighbors` with ``cache=True``); smaller ones are cheap and are not.
    tie_break : str, default="smallest"
        How a tied uniform vote is resolved, one of :data:`mnist_knn.engine.vote.TIE_RULES`
        (``"smallest"`` is scikit-learn's rule; ``"nearest"`` gives the tie to the tied label of the
        nearest neighbour). The search does not depend on it, so cached searches serve every rule.

    Returns
    -------
    errors : pandas.DataFrame
        One row per (size, repeat, k): columns ``scheme, size, repeat, k, n_errors, error``.
    correct : ndarray of shape (n_runs, len(keep_ks), n_test), bool
        Whether run ``r`` (the ``r``-th distinct (size, repeat) in ``errors``) labels each test
        digit correctly at each k of ``keep_ks``.

    Raises
    ------
    ValueError
        If ``repeats`` does not match ``sizes``, or as :func:`subsample`.

    Notes
    -----
    The vote is uniform; ``tie_break`` decides tied votes (by default scikit-learn's rule: the smallest label).
    """
    sizes = [int(s) for s in sizes]
    repeats = [int(repeats)] * len(sizes) if np.ndim(repeats) == 0 else [int(r) for r in repeats]
    if len(repeats) != len(sizes):
        raise ValueError(f"repeats has {len(repeats)} entries; sizes has {len(sizes)}.")
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    X_train = np.asarray(X_train)
    rows, correct = [], []
    runs = [  # (size, repeat) in order; a deterministic subsample is run once
        (size, rep) for size, n_rep in zip(sizes, repeats)
        for rep in range(1 if scheme == "first" or size == len(y_train) else n_rep)
    ]
    for size, rep in progress(runs, desc=f"learning curve ({scheme})", unit="search"):
        S = subsample(y_train, size, scheme, rng)
        k_hi = min(k_max, size)
        cache = cache_from is not None and size >= cache_from
        dist, ind = kneighbors(X_train[S], X_test, k_hi, cache=cache)
        pred = predict_many(dist, ind, y_train[S], np.arange(1, k_hi + 1), tie_break=tie_break)
        wrong = (pred != y_test).sum(axis=1)
        rows += [(scheme, size, rep, k, int(wrong[k - 1])) for k in range(1, k_hi + 1)]
        correct.append([pred[min(k, k_hi) - 1] == y_test for k in keep_ks])
    errors = pd.DataFrame(rows, columns=["scheme", "size", "repeat", "k", "n_errors"])
    errors["error"] = errors["n_errors"] / len(y_test)
    return errors, np.array(correct, dtype=bool).reshape(len(correct), len(keep_ks), len(y_test))


@dataclass(frozen=True)
class PowerLaw:
    """``error(n) = floor + scale * n ** -exponent``."""

    scale: float
    exponent: float
    floor: float = 0.0

    def __call__(self, n):
        """The modelled error at training-set size(s) ``n``."""
        return self.floor + self.scale * np.asarray(n, dtype=np.float64) ** -self.exponent


def fit_power_law(n, error, floor=False):
    """Fit a power law to error against training-set size, by least squares on log(error).

    Parameters
    ----------
    n : array-like of shape (n_points,)
        Training-set sizes, positive.
    error : array-like of shape (n_points,)
        Errors at those sizes, positive fractions.
    floor : bool, default=False
        False: ``error = a * n**-b`` (a straight line on log-log axes, fitted exactly by linear
        least squares). True: ``error = c + a * n**-b`` with ``c >= 0``, an error the curve levels
        off towards (fitted by nonlinear least squares; needs at least 3 points).

    Returns
    -------
    PowerLaw

    Raises
    ------
    ValueError
        If the arrays differ in length, have too few points, or hold non-positive values.
    """
    n = np.asarray(n, dtype=np.float64)
    error = np.asarray(error, dtype=np.float64)
    if n.ndim != 1 or n.shape != error.shape:
        raise ValueError(f"n and error must be 1-D of equal length; got shapes {n.shape} and {error.shape}.")
    needed = 3 if floor else 2
    if len(np.unique(n)) < needed:
        raise ValueError(f"need at least {needed} distinct sizes; got {len(np.unique(n))}.")
    if (n <= 0).any() or (error <= 0).any():
        raise ValueError("sizes and errors must be positive (an error of 0 has no logarithm).")
    x, z = np.log(n), np.log(error)
    slope, intercept = np.polyfit(x, z, 1)
    if not floor:
        return PowerLaw(scale=float(np.exp(intercept)), exponent=float(-slope))

    def residuals(theta):
        log_a, b, c = theta
        return np.log(c + np.exp(log_a - b * x)) - z

    start = [intercept, max(-slope, 1e-3), 0.0]
    fit = optimize.least_squares(
        residuals, start, bounds=([-np.inf, 0.0, 0.0], [np.inf, np.inf, error.min()]), x_scale="jac",
    )
    log_a, b, c = fit.x
    return PowerLaw(scale=float(np.exp(log_a)), exponent=float(b), floor=float(c))


def bootstrap_power_law(correct, run_sizes, n_new, n_boot=1000, *, rng, floor=False, groups=None):
    """Bootstrap distribution of a power law's parameters and its extrapolations.

    Each replicate resamples the test digits (with replacement, the same draw for every run, as
    the runs share one test set) or, given ``groups``, whole groups of them (the test writers: their
    errors cluster), and, within each size, the runs (subsamples); it averages the error of each
    size over the drawn runs and fits :func:`fit_power_law` to those means.

    Parameters
    ----------
    correct : ndarray of shape (n_runs, n_test), bool
        Whether each run labels each test digit correctly.
    run_sizes : ndarray of shape (n_runs,)
        Training-set size of each run.
    n_new : array-like of shape (n_new,)
        Sizes to extrapolate to.
    n_boot : int, default=1000
    rng : numpy.random.Generator
    floor : bool, default=False
        As in :func:`fit_power_law`.
    groups : array-like of shape (n_test,), optional
        The group (writer) of each test digit: a replicate draws as many groups as there are, with
        replacement, with all their digits. With one digit per group it is the digit bootstrap.

    Returns
    -------
    params : ndarray of shape (n_boot, 3)
        ``scale, exponent, floor`` of each replicate.
    predicted : ndarray of shape (n_boot, n_new)
        Each replicate's error at ``n_new``.

    Raises
    ------
    ValueError
        If ``correct`` and ``run_sizes`` disagree.
    """
    correct = np.asarray(correct, dtype=bool)
    run_sizes = np.asarray(run_sizes)
    if correct.ndim != 2 or correct.shape[0] != len(run_sizes):
        raise ValueError(
            f"correct must have shape (n_runs={len(run_sizes)}, n_test); got shape {correct.shape}."
        )
    n_runs, n_test = correct.shape
    sizes = np.unique(run_sizes)
    runs_of = [np.flatnonzero(run_sizes == s) for s in sizes]
    wrong = (~correct).astype(np.float64)
    if groups is None:
        group, n_groups = np.arange(n_test), n_test
    else:
        groups = np.asarray(groups)
        if groups.shape != (n_test,):
            raise ValueError(f"groups must have shape ({n_test},), one per test digit; got {groups.shape}.")
        _, group = np.unique(groups, return_inverse=True)
        n_groups = int(group.max()) + 1
    params = np.empty((n_boot, 3))
    predicted = np.empty((n_boot, len(np.atleast_1d(n_new))))
    for b in progress(range(n_boot), desc="power-law bootstrap", unit="replicate"):
        weights = rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups))[group]
        run_error = wrong @ weights / weights.sum()
        mean_error = [run_error[rng.choice(r, size=len(r))].mean() for r in runs_of]
        law = fit_power_law(sizes, np.maximum(mean_error, 0.5 / n_test), floor=floor)
        params[b] = law.scale, law.exponent, law.floor
        predicted[b] = law(n_new)
    return params, predicted


def selection_optimism(correct_by_k, n_splits=200, *, rng):
    """How much picking the best k on a test set flatters it: split-half estimate.

    Each split divides the test digits at random into halves A and B, picks the k with the highest
    accuracy on A, and records that accuracy on A minus its accuracy on B. The mean over splits
    estimates by how much the winner's accuracy on the data that chose it overstates its accuracy
    on fresh data of half the size (the selection bias shrinks with the size of the test set).

    Parameters
    ----------
    correct_by_k : ndarray of shape (n_k, n_test), bool
        Whether each candidate (e.g. each k) labels each test digit correctly.
    n_splits : int, default=200
    rng : numpy.random.Generator

    Returns
    -------
    optimism : ndarray of shape (n_splits,)
        Accuracy on A minus accuracy on B of the candidate chosen on A, per split.
    """
    correct_by_k = np.asarray(correct_by_k, dtype=bool)
    if correct_by_k.ndim != 2 or correct_by_k.shape[1] < 2:
        raise ValueError(f"correct_by_k must be 2-D with at least 2 test digits; got {correct_by_k.shape}.")
    n_test = correct_by_k.shape[1]
    C = correct_by_k.astype(np.float64)
    out = np.empty(n_splits)
    for s in range(n_splits):
        in_a = np.zeros(n_test, dtype=bool)
        in_a[rng.choice(n_test, size=n_test // 2, replace=False)] = True
        acc_a = C[:, in_a].mean(axis=1)
        best = int(acc_a.argmax())
        out[s] = acc_a[best] - C[best, ~in_a].mean()
    return out


def query_times(X_train, X_query, sizes, k=1, repeats=3):
    """Wall-clock seconds per query of an exact search against the first ``size`` training rows.

    Parameters
    ----------
    X_train : ndarray of shape (n_train, n_pixels) or (n_train, height, width)
    X_query : ndarray of shape (n_query, n_pixels) or (n_query, height, width)
    sizes : sequence of int
    k : int, default=1
    repeats : int, default=3
        Searches per size; the fastest counts (the least disturbed by other work on the machine).

    Returns
    -------
    pandas.DataFrame
        Columns ``size, seconds_per_query``, one row per size. Never cached: every search runs.
    """
    rows = []
    kneighbors(X_train[:k], X_query[:1], k)  # compile and warm up outside the clock
    for size in sizes:
        best = np.inf
        for _ in range(repeats):
            start = time.perf_counter()
            kneighbors(X_train[:size], X_query, k)
            best = min(best, time.perf_counter() - start)
        rows.append((int(size), best / len(X_query)))
    return pd.DataFrame(rows, columns=["size", "seconds_per_query"])
