"""Prose cells (mnist_knn/report/prose.py): the rule, every notebook following it, and the site honouring it."""

import nbformat
import pytest

from mnist_knn import paths
from mnist_knn.report import prose, site

NOTEBOOKS = sorted(paths.NOTEBOOKS_DIR.glob("[0-9][0-9]-*.ipynb"))


def _markdown_output(text):
    return nbformat.v4.new_output("display_data", data={"text/markdown": text, "text/plain": "<Markdown>"})


def _notebook():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# 01 · Alpha\n\n1. Why?"),
        nbformat.v4.new_code_cell('display(Markdown(f"The error is **{err:.2%}**."))'),  # prose
        nbformat.v4.new_code_cell("table"),  # a table: not prose
        nbformat.v4.new_code_cell("x = 1"),  # no output: not prose
        nbformat.v4.new_code_cell('display(Markdown("A")); print("B")'),  # Markdown and a stream: not prose
    ]
    nb.cells[1].outputs = [_markdown_output("The error is **SENTENCE-SHOWN**.")]
    nb.cells[2].outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "   a\n0  1"},
                                                  execution_count=1)]
    nb.cells[4].outputs = [_markdown_output("A"), nbformat.v4.new_output("stream", text="B\n")]
    return nb


def test_prose_cells_are_tagged_and_hidden_and_others_untagged():
    nb = _notebook()
    nb.cells[2].metadata.update(tags=[prose.PROSE_TAG, "keep-me"], jupyter={"source_hidden": True, "outputs_hidden": False})
    assert prose.mark_prose_cells(nb) == [1, 2]
    assert nb.cells[1].metadata["tags"] == [prose.PROSE_TAG] and nb.cells[1].metadata["jupyter"] == {"source_hidden": True}
    assert nb.cells[2].metadata["tags"] == ["keep-me"] and nb.cells[2].metadata["jupyter"] == {"outputs_hidden": False}
    assert all("tags" not in nb.cells[i].metadata and "jupyter" not in nb.cells[i].metadata for i in (3, 4))
    assert prose.mark_prose_cells(nb) == []  # idempotent


def test_an_unexecuted_notebook_is_refused_not_untagged():
    nb = _notebook()
    prose.mark_prose_cells(nb)
    for cell in nb.cells:
        cell.pop("outputs", None) if cell.cell_type == "markdown" else cell.update(outputs=[])
    with pytest.raises(ValueError, match="no outputs: run it first"):
        prose.mark_prose_cells(nb)
    assert nb.cells[1].metadata["tags"] == [prose.PROSE_TAG]  # nothing changed


def test_main_check_reports_and_fix_writes(tmp_path, capsys):
    path = tmp_path / "01-alpha.ipynb"
    nbformat.write(_notebook(), path)
    before = path.read_text()
    assert prose.main(["--check", str(path)]) == 1 and path.read_text() == before
    assert "would change cells [1]" in capsys.readouterr().out
    assert prose.main([str(path)]) == 0 and prose.main(["--check", str(path)]) == 0
    assert nbformat.read(path, as_version=4).cells[1].metadata["tags"] == [prose.PROSE_TAG]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_tags_exactly_its_prose_cells(path):
    nb = nbformat.read(path, as_version=4)
    assert any(prose.is_prose_cell(cell) for cell in nb.cells)
    changed = prose.mark_prose_cells(nb)
    assert changed == [], (f"{path.name}: cells {changed} break the prose-cell rule; "
                           "run `python -m mnist_knn.report.prose`")


def test_site_shows_a_prose_cells_output_but_not_its_source(tmp_path):
    root = tmp_path / "project"
    (root / "notebooks").mkdir(parents=True)
    nb = _notebook()
    nb.cells[2].outputs = []  # keep the page simple: one prose cell, one shown cell
    nb.cells[3].source = "SOURCE_SHOWN = 1"
    prose.mark_prose_cells(nb)
    nbformat.write(nb, root / "notebooks" / "01-alpha.ipynb")
    (root / "results.json").write_text("{}")
    report = site.build_site(tmp_path / "site", notebooks_dir=root / "notebooks",
                             results_path=root / "results.json", project_root=root)
    page = (report.out_dir / "01-alpha.html").read_text()
    assert "SENTENCE-SHOWN" in page and "SOURCE_SHOWN" in page
    assert "display(Markdown" not in page.replace("&quot;", '"').replace("&#34;", '"')
