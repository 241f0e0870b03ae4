"""Progress bars for long work, shown only where someone is watching: a notebook open in JupyterLab.

The exact search, the deformation-tolerant re-rankings and the analysis layer's grids and resampling
loops report their progress through this module. A bar is tqdm's notebook widget (``tqdm.auto``: a text
bar on stderr outside a kernel), appears only once the work has lasted :data:`DELAY` seconds, and goes
away when the work is done (``leave=False``). When bars are off, :func:`progress` returns its iterable
unchanged, :func:`progress_bar` a do-nothing object and :func:`progress_chunks` one chunk: nothing is
imported, printed or displayed, and the work runs exactly as without this module.

Whether bars are on (:func:`enabled`):

- ``MNIST_KNN_PROGRESS=1`` turns them on and ``MNIST_KNN_PROGRESS=0`` off, whatever else holds;
- otherwise they are on only inside an IPython kernel that a Jupyter server started (JupyterLab, Jupyter
  Notebook). jupyter_server 2 gives the kernels it starts for a notebook the environment variable
  ``JPY_SESSION_NAME`` (the notebook's path: ``SessionManager.get_kernel_env`` in
  ``jupyter_server/services/sessions/sessionmanager.py``); nbval and ``jupyter nbconvert --execute``
  start their kernels through jupyter_client without it, so their runs, and the stored outputs they
  check or write, stay free of bars. A script or a plain IPython shell is not a kernel: no bars.

As a second guard, the Makefile and the root ``conftest.py`` set ``MNIST_KNN_PROGRESS=0`` for what they
run (``make report``, ``make test``, nbval by hand): a kernel started from inside a JupyterLab kernel (a
``!make report`` in a notebook cell) would otherwise inherit ``JPY_SESSION_NAME``.

Examples
--------
Outside a kernel (or under pytest, whose root ``conftest.py`` sets ``MNIST_KNN_PROGRESS=0``):

>>> work = range(3)
>>> progress(work, desc="nothing to show") is work  # off: the very same object
True
>>> list(progress_chunks(10))  # off: one chunk, so a kernel runs in a single call
[(0, 10)]
"""

import os
import sys

__all__ = [
    "DELAY", "ENV_VAR", "SERVER_ENV_VAR", "enabled", "in_jupyter_kernel", "progress", "progress_bar",
    "progress_chunks",
]

#: ``"1"`` forces progress bars on, ``"0"`` off; unset (or empty), :func:`enabled` decides.
ENV_VAR = "MNIST_KNN_PROGRESS"
#: Set by jupyter_server 2 in the environment of every kernel it starts for a notebook (its path).
SERVER_ENV_VAR = "JPY_SESSION_NAME"
#: Seconds of work before a bar appears: shorter work shows none.
DELAY = 2.0


def enabled():
    """Whether progress bars are shown now: :data:`ENV_VAR` if set, else inside a server-started kernel.

    Raises
    ------
    ValueError
        If :data:`ENV_VAR` holds anything but ``"0"``, ``"1"`` or nothing.
    """
    setting = os.environ.get(ENV_VAR, "").strip()
    if setting:
        if setting not in ("0", "1"):
            raise ValueError(f"{ENV_VAR} must be 0 (no progress bars) or 1 (progress bars); got {setting!r}.")
        return setting == "1"
    return bool(os.environ.get(SERVER_ENV_VAR)) and in_jupyter_kernel()


def in_jupyter_kernel():
    """Whether this code runs in an IPython kernel (ipykernel), whoever started it.

    Looks only at modules already imported: a script that never imported IPython is not in a kernel.
    """
    zmqshell = sys.modules.get("ipykernel.zmqshell")
    ipython = sys.modules.get("IPython")
    if zmqshell is None or ipython is None:
        return False
    return isinstance(ipython.get_ipython(), zmqshell.ZMQInteractiveShell)


def _tqdm(**kwargs):
    from tqdm.auto import tqdm  # the notebook widget inside a kernel (tqdm's notebook extra: ipywidgets)

    return tqdm(leave=False, **kwargs)


def progress(iterable, *, total=None, desc=None, unit="it"):
    """``iterable`` with a progress bar when :func:`enabled`, else ``iterable`` itself.

    Parameters
    ----------
    iterable : iterable
    total : int, optional
        Number of items, when ``len(iterable)`` does not tell.
    desc : str, optional
        What the bar counts, shown before it.
    unit : str, default="it"

    Returns
    -------
    tqdm.auto.tqdm or the iterable
        A bar that appears after :data:`DELAY` seconds and is removed at the end; when bars are off,
        the very same object that was passed.
    """
    if not enabled():
        return iterable
    return _tqdm(iterable=iterable, total=total, desc=desc, unit=unit, delay=DELAY)


class _Silent:
    """What :func:`progress_bar` returns when bars are off: every call does nothing."""

    n = 0

    def update(self, n=1):
        return None

    def close(self):
        return None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def progress_bar(total, *, desc=None, unit="it", initial=0, delay=None):
    """A bar advanced by hand (``bar.update(n)``, then ``bar.close()``, or used as a context manager).

    Parameters
    ----------
    total : int
    desc, unit
        As in :func:`progress`.
    initial : int, default=0
        Units already done (for a bar created once the work has been running for a while).
    delay : float, optional
        Seconds before the bar appears; :data:`DELAY` by default, read when the bar is made (as
        :func:`progress` reads it).

    Returns
    -------
    tqdm.auto.tqdm, or an object whose ``update`` and ``close`` do nothing when bars are off
    """
    if not enabled():
        return _Silent()
    return _tqdm(total=total, desc=desc, unit=unit, initial=initial, delay=DELAY if delay is None else delay)


def progress_chunks(n, *, min_size=1, pieces=50, desc=None, unit="it"):
    """``(start, stop)`` pairs covering ``range(n)`` in order, for work done a chunk at a time.

    With bars off there is one pair, ``(0, n)``: a compiled kernel that loops over all ``n`` items
    runs in a single call, as it would without this module. With bars on, at most ``pieces`` chunks of
    nearly equal size, none smaller than ``min_size`` (fewer chunks if need be), and a bar counting items
    (none for a single chunk: ``n < 2 min_size``).

    Parameters
    ----------
    n : int
        Number of items (e.g. queries).
    min_size : int, default=1
        Fewest items per chunk (a chunk is split between threads: too few leave threads idle).
    pieces : int, default=50
        Chunks wanted when bars are on.
    desc, unit
        As in :func:`progress`.

    Yields
    ------
    (int, int)
        ``start, stop`` of each chunk; consecutive, from 0 to ``n``.

    Examples
    --------
    >>> list(progress_chunks(0)), list(progress_chunks(5, min_size=2))  # bars off: one chunk
    ([(0, 0)], [(0, 5)])
    """
    n = int(n)
    count = max(1, min(int(pieces), n // max(int(min_size), 1))) if enabled() else 1
    if count == 1:  # bars off, or too little to split: one chunk, no bar
        yield 0, n
        return
    bounds = [n * i // count for i in range(count + 1)]  # sizes differ by at most one
    with progress_bar(n, desc=desc, unit=unit) as bar:
        for start, stop in zip(bounds[:-1], bounds[1:]):
            yield start, stop
            bar.update(stop - start)
