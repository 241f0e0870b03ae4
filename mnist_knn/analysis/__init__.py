"""The analysis layer: the report's yardstick (:mod:`.selection`: choices made on held-out training writers;
:mod:`.uncertainty`: writer-bootstrap intervals, paired tests, Holm), scores and statistics, and each
notebook's study, named after what it studies:
:mod:`.learning_curves` (02), :mod:`.distance_metrics` (03), :mod:`.ties` (04), :mod:`.error_analysis` (05).
"""

from ..lazy import exporter

_EXPORTS = {
    "selection": [
        "SELECTION_SEED",
        "choose",
        "held_out_errors",
        "other_writer_neighbors",
        "selection_queries",
        "writer_folds",
    ],
    "uncertainty": [
        "DEFAULT_N_BOOT",
        "Estimate",
        "PairedDifference",
        "holm",
        "paired_difference",
        "writer_bootstrap",
    ],
    "scores": [
        "McNemarResult",
        "accuracy",
        "confusion_matrix",
        "error_rate",
        "mcnemar",
        "paired_difference_ci",
        "wilson_interval",
    ],
    "learning_curves": [
        "SCHEMES",
        "PowerLaw",
        "bootstrap_power_law",
        "fit_power_law",
        "learning_curve",
        "query_times",
        "selection_optimism",
        "stratified_counts",
        "subsample",
    ],
    "distance_metrics": [
        "Evaluation",
        "Protocol",
        "choose_k",
        "difference_histogram",
        "error_curves",
        "mcnemar_matrix",
        "power_shares",
        "query_time",
        "results_table",
    ],
    "ties": [
        "boundary_ties",
        "exact_duplicates",
        "expected_random_accuracy",
        "gains_and_losses",
        "inclusive_vote_counts",
        "k_step_changes",
        "near_duplicates",
        "order_sensitive",
        "tie_table",
    ],
    "error_analysis": [
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
        "rejection_curve",
        "top_share",
        "unanimous_against",
    ],
}
__getattr__, __dir__, __all__ = exporter(__name__, _EXPORTS)
