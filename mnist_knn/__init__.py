"""mnist-knn: an exact, hand-written k-nearest-neighbour engine for MNIST, and the tools of the report.

The package follows the data one way, one subpackage per stage; a stage imports only the stages
before it (``tests/test_layers.py`` checks this):

- :mod:`mnist_knn.data`: IDX bytes -> arrays (:mod:`~mnist_knn.data.idx`,
  :mod:`~mnist_knn.data.datasets`) -> preprocessed images (:mod:`~mnist_knn.data.preprocess`)
  and features (:mod:`~mnist_knn.data.features`);
- :mod:`mnist_knn.engine`: exact distances and search (:mod:`~mnist_knn.engine.distances`,
  :mod:`~mnist_knn.engine.search`) -> votes (:mod:`~mnist_knn.engine.vote`), wrapped in
  :class:`KNNClassifier`; deformation-tolerant distances (:mod:`~mnist_knn.engine.shift`,
  :mod:`~mnist_knn.engine.tangent`, :mod:`~mnist_knn.engine.idm`) re-rank the search's candidates
  (:mod:`~mnist_knn.engine.rerank`);
- :mod:`mnist_knn.analysis`: scores and statistics (:mod:`~mnist_knn.analysis.scores`) and each
  notebook's study;
- :mod:`mnist_knn.report`: figures, ``results.json``, the README block and the offline site.

Beneath them all, the foundation modules: :mod:`~mnist_knn.paths` (where files live),
:mod:`~mnist_knn.store` (atomic writes and on-disk caches), :mod:`~mnist_knn.validation` (input
checks) and :mod:`~mnist_knn.progress` (progress bars of long work, in JupyterLab only).

The most used names are re-exported here, lazily (``import mnist_knn`` is instant); the notebooks
import from the stages, ``from mnist_knn.engine import kneighbors``, so their imports show the flow.
"""

from .lazy import exporter

_EXPORTS = {
    "data.idx": ["IdxFormatError", "read_idx", "write_idx"],
    "data.datasets": ["DownloadError", "FileSpec", "fetch", "fetch_all", "load_mnist", "load_qmnist_metadata"],
    "data.preprocess": [
        "binarize", "blur", "bounding_box_center", "center_of_mass_center", "deskew", "downsample",
        "moments", "pipeline", "remove_noise", "skew", "to_uint8",
    ],
    "data.features": ["centre_rows", "pca_fit", "pca_transform", "standardize_fit", "standardize_transform"],
    "engine.distances": ["METRICS", "pairwise_distances"],
    "engine.search": ["cache_key", "exclude_group", "kneighbors", "kneighbors_loo"],
    "engine.vote": [
        "TIE_RULES", "WEIGHTS", "is_tied", "neighbor_labels", "predict", "predict_many", "predict_proba",
        "tied_labels", "vote_counts", "vote_margin",
    ],
    "engine.estimator": ["KNNClassifier"],
    "engine.rerank": ["cached_distance", "nearest_candidates", "rerank_by_metric"],
    "engine.shift": ["shift_distance"],
    "engine.tangent": ["tangent_distance"],
    "engine.idm": ["idm_distance"],
    "analysis.scores": [
        "McNemarResult", "accuracy", "confusion_matrix", "error_rate", "mcnemar", "paired_difference_ci",
        "wilson_interval",
    ],
    "report.results": ["load_results", "record_result"],
    "report.plots": ["DIGIT_COLORS", "DIGIT_ORDER", "digit_grid", "image_heatmap", "save_figure", "setup_notebook"],
}
__getattr__, __dir__, __all__ = exporter(__name__, _EXPORTS)
