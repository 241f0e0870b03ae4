"""The headline numbers of the report, written by the notebooks into one JSON file.

Each notebook records its best result (error, interval, configuration) with :func:`record_result`;
the README's results table and the site's index page are generated from the file, so the numbers a
reader sees are the numbers the notebooks computed.
"""

import contextlib
import json
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: records are atomic but not locked
    fcntl = None

from ..paths import RESULTS_FILE
from ..store import write_atomically

__all__ = ["load_results", "record_result"]


def load_results(path=None):
    """All recorded results as a dict ``{key: {field: value}}`` (empty when the file does not exist).

    Raises
    ------
    ValueError
        If the file is not valid JSON holding an object; the message names the file.
    """
    path = Path(path or RESULTS_FILE)
    if not path.exists():
        return {}
    try:
        results = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); restore it from git or delete it.") from exc
    if not isinstance(results, dict):
        raise ValueError(f"{path} must hold a JSON object of results; got {type(results).__name__}.")
    return results


@contextlib.contextmanager
def _locked(path):
    """Hold an exclusive lock on ``path.lock`` (a file beside it) while recording: two processes
    recording at once each see the other's results instead of overwriting them."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    lock_path = path.with_name(path.name + ".lock")
    with open(lock_path, "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def record_result(key, *, notebook, description, error, ci_low, ci_high, selection=None, path=None, **config):
    """Record (or replace) one headline result.

    One configuration has one number across the report. A key (or a configuration) that another notebook
    recorded may be recorded again only with the same error and interval: the entry then belongs to the
    first of the notebooks in reading order (file-name order) and lists the others under ``also_in``, so
    the file does not depend on the order the notebooks ran in. A notebook re-run replaces its own entries.

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
    selection : str, optional
        How the configuration was chosen (on which training writers and queries), in words. It is not part
        of the configuration: two notebooks that choose the same classifier differently still report one number.
    **config
        The classifier (k, metric, preprocessing, tie rule, ...): JSON-serialisable values.

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
    entry = {
        "notebook": notebook,
        "description": description,
        "error": float(error),  # unrounded: the README and site round it exactly as the notebooks do
        "ci_low": float(ci_low),
        "ci_high": float(ci_high),
        "config": {k: _plain(v) for k, v in sorted(config.items())},
    }
    if selection is not None:
        entry["selection"] = str(selection)
    try:
        json.dumps(entry, allow_nan=False)
    except ValueError as exc:
        raise ValueError(f"result {key!r} holds NaN or infinity, which JSON cannot store: {entry['config']}") from exc
    with _locked(path):  # read, change and write as one step
        results = load_results(path)
        _check_one_number(results, key, entry)
        owner = results.get(key)
        if owner is not None:
            # The same numbers from several notebooks: the first notebook in reading order owns the entry
            # (its description and selection), whatever order the notebooks ran in; the others are listed.
            notebooks = {owner["notebook"], *owner.get("also_in", ()), notebook}
            if owner["notebook"] < notebook:
                entry = dict(owner)
            notebooks.discard(entry["notebook"])
            entry.pop("also_in", None)
            if notebooks:
                entry["also_in"] = sorted(notebooks)
        results[key] = entry
        text = json.dumps(results, indent=2, sort_keys=True) + "\n"
        write_atomically(path, text, skip_unchanged=True)
    return entry


def _check_one_number(results, key, entry):
    """One configuration, one number: refuse a result that another notebook recorded differently.

    A notebook may replace its own entries (it was re-run), but a key recorded by another notebook, or
    the same configuration under another key, must carry the same error and interval."""
    numbers = ("error", "ci_low", "ci_high")
    for other_key, other in results.items():
        if other.get("notebook") == entry["notebook"]:
            continue
        same = other_key == key or other.get("config") == entry["config"]
        if same and any(other.get(n) != entry[n] for n in numbers):
            raise ValueError(
                f"result {key!r} from {entry['notebook']} gives error {entry['error']} "
                f"[{entry['ci_low']}, {entry['ci_high']}], but {other['notebook']} recorded "
                f"{other_key!r} with the same {'key' if other_key == key else 'configuration'} as "
                f"{other.get('error')} [{other.get('ci_low')}, {other.get('ci_high')}]: one configuration must "
                "have one number across the report."
            )


def _plain(value):
    """numpy scalars and tuples to plain JSON values."""
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value
