"""Features of a whole data set: principal components, standardisation, centred rows.

Unlike the image steps of :mod:`.preprocess`, these work on feature matrices of shape
``(n_samples, n_features)`` (e.g. ``images.reshape(len(images), -1)``), and the fitted ones
(:func:`pca_fit`, :func:`standardize_fit`) learn from the training rows what they then apply to
any rows.
"""

from typing import NamedTuple

import numpy as np

from .. import validation

__all__ = [
    "PCAModel",
    "StandardizeModel",
    "centre_rows",
    "pca_fit",
    "pca_inverse_transform",
    "pca_transform",
    "standardize_fit",
    "standardize_transform",
]


class PCAModel(NamedTuple):
    """A fitted principal component analysis (see :func:`pca_fit`)."""

    mean: np.ndarray  # (n_features,)
    components: np.ndarray  # (n_components, n_features), orthonormal rows
    explained_variance: np.ndarray  # (n_components,)


def pca_fit(X, n_components):
    """Principal components of ``X`` by SVD of the centred data (float64).

    The SVD is taken of the centred data's ``(n_features, n_features)`` scatter matrix
    ``Xc.T @ Xc``, whose singular vectors are the right singular vectors of ``Xc`` and whose
    singular values are those of ``Xc`` squared (full MNIST: ~2 s instead of ~16 s). Components
    with a variance below about 1e-12 of the largest are therefore only roughly determined,
    but they stay orthonormal, so reconstruction with all components is exact.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    n_components : int
        In ``[1, min(n_samples, n_features)]``.

    Returns
    -------
    PCAModel
        ``mean`` of shape (n_features,), ``components`` of shape (n_components, n_features)
        (orthonormal rows, by decreasing variance), ``explained_variance`` of shape
        (n_components,) (``singular value**2 / (n_samples - 1)``, as in scikit-learn), all float64.

    Raises
    ------
    ValueError
        If ``X`` is not 2-D or ``n_components`` is out of range.

    Notes
    -----
    Sign convention (deterministic results): each component's entry of largest absolute value
    is positive (the first such entry on a tie), as scikit-learn's ``svd_flip`` with
    ``u_based_decision=False``. Results do not depend on the order of the rows of ``X``, up to
    rounding.
    """
    X = validation.feature_matrix(X)
    n, d = X.shape
    if isinstance(n_components, bool) or not isinstance(n_components, (int, np.integer)) or not (
        1 <= n_components <= min(n, d)
    ):
        raise ValueError(
            f"n_components must be an integer in [1, min(n_samples, n_features)={min(n, d)}]; "
            f"got n_components={n_components!r}."
        )
    mean = X.mean(axis=0, dtype=np.float64)
    Xc = X - mean
    # Right singular vectors of Xc = singular vectors of the (d, d) scatter matrix Xc.T @ Xc,
    # and its singular values are those of Xc squared: ~25x faster than SVD of Xc when n >> d.
    sq_singular, Vt = np.linalg.svd(Xc.T @ Xc, hermitian=True)[1:]
    Vt = Vt[:n_components].copy()
    biggest = np.abs(Vt).argmax(axis=1)
    Vt *= np.sign(Vt[np.arange(n_components), biggest])[:, None]
    return PCAModel(mean, Vt, sq_singular[:n_components] / max(n - 1, 1))


def pca_transform(model, X):
    """Coordinates of ``X`` along the principal components, ``(X - mean) @ components.T``.

    Parameters
    ----------
    model : PCAModel
        From :func:`pca_fit`.
    X : ndarray of shape (n_samples, n_features)

    Returns
    -------
    Z : ndarray of shape (n_samples, n_components), float32

    Raises
    ------
    ValueError
        If ``X`` does not have ``n_features`` columns.
    """
    X = validation.feature_matrix(X)
    if X.shape[1] != model.mean.shape[0]:
        raise ValueError(f"X has {X.shape[1]} features; the model was fitted on {model.mean.shape[0]}.")
    return ((X - model.mean) @ model.components.T).astype(np.float32)


def pca_inverse_transform(model, Z):
    """Reconstruct data from principal-component coordinates, ``Z @ components + mean``.

    Parameters
    ----------
    model : PCAModel
    Z : ndarray of shape (n_samples, n_components)

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float32
        Exact (up to rounding) when ``n_components`` equals the rank of the centred data.
    """
    Z = validation.feature_matrix(Z, "Z")
    if Z.shape[1] != model.components.shape[0]:
        raise ValueError(f"Z has {Z.shape[1]} columns; the model has {model.components.shape[0]} components.")
    return (Z @ model.components + model.mean).astype(np.float32)


class StandardizeModel(NamedTuple):
    """Per-feature mean and standard deviation (see :func:`standardize_fit`)."""

    mean: np.ndarray  # (n_features,)
    std: np.ndarray  # (n_features,); 0 for features constant in the fitted data


def standardize_fit(X):
    """Per-pixel mean and standard deviation for z-scores, as Fashion-MNIST's benchmark does.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        E.g. ``X_train.reshape(len(X_train), -1)``. Needs ``n_samples >= 1``.

    Returns
    -------
    StandardizeModel
        ``mean`` and ``std`` (population, ``ddof=0``) of shape (n_features,), float64.
        ``std`` is exactly 0 for features that are constant in ``X`` (max == min).
    """
    X = validation.feature_matrix(X)
    if len(X) == 0:
        raise ValueError("X must have at least one sample; got shape (0, ...).")
    mean = X.mean(axis=0, dtype=np.float64)
    std = X.std(axis=0, dtype=np.float64)
    std[X.max(axis=0) == X.min(axis=0)] = 0.0
    return StandardizeModel(mean, std)


def standardize_transform(model, X):
    """Z-scores ``(X - mean) / std`` per feature; features constant in the fitted data give 0.

    Parameters
    ----------
    model : StandardizeModel
        From :func:`standardize_fit` (on the training images only).
    X : ndarray of shape (n_samples, n_features)

    Returns
    -------
    Z : ndarray of shape (n_samples, n_features), float32
        Features with ``std == 0`` are set to 0 for every sample. This differs from
        scikit-learn's ``StandardScaler`` (used by Fashion-MNIST's benchmark), which divides
        them by 1 instead, so a new image with ink on a pixel that was blank in every
        training image keeps that ink on the raw 0-255 scale there. On the fitted data itself
        the two agree.

    Raises
    ------
    ValueError
        If ``X`` does not have ``n_features`` columns.
    """
    X = validation.feature_matrix(X)
    if X.shape[1] != model.mean.shape[0]:
        raise ValueError(f"X has {X.shape[1]} features; the model was fitted on {model.mean.shape[0]}.")
    varies = model.std > 0
    Z = np.zeros(X.shape, dtype=np.float32)
    Z[:, varies] = (X[:, varies] - model.mean[varies]) / model.std[varies]
    return Z


# --------------------------------------------------------------------------- pipeline


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
