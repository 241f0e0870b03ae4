"""The engine: exact distances and k-NN search, votes and tie rules, the scikit-learn estimator, and
the deformation-tolerant distances (shift, tangent, IDM, P2DHMDM) that re-rank the search's candidates.
"""

from ..lazy import exporter

_EXPORTS = {
    "distances": [
        "METRICS",
        "as_rows",
        "common_rows",
        "metric_code",
        "pairwise_distances",
        "thread_count",
    ],
    "search": [
        "kneighbors",
        "kneighbors_loo",
        "cache_key",
        "exclude_group",
        "inked_columns",
        "release_buffers",
        "DEFAULT_BLOCK_SIZE",
    ],
    "vote": [
        "TIE_RULES",
        "WEIGHTS",
        "is_tied",
        "neighbor_labels",
        "predict",
        "predict_many",
        "predict_proba",
        "tied_labels",
        "vote_counts",
        "vote_margin",
    ],
    "estimator": [
        "KNNClassifier",
    ],
    "rerank": [
        "DEFORM_CACHE_VERSION",
        "cached_distance",
        "candidate_images",
        "float_images",
        "function_identity",
        "nearest_candidates",
        "query_chunks",
        "rerank_by_metric",
        "used_training_images",
    ],
    "shift": [
        "shift_distance",
    ],
    "tangent": [
        "TANGENTS",
        "tangent_distance",
        "tangent_vectors",
    ],
    "idm": [
        "features_into",
        "idm_distance",
        "sobel_gradients",
    ],
    "p2dhmdm": [
        "p2dhmdm_distance",
    ],
    "reference": [
        "idm_distance_reference",
        "p2dhmdm_distance_reference",
        "sobel_gradients_reference",
        "tangent_distance_reference",
    ],
}
__getattr__, __dir__, __all__ = exporter(__name__, _EXPORTS)
