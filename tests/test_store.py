"""Tests for mnist_knn.store (atomic writes, permissions, array caches) and for what the caches built on it
promise: the search cache, the deformation-distance cache and results.json."""

import functools
import json
import multiprocessing
import os
import stat

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from mnist_knn.engine import search
from mnist_knn.engine.idm import idm_distance
from mnist_knn.engine.rerank import cached_distance, function_identity
from mnist_knn.engine.search import cache_key, kneighbors
from mnist_knn.engine.shift import shift_distance
from mnist_knn.report.results import load_results, record_result
from mnist_knn.store import cached_arrays, digest, file_mode, write_atomically


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


# ------------------------------------------------------------------------------ write_atomically


def test_written_files_get_ordinary_permissions_not_mkstemps_private_ones(tmp_path, umask_022):
    path = write_atomically(tmp_path / "a.bin", b"abc")
    assert path.read_bytes() == b"abc"
    assert mode(path) == 0o644 == file_mode()


def test_permissions_follow_the_umask(tmp_path):
    old = os.umask(0o002)  # a group-shared cache directory
    try:
        assert mode(write_atomically(tmp_path / "a.bin", b"abc")) == 0o664
    finally:
        os.umask(old)


def test_a_failed_write_leaves_neither_a_temporary_file_nor_a_changed_target(tmp_path):
    target = write_atomically(tmp_path / "a.bin", b"old")

    def fail(f):
        f.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(target, fail)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


def test_skip_unchanged_keeps_the_file_untouched(tmp_path):
    target = write_atomically(tmp_path / "a.txt", "same")
    os.utime(target, (1, 1))
    write_atomically(target, "same", skip_unchanged=True)
    assert target.stat().st_mtime == 1
    write_atomically(target, "new", skip_unchanged=True)
    assert target.read_text() == "new"


def test_digest_depends_on_dtype_shape_and_bytes():
    a = np.arange(6, dtype=np.uint8)
    assert digest(a) == digest(a.copy())
    assert len({digest(a), digest(a.reshape(2, 3)), digest(a.astype(np.int16)), digest(a + 1)}) == 4


# ------------------------------------------------------------------------------ cached_arrays


def test_cached_arrays_computes_once(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"x": np.arange(3)}

    for _ in range(2):
        assert_array_equal(cached_arrays(tmp_path / "c.npz", compute)["x"], [0, 1, 2])
    assert len(calls) == 1


def test_cached_arrays_recomputes_what_accept_rejects(tmp_path):
    path = tmp_path / "c.npz"
    np.savez(path, x=np.array([-1]))
    got = cached_arrays(path, lambda: {"x": np.array([7])}, accept=lambda a: a if a["x"][0] >= 0 else None)
    assert_array_equal(got["x"], [7])
    with np.load(path) as f:
        assert_array_equal(f["x"], [7])


def test_a_cache_that_cannot_be_written_still_returns_the_result_with_a_warning(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the cache directory should be")
    with pytest.warns(RuntimeWarning, match="could not write the cache file .*returned but not cached"):
        got = cached_arrays(blocker / "c.npz", lambda: {"x": np.arange(2)})
    assert_array_equal(got["x"], [0, 1])


# ------------------------------------------------------------------------------ the search cache


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (50, 16), dtype=np.uint8), rng.integers(0, 256, (6, 16), dtype=np.uint8)


def test_a_search_whose_cache_cannot_be_written_is_returned(tmp_path, data):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.warns(RuntimeWarning, match="could not write the cache file"):
        d, i = kneighbors(*data, 4, cache=blocker / "cache")
    d0, i0 = kneighbors(*data, 4)
    assert_array_equal(i, i0)
    assert_array_equal(d, d0)


def test_search_cache_files_are_readable_by_everyone(tmp_path, data, umask_022):
    kneighbors(*data, 4, cache=tmp_path)
    (path,) = tmp_path.iterdir()
    assert mode(path) == 0o644


@pytest.mark.parametrize(
    "forge",
    [
        lambda d, i: (d, -i),  # negative indices
        lambda d, i: (d, i + 1000),  # indices past the training set
        lambda d, i: (np.full_like(d, np.nan), i),  # NaN distances
        lambda d, i: (d.astype(np.float32), i),  # wrong dtype
        lambda d, i: (-d - 1, i),  # negative distances
        lambda d, i: (d, i.astype(np.float64)),  # float indices
    ],
    ids=["negative indices", "indices out of range", "NaN", "float32 distances", "negative distances", "float indices"],
)
def test_a_cache_file_of_the_right_shape_but_foreign_content_is_recomputed(tmp_path, data, forge):
    fresh = kneighbors(*data, 4)
    path = tmp_path / (cache_key(*data) + ".npz")
    d, i = forge(*fresh)
    np.savez(path, distances=d, indices=i)
    got = kneighbors(*data, 4, cache=tmp_path)
    assert_array_equal(got[1], fresh[1])
    assert_array_equal(got[0], fresh[0])


# ------------------------------------------------------------------------------ the deformation cache


@pytest.fixture
def images():
    rng = np.random.default_rng(1)
    return rng.random((8, 6, 6)), rng.random((2, 6, 6)), np.array([[0, 1, 2], [3, 4, 5]])


def test_partials_of_one_function_get_their_own_cache_entries(tmp_path, images):
    one = cached_distance(functools.partial(shift_distance, max_shift=0), *images, cache=tmp_path)
    two = cached_distance(functools.partial(shift_distance, max_shift=1), *images, cache=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 2
    assert_array_equal(one, shift_distance(*images, max_shift=0))
    assert_array_equal(two, shift_distance(*images, max_shift=1))
    assert not np.array_equal(one, two)


@pytest.mark.parametrize(
    "func",
    [lambda a, b, c: np.zeros(c.shape), functools.partial(lambda a, b, c: np.zeros(c.shape))],
    ids=["lambda", "partial of a lambda"],
)
def test_functions_without_a_stable_name_are_refused_for_caching(tmp_path, images, func):
    with pytest.raises(ValueError, match="cannot cache distances of .*pass cache=False"):
        cached_distance(func, *images, cache=tmp_path)
    assert cached_distance(func, *images, cache=False).shape == (2, 3)


def test_local_functions_and_unstable_parameters_are_refused(tmp_path, images):
    def local(a, b, c, **kw):
        return np.zeros(c.shape)

    with pytest.raises(ValueError, match="cannot cache distances"):
        cached_distance(local, *images, cache=tmp_path)
    with pytest.raises(ValueError, match="repr shows a memory address"):
        cached_distance(shift_distance, *images, cache=tmp_path, p=object())


def test_function_identity_names_module_and_function():
    assert function_identity(idm_distance) == "mnist_knn.engine.idm.idm_distance"
    assert function_identity(functools.partial(idm_distance, warp=2)) != function_identity(
        functools.partial(idm_distance, warp=1)
    )


def test_a_deformation_cache_file_with_nan_is_recomputed(tmp_path, images):
    expected = cached_distance(shift_distance, *images, cache=tmp_path)
    (path,) = tmp_path.glob("*.npz")
    np.savez(path, distances=np.full((2, 3), np.nan))
    assert_array_equal(cached_distance(shift_distance, *images, cache=tmp_path), expected)


# ------------------------------------------------------------------------------ results.json

ENTRY = dict(notebook="01-x.ipynb", description="d", error=0.1, ci_low=0.05, ci_high=0.15)


def _record_many(path, prefix, n):
    for j in range(n):
        record_result(f"{prefix}-{j}", path=path, **ENTRY)


def test_two_processes_recording_at_once_lose_nothing(tmp_path):
    path = tmp_path / "results.json"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_record_many, args=(path, name, 40)) for name in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert len(load_results(path)) == 80
    assert not list(tmp_path.glob("*.tmp"))


def test_nan_is_refused_before_anything_is_written(tmp_path):
    path = tmp_path / "results.json"
    with pytest.raises(ValueError, match="error must be a fraction"):
        record_result("x", path=path, **{**ENTRY, "error": float("nan")})
    with pytest.raises(ValueError, match="NaN or infinity"):
        record_result("x", path=path, k=float("nan"), **ENTRY)
    assert not path.exists()


def test_a_corrupt_results_file_is_named_in_the_error(tmp_path):
    path = tmp_path / "results.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match=f"{path} is not valid JSON"):
        load_results(path)
    with pytest.raises(ValueError, match="is not valid JSON"):
        record_result("x", path=path, **ENTRY)
    assert path.read_text() == "{not json"  # nothing destroyed


def test_results_file_is_sorted_json_readable_by_everyone(tmp_path, umask_022):
    path = tmp_path / "results.json"
    record_result("b", path=path, **ENTRY)
    record_result("a", path=path, **ENTRY)
    assert list(json.loads(path.read_text())) == ["a", "b"]
    assert mode(path) == 0o644


def test_one_configuration_has_one_number_across_notebooks(tmp_path):
    path = tmp_path / "results.json"
    record_result("l2", path=path, k=3, **ENTRY)
    record_result("l2", path=path, k=3, **{**ENTRY, "error": 0.11})  # the same notebook, re-run: replaced
    assert load_results(path)["l2"]["error"] == 0.11
    other = {**ENTRY, "notebook": "02-y.ipynb"}
    with pytest.raises(ValueError, match="one configuration must have one number"):
        record_result("l2", path=path, k=3, **other)  # another notebook, same key, another number
    with pytest.raises(ValueError, match="same configuration"):
        record_result("l2-again", path=path, k=3, **other)  # same configuration under another key
    record_result("l2-again", path=path, k=3, **{**other, "error": 0.11})  # the same number is fine
    record_result("l2-k5", path=path, k=5, **other)  # another configuration is fine
    assert sorted(load_results(path)) == ["l2", "l2-again", "l2-k5"]


def test_a_result_quoted_by_another_notebook_keeps_its_owner(tmp_path):
    path = tmp_path / "results.json"
    record_result("l2", path=path, k=3, selection="held-out writers", **ENTRY)
    other = {**ENTRY, "notebook": "04-y.ipynb", "description": "quoted"}
    for _ in range(2):  # quoting twice changes nothing
        record_result("l2", path=path, k=3, selection="another protocol", **other)
    entry = load_results(path)["l2"]
    assert entry["notebook"] == ENTRY["notebook"] and entry["description"] == ENTRY["description"]
    assert entry["also_in"] == ["04-y.ipynb"] and entry["selection"] == "held-out writers"
    before = path.read_bytes()
    record_result("l2", path=path, k=3, selection="held-out writers", **ENTRY)  # the owner re-run
    assert path.read_bytes() == before


def test_the_first_notebook_in_reading_order_owns_a_shared_result_whatever_ran_first(tmp_path):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    owner = {**ENTRY, "notebook": "02-x.ipynb"}
    quote = {**ENTRY, "notebook": "04-y.ipynb", "description": "quoted"}
    record_result("l2", path=first, k=3, selection="02's way", **owner)
    record_result("l2", path=first, k=3, selection="04's way", **quote)
    record_result("l2", path=second, k=3, selection="04's way", **quote)
    record_result("l2", path=second, k=3, selection="02's way", **owner)
    assert first.read_bytes() == second.read_bytes()
    entry = load_results(second)["l2"]
    assert entry["notebook"] == "02-x.ipynb" and entry["selection"] == "02's way" and entry["also_in"] == ["04-y.ipynb"]
