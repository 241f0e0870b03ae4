"""mnist-knn: an exact, hand-written k-nearest-neighbour engine for MNIST, and the tools of the report.

Data flows one way: IDX bytes (:mod:`.idx`, :mod:`.datasets`) -> arrays -> preprocessing
(:mod:`.preprocess`) -> neighbour search (:mod:`.search`, :mod:`.distances`) -> vote (:mod:`.vote`)
-> scores (:mod:`.evaluate`) -> figures (:mod:`.plots`). :class:`KNNClassifier` wraps search and vote
in a scikit-learn estimator.

Names are imported lazily, so ``import mnist_knn`` is instant and ``python -m mnist_knn.datasets`` runs
cleanly.
"""

import importlib

_EXPORTS = {
    "idx": ["IdxFormatError", "read_idx", "write_idx"],
    "datasets": ["DownloadError", "FileSpec", "fetch", "fetch_all", "load_mnist", "load_qmnist_metadata"],
    "distances": ["METRICS", "pairwise_distances"],
    "search": ["kneighbors", "kneighbors_loo", "cache_key"],
    "results": ["record_result", "load_results"],
    "vote": [
        "TIE_RULES", "WEIGHTS", "neighbor_labels", "vote_counts", "predict", "predict_many",
        "predict_proba", "vote_margin", "is_tied", "tied_labels",
    ],
    "estimator": ["KNNClassifier"],
    "evaluate": [
        "McNemarResult", "accuracy", "error_rate", "wilson_interval", "mcnemar",
        "paired_difference_ci", "confusion_matrix",
    ],
    "preprocess": [
        "binarize", "blur", "bounding_box_center", "center_of_mass_center", "deskew", "downsample",
        "moments", "pca_fit", "pca_transform", "pipeline", "remove_noise", "skew",
        "standardize_fit", "standardize_transform",
    ],
    "plots": ["DIGIT_COLORS", "DIGIT_ORDER", "digit_grid", "image_heatmap", "save_figure", "setup_notebook"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name):
    if name in _WHERE:
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
