"""The report layer: figures, the results file, the README's results block and the offline site.
"""

from ..lazy import exporter

_EXPORTS = {
    "bottom_line": [
        "bottom_line_here",
        "fill_bottom_line",
    ],
    "plots": [
        "DIGIT_COLORS",
        "DIGIT_ORDER",
        "INK_COLORSCALE",
        "digit_grid",
        "image_heatmap",
        "log_ticks",
        "save_figure",
        "setup_notebook",
        "show_one_at_a_time",
    ],
    "prose": [
        "PROSE_TAG",
        "is_prose_cell",
        "mark_prose_cells",
    ],
    "results": [
        "load_results",
        "record_result",
    ],
    "site": [
        "README_END",
        "README_START",
        "build_site",
        "notebook_pages",
        "readme_block",
        "results_rows",
        "update_readme",
    ],
}
__getattr__, __dir__, __all__ = exporter(__name__, _EXPORTS)
