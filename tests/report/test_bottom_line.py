"""The bottom line: every notebook opens with its answers, filled in by its closing summary."""

from unittest import mock

import nbformat
import pytest

from mnist_knn import paths
from mnist_knn.report import bottom_line

NOTEBOOKS = sorted(paths.NOTEBOOKS_DIR.glob("[0-9][0-9]-*.ipynb"))


def test_placeholder_and_fill_share_one_display():
    with mock.patch.object(bottom_line, "display") as display, \
            mock.patch.object(bottom_line, "update_display") as update:
        bottom_line.bottom_line_here()
        bottom_line.fill_bottom_line("  k = 4 is best.  ")
    (shown,), kwargs = display.call_args
    assert shown.data == bottom_line.PLACEHOLDER and kwargs == {"display_id": bottom_line.DISPLAY_ID}
    (filled,), kwargs = update.call_args
    assert filled.data == "**The bottom line.** k = 4 is best." and kwargs == {"display_id": bottom_line.DISPLAY_ID}


@pytest.mark.parametrize("text", ["", "   \n"])
def test_an_empty_bottom_line_is_refused(text):
    with mock.patch.object(bottom_line, "update_display") as update, pytest.raises(ValueError, match="empty"):
        bottom_line.fill_bottom_line(text)
    update.assert_not_called()


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_every_notebook_opens_with_its_filled_bottom_line(notebook):
    nb = nbformat.read(notebook, as_version=4)
    title, top = nb.cells[0], nb.cells[1]
    assert title.cell_type == "markdown" and title.source.startswith("# ")
    assert top.cell_type == "code" and "bottom_line_here()" in top.source
    assert top.source.startswith("# NBVAL_IGNORE_OUTPUT\n")
    (output,) = top.outputs
    text = "".join(output["data"]["text/markdown"])
    assert text.startswith("**The bottom line.** "), f"{notebook.name}: the stored bottom line was not filled in"
    sentences = text.count(". ") + 1
    assert 3 <= sentences <= 7, f"{notebook.name}: {sentences} sentences"
    fills = [c for c in nb.cells if c.cell_type == "code" and "fill_bottom_line(" in c.source]
    assert len(fills) == 1, f"{notebook.name}: the bottom line must be filled by exactly one cell"
