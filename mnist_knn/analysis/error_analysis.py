"""Error analysis: per-digit measurements, causes of errors, confidence and rejection, writers.

The measurements behind notebook 05. Every function is pure (arrays in, arrays or DataFrames out):

* what a digit looks like: :func:`digit_measurements` (slant, ink, bounding box) and
  :func:`class_percentile` (how unusual a value is *for its class*);
* how it sits among the training digits: :func:`nearest_distance_per_class` (exact, any number of
  neighbours away), :func:`distance_ratio`, and :func:`neighbour_distance_ratio` (the same ratio read
  from a list of neighbours, e.g. other writers' digits for a held-out training digit);
* who is to blame: :func:`unanimous_against` (label-noise candidates), :func:`bad_neighbour_counts`,
  :func:`assign_causes`;
* where errors concentrate: :func:`binned_error` (error rate per bin of a measurement, with intervals
  over writers when their IDs are given);
* what to trust: :func:`rejection_curve` (accuracy-rejection, ties shared fairly);
* who wrote them: :func:`top_share`, :func:`binomial_top_share`, :func:`concentration_curve`;
* which confusions are one-sided: :func:`confused_pairs`.
"""

import numpy as np
import pandas as pd
from scipy import stats

from .. import validation
from ..data.preprocess import skew
from ..engine.search import kneighbors
from ..progress import progress
from .scores import wilson_interval
from .uncertainty import writer_bootstrap

__all__ = [
    "assign_causes",
    "bad_neighbour_counts",
    "binned_error",
    "binomial_top_share",
    "class_percentile",
    "concentration_curve",
    "confused_pairs",
    "digit_measurements",
    "distance_ratio",
    "nearest_distance_per_class",
    "neighbour_distance_ratio",
    "rejection_curve",
    "top_share",
    "unanimous_against",
]


def digit_measurements(images):
    """Slant, ink and bounding box of each digit.

    Parameters
    ----------
    images : ndarray of shape (n, side, side)
        Intensities 0-255 (MNIST: uint8).

    Returns
    -------
    DataFrame with n rows and float64 columns
        ``skew``: :func:`mnist_knn.data.preprocess.skew` (columns per row; negative = leaning right).
        ``ink``: sum of pixel values / 255 (black-pixel equivalents).
        ``box_height``, ``box_width``: size of the box around all pixels > 0 (pixels).
        ``box_row``, ``box_col``: centre of that box (pixel coordinates, row 0 at the top).
        ``box_offset``: distance of the box centre from the image centre ``((side-1)/2, (side-1)/2)``.
        A blank image gets a box of size 0 centred on the image centre.
    """
    images = validation.images(images, square=True, flat=False)
    n, side, _ = images.shape
    inked = images > 0
    rows, cols = inked.any(axis=2), inked.any(axis=1)
    has_ink = rows.any(axis=1)
    top, bottom = rows.argmax(axis=1), side - 1 - rows[:, ::-1].argmax(axis=1)
    left, right = cols.argmax(axis=1), side - 1 - cols[:, ::-1].argmax(axis=1)
    centre = (side - 1) / 2
    box_row = np.where(has_ink, (top + bottom) / 2, centre)
    box_col = np.where(has_ink, (left + right) / 2, centre)
    return pd.DataFrame({
        "skew": skew(images),
        "ink": images.reshape(n, -1).sum(axis=1, dtype=np.float64) / 255,
        "box_height": np.where(has_ink, bottom - top + 1, 0).astype(np.float64),
        "box_width": np.where(has_ink, right - left + 1, 0).astype(np.float64),
        "box_row": box_row,
        "box_col": box_col,
        "box_offset": np.hypot(box_row - centre, box_col - centre),
    })


def class_percentile(values, labels, ref_values, ref_labels, n_classes=10):
    """Where each value falls in the reference distribution of its own class (mid-rank percentile).

    Parameters
    ----------
    values : ndarray of shape (n,)
    labels : ndarray of shape (n,)
        Integer class of each value, in ``[0, n_classes)``.
    ref_values : ndarray of shape (n_ref,)
    ref_labels : ndarray of shape (n_ref,)
    n_classes : int, default=10

    Returns
    -------
    percentile : ndarray of shape (n,), float64 in [0, 1]
        ``(#ref of the class below + #ref of the class equal / 2) / #ref of the class``: 0.5 is the
        class median, values beyond every reference value get 0 or 1.

    Raises
    ------
    ValueError
        If a class in ``labels`` has no reference values, or the shapes disagree.
    """
    values, labels = np.asarray(values, np.float64), np.asarray(labels)
    ref_values, ref_labels = np.asarray(ref_values, np.float64), np.asarray(ref_labels)
    if values.shape != labels.shape or ref_values.shape != ref_labels.shape or values.ndim != 1:
        raise ValueError("values/labels and ref_values/ref_labels must be 1-D pairs of equal length.")
    out = np.empty(len(values))
    for c in range(n_classes):
        mask = labels == c
        if not mask.any():
            continue
        ref = np.sort(ref_values[ref_labels == c])
        if len(ref) == 0:
            raise ValueError(f"class {c} has no reference values.")
        below = np.searchsorted(ref, values[mask], side="left")
        not_above = np.searchsorted(ref, values[mask], side="right")
        out[mask] = (below + not_above) / (2 * len(ref))
    return out


def nearest_distance_per_class(X_train, y_train, X_query, metric="euclidean", p=2, *, n_classes=10, cache=False):
    """Distance from each query to its nearest training image of every class, exactly.

    One search per class (``kneighbors`` with k=1 on that class's training images), so the nearest
    image of a class is found however many images of other classes lie closer.

    Parameters
    ----------
    X_train : ndarray of shape (n_train, n_pixels) or (n_train, side, side)
    y_train : ndarray of shape (n_train,)
        Integer labels in ``[0, n_classes)``; every class must occur.
    X_query : ndarray of shape (n_query, n_pixels) or (n_query, side, side)
    metric, p, cache
        As in :func:`mnist_knn.engine.search.kneighbors`.
    n_classes : int, default=10

    Returns
    -------
    D : ndarray of shape (n_query, n_classes), float64
        ``D[i, c]`` = distance from query i to the nearest training image labelled c.
    """
    y_train = np.asarray(y_train)
    X_train = np.asarray(X_train)
    D = np.empty((len(X_query), n_classes))
    for c in progress(range(n_classes), desc="nearest digit of each class", unit="class"):
        members = y_train == c
        if not members.any():
            raise ValueError(f"y_train has no image of class {c}; need all {n_classes} classes.")
        D[:, c] = kneighbors(X_train[members], X_query, 1, metric, p, cache=cache)[0][:, 0]
    return D


def distance_ratio(D, labels):
    """Nearest distance to the given class divided by the nearest distance to any other class.

    Parameters
    ----------
    D : ndarray of shape (n, n_classes)
        From :func:`nearest_distance_per_class`.
    labels : ndarray of shape (n,)
        The class to measure from: the true label (diagnosis: > 1 means a digit of another class is
        nearer than any of its own) or the predicted label (confidence, no true label needed).

    Returns
    -------
    ratio : ndarray of shape (n,)
        ``D[i, labels[i]] / min_{c != labels[i]} D[i, c]``; ``inf`` when the denominator is 0 and the
        numerator is not, 1 when both are 0.
    """
    D = np.asarray(D, np.float64)
    labels = np.asarray(labels)
    rows = np.arange(len(D))
    own = D[rows, labels]
    others = D.copy()
    others[rows, labels] = np.inf
    other = others.min(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = own / other
    ratio[(own == 0) & (other == 0)] = 1.0
    return ratio


def neighbour_distance_ratio(distances, indices, y_train, labels):
    """:func:`distance_ratio` read from a list of neighbours instead of a search per class.

    For a held-out training digit the neighbours are other writers' digits (from
    :func:`~mnist_knn.analysis.selection.other_writer_neighbors`), so the ratio is measured the way a
    test digit's is.

    Parameters
    ----------
    distances, indices : ndarray of shape (n, k_max)
        Neighbours, nearest first.
    y_train : ndarray of shape (n_train,)
    labels : ndarray of shape (n,)
        The class to measure from (e.g. the predicted label).

    Returns
    -------
    ratio : ndarray of shape (n,)
        Distance to the nearest listed neighbour of class ``labels[i]`` divided by the distance to the
        nearest listed neighbour of any other class. Where the list holds no neighbour of the class the
        numerator is the last listed distance (a lower bound of the true one); where it holds no other
        class the denominator is the last listed distance (so the ratio is an upper bound).
    exact : ndarray of shape (n,), bool
        Whether both classes occur in the list, so that the ratio equals :func:`distance_ratio` on the
        same reference digits.
    """
    distances = np.asarray(distances, np.float64)
    L = np.asarray(y_train)[np.asarray(indices)]
    labels = np.asarray(labels)
    if distances.shape != L.shape or distances.ndim != 2 or labels.shape != (len(L),):
        raise ValueError(
            f"distances and indices must have one 2-D shape, and labels one entry per row; got shapes "
            f"{distances.shape}, {L.shape} and {labels.shape}."
        )
    same = L == labels[:, None]
    last = distances[:, -1]
    own = np.where(same.any(axis=1), np.where(same, distances, np.inf).min(axis=1), last)
    other = np.where((~same).any(axis=1), np.where(~same, distances, np.inf).min(axis=1), last)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = own / other
    ratio[(own == 0) & (other == 0)] = 1.0
    return ratio, same.any(axis=1) & (~same).any(axis=1)


def unanimous_against(indices, y_train, y_true, k):
    """Label-noise candidates: the k nearest neighbours all carry one label, and it is not ``y_true``.

    Parameters
    ----------
    indices : ndarray of shape (n, k_max)
        Neighbour indices, nearest first, ``k_max >= k``.
    y_train : ndarray of shape (n_train,)
    y_true : ndarray of shape (n,)
    k : int

    Returns
    -------
    mask : ndarray of shape (n,), bool
    """
    indices = np.asarray(indices)
    if not 1 <= k <= indices.shape[1]:
        raise ValueError(f"k must be in [1, {indices.shape[1]}]; got k={k}.")
    L = np.asarray(y_train)[indices[:, :k]]
    return (L == L[:, :1]).all(axis=1) & (L[:, 0] != np.asarray(y_true))


def bad_neighbour_counts(indices, y_train, y_true, y_pred, k):
    """How many errors each training image helped to cause.

    A training image is *at fault* in an error when it is among the k voting neighbours of a
    misclassified query and carries the (wrong) predicted label.

    Parameters
    ----------
    indices : ndarray of shape (n, k_max)
    y_train : ndarray of shape (n_train,)
    y_true, y_pred : ndarray of shape (n,)
    k : int

    Returns
    -------
    counts : ndarray of shape (n_train,), int64
        Number of misclassified queries in which each training image is at fault.
    """
    indices = np.asarray(indices)[:, :k]
    y_train = np.asarray(y_train)
    wrong = np.asarray(y_true) != np.asarray(y_pred)
    I = indices[wrong]
    at_fault = y_train[I] == np.asarray(y_pred)[wrong][:, None]
    return np.bincount(I[at_fault], minlength=len(y_train)).astype(np.int64)


def assign_causes(flags, default="none"):
    """The first flagged cause of each item, in the order given (a priority order).

    Parameters
    ----------
    flags : dict of str -> ndarray of shape (n,), bool
        Cause name -> which items show it; earlier causes win.
    default : str, default="none"
        The cause of items with no flag.

    Returns
    -------
    cause : ndarray of shape (n,), object (str)
    """
    names = list(flags)
    if not names:
        raise ValueError("flags is empty; need at least one cause.")
    F = np.stack([np.asarray(flags[name], bool) for name in names], axis=1)
    first = F.argmax(axis=1)
    return np.where(F.any(axis=1), np.array(names, dtype=object)[first], default)


def binned_error(values, errors, edges, confidence=0.95, *, writers=None):
    """Error rate, with an interval, in each bin of a measurement.

    Parameters
    ----------
    values : ndarray of shape (n,)
    errors : ndarray of shape (n,), bool
    edges : array-like of shape (n_bins + 1,), increasing
        Bin i holds ``edges[i] <= value < edges[i + 1]``; the last bin includes its right edge.
        Values outside ``[edges[0], edges[-1]]`` are not counted.
    confidence : float, default=0.95
    writers : ndarray of shape (n,) or None, default=None
        The writer of each digit. When given, each bin's interval is a writer bootstrap
        (:func:`~mnist_knn.analysis.uncertainty.writer_bootstrap` of the bin's digits, seed 0), which
        respects errors that cluster by writer; otherwise a Wilson interval, which treats the digits as
        independent.

    Returns
    -------
    DataFrame with one row per bin
        ``low``, ``high`` (the edges), ``digits``, ``errors``, ``error``, ``ci_low``, ``ci_high``
        (NaN rate and interval for an empty bin).
    """
    values = np.asarray(values, np.float64)
    errors = np.asarray(errors, bool)
    edges = np.asarray(edges, np.float64)
    if values.shape != errors.shape or values.ndim != 1:
        raise ValueError("values and errors must be 1-D and of equal length.")
    if writers is not None and np.shape(writers) != values.shape:
        raise ValueError(f"writers must have the shape of values, {values.shape}; got {np.shape(writers)}.")
    if edges.ndim != 1 or len(edges) < 2 or (np.diff(edges) <= 0).any():
        raise ValueError(f"edges must be increasing with at least two entries; got {edges.tolist()}.")
    inside = (values >= edges[0]) & (values <= edges[-1])
    bins = np.clip(np.searchsorted(edges, values[inside], side="right") - 1, 0, len(edges) - 2)
    digits = np.bincount(bins, minlength=len(edges) - 1)
    wrong = np.bincount(bins, weights=errors[inside], minlength=len(edges) - 1).astype(np.int64)
    out = pd.DataFrame({"low": edges[:-1], "high": edges[1:], "digits": digits, "errors": wrong})
    filled = digits > 0
    out["error"] = np.where(filled, wrong / np.maximum(digits, 1), np.nan)
    out["ci_low"], out["ci_high"] = np.nan, np.nan
    if writers is not None:
        w = np.asarray(writers)[inside]
        for b in np.flatnonzero(filled):
            est = writer_bootstrap(errors[inside][bins == b], w[bins == b], confidence=confidence)
            out.loc[b, ["ci_low", "ci_high"]] = est.low, est.high
    elif filled.any():
        lo, hi = wilson_interval(wrong[filled], digits[filled], confidence)
        out.loc[filled, "ci_low"], out.loc[filled, "ci_high"] = lo, hi
    return out


def rejection_curve(correct, confidence, fractions):
    """Error on the digits kept after setting aside the least confident ones.

    Parameters
    ----------
    correct : ndarray of shape (n,), bool
    confidence : ndarray of shape (n,)
        Higher = more confident; the lowest are rejected first.
    fractions : array-like of float in [0, 1)
        Shares of the n digits to reject.

    Returns
    -------
    error : ndarray of shape (len(fractions),)
        Expected error rate on the kept digits. Digits with equal confidence are rejected in a random
        order, and the expectation over that order is returned exactly: at the threshold, a tied
        group is rejected in part and counts with the error share of the whole group.
    """
    correct = np.asarray(correct, bool)
    confidence = np.asarray(confidence, np.float64)
    fractions = np.asarray(fractions, np.float64)
    if correct.shape != confidence.shape or correct.ndim != 1 or len(correct) == 0:
        raise ValueError("correct and confidence must be 1-D, non-empty and of equal length.")
    if np.isnan(confidence).any():
        raise ValueError("confidence must not contain NaN.")
    if ((fractions < 0) | (fractions >= 1)).any():
        raise ValueError(f"fractions must be in [0, 1); got {fractions.tolist()}.")
    n = len(correct)
    values, group = np.unique(confidence, return_inverse=True)
    cum_n = np.r_[0, np.cumsum(np.bincount(group, minlength=len(values)))]
    cum_err = np.r_[0, np.cumsum(np.bincount(group, weights=~correct, minlength=len(values)))]
    n_reject = fractions * n
    rejected_errors = np.interp(n_reject, cum_n, cum_err)
    return (cum_err[-1] - rejected_errors) / (n - n_reject)


def top_share(errors, fraction):
    """Share of all errors made by the top ``fraction`` of groups (e.g. writers), ranked by errors.

    Parameters
    ----------
    errors : ndarray of shape (n_groups,) or (n_sim, n_groups)
        Errors per group (one row per simulation if 2-D).
    fraction : float in (0, 1]
        The top ``ceil(fraction * n_groups)`` groups are counted.

    Returns
    -------
    share : float or ndarray of shape (n_sim,)
        NaN where there are no errors at all.
    """
    errors = np.asarray(errors, np.float64)
    n_top = int(np.ceil(fraction * errors.shape[-1]))
    top = -np.sort(-errors, axis=-1)[..., :n_top].sum(axis=-1)
    total = errors.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return top / total


def binomial_top_share(n_digits, p_error, fraction, n_sim, rng):
    """Null distribution of :func:`top_share` if every digit erred independently.

    Parameters
    ----------
    n_digits : ndarray of shape (n_groups,)
        Digits per group (writer).
    p_error : float or ndarray of shape (n_groups,)
        Error probability of each group's digits under the null (e.g. the error rate of its series).
    fraction : float
    n_sim : int
    rng : numpy.random.Generator

    Returns
    -------
    shares : ndarray of shape (n_sim,)
    """
    n_digits = np.asarray(n_digits)
    p = np.broadcast_to(np.asarray(p_error, np.float64), n_digits.shape)
    errors = rng.binomial(n_digits, p, size=(n_sim, len(n_digits)))
    return top_share(errors, fraction)


def concentration_curve(errors):
    """Cumulative share of errors against cumulative share of groups, worst groups first (a Lorenz curve).

    Parameters
    ----------
    errors : ndarray of shape (n_groups,)

    Returns
    -------
    group_share, error_share : ndarrays of shape (n_groups + 1,)
        Both start at 0 and end at 1.
    """
    errors = -np.sort(-np.asarray(errors, np.float64))
    group_share = np.arange(len(errors) + 1) / len(errors)
    error_share = np.r_[0, np.cumsum(errors)] / errors.sum()
    return group_share, error_share


def confused_pairs(C):
    """The confusions of each pair of classes in both directions, with a test of symmetry.

    Parameters
    ----------
    C : ndarray of shape (n_classes, n_classes)
        Confusion counts, rows = true label (:func:`mnist_knn.analysis.scores.confusion_matrix`).

    Returns
    -------
    DataFrame, one row per unordered pair {a, b} with a < b and at least one confusion
        ``a``, ``b``, ``a_as_b`` (= C[a, b]), ``b_as_a``, ``total``, ``p_value``: two-sided exact
        binomial test that both directions are equally likely given the total (a one-sided confusion
        has a small p-value). Sorted by total, descending, then by (a, b).
    """
    C = np.asarray(C)
    a, b = np.triu_indices(len(C), k=1)
    df = pd.DataFrame({"a": a, "b": b, "a_as_b": C[a, b], "b_as_a": C[b, a]})
    df["total"] = df["a_as_b"] + df["b_as_a"]
    df = df[df["total"] > 0].copy()
    df["p_value"] = [stats.binomtest(int(x), int(t)).pvalue for x, t in zip(df["a_as_b"], df["total"])]
    return df.sort_values(["total", "a", "b"], ascending=[False, True, True], kind="stable").reset_index(drop=True)
