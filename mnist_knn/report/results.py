"""The headline numbers of the report, written by the notebooks into one JSON file.

Each notebook records its best result (error, interval, configuration) with :func:`record_result`;
the README's results table and the site's index page are generated from the file, so the numbers a
reader sees are the numbers the notebooks computed.
"""

import json
from pathlib import Path

from ..paths import RESULTS_FILE
from ..store import write_atomically

__all__ = ["load_results", "record_result"]


def load_results(path=None):
    """All recorded results as a dict ``{key: {field: value}}`` (empty when the file does not exist)."""
    path = Path(path or RESULTS_FILE)
    if not path.exists():
        return {}
    return json.loads(path.read_text())


def record_result(key, *, notebook, description, error, ci_low, ci_high, path=None, **config):
    """Record (or replace) one headline result.

    Parameters
    ----------
    key : str
        A stable identifier, e.g. ``"02-l2-best-k"``.
    notebook : str
        The notebook's file name, e.g. ``"02-accuracy-vs-k-and-training-size.ipynb"``.
    description : str
        What was measured, in words, for the results table.
    error, ci_low, ci_high : float
        Test error and its 95% interval, as fractions (0.0309, not 3.09).
    **config
        The configuration (k, metric, preprocessing, ...): JSON-serialisable values.

    Returns
    -------
    dict
        The stored entry. The file is written atomically, with sorted keys, so re-running a notebook
        leaves it byte-identical.
    """
    for name, value in (("error", error), ("ci_low", ci_low), ("ci_high", ci_high)):
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"{name} must be a fraction in [0, 1]; got {value!r}.")
    path = Path(path or RESULTS_FILE)
    results = load_results(path)
    entry = {
        "notebook": notebook,
        "description": description,
        "error": round(float(error), 6),
        "ci_low": round(float(ci_low), 6),
        "ci_high": round(float(ci_high), 6),
        "config": {k: _plain(v) for k, v in sorted(config.items())},
    }
    results[key] = entry
    text = json.dumps(results, indent=2, sort_keys=True) + "\n"
    write_atomically(path, text, skip_unchanged=True)
    return entry


def _plain(value):
    """numpy scalars and tuples to plain JSON values."""
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value
