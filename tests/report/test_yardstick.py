"""The report's one yardstick, as the notebooks use it: every notebook that chooses a configuration and
reports a test error imports the one selection protocol and the one uncertainty function, and none uses
the rulers they replaced on the test set."""

import ast
import re

import nbformat
import pytest

from mnist_knn import paths

SELECTION = {"other_writer_neighbors", "held_out_errors", "choose", "selection_queries"}
UNCERTAINTY = {"writer_bootstrap", "paired_difference"}
REPLACED = {"wilson_interval", "mcnemar", "mcnemar_matrix"}  # rulers that treat the test digits as independent
MEASURING = ["02", "03", "04", "05", "06", "07"]


def _notebook(prefix):
    (path,) = sorted(paths.NOTEBOOKS_DIR.glob(f"{prefix}-*.ipynb"))
    return nbformat.read(path, as_version=4)


def _imported_names(nb):
    """Names a notebook imports from the package, by parsing its code cells."""
    names = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        source = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mnist_knn"):
                names |= {alias.name for alias in node.names}
    return names


@pytest.mark.parametrize("prefix", MEASURING)
def test_every_measuring_notebook_imports_the_one_protocol_and_the_one_uncertainty(prefix):
    names = _imported_names(_notebook(prefix))
    assert names & SELECTION, f"notebook {prefix} imports none of {sorted(SELECTION)}"
    assert names & UNCERTAINTY, f"notebook {prefix} imports none of {sorted(UNCERTAINTY)}"


@pytest.mark.parametrize("prefix", MEASURING)
def test_no_notebook_still_uses_a_replaced_ruler(prefix):
    nb = _notebook(prefix)
    code = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
    used = {name for name in REPLACED if re.search(rf"\b{name}\s*\(", code)}
    if "wilson_interval" in used:  # allowed only where the notebook says the digits are independent by design
        text = " ".join(cell.source for cell in nb.cells).lower()
        assert "independent by design" in text, f"notebook {prefix} uses Wilson without saying why"
        used.discard("wilson_interval")
    assert not used, f"notebook {prefix} still calls {sorted(used)}"
