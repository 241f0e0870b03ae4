"""The package's layering is a tested property.

Data flows one way: foundation (paths, store, validation, lazy, progress) -> data -> engine -> analysis -> report.
A module may import its own stage, the stages before it and the foundation; the foundation imports no
stage. And no module, notebook or benchmark reaches for another module's private (underscore) names.

Every check reads source with :mod:`ast`; nothing is imported or run. The checker is itself tested on
small made-up sources, so a broken checker cannot pass silently.
"""

import ast
import json
from pathlib import Path

import pytest

from mnist_knn import paths

ROOT = paths.PROJECT_ROOT
PACKAGE = ROOT / "mnist_knn"
ORDER = ["foundation", "data", "engine", "analysis", "report"]


def module_name(path):
    """``mnist_knn/engine/search.py`` -> ``mnist_knn.engine.search`` (``__init__`` -> the package)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def stage_of(module):
    """The stage of a ``mnist_knn`` module: its subpackage, or ``foundation`` for top-level modules."""
    parts = module.split(".")
    if len(parts) >= 2 and parts[1] in ORDER:
        return parts[1]
    return "foundation"


def imports(source, module, is_package=False):
    """``(imported module, [names])`` for every import in ``source``, relative ones made absolute."""
    tree = ast.parse(source)
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [alias.name for alias in node.names]
            found.append((target, names))
            # ``from . import search`` imports the module mnist_knn.<...>.search
            found += [(f"{target}.{name}", []) for name in names if not name.startswith("_")]
    return found


def private_uses(source, module, is_package=False):
    """Private names ``source`` takes from other ``mnist_knn`` modules: imported, or read as attributes."""
    problems = []
    module_aliases = {}
    for target, names in imports(source, module, is_package):
        if not target.startswith("mnist_knn"):
            continue
        for name in names:
            if name.startswith("_") and not name.startswith("__"):
                problems.append(f"imports {name} from {target}")
        if not names:
            module_aliases[target.rpartition(".")[2]] = target
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.asname:
                    module_aliases[alias.asname] = alias.name
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in module_aliases
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            problems.append(f"reads {node.value.id}.{node.attr}")
    return problems


def layer_violations(source, module, is_package=False):
    """Imports of ``source`` that go against the flow: a stage importing a later one."""
    own = ORDER.index(stage_of(module))
    problems = []
    for target, _ in imports(source, module, is_package):
        if not target.startswith("mnist_knn."):
            continue
        other = ORDER.index(stage_of(target))
        if other > own or (own == 0 and other > 0):
            problems.append(f"{stage_of(module)} module imports {target} ({stage_of(target)})")
    return problems


PACKAGE_FILES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", PACKAGE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_imports_a_later_stage(path):
    source = path.read_text()
    problems = layer_violations(source, module_name(path), path.name == "__init__.py")
    assert not problems, f"{path.relative_to(ROOT)}: " + "; ".join(problems)


def _code_sources():
    """Every Python source the project runs: the package, the benchmark, the tests, the notebooks' code cells."""
    for path in [*PACKAGE_FILES, *sorted((ROOT / "benchmarks").glob("*.py"))]:
        yield str(path.relative_to(ROOT)), path.read_text(), module_name(path), path.name == "__init__.py"
    for path in sorted(paths.NOTEBOOKS_DIR.glob("[0-9][0-9]-*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        code = "\n".join(
            "".join(c["source"]) for c in cells
            if c["cell_type"] == "code" and not "".join(c["source"]).lstrip().startswith(("%", "!"))
        )
        yield str(path.relative_to(ROOT)), code, "notebook", False


@pytest.mark.parametrize("name, source, module, is_package", list(_code_sources()), ids=lambda x: x if isinstance(x, str) and "/" in x else "")
def test_no_private_names_cross_modules(name, source, module, is_package):
    problems = private_uses(source, module, is_package)
    assert not problems, f"{name}: " + "; ".join(problems)


def test_every_package_module_has_a_stage():
    stages = {stage_of(module_name(p)) for p in PACKAGE_FILES}
    assert stages == set(ORDER)
    foundation = sorted(p.name for p in PACKAGE_FILES if stage_of(module_name(p)) == "foundation")
    assert foundation == ["__init__.py", "lazy.py", "paths.py", "progress.py", "store.py", "validation.py"]


# ------------------------------------------------------------------ the checker, on made-up sources


@pytest.mark.parametrize(
    "module, source",
    [
        ("mnist_knn.data.idx", "from ..engine.search import kneighbors\n"),
        ("mnist_knn.data.idx", "from mnist_knn.engine import search\n"),
        ("mnist_knn.engine.search", "from ..analysis.scores import error_rate\n"),
        ("mnist_knn.engine.vote", "import mnist_knn.report.plots\n"),
        ("mnist_knn.analysis.ties", "from ..report import plots\n"),
        ("mnist_knn.store", "from .data.idx import read_idx\n"),
    ],
)
def test_checker_flags_an_import_against_the_flow(module, source):
    assert layer_violations(source, module)


@pytest.mark.parametrize(
    "module, source",
    [
        ("mnist_knn.report.plots", "from ..engine.search import kneighbors\nfrom .. import validation\n"),
        ("mnist_knn.engine.tangent", "from ..data.preprocess import blur\n"),
        ("mnist_knn.data.idx", "from ..store import write_atomically\nimport numpy as np\n"),
    ],
)
def test_checker_allows_imports_along_the_flow(module, source):
    assert not layer_violations(source, module)


@pytest.mark.parametrize(
    "source",
    [
        "from mnist_knn.engine.search import _digest\n",
        "from .search import _save_atomically\n",
        "from mnist_knn.engine import search\nsearch._inked_columns(1, 2)\n",
        "import mnist_knn.engine.search as s\ns._buffer('x', 1, 1)\n",
    ],
)
def test_checker_flags_private_names(source):
    assert private_uses(source, "mnist_knn.engine.idm")


def test_checker_allows_public_and_dunder_names():
    source = "from mnist_knn.engine import search\nsearch.kneighbors\nsearch.__name__\nfrom .search import inked_columns\n"
    assert not private_uses(source, "mnist_knn.engine.idm")


# ------------------------------------------------------------------ the stages' re-exports


@pytest.mark.parametrize("stage", ORDER[1:])
def test_each_stage_re_exports_exactly_its_modules_public_names(stage):
    """A stage's ``__init__`` lists, module by module, the names it re-exports lazily; the list must be each
    module's ``__all__``, so that a new public function cannot be forgotten (nor a removed one linger)."""
    import importlib

    package = importlib.import_module(f"mnist_knn.{stage}")
    exports = package._EXPORTS  # noqa: SLF001 - the table under test
    modules = sorted(p.stem for p in (PACKAGE / stage).glob("*.py") if p.stem != "__init__")
    assert sorted(exports) == modules, f"mnist_knn.{stage}: re-exports {sorted(exports)}; modules are {modules}"
    for module, names in exports.items():
        declared = importlib.import_module(f"mnist_knn.{stage}.{module}").__all__
        assert sorted(names) == sorted(declared), f"mnist_knn.{stage}.{module}: __all__ is {sorted(declared)}"


def test_the_top_level_re_exports_resolve():
    import mnist_knn

    for name in mnist_knn.__all__:
        assert getattr(mnist_knn, name) is not None
