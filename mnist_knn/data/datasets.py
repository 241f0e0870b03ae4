"""The MNIST files: where to get them, how to check them, how to load them.

Six gzipped IDX files are used: the four original MNIST files and the two QMNIST
"extended label" files, which trace every MNIST digit back to its NIST writer.
Each is known by its SHA-256. :func:`fetch` downloads a file into ``data/`` (see
:mod:`mnist_knn.paths`) through a temporary file that is only renamed into place
once its size and SHA-256 check out, so a failed download never replaces a good file.

Mirrors
-------
The historic ``yann.lecun.com`` address answers 403, so each file has a list of public
mirrors, tried in order (:data:`MNIST_MIRRORS`, :data:`QMNIST_MIRRORS`). The environment
variable ``MNIST_KNN_MIRRORS`` replaces these lists for every file: whitespace-separated
entries, each an ``http(s)://`` URL, a ``file://`` URL or a plain directory path. Every
file is tried at every entry in order, so one directory holding only the MNIST files and
another holding only the QMNIST files can both be listed::

    MNIST_KNN_MIRRORS="/data/mnist /data/qmnist" python -m mnist_knn.data.datasets

Running ``python -m mnist_knn.data.datasets`` fetches and verifies every file, printing one
line per file; it exits non-zero if any file cannot be fetched. When every file is
already present and verified, it only hashes them (about 12 MB).
"""

import functools
import hashlib
import http.client
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..paths import DATA_DIR
from ..store import write_atomically
from ..validation import source_name
from .idx import IdxFormatError, read_idx

__all__ = [
    "FileSpec",
    "DownloadError",
    "MNIST_MIRRORS",
    "QMNIST_MIRRORS",
    "MIRRORS_ENV",
    "FILES",
    "MNIST_FILES",
    "QMNIST_FILES",
    "SPLITS",
    "QMNIST_COLUMNS",
    "mirrors_from_env",
    "sha256_of",
    "fetch",
    "fetch_all",
    "read_mnist",
    "read_qmnist_metadata",
    "load_mnist",
    "load_qmnist_metadata",
]

MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://raw.githubusercontent.com/fgnt/mnist/master/",
)
QMNIST_MIRRORS = ("https://raw.githubusercontent.com/facebookresearch/qmnist/master/",)
MIRRORS_ENV = "MNIST_KNN_MIRRORS"

SPLITS = ("train", "test")
_READ_BYTES = 1 << 20  # bytes per read when hashing or downloading
_TIMEOUT = 30.0
_USER_AGENT = "mnist-knn/0.1 (Python urllib)"


@dataclass(frozen=True)
class FileSpec:
    """One data file: its name, the SHA-256 and size of its bytes, its default mirrors.

    Parameters
    ----------
    name : str
        File name, both on the mirrors and in the data directory.
    sha256 : str
        Hex SHA-256 of the file as stored (the ``.gz``, not its content).
    size : int
        Size in bytes of the file as stored.
    mirrors : tuple of str
        Base URLs or directories tried in order, unless ``MNIST_KNN_MIRRORS`` is set.
    """

    name: str
    sha256: str
    size: int
    mirrors: tuple = ()


#: The files, by name. Checksums from /work/shared/data/{mnist,qmnist}/README.md; the
#: MNIST ones are the published values (torchvision MD5 sums agree).
FILES = {
    spec.name: spec
    for spec in [
        FileSpec("train-images-idx3-ubyte.gz",
              "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9_912_422, MNIST_MIRRORS),
        FileSpec("train-labels-idx1-ubyte.gz",
              "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28_881, MNIST_MIRRORS),
        FileSpec("t10k-images-idx3-ubyte.gz",
              "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1_648_877, MNIST_MIRRORS),
        FileSpec("t10k-labels-idx1-ubyte.gz",
              "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4_542, MNIST_MIRRORS),
        FileSpec("qmnist-train-labels-idx2-int.gz",
              "2c05dc77f6b916b38e455e97ab129a42a444f3dbef09b278a366f82904e0dd9f", 463_024, QMNIST_MIRRORS),
        FileSpec("qmnist-test-labels-idx2-int.gz",
              "9fbcbe594c3766fdf4f0b15c5165dc0d1e57ac604e01422608bb72c906030d06", 526_800, QMNIST_MIRRORS),
    ]
}

#: split -> (images file, labels file)
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
#: split -> QMNIST extended-labels file
QMNIST_FILES = {
    "train": "qmnist-train-labels-idx2-int.gz",
    "test": "qmnist-test-labels-idx2-int.gz",
}

#: Columns 0-5 of the QMNIST extended labels, by the names used in load_qmnist_metadata.
QMNIST_COLUMNS = ("label", "nist_series", "writer_id", "writer_digit_index", "nist_class", "nist_index")

#: NIST HSF series -> NIST Special Database, in MNIST's naming.
_SOURCE_OF_SERIES = {0: "SD-3", 1: "SD-3", 2: "SD-3", 3: "SD-3", 4: "SD-1"}


class DownloadError(RuntimeError):
    """No mirror delivered a file with the expected size and SHA-256.

    The message lists every URL tried and why it failed.
    """


class _AttemptFailed(Exception):
    """One URL failed; the message is the reason (private: collected into DownloadError)."""


# --------------------------------------------------------------------------- mirrors

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def mirrors_from_env(value=None):
    """Parse a ``MNIST_KNN_MIRRORS`` value into a tuple of mirror entries.

    Parameters
    ----------
    value : str or None, default=None
        Whitespace-separated entries, each an ``http://`` or ``https://`` URL, a
        ``file://`` URL, or a plain directory path. ``None`` reads the environment
        variable ``MNIST_KNN_MIRRORS``.

    Returns
    -------
    mirrors : tuple of str or None
        The entries in order, or ``None`` if the variable is unset or blank (meaning:
        use each file's default mirrors).

    Raises
    ------
    ValueError
        If an entry has a URL scheme other than http, https or file.
    """
    if value is None:
        value = os.environ.get(MIRRORS_ENV)
    entries = tuple((value or "").split())
    for entry in entries:
        match = _SCHEME.match(entry)
        if match and match.group(1).lower() not in ("http", "https", "file"):
            raise ValueError(
                f"{MIRRORS_ENV}: entry {entry!r} has scheme {match.group(1)!r}; "
                f"expected an http(s):// URL, a file:// URL or a directory path."
            )
    return entries or None


def _url(mirror, name):
    """Return the URL of ``name`` at a mirror (a URL, or a directory turned into a file:// URL)."""
    if not _SCHEME.match(mirror):
        return (Path(mirror).expanduser().resolve() / name).as_uri()
    return mirror.rstrip("/") + "/" + name


def _urls(spec, mirrors):
    """Return the URLs to try for ``spec``: explicit mirrors, else $MNIST_KNN_MIRRORS, else the defaults."""
    if mirrors is None:
        mirrors = mirrors_from_env() or spec.mirrors
    return [_url(mirror, spec.name) for mirror in mirrors]


# --------------------------------------------------------------------------- download

def sha256_of(path):
    """Return the hex SHA-256 of a file, read in 1 MiB chunks.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    digest : str
        64 lowercase hex digits.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_READ_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _is_verified(path, spec):
    """True if ``path`` is a file of the expected size and SHA-256."""
    return path.is_file() and path.stat().st_size == spec.size and sha256_of(path) == spec.sha256


def _stream(url, out, timeout, limit):
    """Copy ``url`` into the open file ``out``; return (bytes written, sha256 hex, declared length).

    Stops with :class:`_AttemptFailed` as soon as more than ``limit`` bytes arrive (or are announced): a
    mirror that sends without end cannot fill the disk."""
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    digest, n = hashlib.sha256(), 0
    with urllib.request.urlopen(request, timeout=timeout) as response:
        declared = response.headers.get("Content-Length")
        declared = int(declared) if declared and declared.isdigit() else None
        if declared is not None and declared > limit:
            raise _AttemptFailed(f"wrong size: the server announces {declared} bytes; expected {limit}")
        try:
            for chunk in iter(lambda: response.read(_READ_BYTES), b""):
                n += len(chunk)
                if n > limit:
                    raise _AttemptFailed(f"wrong size: more than {limit} bytes arrived; expected {limit}")
                digest.update(chunk)
                out.write(chunk)
        except http.client.IncompleteRead as exc:
            n += len(exc.partial)
            raise _AttemptFailed(f"truncated: got {n} of {declared or n + exc.expected} bytes") from exc
    return n, digest.hexdigest(), declared


def _reason(exc, timeout):
    """Say in a few words why a download attempt raised ``exc``."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP error {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        reason = exc.reason
        if isinstance(reason, (TimeoutError, socket.timeout)):
            return f"timed out after {timeout:g} s"
        if isinstance(reason, OSError) and reason.strerror:
            return reason.strerror
        return str(reason)
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return f"timed out after {timeout:g} s"
    if isinstance(exc, http.client.HTTPException):
        return f"{type(exc).__name__}: {exc}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}"


def _download(url, dest, spec, timeout):
    """Download ``url`` beside ``dest``, verify it, and rename it to ``dest``.

    Raises _AttemptFailed with the reason on any failure; the temporary file is always
    removed and ``dest`` is only ever replaced by a verified file.
    """

    def download_and_verify(out):
        try:
            n, sha, declared = _stream(url, out, timeout, spec.size)
        except _AttemptFailed:
            raise
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if isinstance(exc, urllib.error.HTTPError):
                exc.close()
            raise _AttemptFailed(_reason(exc, timeout)) from exc
        if declared is not None and n < declared:
            raise _AttemptFailed(f"truncated: got {n} of {declared} bytes")
        if n < spec.size:
            raise _AttemptFailed(f"truncated: got {n} of {spec.size} bytes")
        if n > spec.size:
            raise _AttemptFailed(f"wrong size: got {n} bytes; expected {spec.size}")
        if sha != spec.sha256:
            raise _AttemptFailed(f"checksum mismatch: expected sha256 {spec.sha256}, got {sha}")

    write_atomically(dest, download_and_verify, suffix=".part")


def _spec_for(name, files):
    files = FILES if files is None else files
    if name not in files:
        raise ValueError(f"Unknown data file {name!r}; expected one of: {', '.join(files)}.")
    return files[name]


def _fetch(name, data_dir, mirrors, files, timeout):
    """Fetch one file; return (path, URL it was downloaded from, or None if it was already there)."""
    spec = _spec_for(name, files)
    mirrors = _check_mirrors(mirrors)
    data_dir = Path(data_dir)
    dest = data_dir / spec.name
    if _is_verified(dest, spec):
        return dest, None
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        _remove_stale_parts(data_dir, spec.name)
    except OSError as exc:
        raise _unwritable(spec, data_dir, exc) from exc
    urls = _urls(spec, mirrors)
    failures = []
    for url in urls:
        try:
            _download(url, dest, spec, timeout)
        except _AttemptFailed as exc:
            failures.append(f"  {url}: {exc}")
        except OSError as exc:  # network errors are _AttemptFailed: this is the local disk (read-only, full)
            raise _unwritable(spec, data_dir, exc) from exc
        else:
            return dest, url
    existing = (
        f"The existing {dest} has the wrong checksum; it was left in place but is not trusted.\n"
        if dest.exists() else ""
    )
    tried = "\n".join(failures) if failures else "  (no mirrors given)"
    raise DownloadError(
        f"Could not fetch {spec.name} (expected {spec.size} bytes, sha256 {spec.sha256}).\n"
        f"{existing}Tried {len(urls)} URL(s):\n{tried}\n"
        f"Set {MIRRORS_ENV} to other mirrors (URLs or directories), separated by spaces."
    )


STALE_PART_SECONDS = 24 * 3600


def _remove_stale_parts(data_dir, name):
    """Delete the partial downloads of ``name`` (``.NAME.*.part``) a killed process left behind over a day
    ago. A younger one may belong to a download still running in another process; it is left alone."""
    now = time.time()
    for part in Path(data_dir).glob(f".{name}.*.part"):
        try:
            if now - part.stat().st_mtime > STALE_PART_SECONDS:
                part.unlink()
        except FileNotFoundError:
            pass


def _unwritable(spec, data_dir, exc):
    return DownloadError(
        f"Could not fetch {spec.name}: the data directory {data_dir} cannot be written "
        f"({type(exc).__name__}: {exc.strerror or exc}). Choose another with the MNIST_KNN_DATA "
        "environment variable."
    )


def fetch(name, data_dir=DATA_DIR, *, mirrors=None, files=None, timeout=_TIMEOUT):
    """Make sure a data file is in ``data_dir`` with the right SHA-256; download it if not.

    If ``data_dir / name`` exists with the expected size and SHA-256, it is returned
    without any download. Otherwise each mirror is tried in order: the file is streamed
    into a temporary file in ``data_dir``, its size and SHA-256 are checked, and only
    then is it renamed into place (``os.replace``). An existing file with the wrong
    checksum is **not trusted**: it is re-fetched, and replaced only by a download that
    verifies. A failed, cut-off or corrupt download never replaces or deletes a file and
    never leaves a temporary file behind.

    Parameters
    ----------
    name : str
        A key of ``files``, e.g. ``"train-images-idx3-ubyte.gz"``.
    data_dir : str or os.PathLike, default=mnist_knn.paths.DATA_DIR
        Created if missing.
    mirrors : sequence of str or None, default=None
        Base URLs (``http(s)://``, ``file://``) or directories, tried in order.
        ``None`` means ``$MNIST_KNN_MIRRORS`` if set, else the file's default mirrors.
    files : mapping of str to FileSpec or None, default=None
        The known files; ``None`` means :data:`FILES`. Tests pass their own.
    timeout : float, default=30
        Seconds to wait for a connection or for each read.

    Returns
    -------
    path : pathlib.Path
        ``data_dir / name``, verified.

    Raises
    ------
    ValueError
        If ``name`` is not a known file.
    DownloadError
        If no mirror delivered a file with the expected size and SHA-256. The message
        lists each URL tried and why it failed (HTTP error, connection refused,
        truncated: got N of M bytes, checksum mismatch: expected X, got Y, ...).
    """
    return _fetch(name, data_dir, mirrors, files, timeout)[0]


def _check_mirrors(mirrors):
    if isinstance(mirrors, (str, bytes, os.PathLike)):
        raise TypeError(
            f"mirrors must be a sequence of URLs or directories, e.g. [{os.fspath(mirrors)!r}]; got the single "
            f"{type(mirrors).__name__} {os.fspath(mirrors)!r} (which would be read letter by letter)."
        )
    return mirrors


def fetch_all(data_dir=DATA_DIR, *, mirrors=None, files=None, timeout=_TIMEOUT):
    """Fetch and verify every data file (see :func:`fetch`).

    Parameters
    ----------
    data_dir, mirrors, files, timeout
        As in :func:`fetch`.

    Returns
    -------
    paths : dict of str to pathlib.Path
        File name -> verified path, for every file.

    Raises
    ------
    DownloadError
        At the first file that cannot be fetched.
    """
    files = FILES if files is None else files
    return {name: fetch(name, data_dir, mirrors=mirrors, files=files, timeout=timeout) for name in files}


# --------------------------------------------------------------------------- loading

def _check_split(split):
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}; got {split!r}.")


def read_mnist(images_path, labels_path):
    """Read and check a pair of MNIST image and label IDX files.

    Parameters
    ----------
    images_path, labels_path : str or os.PathLike or binary file object
        IDX files (raw or gzipped), as accepted by :func:`mnist_knn.data.idx.read_idx`.

    Returns
    -------
    images : ndarray of shape (n, 28, 28), dtype uint8, read-only
        0 is background, 255 is ink.
    labels : ndarray of shape (n,), dtype uint8, read-only
        Digits 0-9.

    Raises
    ------
    IdxFormatError
        If either file is malformed, has the wrong dtype or shape, the labels are not
        digits, or the two files disagree in the number of items.
    """
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise IdxFormatError(
            f"{source_name(images_path)}: expected uint8 images of shape (n, 28, 28); found {images.dtype.name} of shape {images.shape}."
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise IdxFormatError(
            f"{source_name(labels_path)}: expected uint8 labels of shape (n,); found {labels.dtype.name} of shape {labels.shape}."
        )
    if len(images) != len(labels):
        raise IdxFormatError(
            f"The image and label files disagree: {len(images)} images but {len(labels)} labels "
            f"({source_name(images_path)}, {source_name(labels_path)})."
        )
    if labels.size and labels.max() > 9:
        raise IdxFormatError(f"Labels must be digits 0-9; found a label {labels.max()} ({source_name(labels_path)}).")
    return images, labels


@functools.lru_cache(maxsize=None)
def _load_mnist_cached(split, data_dir, files, mirrors):
    """Fetch and read one split; cached, so the arrays it returns are read-only."""
    files = None if files is None else dict(files)
    images_name, labels_name = MNIST_FILES[split]
    return read_mnist(
        fetch(images_name, data_dir, mirrors=mirrors, files=files),
        fetch(labels_name, data_dir, mirrors=mirrors, files=files),
    )


def _cache_key(data_dir, files, mirrors):
    """Normalise the optional arguments into hashable, canonical cache-key parts."""
    data_dir = Path(DATA_DIR if data_dir is None else data_dir).resolve()
    files = None if files is None else tuple(sorted(files.items()))
    mirrors = None if mirrors is None else tuple(_check_mirrors(mirrors))
    return data_dir, files, mirrors


def load_mnist(split, data_dir=None, *, files=None, mirrors=None):
    """Load the MNIST training or test set, fetching the files first if needed.

    Parameters
    ----------
    split : {"train", "test"}
        ``"train"``: 60,000 images; ``"test"``: 10,000 images.
    data_dir : str or os.PathLike or None, default=None
        Where the files live; ``None`` means :data:`mnist_knn.paths.DATA_DIR`.
    files, mirrors
        As in :func:`fetch` (for tests).

    Returns
    -------
    images : ndarray of shape (n, 28, 28), dtype uint8
        0 is background, 255 is ink. Cast before arithmetic: uint8 wraps around.
    labels : ndarray of shape (n,), dtype uint8
        Digits 0-9.

    Raises
    ------
    ValueError
        If ``split`` is not ``"train"`` or ``"test"``.
    DownloadError
        If a file is missing or corrupt and no mirror can supply it.
    IdxFormatError
        If a file has an unexpected dtype or shape, or images and labels differ in count.

    Notes
    -----
    The arrays are cached in memory for the life of the process (the first call per
    split decodes the ``.gz`` files, later calls return the same arrays at once). They
    are **read-only** so that no caller can corrupt the cache; use ``.copy()`` or
    ``.astype(...)`` to get a writeable array.
    """
    _check_split(split)
    return _load_mnist_cached(split, *_cache_key(data_dir, files, mirrors))


def read_qmnist_metadata(path):
    """Read a QMNIST extended-labels file into a DataFrame (all rows, no alignment).

    Parameters
    ----------
    path : str or os.PathLike or binary file object
        A ``qmnist-*-labels-idx2-int`` IDX file (raw or gzipped): int32, shape (n, 8).

    Returns
    -------
    metadata : pandas.DataFrame of shape (n, 7)
        Columns :data:`QMNIST_COLUMNS` (all int32) and ``source`` (str); see
        :func:`load_qmnist_metadata`.

    Raises
    ------
    IdxFormatError
        If the file is malformed, is not int32 of shape (n, 8), or holds an HSF series
        other than 0-4.
    """
    import pandas as pd  # imported here: `python -m mnist_knn.data.datasets` does not need it

    table = read_idx(path)
    if table.dtype != np.int32 or table.ndim != 2 or table.shape[1] != 8:
        raise IdxFormatError(
            f"{source_name(path)}: expected QMNIST extended labels, int32 of shape (n, 8); "
            f"found {table.dtype.name} of shape {table.shape}."
        )
    metadata = pd.DataFrame({name: table[:, i] for i, name in enumerate(QMNIST_COLUMNS)})
    series = metadata["nist_series"]
    unknown = sorted(set(series.unique()) - set(_SOURCE_OF_SERIES))
    if unknown:
        raise IdxFormatError(f"{source_name(path)}: expected NIST HSF series 0-4 in column 1; found {unknown}.")
    metadata["source"] = series.map(_SOURCE_OF_SERIES).astype(str)
    return metadata


def load_qmnist_metadata(split, data_dir=None, *, files=None, mirrors=None):
    """Load the NIST provenance of every MNIST digit, aligned row for row with :func:`load_mnist`.

    QMNIST (Yadav & Bottou, 2019) rebuilt MNIST from NIST Special Database 19 and traced
    each digit to its writer. Row ``i`` describes ``load_mnist(split)[0][i]``: for
    ``"train"`` all 60,000 rows of ``qmnist-train-labels-idx2-int``; for ``"test"`` the
    first 10,000 rows of ``qmnist-test-labels-idx2-int``, which rebuild the MNIST test set
    in order (the other 50,000 are the "lost" MNIST test digits).

    Parameters
    ----------
    split : {"train", "test"}
    data_dir, files, mirrors
        As in :func:`load_mnist`.

    Returns
    -------
    metadata : pandas.DataFrame of shape (n, 7), index 0..n-1
        ``label``
            Digit 0-9 (QMNIST column 0); checked equal to the MNIST label.
        ``nist_series``
            NIST HSF series, 0, 1 or 4 (column 1); 1 occurs only in the 50,000 lost
            test digits, so MNIST itself has 0 and 4.
        ``writer_id``
            NIST writer ID (column 2): 0-2099 for series 0-3, 2100-2599 for series 4.
        ``writer_digit_index``
            Index of the digit among this writer's digits (column 3).
        ``nist_class``
            NIST class code (column 4): the ASCII code of the digit in hex, read as a
            decimal number, i.e. 30 for "0" ... 39 for "9" (always ``label + 30``).
        ``nist_index``
            Global index of the digit in NIST SD-19 / the QMNIST ``xnist`` files (column 5).
        ``source``
            ``"SD-3"`` for series 0-3, ``"SD-1"`` for series 4.

    Raises
    ------
    ValueError
        If ``split`` is unknown, the row counts do not fit, or the QMNIST labels differ
        from the MNIST labels anywhere.

    Notes
    -----
    **SD-3 and SD-1.** MNIST's documentation says it mixes NIST's *Special Database 3*
    (NIST's training set, written by Census Bureau employees) and *Special Database 1*
    (NIST's test set, written by high-school students). In SD-19 these are the HSF
    series 0-3 (writers 0-2099) and series 4 (writers 2100-2599) respectively, as the
    QMNIST README says; ``source`` uses MNIST's names.

    **What the data say.** In the training set, 30,950 digits are SD-3 (series 0,
    writers 0-288) and 29,050 are SD-1 (writers 2100-2349). The test set is split in
    halves, but in the *opposite* order to LeCun's description ("The first 5000 examples
    of the test set are taken from the original NIST training set. The last 5000 are
    taken from the original NIST test set."): rows 0-5000 are SD-1 (series 4, 5,001
    digits) and rows 5001-9999 are SD-3 (series 0, 4,999 digits). These counts are
    pinned by ``tests/test_datasets.py``; in notebooks, compute such facts from this
    table rather than quoting either description.
    """
    _check_split(split)
    data_dir, files_key, mirrors_key = _cache_key(data_dir, files, mirrors)
    _, labels = _load_mnist_cached(split, data_dir, files_key, mirrors_key)
    path = fetch(QMNIST_FILES[split], data_dir, mirrors=mirrors_key, files=files)
    metadata = read_qmnist_metadata(path)
    n = len(labels)
    if split == "train" and len(metadata) != n:
        raise ValueError(f"{path}: has {len(metadata)} rows; expected {n}, one per MNIST training image.")
    if len(metadata) < n:
        raise ValueError(f"{path}: has {len(metadata)} rows; expected at least {n} (the MNIST test set).")
    metadata = metadata.iloc[:n].reset_index(drop=True)
    mismatch = np.flatnonzero(metadata["label"].to_numpy() != labels)
    if mismatch.size:
        i = mismatch[0]
        raise ValueError(
            f"QMNIST labels differ from the MNIST {split} labels at {mismatch.size} of {n} rows "
            f"(first at row {i}: QMNIST {metadata['label'].iloc[i]}, MNIST {labels[i]}); "
            f"the files do not belong together."
        )
    metadata.index.name = "mnist_index"
    return metadata


# --------------------------------------------------------------------------- command line

def main(argv=None):
    """Fetch and verify every file, printing one line per file; return the exit code.

    Parameters
    ----------
    argv : list of str or None
        Optional data directory as the only argument (default :data:`DATA_DIR`).
    """
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) > 1 or any(arg.startswith("-") for arg in argv):
        print("usage: python -m mnist_knn.data.datasets [DATA_DIR]", file=sys.stderr)
        return 2
    data_dir = Path(argv[0]) if argv else DATA_DIR
    status = 0
    for name in FILES:
        try:
            _, url = _fetch(name, data_dir, None, None, _TIMEOUT)
        except (DownloadError, ValueError, OSError) as exc:
            print(f"FAILED {name}: {exc}", file=sys.stderr)
            status = 1
        else:
            print(f"ok {name} (sha256 verified)" if url is None else f"ok {name} (downloaded from {url}; sha256 verified)")
    return status


if __name__ == "__main__":
    sys.exit(main())
