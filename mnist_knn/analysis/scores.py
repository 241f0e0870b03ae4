"""Scores of predictions: accuracy with confidence intervals, paired tests, confusion matrices.

All functions take label arrays of shape (n_samples,) and return numbers or
small arrays; none of them prints or plots.
"""

from dataclasses import dataclass
import numbers

import numpy as np
from scipy import stats

__all__ = [
    "McNemarResult",
    "accuracy",
    "confusion_matrix",
    "error_rate",
    "mcnemar",
    "paired_difference_ci",
    "wilson_interval",
]


def _check_pair(y_true, y_pred, names=("y_true", "y_pred")):
    """Return two 1-D arrays of equal, non-zero length."""
    arrays = [np.asarray(a) for a in (y_true, y_pred)]
    for a, name in zip(arrays, names):
        if a.ndim != 1:
            raise ValueError(f"{name} must be 1-D of shape (n_samples,); got shape {a.shape}.")
    if arrays[0].shape != arrays[1].shape:
        raise ValueError(
            f"{names[1]} must have the shape of {names[0]} {arrays[0].shape}; "
            f"got shape {arrays[1].shape}."
        )
    if arrays[0].size == 0:
        raise ValueError(f"{names[0]} and {names[1]} must not be empty.")
    return arrays


def _check_confidence(confidence):
    if not (isinstance(confidence, numbers.Real) and 0 < confidence < 1):
        raise ValueError(f"confidence must be in (0, 1); got confidence={confidence!r}.")
    return float(confidence)


def _z(confidence):
    """Two-sided standard normal quantile, e.g. 1.959964 for 0.95."""
    return stats.norm.isf((1 - confidence) / 2)


def accuracy(y_true, y_pred):
    """Fraction of predictions equal to the true labels.

    Parameters
    ----------
    y_true : ndarray of shape (n_samples,)
    y_pred : ndarray of shape (n_samples,)

    Returns
    -------
    accuracy : float
        In [0, 1].

    Raises
    ------
    ValueError
        If the arrays are not 1-D, differ in shape or are empty.
    """
    y_true, y_pred = _check_pair(y_true, y_pred)
    return float(np.mean(y_true == y_pred))


def error_rate(y_true, y_pred):
    """Fraction of predictions that differ from the true labels.

    Parameters
    ----------
    y_true : ndarray of shape (n_samples,)
    y_pred : ndarray of shape (n_samples,)

    Returns
    -------
    error_rate : float
        In [0, 1]; ``1 - accuracy`` up to rounding (computed directly, so
        ``error_rate * n_samples`` is the exact count of errors).

    Raises
    ------
    ValueError
        If the arrays are not 1-D, differ in shape or are empty.
    """
    y_true, y_pred = _check_pair(y_true, y_pred)
    return float(np.mean(y_true != y_pred))


def wilson_interval(n_success, n, confidence=0.95):
    """Wilson score interval for a binomial proportion.

    Parameters
    ----------
    n_success : int or array-like of int
        Number of successes (e.g. correct predictions), in ``[0, n]``.
    n : int or array-like of int
        Number of trials, positive; broadcast against ``n_success``.
    confidence : float, default=0.95
        Confidence level in (0, 1).

    Returns
    -------
    low, high : float or ndarray
        Bounds in [0, 1], of the broadcast shape of the inputs (floats for
        scalar inputs).

    Raises
    ------
    ValueError
        If ``n < 1``, ``n_success`` is outside ``[0, n]`` or ``confidence`` is
        outside (0, 1).

    Notes
    -----
    With ``p = n_success / n`` and ``z`` the two-sided normal quantile,
    the interval is ``(p + z²/2n ± z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)``,
    as ``statsmodels.stats.proportion.proportion_confint(method="wilson")``.
    Unlike the normal (Wald) interval it stays inside [0, 1] and keeps its
    coverage near p = 0 or 1, where a classifier's error rate lives.
    """
    confidence = _check_confidence(confidence)
    n_success = np.asarray(n_success)
    n = np.asarray(n)
    for a, name in ((n_success, "n_success"), (n, "n")):
        if not (np.issubdtype(a.dtype, np.integer)
                or (np.issubdtype(a.dtype, np.floating) and np.all(a == np.round(a)))):
            raise ValueError(f"{name} must hold whole numbers; got {a!r}.")
    if np.any(n < 1):
        raise ValueError(f"n must be at least 1; got n={n.tolist()}.")
    if np.any(n_success < 0) or np.any(n_success > n):
        raise ValueError(
            f"n_success must be in [0, n]; got n_success={n_success.tolist()}, n={n.tolist()}."
        )
    n = n.astype(np.float64)
    p = n_success / n
    z = _z(confidence)
    z2 = z * z
    denom = 1 + z2 / n
    center = (p + z2 / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    # The bounds at 0 and n successes are exactly 0 and 1; say so rather than round.
    low = np.where(n_success == 0, 0.0, np.clip(center - half, 0.0, 1.0))
    high = np.where(n_success == n, 1.0, np.clip(center + half, 0.0, 1.0))
    if low.ndim == 0:
        return float(low), float(high)
    return low, high


@dataclass(frozen=True)
class McNemarResult:
    """Outcome of :func:`mcnemar`.

    Attributes
    ----------
    n_a_only : int
        Samples that classifier A gets right and B gets wrong.
    n_b_only : int
        Samples that B gets right and A gets wrong.
    n_both : int
        Samples both get right.
    n_neither : int
        Samples both get wrong.
    p_value : float
        Exact two-sided binomial p-value of ``n_a_only`` out of
        ``n_a_only + n_b_only`` discordant samples, under p = 1/2.
    mid_p_value : float
        The mid-p version (less conservative; Fagerland et al. 2013).
    """

    n_a_only: int
    n_b_only: int
    n_both: int
    n_neither: int
    p_value: float
    mid_p_value: float


def mcnemar(y_true, pred_a, pred_b):
    """McNemar's exact test: do two classifiers differ in accuracy on the same samples?

    Parameters
    ----------
    y_true : ndarray of shape (n_samples,)
    pred_a : ndarray of shape (n_samples,)
        Predictions of classifier A.
    pred_b : ndarray of shape (n_samples,)
        Predictions of classifier B.

    Returns
    -------
    result : McNemarResult
        Discordant counts and the exact and mid-p two-sided p-values. With no
        discordant samples both p-values are 1.

    Raises
    ------
    ValueError
        If the arrays are not 1-D, differ in shape or are empty.

    Notes
    -----
    Only the discordant samples carry information. Under the null hypothesis
    that both classifiers are equally accurate, ``n_a_only`` is
    Binomial(n_a_only + n_b_only, 1/2); the p-value is
    ``scipy.stats.binomtest(...).pvalue``, the same as
    ``statsmodels.stats.contingency_tables.mcnemar(exact=True)``.
    """
    y_true, pred_a = _check_pair(y_true, pred_a, ("y_true", "pred_a"))
    _, pred_b = _check_pair(y_true, pred_b, ("y_true", "pred_b"))
    right_a = pred_a == y_true
    right_b = pred_b == y_true
    a_only = int(np.sum(right_a & ~right_b))
    b_only = int(np.sum(~right_a & right_b))
    n_disc = a_only + b_only
    if n_disc == 0:
        p_value = mid_p = 1.0
    else:
        p_value = float(stats.binomtest(a_only, n_disc, 0.5).pvalue)
        m = min(a_only, b_only)
        mid_p = float(min(1.0, 2 * stats.binom.cdf(m, n_disc, 0.5) - stats.binom.pmf(m, n_disc, 0.5)))
    return McNemarResult(
        n_a_only=a_only,
        n_b_only=b_only,
        n_both=int(np.sum(right_a & right_b)),
        n_neither=int(np.sum(~right_a & ~right_b)),
        p_value=p_value,
        mid_p_value=mid_p,
    )


def paired_difference_ci(y_true, pred_a, pred_b, confidence=0.95):
    """Confidence interval for accuracy(A) - accuracy(B) on the same samples.

    Parameters
    ----------
    y_true : ndarray of shape (n_samples,)
    pred_a : ndarray of shape (n_samples,)
    pred_b : ndarray of shape (n_samples,)
    confidence : float, default=0.95

    Returns
    -------
    low, high : float
        Bounds of the interval, within [-1, 1].

    Raises
    ------
    ValueError
        If the arrays are not 1-D, differ in shape or are empty, or
        ``confidence`` is outside (0, 1).

    Notes
    -----
    Agresti-Min (2005) adjusted Wald interval for a difference of paired
    proportions: add 1/2 to each cell of the 2x2 table of (A right, B right),
    then ``d ± z sqrt((b + c) - (b - c)²/n) / n`` with ``b, c`` the discordant
    counts, ``n`` the total and ``d = (b - c)/n``. The adjustment keeps the
    interval from collapsing to a point when there are few discordant samples.
    Its centre is therefore ``(b - c) / (n + 2)`` for the unadjusted counts, a
    little closer to 0 than ``accuracy(A) - accuracy(B)``.
    """
    confidence = _check_confidence(confidence)
    r = mcnemar(y_true, pred_a, pred_b)
    b = r.n_a_only + 0.5
    c = r.n_b_only + 0.5
    n = len(np.asarray(y_true)) + 2.0
    d = (b - c) / n
    half = _z(confidence) * np.sqrt((b + c) - (b - c) ** 2 / n) / n
    return float(max(-1.0, d - half)), float(min(1.0, d + half))


def confusion_matrix(y_true, y_pred, n_classes=10):
    """Counts of (true label, predicted label) pairs.

    Parameters
    ----------
    y_true : ndarray of shape (n_samples,)
        Integer labels in ``[0, n_classes)``.
    y_pred : ndarray of shape (n_samples,)
        Integer labels in ``[0, n_classes)``.
    n_classes : int, default=10

    Returns
    -------
    C : ndarray of shape (n_classes, n_classes)
        int64; ``C[i, j]`` counts samples of true label ``i`` predicted as ``j``
        (rows are true labels, as ``sklearn.metrics.confusion_matrix``).

    Raises
    ------
    ValueError
        If the arrays are not 1-D integer arrays of one shape, are empty, or
        hold a label outside ``[0, n_classes)``.
    """
    y_true, y_pred = _check_pair(y_true, y_pred)
    if not isinstance(n_classes, numbers.Integral) or isinstance(n_classes, bool) or n_classes < 1:
        raise ValueError(f"n_classes must be a positive integer; got n_classes={n_classes!r}.")
    for a, name in ((y_true, "y_true"), (y_pred, "y_pred")):
        if not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"{name} must hold integer labels; got dtype {a.dtype}.")
        if a.min() < 0 or a.max() >= n_classes:
            raise ValueError(
                f"{name} labels must be in [0, n_classes={n_classes}); "
                f"got labels in [{a.min()}, {a.max()}]."
            )
    flat = y_true.astype(np.int64) * n_classes + y_pred.astype(np.int64)
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes).astype(np.int64)
