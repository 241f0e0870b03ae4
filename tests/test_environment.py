"""The environment's declarations agree: the two lists of pins (pip's requirements.txt, conda's
environment.yml) do not drift apart, and every third-party package that mnist_knn imports is declared in
pyproject.toml and pinned exactly."""

import ast
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONDA_NAMES = {"kaleido": "python-kaleido", "torch": "pytorch"}  # conda-forge names that differ from PyPI's
# Import names whose distribution is named otherwise, for a package not installed here (when it is installed,
# its metadata answers: importlib.metadata.packages_distributions).
DISTRIBUTIONS = {"sklearn": "scikit-learn", "IPython": "ipython", "yaml": "PyYAML", "PIL": "pillow",
                 "jinja2": "Jinja2", "markupsafe": "MarkupSafe", "pygments": "Pygments", "faiss": "faiss-cpu"}
# Imported by the package, yet optional: declared in [project.optional-dependencies] instead.
# scikit-learn is the reference the engine is compared with; the estimator module imports without it (creating a
# KNNClassifier then says scikit-learn is missing), and notebook 07's modules import it inside their functions.
# PyTorch and faiss serve notebook 07 only, imported inside the functions that need them (the package imports
# without them); they are pinned in requirements.txt all the same.
OPTIONAL_IMPORTS = {"sklearn", "torch", "faiss"}


def pip_pins(text, source="requirements.txt"):
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"{source}: {line!r} is not pinned exactly (name==version)"
            pins[name.lower()] = version
    return pins


def normalized(name):
    """A distribution name as PyPI compares them (PEP 503): case and runs of ``-_.`` do not matter."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement):
    """The distribution name of a PEP 508 requirement such as ``numpy>=2`` or ``kaleido[extra]``."""
    return normalized(re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement).group(1))


def third_party_imports(package=ROOT / "mnist_knn"):
    """Top-level name -> files, for every module outside the standard library that ``package`` imports:
    at the top of a module or inside a function, with ``import``, ``from ... import`` or
    ``importlib.import_module("name")``."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None))
                  == "import_module" and node.args and isinstance(node.args[0], ast.Constant)
                  and isinstance(node.args[0].value, str) and not node.args[0].value.startswith(".")):
                names = [node.args[0].value]
            else:
                continue
            for name in names:
                top = name.partition(".")[0]
                if top not in sys.stdlib_module_names and top != package.name:
                    found.setdefault(top, set()).add(path.relative_to(ROOT).as_posix())
    return found


def distribution_of(import_name):
    """The (normalized) distribution that provides the top-level module ``import_name``."""
    from importlib.metadata import packages_distributions

    installed = packages_distributions().get(import_name)
    if installed:
        return normalized(installed[0])
    return normalized(DISTRIBUTIONS.get(import_name, import_name))


def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def conda_pins(text):
    pins = {}
    for match in re.finditer(r"^\s*-\s*([A-Za-z0-9_.-]+)\s*=\s*([^\s#=]+)", text, re.M):
        pins[match.group(1).lower()] = match.group(2)  # a build string after a second "=" is not the version
    return pins


def test_every_pip_pin_is_in_environment_yml_with_the_same_version():
    pip = pip_pins((ROOT / "requirements.txt").read_text())
    conda = conda_pins((ROOT / "environment.yml").read_text())
    # a local version label (torch's "+cpu") names a build, as conda's build string does
    expected = {CONDA_NAMES.get(name, name): version.partition("+")[0] for name, version in pip.items()}
    missing = sorted(set(expected) - set(conda))
    assert not missing, f"environment.yml lacks {missing}"
    differ = {n: (v, conda[n]) for n, v in expected.items() if conda[n] != v}
    assert not differ, f"versions differ (requirements.txt, environment.yml): {differ}"


def test_environment_yml_pins_nothing_that_requirements_txt_lacks():
    pip = pip_pins((ROOT / "requirements.txt").read_text())
    conda = conda_pins((ROOT / "environment.yml").read_text())
    known = {CONDA_NAMES.get(name, name) for name in pip} | {"python"}
    assert set(conda) <= known, f"only in environment.yml: {sorted(set(conda) - known)}"


def test_installed_versions_match_the_pins():
    from importlib.metadata import PackageNotFoundError, version

    pins = pip_pins((ROOT / "requirements.txt").read_text())
    wrong = {}
    for name, pinned in pins.items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            installed = None
        if installed != pinned:
            wrong[name] = (pinned, installed)
    assert not wrong, f"installed versions differ from the pins (pinned, installed): {wrong}"


def test_the_import_scan_sees_imports_inside_functions():
    imports = third_party_imports()
    assert "numpy" in imports and "numba" in imports
    assert "mnist_knn/report/site.py" in imports["nbconvert"]  # imported only inside the site builder's methods
    assert not {"os", "re", "mnist_knn"} & set(imports)


def test_every_third_party_import_of_the_package_is_declared_in_pyproject():
    project = pyproject()
    runtime = {requirement_name(r) for r in project["dependencies"]}
    extras = {requirement_name(r) for reqs in project.get("optional-dependencies", {}).values() for r in reqs}
    undeclared, not_in_extras = {}, {}
    for name, files in sorted(third_party_imports().items()):
        dist = distribution_of(name)
        if name in OPTIONAL_IMPORTS:
            if dist not in extras and dist not in runtime:
                not_in_extras[f"{name} ({dist})"] = sorted(files)
        elif dist not in runtime:
            undeclared[f"{name} ({dist})"] = sorted(files)
    assert not undeclared, f"imported by mnist_knn but missing from pyproject's dependencies: {undeclared}"
    assert not not_in_extras, f"optional imports missing from pyproject's optional-dependencies: {not_in_extras}"


def test_pyproject_declares_no_runtime_dependency_that_the_package_does_not_import():
    imported = {distribution_of(name) for name in third_party_imports()}
    declared = {requirement_name(r) for r in pyproject()["dependencies"]}
    assert declared <= imported, f"declared but never imported by mnist_knn: {sorted(declared - imported)}"


def test_every_dependency_of_the_package_is_pinned_exactly():
    pins = {normalized(name) for name in pip_pins((ROOT / "requirements.txt").read_text())}
    pins |= {normalized(name) for name in pip_pins((ROOT / "constraints.txt").read_text(), "constraints.txt")}
    needed = {requirement_name(r) for r in pyproject()["dependencies"]}
    needed |= {distribution_of(name) for name in third_party_imports()}
    unpinned = sorted(needed - pins)
    assert not unpinned, f"not pinned (name==version) in requirements.txt or constraints.txt: {unpinned}"
