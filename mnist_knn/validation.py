"""The one place where inputs are checked: images, rows, labels, k and neighbour lists.

Public functions of every layer call these at their boundary, so one kind of input gets one rule and
one message everywhere. Each check raises :class:`ValueError` (or :class:`TypeError` for a value of the
wrong kind) saying what was expected and what arrived, and returns the input in the form the caller
computes with; it never modifies its argument.
"""

import math
import numbers
import os

import numpy as np

__all__ = [
    "not_masked",
    "candidate_indices",
    "feature_matrix",
    "image_batch",
    "images",
    "k_value",
    "labels_for",
    "search_result",
    "source_name",
]


def source_name(source):
    """The name of a file in messages: the path, a file object's ``.name``, or ``<file object>``."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    name = getattr(source, "name", None)
    return name if isinstance(name, str) else "<file object>"


def not_masked(X, name):
    """Refuse a masked array: its mask would be silently dropped by ``np.asarray``."""
    if np.ma.isMaskedArray(X):
        raise ValueError(
            f"{name} is a masked array; its mask would be ignored. Fill or drop the masked values first "
            "(e.g. X.filled(0) or X.compressed())."
        )
    return X


def _numeric(X, name):
    X = np.asarray(not_masked(X, name))
    if X.dtype.kind not in "iuf":
        raise ValueError(
            f"{name} must be an integer or floating-point array (MNIST: uint8 0-255); got dtype {X.dtype}."
        )
    return X


def _finite(X, name):
    if X.dtype.kind == "f" and not np.isfinite(X).all():
        raise ValueError(f"{name} must be finite; got NaN or infinity.")
    return X


def image_batch(images, name="images", *, square=True):
    """Images as a batch: ``(n, side, side)`` stays, one ``(side, side)`` image becomes a batch of one.

    With ``square=False``, images of any ``(height, width)`` are accepted.

    Returns
    -------
    batch : ndarray of shape (n, side, side)
        A view of ``images`` (no copy).
    single : bool
        True when one image was given (the caller returns one image back).
    """
    images = _numeric(images, name)
    hint = ""
    if square and images.ndim == 2 and images.shape[0] != images.shape[1]:
        hint = " Flattened images? Use images.reshape(-1, 28, 28)."
    if not square and (images.ndim not in (2, 3) or 0 in images.shape[-2:]):
        raise ValueError(
            f"{name} must have shape (n, height, width) or (height, width); got shape {images.shape}."
        )
    if square and (images.ndim not in (2, 3) or images.shape[-1] != images.shape[-2] or images.shape[-1] == 0):
        raise ValueError(
            f"{name} must have shape (n, side, side) or (side, side) with square images, "
            f"e.g. (n, 28, 28); got shape {images.shape}.{hint}"
        )
    _finite(images, name)
    single = images.ndim == 2
    return (images[None] if single else images), single


def images(X, name="images", *, square=False, flat=True):
    """A batch of images as ``(n, height, width)``; flat rows ``(n, side * side)`` are reshaped to squares.

    Parameters
    ----------
    X : array-like of shape (n, height, width) or (n, side * side)
        Integer or floating-point pixels, finite.
    name : str
        The argument's name, for messages.
    square : bool, default=False
        Also require ``height == width``.
    flat : bool, default=True
        Accept flat rows ``(n, side * side)``; with ``flat=False`` only ``(n, height, width)``.

    Returns
    -------
    ndarray of shape (n, height, width)
        A view of ``X`` where possible; the dtype is unchanged.
    """
    X = _numeric(X, name)
    if X.ndim == 2 and flat:
        side = math.isqrt(X.shape[1])
        if side * side != X.shape[1]:
            raise ValueError(
                f"{name} of shape {X.shape} has {X.shape[1]} pixels per image, which is not a square "
                "number; pass images of shape (n, height, width)."
            )
        X = X.reshape(len(X), side, side)
    if X.ndim != 3:
        accepted = "(n, height, width) or (n, height * width)" if flat else "(n, side, side)" if square else "(n, height, width)"
        raise ValueError(f"{name} must have shape {accepted}; got shape {X.shape}.")
    if X.shape[1] == 0 or X.shape[2] == 0:
        raise ValueError(f"{name} has empty images of shape {X.shape[1:]}.")
    if square and X.shape[1] != X.shape[2]:
        raise ValueError(f"{name} must hold square images (n, side, side); got shape {X.shape}.")
    return _finite(X, name)


def feature_matrix(X, name="X"):
    """A feature matrix ``(n_samples, n_features)`` of finite numbers, as an ndarray."""
    X = _numeric(X, name)
    if X.ndim != 2:
        hint = " Images? Use X.reshape(len(X), -1)." if X.ndim == 3 else ""
        raise ValueError(f"{name} must have shape (n_samples, n_features); got shape {X.shape}.{hint}")
    return _finite(X, name)


def k_value(k, k_max, name="k"):
    """An integer ``k`` in ``[1, k_max]``, as a Python int."""
    if not isinstance(k, numbers.Integral) or isinstance(k, bool):
        raise ValueError(f"{name} must be an integer in [1, k_max={k_max}]; got {name}={k!r}.")
    if not 1 <= k <= k_max:
        raise ValueError(f"{name} must be in [1, k_max={k_max}]; got {name}={k}.")
    return int(k)


def search_result(distances, indices):
    """A neighbour list ``(distances, indices)`` of shape (n_query, k_max), nearest first.

    Returns ``distances`` as float64 (non-negative, no NaN, sorted along each row) and ``indices`` as
    intp.
    """
    distances = np.asarray(not_masked(distances, "distances"))
    indices = np.asarray(not_masked(indices, "indices"))
    if distances.ndim != 2:
        raise ValueError(f"distances must be 2-D of shape (n_query, k_max); got shape {distances.shape}.")
    if indices.shape != distances.shape:
        raise ValueError(
            f"indices must have the shape of distances {distances.shape}; got shape {indices.shape}."
        )
    if not (np.issubdtype(distances.dtype, np.floating) or np.issubdtype(distances.dtype, np.integer)):
        raise ValueError(f"distances must be real numbers; got dtype {distances.dtype}.")
    distances = distances.astype(np.float64, copy=False)
    if np.isnan(distances).any():
        n_bad = int(np.isnan(distances).any(axis=1).sum())
        raise ValueError(f"distances must not contain NaN; got NaN in {n_bad} row(s).")
    if (distances < 0).any():
        raise ValueError(f"distances must be non-negative; got minimum {distances.min()}.")
    if distances.shape[1] > 1 and (np.diff(distances, axis=1) < 0).any():
        row = int(np.flatnonzero((np.diff(distances, axis=1) < 0).any(axis=1))[0])
        raise ValueError(f"distances must be sorted nearest first along each row; row {row} is not.")
    if not np.issubdtype(indices.dtype, np.integer):
        raise ValueError(f"indices must be integers; got dtype {indices.dtype}.")
    return distances, indices.astype(np.intp, copy=False)


def labels_for(indices, y_train, n_classes=None):
    """Training labels that ``indices`` can index, and the number of classes.

    Returns ``(y_train as intp, n_classes)``; ``n_classes`` defaults to ``max(y_train) + 1``.
    """
    y_train = np.asarray(y_train)
    if y_train.ndim != 1:
        raise ValueError(f"y_train must be 1-D of shape (n_train,); got shape {y_train.shape}.")
    if not np.issubdtype(y_train.dtype, np.integer):
        raise ValueError(f"y_train must hold integer label codes 0..n_classes-1; got dtype {y_train.dtype}.")
    n_train = len(y_train)
    if indices.size and (indices.min() < 0 or indices.max() >= n_train):
        raise ValueError(
            f"indices must be in [0, n_train={n_train}); got values in [{indices.min()}, {indices.max()}]."
        )
    if n_classes is None:
        n_classes = int(y_train.max()) + 1 if n_train else 1
    if not isinstance(n_classes, numbers.Integral) or isinstance(n_classes, bool) or n_classes < 1:
        raise ValueError(f"n_classes must be a positive integer; got n_classes={n_classes!r}.")
    n_classes = int(n_classes)
    if n_train and (y_train.min() < 0 or y_train.max() >= n_classes):
        raise ValueError(
            f"y_train labels must be in [0, n_classes={n_classes}); "
            f"got labels in [{y_train.min()}, {y_train.max()}]."
        )
    return y_train.astype(np.intp, copy=False), n_classes


def candidate_indices(candidates, n_query, n_train, name="candidates"):
    """Candidate training indices of shape (n_query, n_cand), each in ``[0, n_train)``, as int64."""
    candidates = np.asarray(candidates)
    if candidates.ndim != 2:
        raise ValueError(f"{name} must have shape (n_query, n_cand); got shape {candidates.shape}.")
    if candidates.shape[0] != n_query:
        raise ValueError(f"{name} has {candidates.shape[0]} rows; X_query has {n_query} images.")
    if candidates.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integer indices; got dtype {candidates.dtype}.")
    if candidates.size and (candidates.min() < 0 or candidates.max() >= n_train):
        raise ValueError(
            f"{name} must be indices in [0, n_train={n_train}); "
            f"got values in [{candidates.min()}, {candidates.max()}]."
        )
    return candidates.astype(np.int64)
