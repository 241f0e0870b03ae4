"""The one on-disk store: atomic writes, content digests, and cached arrays.

Every file the package writes (downloaded data, IDX files, figures, ``results.json``, search and
deformation-distance caches) goes through :func:`write_atomically`:

- the bytes go to a temporary file beside the target, which is then renamed into place, so a reader
  never sees a half-written file, and a failed or interrupted write leaves nothing behind;
- the file gets the permissions of an ordinary new file (``0o666`` less the umask, so ``0o644`` under
  the usual umask ``022``), not the private ``0o600`` of :func:`tempfile.mkstemp`: a cache directory
  shared between clones or users (``MNIST_KNN_DATA``) is readable by all of them.

:func:`cached_arrays` keeps arrays that took long to compute: a file that is missing, unreadable or
fails the caller's check is computed again and replaced.
"""

import hashlib
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

__all__ = ["cached_arrays", "digest", "file_mode", "write_atomically"]


def file_mode():
    """The permission bits of an ordinary new file under the current umask (``0o644`` usually).

    The umask is read from ``/proc/self/status`` where Linux offers it: setting it to learn it (the only
    portable way) would, for an instant, change the mode of files that other threads create."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except OSError:
        pass
    umask = os.umask(0o077)  # the briefest, and safest, value while it is read
    os.umask(umask)
    return 0o666 & ~umask


def write_atomically(path, data, *, skip_unchanged=False, suffix=".tmp"):
    """Write ``data`` to ``path`` through a temporary file beside it and one rename.

    Parameters
    ----------
    path : path-like
        The target; its directory is created if missing.
    data : bytes, str or callable
        The content: bytes, text (written as UTF-8), or a function that writes to the binary file
        object it is given (for example ``lambda f: np.save(f, array)``).
    skip_unchanged : bool, default=False
        Leave the file alone (same modification time) when it already holds exactly these bytes;
        only for bytes and text.
    suffix : str, default=".tmp"
        Suffix of the temporary file, e.g. ``".part"`` for a download in progress.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    path = Path(path)
    if isinstance(data, str):
        data = data.encode()
    if skip_unchanged and not callable(data) and path.is_file() and path.read_bytes() == data:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data)
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def digest(*arrays):
    """A 128-bit hex digest of arrays' dtypes, shapes and bytes (BLAKE2b): equal only for equal content."""
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        a = np.asarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(memoryview(np.ascontiguousarray(a)).cast("B"))
    return h.hexdigest()


def cached_arrays(path, compute, *, accept=None):
    """Arrays stored in ``path`` (an ``.npz`` file) when they are there and valid; else computed and stored.

    Parameters
    ----------
    path : path-like
        The cache file, ``.npz``.
    compute : callable
        ``compute()`` returns a dict ``{name: ndarray}``: the arrays to store.
    accept : callable, optional
        ``accept(arrays)`` returns the arrays to use (possibly a slice of them) or ``None`` when the
        stored arrays do not fit the request (wrong shape, too few columns, foreign content); a
        rejected file is computed again and replaced.

    Returns
    -------
    dict of ndarray

    Notes
    -----
    A file that cannot be read (truncated, corrupt, not a zip) counts as missing. When the new file
    cannot be written (a read-only or missing directory, a full disk), the computed arrays are still
    returned, with a :class:`RuntimeWarning` naming the path and the reason: minutes of work are not
    thrown away for a cache.
    """
    path = Path(path)
    accept = accept or (lambda arrays: arrays)
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as f:
                stored = {name: f[name] for name in f.files}
            accepted = accept(stored)
            if accepted is not None:
                return accepted
        except Exception:  # noqa: BLE001 - unreadable, truncated or foreign: compute again, overwrite
            pass
    arrays = compute()
    try:
        write_atomically(path, lambda f: np.savez(f, **arrays))
    except OSError as exc:
        warnings.warn(
            f"could not write the cache file {path} ({type(exc).__name__}: {exc}); the result is "
            "returned but not cached",
            RuntimeWarning,
            stacklevel=2,
        )
    return arrays
