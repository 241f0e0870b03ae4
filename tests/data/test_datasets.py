"""Tests for mnist_knn.data.datasets: the downloader against a real HTTP server on 127.0.0.1, and the loaders.

No test touches the internet. The last section loads the real MNIST files only if they are
already in DATA_DIR (``make data``), and is skipped otherwise.
"""

import hashlib
import os
import time
from pathlib import Path
import http.server
import socket
import threading

import numpy as np
import pytest

from mnist_knn.data import datasets
from mnist_knn.data.datasets import (
    FILES,
    MIRRORS_ENV,
    DownloadError,
    FileSpec,
    fetch,
    fetch_all,
    load_mnist,
    load_qmnist_metadata,
    mirrors_from_env,
    sha256_of,
)
from mnist_knn.data.idx import write_idx
from mnist_knn.paths import DATA_DIR

NAME = "digits.gz"
CONTENT = bytes(range(256)) * 40  # 10,240 bytes
SPEC = FileSpec(NAME, hashlib.sha256(CONTENT).hexdigest(), len(CONTENT))
SPECS = {NAME: SPEC}


# --------------------------------------------------------------------------- a real HTTP server

class _Handler(http.server.BaseHTTPRequestHandler):
    """Serve ``server.files``; cut a response off half-way for names in ``server.cut``."""

    def do_GET(self):
        server = self.server
        server.requests.append(self.path)
        body = server.files.get(self.path.lstrip("/"))
        if body is None:
            self.send_error(404)
            return
        name = self.path.lstrip("/")
        self.send_response(200)
        if name not in server.no_length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if name in server.cut or name in server.no_length:
            self.wfile.write(body[: len(body) // 2])  # then the connection closes
        else:
            self.wfile.write(body)

    def log_message(self, *args):
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files, self.cut, self.no_length, self.requests = {}, set(), set(), []

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}/"


@pytest.fixture
def server():
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join()


@pytest.fixture
def dead_url():
    """A URL on 127.0.0.1 where nothing listens (a port that was just closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture(autouse=True)
def no_mirrors_env(monkeypatch):
    """Tests must not depend on the caller's MNIST_KNN_MIRRORS."""
    monkeypatch.delenv(MIRRORS_ENV, raising=False)


def _listing(directory):
    """Return {file name: bytes} of everything in ``directory`` (temp files included)."""
    return {p.name: p.read_bytes() for p in directory.iterdir()}


# --------------------------------------------------------------------------- fetch over HTTP

def test_fetch_downloads_and_verifies_a_good_file(server, tmp_path):
    server.files[NAME] = CONTENT
    path = fetch(NAME, tmp_path, mirrors=[server.url], files=SPECS, timeout=5)
    assert path == tmp_path / NAME
    assert _listing(tmp_path) == {NAME: CONTENT}
    assert server.requests == [f"/{NAME}"]


def test_fetch_creates_the_data_dir(server, tmp_path):
    server.files[NAME] = CONTENT
    path = fetch(NAME, tmp_path / "a" / "b", mirrors=[server.url], files=SPECS, timeout=5)
    assert path.read_bytes() == CONTENT


def test_second_fetch_does_no_download(server, tmp_path):
    server.files[NAME] = CONTENT
    fetch(NAME, tmp_path, mirrors=[server.url], files=SPECS, timeout=5)
    mtime = (tmp_path / NAME).stat().st_mtime_ns
    fetch(NAME, tmp_path, mirrors=[server.url], files=SPECS, timeout=5)
    assert len(server.requests) == 1
    assert (tmp_path / NAME).stat().st_mtime_ns == mtime


def test_corrupt_download_raises_naming_expected_and_actual_checksum(server, tmp_path):
    corrupt = CONTENT[:-1] + b"\x00"
    server.files[NAME] = corrupt
    with pytest.raises(DownloadError) as excinfo:
        fetch(NAME, tmp_path, mirrors=[server.url], files=SPECS, timeout=5)
    message = str(excinfo.value)
    assert f"{server.url}{NAME}: checksum mismatch: expected sha256 {SPEC.sha256}, " in message
    assert f"got {hashlib.sha256(corrupt).hexdigest()}" in message
    assert _listing(tmp_path) == {}


def test_corrupt_download_leaves_an_existing_file_untouched(server, tmp_path):
    # The file in data_dir was good for an older spec; the new spec does not match it, so it is
    # re-fetched, and the corrupt download must not replace it.
    old = b"previous version of the file"
    (tmp_path / NAME).write_bytes(old)
    server.files[NAME] = CONTENT[:-1] + b"\x00"
    with pytest.raises(DownloadError, match="has the wrong checksum; it was left in place but is not trusted"):
        fetch(NAME, tmp_path, mirrors=[server.url], files=SPECS, timeout=5)
    assert _listing(tmp_path) == {NAME: old}


def test_existing_file_with_wrong_checksum_is_replaced_by_a_verified_download(server, tmp_path):
    (tmp_path / NAME).write_bytes(b"corrupt")
    server.files[NAME] = CONTENT
    fetch(NAME, tmp_path, mirrors=[server.url], files=SPECS, timeout=5)
    assert _listing(tmp_path) == {NAME: CONTENT}


def test_dead_mirror_then_good_mirror_succeeds(server, dead_url, tmp_path):
    server.files[NAME] = CONTENT
    path = fetch(NAME, tmp_path, mirrors=[dead_url, server.url], files=SPECS, timeout=5)
    assert path.read_bytes() == CONTENT


def test_cut_off_transfer_raises_and_leaves_no_temp_file(server, tmp_path):
    old = b"previous version of the file"
    (tmp_path / NAME).write_bytes(old)
    server.files[NAME] = CONTENT
    server.cut.add(NAME)
    half = len(CONTENT) // 2
    with pytest.raises(DownloadError, match=f"truncated: got {half} of {len(CONTENT)} bytes"):
        fetch(NAME, tmp_path, mirrors=[server.url], files=SPECS, timeout=5)
    assert _listing(tmp_path) == {NAME: old}


def test_short_transfer_without_content_length_raises(server, tmp_path):
    server.files[NAME] = CONTENT
    server.no_length.add(NAME)
    with pytest.raises(DownloadError, match=f"truncated: got {len(CONTENT) // 2} of {len(CONTENT)} bytes"):
        fetch(NAME, tmp_path, mirrors=[server.url], files=SPECS, timeout=5)
    assert _listing(tmp_path) == {}


def test_every_failed_mirror_is_listed_with_its_reason(server, dead_url, tmp_path):
    with pytest.raises(DownloadError) as excinfo:
        fetch(NAME, tmp_path, mirrors=[dead_url, server.url], files=SPECS, timeout=5)
    message = str(excinfo.value)
    assert f"Could not fetch {NAME} (expected {SPEC.size} bytes, sha256 {SPEC.sha256})" in message
    assert "Tried 2 URL(s)" in message
    assert f"{dead_url}{NAME}: Connection refused" in message
    assert f"{server.url}{NAME}: HTTP error 404" in message


def test_fetch_unknown_name_raises():
    with pytest.raises(ValueError, match="Unknown data file 'mnist.npz'; expected one of: train-images-idx3"):
        fetch("mnist.npz")


# --------------------------------------------------------------------------- local mirrors and MNIST_KNN_MIRRORS

def test_file_url_mirror_works(tmp_path):
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / NAME).write_bytes(CONTENT)
    path = fetch(NAME, tmp_path / "data", mirrors=[(tmp_path / "mirror").as_uri() + "/"], files=SPECS)
    assert path.read_bytes() == CONTENT


def test_plain_directory_mirrors_are_each_tried_per_file(tmp_path):
    other = FileSpec("other.gz", hashlib.sha256(b"other").hexdigest(), 5)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / NAME).write_bytes(CONTENT)  # like shared/data/mnist: only some files
    (tmp_path / "b" / "other.gz").write_bytes(b"other")  # like shared/data/qmnist
    files = {NAME: SPEC, "other.gz": other}
    paths = fetch_all(tmp_path / "data", mirrors=[str(tmp_path / "a"), str(tmp_path / "b")], files=files)
    assert {name: p.read_bytes() for name, p in paths.items()} == {NAME: CONTENT, "other.gz": b"other"}


def test_missing_file_in_directory_mirror_is_reported(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DownloadError, match=f"empty/{NAME}: No such file or directory"):
        fetch(NAME, tmp_path / "data", mirrors=[str(tmp_path / "empty")], files=SPECS)


def test_mirrors_env_is_split_on_whitespace():
    value = "  /data/mnist\thttps://example.org/mnist/\n file:///data/qmnist  "
    assert mirrors_from_env(value) == ("/data/mnist", "https://example.org/mnist/", "file:///data/qmnist")


def test_mirrors_env_unset_or_blank_means_defaults(monkeypatch):
    assert mirrors_from_env() is None
    monkeypatch.setenv(MIRRORS_ENV, "   ")
    assert mirrors_from_env() is None


def test_mirrors_env_rejects_other_schemes():
    with pytest.raises(ValueError, match=r"entry 'ftp://example\.org/' has scheme 'ftp'; expected an http\(s\)://"):
        mirrors_from_env("/data ftp://example.org/")


def test_mirrors_env_replaces_default_mirrors(dead_url, monkeypatch, tmp_path):
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / NAME).write_bytes(CONTENT)
    files = {NAME: FileSpec(NAME, SPEC.sha256, SPEC.size, mirrors=(dead_url,))}
    with pytest.raises(DownloadError, match="Connection refused"):
        fetch(NAME, tmp_path / "data", files=files, timeout=5)
    monkeypatch.setenv(MIRRORS_ENV, f"{tmp_path / 'nowhere'} {tmp_path / 'mirror'}")
    assert fetch(NAME, tmp_path / "data", files=files).read_bytes() == CONTENT


def test_main_prints_one_line_per_file_and_does_no_work_the_second_time(monkeypatch, tmp_path, capsys):
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / NAME).write_bytes(CONTENT)
    monkeypatch.setattr(datasets, "FILES", SPECS)
    monkeypatch.setenv(MIRRORS_ENV, str(tmp_path / "mirror"))
    assert datasets.main([str(tmp_path / "data")]) == 0
    assert capsys.readouterr().out == f"ok {NAME} (downloaded from {(tmp_path / 'mirror' / NAME).as_uri()}; sha256 verified)\n"
    (tmp_path / "mirror" / NAME).unlink()
    assert datasets.main([str(tmp_path / "data")]) == 0
    assert capsys.readouterr().out == f"ok {NAME} (sha256 verified)\n"


def test_main_fails_with_the_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(datasets, "FILES", SPECS)
    monkeypatch.setenv(MIRRORS_ENV, str(tmp_path / "empty"))
    assert datasets.main([str(tmp_path / "data")]) == 1
    assert capsys.readouterr().err.startswith(f"FAILED {NAME}: Could not fetch {NAME}")


# --------------------------------------------------------------------------- loaders on tiny files

def _tiny_dataset(directory, n_train=4, n_test=3, qmnist_test_rows=5, wrong_qmnist_train_row=None):
    """Write tiny MNIST + QMNIST files into ``directory``; return (FileSpecs, train labels, test labels)."""
    rng = np.random.default_rng(0)
    labels = {"train": rng.integers(0, 10, n_train).astype(np.uint8), "test": rng.integers(0, 10, n_test).astype(np.uint8)}
    for split, (images_name, labels_name) in datasets.MNIST_FILES.items():
        write_idx(directory / images_name, rng.integers(0, 256, (len(labels[split]), 28, 28)).astype(np.uint8))
        write_idx(directory / labels_name, labels[split])
    for split, n_rows in (("train", n_train), ("test", qmnist_test_rows)):
        table = np.zeros((n_rows, 8), dtype=np.int32)
        table[: len(labels[split]), 0] = labels[split]
        table[:, 1] = np.arange(n_rows) % 2 * 4  # series 0, 4, 0, 4, ...
        table[:, 4] = table[:, 0] + 30
        if split == "train" and wrong_qmnist_train_row is not None:
            table[wrong_qmnist_train_row, 0] = (table[wrong_qmnist_train_row, 0] + 1) % 10
        write_idx(directory / datasets.QMNIST_FILES[split], table)
    files = {p.name: FileSpec(p.name, sha256_of(p), p.stat().st_size) for p in directory.iterdir()}
    return files, labels["train"], labels["test"]


def test_load_mnist_rejects_unknown_split():
    with pytest.raises(ValueError, match=r"split must be one of \('train', 'test'\); got 'valid'"):
        load_mnist("valid")


def test_load_mnist_returns_cached_read_only_arrays(tmp_path):
    files, y_train, _ = _tiny_dataset(tmp_path)
    images, labels = load_mnist("train", tmp_path, files=files, mirrors=())
    assert images.shape == (4, 28, 28) and images.dtype == np.uint8
    np.testing.assert_array_equal(labels, y_train)
    assert not images.flags.writeable and not labels.flags.writeable
    again = load_mnist("train", str(tmp_path), files=files, mirrors=())
    assert again[0] is images


def test_qmnist_metadata_is_aligned_with_mnist(tmp_path):
    files, y_train, y_test = _tiny_dataset(tmp_path, n_test=3, qmnist_test_rows=5)
    train = load_qmnist_metadata("train", tmp_path, files=files, mirrors=())
    test = load_qmnist_metadata("test", tmp_path, files=files, mirrors=())
    assert list(test.columns) == [*datasets.QMNIST_COLUMNS, "source"]
    assert len(train) == 4 and len(test) == 3  # the first 3 of 5 QMNIST test rows
    np.testing.assert_array_equal(train["label"], y_train)
    np.testing.assert_array_equal(test["label"], y_test)
    assert test["source"].tolist() == ["SD-3", "SD-1", "SD-3"]


def test_qmnist_label_mismatch_raises(tmp_path):
    files, _, _ = _tiny_dataset(tmp_path, wrong_qmnist_train_row=2)
    with pytest.raises(ValueError, match="QMNIST labels differ from the MNIST train labels at 1 of 4 rows .first at row 2"):
        load_qmnist_metadata("train", tmp_path, files=files, mirrors=())


# --------------------------------------------------------------------------- the real data, if present

def _real_data_present():
    return all((DATA_DIR / name).is_file() and sha256_of(DATA_DIR / name) == spec.sha256 for name, spec in FILES.items())


real_data = pytest.mark.skipif(
    not _real_data_present(), reason=f"the MNIST/QMNIST files are not (verified) in {DATA_DIR}; run `make data`"
)


@real_data
@pytest.mark.parametrize(("split", "n"), [("train", 60_000), ("test", 10_000)])
def test_real_mnist_shapes_and_dtypes(split, n):
    images, labels = load_mnist(split)
    assert images.shape == (n, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (n,) and labels.dtype == np.uint8
    assert set(np.unique(labels)) == set(range(10))
    assert not images.flags.writeable


@real_data
@pytest.mark.parametrize("split", ["train", "test"])
def test_real_qmnist_metadata_is_aligned(split):
    metadata = load_qmnist_metadata(split)
    _, labels = load_mnist(split)
    assert len(metadata) == len(labels)
    np.testing.assert_array_equal(metadata["label"].to_numpy(), labels)
    assert (metadata["nist_class"] == metadata["label"] + 30).all()
    sd1 = metadata["source"] == "SD-1"
    assert (metadata.loc[sd1, "writer_id"] >= 2100).all() and (metadata.loc[~sd1, "writer_id"] < 2100).all()


@real_data
def test_real_provenance_counts_match_the_docstring():
    train, test = load_qmnist_metadata("train"), load_qmnist_metadata("test")
    assert train["source"].value_counts().to_dict() == {"SD-3": 30_950, "SD-1": 29_050}
    assert (test["source"].iloc[:5001] == "SD-1").all() and (test["source"].iloc[5001:] == "SD-3").all()


# --------------------------------------------------------------------------- bounded downloads


class _EndlessHandler(http.server.BaseHTTPRequestHandler):
    """A mirror that never stops sending (no Content-Length), or announces far too many bytes."""

    def do_GET(self):
        self.send_response(200)
        if self.path.endswith("announced"):
            self.send_header("Content-Length", str(10**12))
        self.end_headers()
        chunk = b"\0" * 65536
        try:
            for _ in range(100_000):  # 6.5 GB at most, were it not stopped: bounded all the same
                self.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def endless_server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EndlessHandler)
    srv.daemon_threads = True
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/"
    srv.shutdown()
    srv.server_close()


def test_a_mirror_that_never_stops_sending_is_cut_off_past_the_expected_size(endless_server, tmp_path):
    with pytest.raises(DownloadError, match=f"more than {SPEC.size} bytes arrived"):
        fetch(NAME, tmp_path, mirrors=[endless_server], files=SPECS, timeout=5)
    assert _listing(tmp_path) == {}  # the partial download is gone


def test_a_mirror_announcing_too_many_bytes_is_refused_before_reading(endless_server, tmp_path):
    spec = FileSpec("announced", SPEC.sha256, SPEC.size)
    with pytest.raises(DownloadError, match="announces 1000000000000 bytes"):
        fetch("announced", tmp_path, mirrors=[endless_server], files={"announced": spec}, timeout=5)
    assert _listing(tmp_path) == {}


def test_stale_partial_downloads_are_removed_and_fresh_ones_kept(server, tmp_path):
    stale = tmp_path / f".{NAME}.abc123.part"
    fresh = tmp_path / f".{NAME}.def456.part"
    other = tmp_path / ".other.gz.xyz.part"
    for path in (stale, fresh, other):
        path.write_bytes(b"half a download")
    old = time.time() - 2 * 24 * 3600
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    server.files[NAME] = CONTENT
    fetch(NAME, tmp_path, mirrors=[server.url], files=SPECS, timeout=5)
    assert not stale.exists()  # left by a killed process two days ago
    assert fresh.exists()  # may belong to a download running now
    assert other.exists()  # another file's: cleaned when that file is fetched


def test_an_unwritable_data_directory_gives_a_download_error(server, tmp_path):
    blocker = tmp_path / "data"
    blocker.write_text("a file where the data directory should be")
    server.files[NAME] = CONTENT
    with pytest.raises(DownloadError, match="the data directory .* cannot be written"):
        fetch(NAME, blocker / "mnist", mirrors=[server.url], files=SPECS, timeout=5)


def test_main_reports_an_unwritable_data_directory_without_a_traceback(tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "data"
    blocker.write_text("")
    monkeypatch.setattr(datasets, "FILES", SPECS)
    assert datasets.main([str(blocker / "mnist")]) == 1
    err = capsys.readouterr().err
    assert "FAILED" in err and "cannot be written" in err and "Traceback" not in err


@pytest.mark.parametrize("mirrors", ["some/dir", Path("some/dir")])
def test_a_single_mirror_string_is_refused_not_read_letter_by_letter(tmp_path, mirrors):
    with pytest.raises(TypeError, match="mirrors must be a sequence"):
        fetch(NAME, tmp_path, mirrors=mirrors, files=SPECS, timeout=5)


def test_a_read_only_data_directory_gives_a_download_error(server, tmp_path, monkeypatch):
    # Tests run as root here, which ignores permission bits: the read-only directory is simulated where
    # the temporary file is created, as the operating system would refuse it.
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    server.files[NAME] = CONTENT
    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(DownloadError, match="cannot be written .*PermissionError: Permission denied"):
        fetch(NAME, tmp_path, mirrors=[server.url], files=SPECS, timeout=5)
    assert _listing(tmp_path) == {}
