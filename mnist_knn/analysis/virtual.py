"""Virtual training digits (notebook 06): distorted copies of the training digits a query is compared with.

Enlarging MNIST's training set with slightly rotated, scaled, sheared or thickened copies of its digits
("virtual" examples) is an old way to teach a classifier the deformations it should forgive; the rows of
LeCun's table that use it are marked as such, since they depart from the 60,000-digit protocol.

A full virtual training set multiplies the exact search's work by the number of copies. Here only the
**candidates'** copies are made: for each query, copies of its nearest training digits under a first
distance (the report's IDM), compared by the IDM too; a k-NN vote over the original candidates and their
copies (each copy carries its original's label) then classifies. What this leaves out: copies of training
digits that are not among a query's candidates.
"""

import numpy as np

from ..data.preprocess import change_thickness, distort, to_uint8
from ..engine.idm import idm_distance

__all__ = ["VARIANT_KINDS", "virtual_distance", "virtual_images"]

VARIANT_KINDS = ("rotation", "scale", "shear", "thickness")


def virtual_images(images, variant):
    """The copies of ``images`` under one ``variant``, rounded to 8 bits (uint8).

    Parameters
    ----------
    images : ndarray of shape (n, side, side)
    variant : (kind, amount)
        ``("rotation", degrees)``, ``("scale", factor)``, ``("shear", columns per row)`` (see
        :func:`~mnist_knn.data.distort`) or ``("thickness", steps)`` (see
        :func:`~mnist_knn.data.change_thickness`).

    Examples
    --------
    >>> import numpy as np
    >>> virtual_images(np.full((1, 4, 4), 9, dtype=np.uint8), ("rotation", 0.0)).tolist() == [[[9] * 4] * 4]
    True
    """
    kind, amount = _check_variant(variant)
    if kind == "thickness":
        return to_uint8(change_thickness(images, int(amount)))
    return to_uint8(distort(images, **{kind: amount}))


def _check_variant(variant):
    try:
        kind, amount = variant
    except (TypeError, ValueError):
        raise ValueError(f"a variant is a pair (kind, amount); got {variant!r}.") from None
    if kind not in VARIANT_KINDS:
        raise ValueError(f"a variant's kind must be one of {VARIANT_KINDS}; got {kind!r}.")
    if kind == "thickness" and (isinstance(amount, bool) or not isinstance(amount, (int, np.integer))):
        raise ValueError(f"a thickness variant takes an integer number of steps; got {amount!r}.")
    return kind, amount


def virtual_distance(X_train, X_query, candidates, *, variants, chunk=256, **idm_params):
    """IDM distances from each query to the virtual copies of its candidates.

    Parameters
    ----------
    X_train : ndarray of shape (n_train, side, side)
        The training digits (as the IDM compares them, e.g. deskewed and rounded to 8 bits).
    X_query : ndarray of shape (n_query, side, side)
    candidates : array-like of shape (n_query, n_cand)
        Indices into ``X_train``: the digits whose copies each query is compared with.
    variants : sequence of (kind, amount)
        The copies made of every candidate (see :func:`virtual_images`).
    chunk : int, default=256
        Queries whose copies are made and compared at once (bounds the memory: the copies and their
        IDM features take about 10 kB per copy).
    **idm_params
        Passed to :func:`~mnist_knn.engine.idm_distance` (warp, context, keep, ...); with ``keep`` the
        abandoning runs over the copies alone, which keeps the ``keep`` nearest of any union with
        other lists exact.

    Returns
    -------
    D : ndarray of shape (n_query, len(variants) * n_cand), float64
        Column ``v * n_cand + j`` is the distance to the copy of ``candidates[:, j]`` under
        ``variants[v]``; the training digit it copies is ``np.tile(candidates, len(variants))``.
    """
    variants = [_check_variant(v) for v in variants]
    if not variants:
        raise ValueError("variants must name at least one variant; got none.")
    if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise ValueError(f"chunk must be an integer >= 1; got chunk={chunk!r}.")
    X_train, X_query = np.asarray(X_train), np.asarray(X_query)
    candidates = np.asarray(candidates)
    if candidates.ndim != 2 or len(candidates) != len(X_query):
        raise ValueError(f"candidates must have shape (n_query, n_cand) = ({len(X_query)}, n_cand); "
                         f"got shape {candidates.shape}.")
    if candidates.dtype.kind not in "iu":
        raise ValueError(f"candidates must hold integer indices; got dtype {candidates.dtype}.")
    if candidates.size and (candidates.min() < 0 or candidates.max() >= len(X_train)):
        raise ValueError(f"candidates must index X_train (0 to {len(X_train) - 1}); got values from "
                         f"{candidates.min()} to {candidates.max()}.")
    n_query, n_cand = candidates.shape
    n_var = len(variants)
    out = np.empty((n_query, n_var * n_cand))
    for a in range(0, n_query, chunk):
        b = min(n_query, a + chunk)
        sources = X_train[candidates[a:b].ravel()]
        copies = np.concatenate([virtual_images(sources, v) for v in variants]).astype(np.float32)
        # Copy of candidates[a + r, j] under variants[v]: row v * (b - a) * n_cand + r * n_cand + j.
        local = (np.arange(n_var)[None, :, None] * ((b - a) * n_cand)
                 + np.arange(b - a)[:, None, None] * n_cand + np.arange(n_cand)[None, None, :])
        out[a:b] = idm_distance(copies, X_query[a:b].astype(np.float32), local.reshape(b - a, -1), **idm_params)
    return out
