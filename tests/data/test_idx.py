"""Tests for mnist_knn.data.idx: the IDX format, one test per failure mode, plus round trips."""

import gzip
import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mnist_knn.data.datasets import FileSpec, load_mnist, read_mnist, sha256_of
from mnist_knn.data.idx import IdxFormatError, read_idx, write_idx

# A 2 x 3 uint8 array [[0, 1, 2], [3, 4, 5]], as in the `mnist` package's tests.
GOOD = b"\x00\x00\x08\x02" + b"\x00\x00\x00\x02" + b"\x00\x00\x00\x03" + bytes(range(6))
GOOD_ARRAY = np.array([[0, 1, 2], [3, 4, 5]], dtype=np.uint8)


# --------------------------------------------------------------------------- reading

def test_reads_small_uint8_array():
    array = read_idx(io.BytesIO(GOOD))
    np.testing.assert_array_equal(array, GOOD_ARRAY)
    assert array.dtype == np.uint8


def test_reads_big_endian_int16_and_float32_into_native_order():
    int16 = b"\x00\x00\x0b\x01" + b"\x00\x00\x00\x02" + b"\x01\x02" + b"\xff\xfe"
    float32 = b"\x00\x00\x0d\x01" + b"\x00\x00\x00\x01" + b"\x3f\xc0\x00\x00"  # 1.5
    a, b = read_idx(io.BytesIO(int16)), read_idx(io.BytesIO(float32))
    assert a.tolist() == [258, -2] and a.dtype == np.int16 and a.dtype.isnative
    assert b.tolist() == [1.5] and b.dtype == np.float32 and b.dtype.isnative


def test_reads_four_dimensions():
    data = b"\x00\x00\x09\x04" + b"\x00\x00\x00\x01" * 3 + b"\x00\x00\x00\x02" + b"\x80\x7f"
    np.testing.assert_array_equal(read_idx(io.BytesIO(data)), np.array([-128, 127], dtype=np.int8).reshape(1, 1, 1, 2))


def test_returned_array_is_read_only():
    with pytest.raises(ValueError, match="read-only"):
        read_idx(io.BytesIO(GOOD))[0, 0] = 9


def test_raw_and_gzipped_give_same_array():
    raw = read_idx(io.BytesIO(GOOD))
    gzipped = read_idx(io.BytesIO(gzip.compress(GOOD)))
    np.testing.assert_array_equal(raw, gzipped)
    assert raw.dtype == gzipped.dtype


def test_reads_from_path_str_and_file_object(tmp_path):
    path = tmp_path / "small.idx"
    path.write_bytes(GOOD)
    for source in (path, str(path)):
        np.testing.assert_array_equal(read_idx(source), GOOD_ARRAY)
    with open(path, "rb") as f:
        np.testing.assert_array_equal(read_idx(f), GOOD_ARRAY)


def test_gzip_is_detected_by_content_not_by_name(tmp_path):
    (tmp_path / "gzipped.idx").write_bytes(gzip.compress(GOOD))
    (tmp_path / "raw.gz").write_bytes(GOOD)
    np.testing.assert_array_equal(read_idx(tmp_path / "gzipped.idx"), GOOD_ARRAY)
    np.testing.assert_array_equal(read_idx(tmp_path / "raw.gz"), GOOD_ARRAY)


def test_text_mode_file_raises():
    with pytest.raises(TypeError, match="binary mode"):
        read_idx(io.StringIO("not bytes"))


# --------------------------------------------------------------------------- one test per failure mode

def test_bad_magic_raises():
    with pytest.raises(IdxFormatError, match=r"bad magic number 0x01000801; expected the first two bytes"):
        read_idx(io.BytesIO(b"\x01\x00\x08\x01\x00\x00\x00\x01\x07"))


def test_file_shorter_than_magic_raises():
    with pytest.raises(IdxFormatError, match="file is 2 bytes; expected at least a 4-byte IDX magic"):
        read_idx(io.BytesIO(b"\x00\x00"))


def test_unknown_type_code_raises():
    with pytest.raises(IdxFormatError, match=r"unknown type code 0x0A; expected one of 0x08 \(uint8\)"):
        read_idx(io.BytesIO(b"\x00\x00\x0a\x01\x00\x00\x00\x01\x07"))


def test_zero_dimensions_raises():
    with pytest.raises(IdxFormatError, match="header says 0 dimensions; expected at least 1"):
        read_idx(io.BytesIO(b"\x00\x00\x08\x00"))


def test_zero_length_dimension_raises():
    data = b"\x00\x00\x08\x02" + b"\x00\x00\x00\x02" + b"\x00\x00\x00\x00"
    with pytest.raises(IdxFormatError, match=r"dimension 1 has size 0; expected every size > 0 \(sizes: 2 x 0\)"):
        read_idx(io.BytesIO(data))


def test_negative_dimension_raises():
    data = b"\x00\x00\x08\x01" + b"\xff\xff\xff\xff"
    with pytest.raises(IdxFormatError, match="dimension 0 has size -1"):
        read_idx(io.BytesIO(data))


def test_header_too_short_for_dimensions_raises():
    data = b"\x00\x00\x08\x03" + b"\x00\x00\x00\x02" + b"\x00\x00\x00\x03"  # 3 dims stated, 2 given
    with pytest.raises(IdxFormatError, match=r"header is 12 bytes; expected 16 \(4-byte magic \+ 3 dimensions"):
        read_idx(io.BytesIO(data))


def test_truncated_payload_raises():
    with pytest.raises(IdxFormatError, match=r"payload is 5 bytes; expected 6 \(2 x 3 x 1 byte\): truncated"):
        read_idx(io.BytesIO(GOOD[:-1]))


def test_truncated_payload_message_counts_itemsize():
    data = b"\x00\x00\x0c\x01" + b"\x00\x00\x00\x03" + bytes(10)  # 3 int32 need 12 bytes
    with pytest.raises(IdxFormatError, match=r"payload is 10 bytes; expected 12 \(3 x 4 bytes\): truncated"):
        read_idx(io.BytesIO(data))


def test_trailing_bytes_raise():
    with pytest.raises(IdxFormatError, match=r"payload is 8 bytes; expected 6 \(2 x 3 x 1 byte\): 2 trailing bytes"):
        read_idx(io.BytesIO(GOOD + b"\x00\x00"))


def test_truncated_gzip_raises():
    with pytest.raises(IdxFormatError, match="not a valid gzip stream"):
        read_idx(io.BytesIO(gzip.compress(GOOD)[:-6]))


def test_corrupt_gzip_raises():
    stream = bytearray(gzip.compress(GOOD))
    stream[-8] ^= 0xFF  # a byte of the CRC-32
    with pytest.raises(IdxFormatError, match="not a valid gzip stream"):
        read_idx(io.BytesIO(bytes(stream)))


def test_error_names_the_path(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(GOOD[:-1])
    with pytest.raises(IdxFormatError, match=r"train-images-idx3-ubyte: payload is 5 bytes"):
        read_idx(path)


def test_error_names_a_file_object():
    with pytest.raises(IdxFormatError, match=r"^<file object>: payload is 5 bytes"):
        read_idx(io.BytesIO(GOOD[:-1]))


def test_error_uses_the_file_objects_name(tmp_path):
    path = tmp_path / "labels.idx"
    path.write_bytes(GOOD[:-1])
    with open(path, "rb") as f, pytest.raises(IdxFormatError, match=r"labels\.idx: payload is 5 bytes"):
        read_idx(f)


# --------------------------------------------------------------------------- writing

def test_write_then_read_path_round_trip(tmp_path):
    write_idx(tmp_path / "a.idx", GOOD_ARRAY)
    assert (tmp_path / "a.idx").read_bytes() == GOOD


def test_write_gzips_when_path_ends_in_gz(tmp_path):
    write_idx(tmp_path / "a.idx.gz", GOOD_ARRAY)
    write_idx(tmp_path / "b.idx.gz", GOOD_ARRAY, compress=False)
    assert (tmp_path / "a.idx.gz").read_bytes()[:2] == b"\x1f\x8b"
    assert (tmp_path / "b.idx.gz").read_bytes() == GOOD


def test_write_gzip_output_is_byte_stable():
    first, second = io.BytesIO(), io.BytesIO()
    write_idx(first, GOOD_ARRAY, compress=True)
    write_idx(second, GOOD_ARRAY, compress=True)
    assert first.getvalue() == second.getvalue()
    assert gzip.decompress(first.getvalue()) == GOOD


def test_write_replaces_file_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "a.idx"
    path.write_bytes(b"old")
    write_idx(path, GOOD_ARRAY)
    assert [p.name for p in tmp_path.iterdir()] == ["a.idx"]
    assert path.read_bytes() == GOOD


@pytest.mark.parametrize("dtype", ["int64", "uint16", "uint32", "bool", "complex64", "float16"])
def test_write_rejects_dtypes_idx_cannot_hold(dtype):
    with pytest.raises(ValueError, match=f"IDX cannot hold dtype {dtype}; expected one of uint8, int8"):
        write_idx(io.BytesIO(), np.zeros(3, dtype=dtype))


def test_write_rejects_a_scalar():
    with pytest.raises(ValueError, match="at least 1 dimension; got a 0-d array"):
        write_idx(io.BytesIO(), np.uint8(3))


def test_write_rejects_an_empty_dimension(tmp_path):
    with pytest.raises(ValueError, match=r"every dimension in \[1, 2147483647\]; got shape \(2, 0\)"):
        write_idx(tmp_path / "empty.idx", np.zeros((2, 0), dtype=np.uint8))
    assert list(tmp_path.iterdir()) == []


IDX_DTYPES = ["u1", "i1", ">i2", "<i2", ">i4", "<i4", ">f4", "<f4", ">f8", "<f8"]


@settings(max_examples=200, deadline=None)
@given(
    array=st.sampled_from(IDX_DTYPES).flatmap(
        lambda dtype: hnp.arrays(dtype, hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=5))
    ),
    compress=st.booleans(),
)
def test_write_then_read_round_trips_every_type_code(array, compress):
    buffer = io.BytesIO()
    write_idx(buffer, array, compress=compress)
    assert (buffer.getvalue()[:2] == b"\x1f\x8b") == compress
    buffer.seek(0)
    result = read_idx(buffer)
    expected = array.astype(array.dtype.newbyteorder("="))
    assert result.dtype == expected.dtype and result.dtype.isnative
    assert result.shape == array.shape
    assert result.tobytes() == expected.tobytes()  # bit-exact, NaN payloads and -0.0 included


# --------------------------------------------------------------------------- the MNIST loader on tiny files

def _write_mnist_pair(directory, n_images, n_labels, image_dtype=np.uint8):
    """Write tiny MNIST-style training files with write_idx; return FileSpecs that match them."""
    rng = np.random.default_rng(0)
    write_idx(directory / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (n_images, 28, 28)).astype(image_dtype))
    write_idx(directory / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, n_labels).astype(np.uint8))
    return {
        name: FileSpec(name, sha256_of(directory / name), (directory / name).stat().st_size)
        for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
    }


def test_loader_rejects_image_label_count_mismatch(tmp_path):
    files = _write_mnist_pair(tmp_path, n_images=3, n_labels=2)
    with pytest.raises(IdxFormatError, match="disagree: 3 images but 2 labels"):
        load_mnist("train", tmp_path, files=files, mirrors=())


def test_loader_rejects_wrong_image_dtype(tmp_path):
    _write_mnist_pair(tmp_path, n_images=2, n_labels=2, image_dtype=np.int16)
    with pytest.raises(IdxFormatError, match=r"expected uint8 images of shape \(n, 28, 28\); found int16"):
        read_mnist(tmp_path / "train-images-idx3-ubyte.gz", tmp_path / "train-labels-idx1-ubyte.gz")


def test_loader_rejects_labels_that_are_not_digits(tmp_path):
    write_idx(tmp_path / "images.idx", np.zeros((2, 28, 28), dtype=np.uint8))
    write_idx(tmp_path / "labels.idx", np.array([3, 10], dtype=np.uint8))
    with pytest.raises(IdxFormatError, match="Labels must be digits 0-9; found a label 10"):
        read_mnist(tmp_path / "images.idx", tmp_path / "labels.idx")


# --------------------------------------------------------------------------- bounded decompression


def _gzip_stream(payload_chunks):
    """A gzip stream of the concatenated chunks, compressed as it goes (never all in memory)."""
    import zlib

    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    out = [comp.compress(chunk) for chunk in payload_chunks]
    out.append(comp.flush())
    return b"".join(out)


def test_a_small_gzip_that_inflates_far_past_its_header_is_not_inflated_whole():
    import tracemalloc

    # The header declares 6 bytes; the stream then inflates to 512 MiB of zeros (about 0.5 MB on disk).
    header = b"\x00\x00\x08\x01" + (6).to_bytes(4, "big")
    bomb = _gzip_stream([header] + [bytes(1 << 20)] * 512)
    assert len(bomb) < 1_000_000
    tracemalloc.start()
    try:
        with pytest.raises(IdxFormatError, match="trailing bytes"):
            read_idx(io.BytesIO(bomb))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000, f"reading took {peak / 1e6:.0f} MB"


def test_a_gzipped_file_of_exactly_the_declared_size_still_checks_its_crc():
    header = b"\x00\x00\x08\x01" + (4).to_bytes(4, "big")
    good = _gzip_stream([header, b"abcd"])
    assert read_idx(io.BytesIO(good)).tobytes() == b"abcd"
    damaged = good[:-8] + bytes([good[-8] ^ 0xFF]) + good[-7:]  # the CRC-32 field
    with pytest.raises(IdxFormatError, match="not a valid gzip stream"):
        read_idx(io.BytesIO(damaged))


def test_a_header_with_255_dimensions_gives_a_short_message():
    header = b"\x00\x00\x08\xff" + (2).to_bytes(4, "big") * 254 + (0).to_bytes(4, "big", signed=True)
    with pytest.raises(IdxFormatError) as info:
        read_idx(io.BytesIO(header))
    assert "255 dimensions" in str(info.value) and len(str(info.value)) < 300
    header = b"\x00\x00\x08\xff" + (2).to_bytes(4, "big") * 255
    with pytest.raises(IdxFormatError) as info:
        read_idx(io.BytesIO(header + b"xx"))
    assert "truncated" in str(info.value) and len(str(info.value)) < 300
