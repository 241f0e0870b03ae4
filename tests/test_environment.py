"""The two lists of pins (pip's requirements.txt, conda's environment.yml) must not drift apart."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONDA_NAMES = {"kaleido": "python-kaleido"}  # conda-forge names that differ from PyPI's


def pip_pins(text):
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"requirements.txt: {line!r} is not pinned exactly (name==version)"
            pins[name.lower()] = version
    return pins


def conda_pins(text):
    pins = {}
    for match in re.finditer(r"^\s*-\s*([A-Za-z0-9_.-]+)\s*=\s*([^\s#]+)", text, re.M):
        pins[match.group(1).lower()] = match.group(2)
    return pins


def test_every_pip_pin_is_in_environment_yml_with_the_same_version():
    pip = pip_pins((ROOT / "requirements.txt").read_text())
    conda = conda_pins((ROOT / "environment.yml").read_text())
    expected = {CONDA_NAMES.get(name, name): version for name, version in pip.items()}
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
