"""Tests for mnist_knn.progress: when progress bars are on, and that off they are invisible and free.

The root ``conftest.py`` sets ``MNIST_KNN_PROGRESS=0`` for the whole session (nbval's kernels inherit it); each
test here sets the variables it needs with ``monkeypatch``, which restores them afterwards.
"""

import os
import subprocess
import sys

import pytest
from tqdm import tqdm

from mnist_knn import paths, progress
from mnist_knn.progress import ENV_VAR, SERVER_ENV_VAR


@pytest.fixture
def bars_off(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "0")


@pytest.fixture
def bars_on(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "1")


def test_the_session_runs_with_bars_off():
    """The root conftest.py turns the bars off for everything pytest runs, nbval's kernels included."""
    assert os.environ[ENV_VAR] == "0"
    assert not progress.enabled()


# ------------------------------------------------------------------ off: the very same objects, nothing written


def test_off_progress_returns_the_very_same_iterable_and_writes_nothing(bars_off, capsys):
    for work in (range(5), [1, 2, 3], iter("abc"), {"a": 1}):
        assert progress.progress(work, total=3, desc="work") is work
    assert capsys.readouterr() == ("", "")


def test_off_progress_bar_does_nothing(bars_off, capsys):
    with progress.progress_bar(10, desc="work") as bar:
        assert not isinstance(bar, tqdm)
        bar.update(3)
        bar.update()
    bar.close()
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("n", [0, 1, 7, 100_000])
def test_off_progress_chunks_is_one_chunk(bars_off, n, capsys):
    assert list(progress.progress_chunks(n, min_size=3, pieces=10, desc="work")) == [(0, n)]
    assert capsys.readouterr() == ("", "")


def test_off_nothing_imports_tqdm():
    """With bars off, a search and the helpers never import tqdm (a fresh interpreter, bars off)."""
    code = (
        "import sys, numpy as np\n"
        "from mnist_knn import progress\n"
        "from mnist_knn.engine import kneighbors\n"
        "X = np.arange(40, dtype=np.uint8).reshape(10, 4)\n"
        "kneighbors(X, X, 2)\n"
        "list(progress.progress(range(3))); list(progress.progress_chunks(5)); progress.progress_bar(3).update()\n"
        "print('tqdm' in sys.modules)\n"
    )
    env = {**os.environ, ENV_VAR: "0"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                         cwd=paths.PROJECT_ROOT)
    assert out.stdout.strip() == "False" and out.stderr == ""


# ------------------------------------------------------------------ on: tqdm bars


def test_on_progress_is_a_tqdm_bar_that_yields_the_same_items(bars_on):
    bar = progress.progress(range(5), desc="work")
    assert isinstance(bar, tqdm)
    assert not bar.leave and bar.total == 5 and bar.delay == progress.DELAY
    assert list(bar) == [0, 1, 2, 3, 4]


def test_on_progress_bar_counts_by_hand(bars_on):
    with progress.progress_bar(10, desc="work", unit="query", initial=4) as bar:
        assert isinstance(bar, tqdm) and not bar.leave
        bar.update(6)
        assert bar.n == 10


@pytest.mark.parametrize("n, min_size, pieces, count", [
    (1, 1, 50, 1), (7, 1, 3, 3), (100, 1, 50, 50), (1000, 128, 50, 7), (129, 128, 50, 1), (255, 128, 50, 1),
    (256, 128, 50, 2), (10_000, 2, 7, 7), (5, 10, 50, 1),
])
def test_on_progress_chunks_cover_the_range_in_nearly_equal_chunks(bars_on, n, min_size, pieces, count):
    chunks = list(progress.progress_chunks(n, min_size=min_size, pieces=pieces))
    assert len(chunks) == count
    assert chunks[0][0] == 0 and chunks[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:]))
    sizes = [b - a for a, b in chunks]
    assert max(sizes) - min(sizes) <= 1 and (min(sizes) >= min_size or count == 1)


def test_on_progress_chunks_of_nothing_is_one_empty_chunk(bars_on):
    assert list(progress.progress_chunks(0)) == [(0, 0)]


def test_on_a_single_chunk_makes_no_bar(bars_on, monkeypatch):
    """Too little to split (fewer than twice min_size items): one kernel call, and no widget to set up."""
    made = []
    monkeypatch.setattr(progress, "progress_bar", lambda *a, **k: made.append(1))
    assert list(progress.progress_chunks(255, min_size=128)) == [(0, 255)]
    assert made == []


# ------------------------------------------------------------------ the rule


def test_the_variable_overrides_everything(monkeypatch):
    monkeypatch.setattr(progress, "in_jupyter_kernel", lambda: True)
    monkeypatch.setenv(SERVER_ENV_VAR, "notebooks/01-data-tour.ipynb")
    monkeypatch.setenv(ENV_VAR, "0")
    assert not progress.enabled()
    monkeypatch.setattr(progress, "in_jupyter_kernel", lambda: False)
    monkeypatch.delenv(SERVER_ENV_VAR)
    monkeypatch.setenv(ENV_VAR, "1")
    assert progress.enabled()


@pytest.mark.parametrize("server, kernel, expected", [
    (True, True, True),  # JupyterLab's kernel: jupyter_server set JPY_SESSION_NAME
    (False, True, False),  # a kernel of nbval or nbconvert --execute: no JPY_SESSION_NAME
    (True, False, False),  # a script started from a JupyterLab kernel (!python ...) inherits it, but is no kernel
    (False, False, False),  # a script, the tests
])
@pytest.mark.parametrize("unset", ["", "  "])
def test_the_default_rule(monkeypatch, server, kernel, expected, unset):
    monkeypatch.setenv(ENV_VAR, unset)  # empty counts as unset
    if server:
        monkeypatch.setenv(SERVER_ENV_VAR, "/home/reader/notebooks/06-deformation-tolerant-knn.ipynb")
    else:
        monkeypatch.delenv(SERVER_ENV_VAR, raising=False)
    monkeypatch.setattr(progress, "in_jupyter_kernel", lambda: kernel)
    assert progress.enabled() is expected


def test_the_default_rule_with_the_variable_absent(monkeypatch):
    monkeypatch.delenv(ENV_VAR)
    monkeypatch.setenv(SERVER_ENV_VAR, "x.ipynb")
    monkeypatch.setattr(progress, "in_jupyter_kernel", lambda: True)
    assert progress.enabled()
    assert isinstance(progress.progress(range(2)), tqdm)


@pytest.mark.parametrize("value", ["yes", "true", "2", "off"])
def test_other_values_are_refused(monkeypatch, value):
    monkeypatch.setenv(ENV_VAR, value)
    with pytest.raises(ValueError, match="MNIST_KNN_PROGRESS must be 0"):
        progress.enabled()


def test_pytest_is_not_a_jupyter_kernel():
    assert not progress.in_jupyter_kernel()


def test_a_plain_ipython_shell_is_not_a_jupyter_kernel(monkeypatch):
    """IPython imported, an interactive shell running, but no ipykernel: a terminal, no widgets."""

    class FakeIPython:
        @staticmethod
        def get_ipython():
            return object()

    monkeypatch.setitem(sys.modules, "IPython", FakeIPython)
    monkeypatch.delitem(sys.modules, "ipykernel.zmqshell", raising=False)
    assert not progress.in_jupyter_kernel()


def test_an_ipykernel_shell_is_a_jupyter_kernel(monkeypatch):
    class Shell:
        pass

    class FakeZmqShell:
        ZMQInteractiveShell = Shell

    class FakeIPython:
        @staticmethod
        def get_ipython():
            return Shell()

    monkeypatch.setitem(sys.modules, "IPython", FakeIPython)
    monkeypatch.setitem(sys.modules, "ipykernel.zmqshell", FakeZmqShell)
    assert progress.in_jupyter_kernel()


def test_jupyter_server_sets_the_variable_for_the_kernels_it_starts():
    """The rule rests on jupyter_server's SessionManager giving a notebook's kernel JPY_SESSION_NAME."""
    pytest.importorskip("jupyter_server")
    from jupyter_server.services.sessions.sessionmanager import SessionManager

    env = SessionManager.get_kernel_env(SessionManager.__new__(SessionManager), "notebooks/01-data-tour.ipynb")
    assert env[SERVER_ENV_VAR] == "notebooks/01-data-tour.ipynb"
