"""Every figure the notebooks show, read from their stored outputs: a title, and axes a reader can read.

A figure states its finding in its title. Every quantitative axis that is drawn has a title, at least on
one of its facets, that says its unit: in parentheses, or as "%". Axes of categories (ticks that name
configurations) need no title; a few are counts named by their title alone (``CATEGORICAL``). A log
axis labels every tick in full
(:func:`mnist_knn.report.plots.log_ticks`), never with plotly's bare minor-tick digits.
"""

import re

import nbformat
import pytest

from mnist_knn import paths

NOTEBOOKS = sorted(paths.NOTEBOOKS_DIR.glob("[0-9][0-9]-*.ipynb"))
# Axis titles of categories or counts, whose title is their unit.
CATEGORICAL = {"Digit", "True digit", "Predicted digit", "Row", "Column", "Writers", "Simulations",
               "Digits per writer", "First category of the error", "From k to k + 1 neighbours"}
_AXIS = re.compile(r"[xy]axis\d*")


def figures(path):
    """(cell index, plotly figure JSON) for every plotly figure stored in the notebook's outputs."""
    nb = nbformat.read(path, as_version=4)
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            figure = output.get("data", {}).get("application/vnd.plotly.v1+json")
            if figure:
                yield index, figure


def _categorical(figure, name):
    """Whether the axis ``name`` (``xaxis2``...) shows categories: its type says so, or a trace on it has
    strings for that coordinate (bar and dot charts whose ticks are the configurations' names)."""
    axis = figure["layout"].get(name, {})
    if axis.get("type") == "category":
        return True
    letter, number = name[0], name[5:]
    ref = letter + number
    for trace in figure.get("data", []):
        if trace.get(f"{letter}axis", letter) == ref:
            values = trace.get(letter)
            if isinstance(values, list) and any(isinstance(v, str) for v in values):
                return True
    return False


def _title(obj):
    title = obj.get("title") or {}
    return (title.get("text") if isinstance(title, dict) else title) or ""


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_every_figure_has_a_title_and_readable_axes(notebook):
    problems = []
    shown = list(figures(notebook))
    for index, figure in shown:
        layout = figure["layout"]
        where = f"cell {index}"
        if not _title(layout).strip():
            problems.append(f"{where}: no title")
        axes = {name: axis for name, axis in layout.items() if _AXIS.fullmatch(name)}
        drawn = {name: axis for name, axis in axes.items() if axis.get("visible", True) is not False}
        for letter in "xy":
            same = {name: axis for name, axis in drawn.items()
                    if name.startswith(letter) and not _categorical(figure, name)}
            if same and not any(_title(axis) for axis in same.values()):
                problems.append(f"{where}: no {letter} axis has a title")
        for name, axis in drawn.items():
            title = _title(axis)
            named = title in CATEGORICAL or _categorical(figure, name) or "(" in title or "%" in title
            if title and not named:
                problems.append(f"{where}: {name} title {title!r} names no unit")
            if axis.get("type") == "log" and title and "tickvals" not in axis and "dtick" not in axis:
                problems.append(f"{where}: log axis {name} ({title!r}) keeps plotly's bare minor-tick labels")
    assert not problems, f"{notebook.name}:\n  " + "\n  ".join(problems)
