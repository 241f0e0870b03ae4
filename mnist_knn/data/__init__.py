"""The data layer: IDX files, verified downloads, image preprocessing and features.

Data flows one way through the package: ``data`` (bytes -> arrays -> preprocessed images) ->
``engine`` (exact search, vote, deformation-tolerant re-ranking) -> ``analysis`` (scores and each
notebook's study) -> ``report`` (figures, results file, README block, site). A layer imports only the
layers before it and the foundation modules (:mod:`mnist_knn.paths`, :mod:`mnist_knn.store`,
:mod:`mnist_knn.validation`); ``tests/test_layers.py`` checks it.
"""

from ..lazy import exporter

_EXPORTS = {
    "idx": [
        "IdxFormatError",
        "read_idx",
        "write_idx",
        "IDX_DTYPES",
    ],
    "datasets": [
        "FileSpec",
        "DownloadError",
        "MNIST_MIRRORS",
        "QMNIST_MIRRORS",
        "MIRRORS_ENV",
        "FILES",
        "MNIST_FILES",
        "QMNIST_FILES",
        "SPLITS",
        "QMNIST_COLUMNS",
        "mirrors_from_env",
        "sha256_of",
        "fetch",
        "fetch_all",
        "read_mnist",
        "read_qmnist_metadata",
        "load_mnist",
        "load_qmnist_metadata",
    ],
    "preprocess": [
        "Moments",
        "binarize",
        "blur",
        "bounding_box_center",
        "center_of_mass_center",
        "change_thickness",
        "deskew",
        "distort",
        "downsample",
        "moments",
        "pipeline",
        "remove_noise",
        "skew",
        "to_uint8",
    ],
    "features": [
        "PCAModel",
        "StandardizeModel",
        "centre_rows",
        "pca_fit",
        "pca_inverse_transform",
        "pca_transform",
        "standardize_fit",
        "standardize_transform",
    ],
}
__getattr__, __dir__, __all__ = exporter(__name__, _EXPORTS)
