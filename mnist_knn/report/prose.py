"""Prose cells: code cells whose only job is to show generated Markdown.

Many cells end with ``display(Markdown(f"..."))``: the numbers are computed, the sentence around them is text.
A reader wants the sentence, not the f-string that builds it. Such a cell (every output of it Markdown) carries
the tag ``hide-input``, the convention of Jupyter Book and of nbconvert's ``TagRemovePreprocessor``, and JupyterLab's
``jupyter.source_hidden`` flag: the site shows only its output, JupyterLab opens it collapsed (click the
ellipsis to read the code), and nbval runs and compares it like any other cell.

``python -m mnist_knn.report.prose`` tags, and untags, the cells of every notebook by that rule (``--check``
only reports); the tests check that every notebook follows it.
"""

import argparse
import sys
from pathlib import Path

from .. import paths

__all__ = ["PROSE_TAG", "is_prose_cell", "mark_prose_cells"]

PROSE_TAG = "hide-input"
_MARKDOWN = "text/markdown"


def is_prose_cell(cell):
    """Whether ``cell`` is a code cell with at least one output, and every output is Markdown.

    Examples
    --------
    >>> import nbformat
    >>> cell = nbformat.v4.new_code_cell('display(Markdown("**3.09%**"))')
    >>> cell.outputs = [nbformat.v4.new_output("display_data", {"text/markdown": "**3.09%**", "text/plain": "..."})]
    >>> is_prose_cell(cell)
    True
    >>> cell.outputs.append(nbformat.v4.new_output("stream", text="a warning"))
    >>> is_prose_cell(cell)
    False
    """
    outputs = cell.get("outputs") or []
    return cell.get("cell_type") == "code" and bool(outputs) and all(
        output.get("output_type") in ("display_data", "execute_result") and _MARKDOWN in output.get("data", {})
        and set(output["data"]) <= {_MARKDOWN, "text/plain"}
        for output in outputs
    )


def mark_prose_cells(nb):
    """Tag every prose cell of ``nb`` (and hide its source in JupyterLab); untag every other cell.

    Parameters
    ----------
    nb : nbformat.NotebookNode
        An executed notebook, changed in place.

    Returns
    -------
    list of int
        The indices of the cells that changed.

    Raises
    ------
    ValueError
        If no code cell of ``nb`` has an output: the rule reads outputs, so an unexecuted notebook would lose
        every tag.
    """
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    if code and not any(cell.get("outputs") for cell in code):
        raise ValueError("The notebook has no outputs: run it first (prose cells are recognised by their outputs).")
    changed = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        prose = is_prose_cell(cell)
        tags = list(cell.metadata.get("tags", []))
        jupyter = dict(cell.metadata.get("jupyter", {}))
        if prose:
            tags = tags if PROSE_TAG in tags else [*tags, PROSE_TAG]
            jupyter["source_hidden"] = True
        else:
            tags = [tag for tag in tags if tag != PROSE_TAG]
            jupyter.pop("source_hidden", None)
        before = (cell.metadata.get("tags", []), cell.metadata.get("jupyter", {}))
        for key, value in (("tags", tags), ("jupyter", jupyter)):
            if value:
                cell.metadata[key] = value
            else:
                cell.metadata.pop(key, None)
        if (cell.metadata.get("tags", []), cell.metadata.get("jupyter", {})) != before:
            changed.append(index)
    return changed


def main(argv=None):
    import nbformat

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report the cells that would change")
    parser.add_argument("notebooks", nargs="*", help="default: every numbered notebook")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted(paths.NOTEBOOKS_DIR.glob("[0-9][0-9]-*.ipynb"))
    stale = 0
    for path in map(Path, notebooks):
        nb = nbformat.read(path, as_version=4)
        changed = mark_prose_cells(nb)
        stale += bool(changed)
        if changed and not args.check:
            path.write_text(nbformat.writes(nb) + "\n")
        verb = "would change" if args.check else "changed"
        print(f"{path.name}: {verb} cells {changed}" if changed else f"{path.name}: up to date")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
