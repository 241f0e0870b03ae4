"""The IDX file format: read and write n-dimensional arrays, raw or gzipped.

IDX is the format of the MNIST and QMNIST files (LeCun et al.). A file is a header
followed by the array's elements, big-endian, in row-major order::

    bytes 0-1   0x00 0x00               magic
    byte  2     type code               0x08 uint8, 0x09 int8, 0x0B int16,
                                        0x0C int32, 0x0D float32, 0x0E float64
    byte  3     number of dimensions    d >= 1
    4 * d       size of each dimension  32-bit big-endian integers
    payload     prod(sizes) elements    big-endian

This module knows the format and nothing else: no paths, downloads or MNIST specifics.
"""

import gzip
import io
import math
import os
import zlib
from pathlib import Path

import numpy as np

from ..store import write_atomically
from ..validation import source_name

__all__ = ["IdxFormatError", "read_idx", "write_idx", "IDX_DTYPES"]

#: Type code -> big-endian dtype of the payload.
IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_TYPE_CODES = {dtype.newbyteorder("="): code for code, dtype in IDX_DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"
_MAX_DIM = 2**31 - 1


class IdxFormatError(ValueError):
    """An IDX file (or gzip stream around it) is malformed.

    The message names the file and says what was expected and what was found.
    """


def _type_names():
    """Return e.g. "0x08 (uint8), 0x09 (int8), ..." for error messages."""
    return ", ".join(f"0x{code:02X} ({dtype.name})" for code, dtype in IDX_DTYPES.items())


def _read_bytes(source, name):
    """Return every byte of a path or binary file object (no decompression)."""
    if isinstance(source, (str, os.PathLike)):
        return Path(source).read_bytes()
    if not hasattr(source, "read"):
        raise TypeError(
            f"read_idx expects a path (str or os.PathLike) or a binary file object; "
            f"got {type(source).__name__}."
        )
    data = source.read()
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"{name}: expected a file opened in binary mode ('rb'); read() returned {type(data).__name__}.")
    return bytes(data)


def _gunzip(data, name):
    """Decompress a gzip stream, but never more than its IDX header declares (plus one byte).

    Reads the header first, then at most the payload it promises and one byte more, which is enough
    to tell a file with trailing bytes: a small file that inflates to gigabytes (a "zip bomb", or a
    corrupt header) costs no more memory than the array it claims to hold. Corruption of every kind
    becomes IdxFormatError.
    """
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
            head = f.read(4)
            if len(head) == 4 and head[:2] == b"\x00\x00" and head[2] in IDX_DTYPES and head[3] > 0:
                head += f.read(4 * head[3])
                if len(head) == 4 + 4 * head[3]:
                    dims = np.frombuffer(head, dtype=">i4", count=head[3], offset=4)
                    if (dims > 0).all():
                        expected = math.prod(int(d) for d in dims) * IDX_DTYPES[head[2]].itemsize
                        return head + f.read(expected + 1)
            return head + f.read()  # a malformed header: _parse says what is wrong with it
    except (OSError, EOFError, zlib.error) as exc:
        raise IdxFormatError(
            f"{name}: starts with the gzip magic bytes 1f 8b but is not a valid gzip stream "
            f"({type(exc).__name__}: {exc}); the file is probably truncated or corrupt."
        ) from exc


def _dims_text(dims):
    """Return e.g. "60000 x 28 x 28", shortened for a header with very many dimensions."""
    if len(dims) > 8:
        return " x ".join(map(str, dims[:4])) + f" x ... x {dims[-1]} ({len(dims)} dimensions)"
    return " x ".join(map(str, dims))


def _shape_text(dims, itemsize):
    """Return e.g. "60000 x 28 x 28 x 1 byte" for error messages."""
    unit = "byte" if itemsize == 1 else "bytes"
    return f"{_dims_text(dims)} x {itemsize} {unit}"


def _parse(data, name):
    """Parse decompressed IDX bytes into a read-only, native-endian array."""
    if len(data) < 4:
        raise IdxFormatError(f"{name}: file is {len(data)} bytes; expected at least a 4-byte IDX magic number.")
    if data[0] != 0 or data[1] != 0:
        raise IdxFormatError(
            f"{name}: bad magic number 0x{data[:4].hex().upper()}; expected the first two bytes "
            f"to be 0x00 0x00 (an IDX file), found 0x{data[0]:02X} 0x{data[1]:02X}."
        )
    type_code, ndim = data[2], data[3]
    if type_code not in IDX_DTYPES:
        raise IdxFormatError(f"{name}: unknown type code 0x{type_code:02X}; expected one of {_type_names()}.")
    if ndim == 0:
        raise IdxFormatError(f"{name}: header says 0 dimensions; expected at least 1.")
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise IdxFormatError(
            f"{name}: header is {len(data)} bytes; expected {header_size} "
            f"(4-byte magic + {ndim} dimensions x 4 bytes)."
        )
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">i4", count=ndim, offset=4))
    bad = [(axis, d) for axis, d in enumerate(dims) if d <= 0]
    if bad:
        axis, size = bad[0]
        raise IdxFormatError(
            f"{name}: dimension {axis} has size {size}; expected every size > 0 "
            f"(sizes: {_dims_text(dims)})."
        )
    dtype = IDX_DTYPES[type_code]
    expected = math.prod(dims) * dtype.itemsize
    found = len(data) - header_size
    if found != expected:
        what = "truncated" if found < expected else f"{found - expected} trailing bytes"
        raise IdxFormatError(
            f"{name}: payload is {found} bytes; expected {expected} "
            f"({_shape_text(dims, dtype.itemsize)}): {what}."
        )
    array = np.frombuffer(data, dtype=dtype, offset=header_size).reshape(dims)
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    array.setflags(write=False)
    return array


def read_idx(source):
    """Read an IDX file, raw or gzipped, into a NumPy array.

    Parameters
    ----------
    source : str, os.PathLike or binary file object
        A path, or an object with a ``read()`` method returning bytes (e.g. ``io.BytesIO``
        or ``open(path, "rb")``). Gzip compression is detected from the content (the
        magic bytes ``1f 8b``), not from the file name.

    Returns
    -------
    array : ndarray of shape (d_0, ..., d_{n-1})
        The array with the header's shape, in native byte order, with dtype uint8, int8,
        int16, int32, float32 or float64 according to the type code. The array is
        **read-only** (it may share memory with the bytes read); use ``array.copy()``
        for a writeable one.

    Raises
    ------
    IdxFormatError
        If the gzip stream is corrupt; the magic number does not start with two zero
        bytes; the type code is unknown; the header states 0 dimensions, is too short for
        the dimensions it states, or has a dimension of size <= 0; or the payload is not
        exactly ``prod(sizes) * itemsize`` bytes (truncated file or trailing bytes).
        The message names the file and says what was expected and what was found.
    TypeError
        If ``source`` is neither a path nor a binary file object.

    Examples
    --------
    >>> import io
    >>> header = b"\\x00\\x00\\x08\\x02" b"\\x00\\x00\\x00\\x02" b"\\x00\\x00\\x00\\x03"
    >>> read_idx(io.BytesIO(header + bytes(range(6))))
    array([[0, 1, 2],
           [3, 4, 5]], dtype=uint8)
    """
    name = source_name(source)
    data = _read_bytes(source, name)
    if data[:2] == _GZIP_MAGIC:
        data = _gunzip(data, name)
    return _parse(data, name)


def _encode(array):
    """Return the IDX bytes (header + big-endian payload) of a validated array."""
    code = _TYPE_CODES[array.dtype.newbyteorder("=")]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">i4").tobytes()
    payload = np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()
    return header + payload


def _check_writable(array):
    """Raise ValueError unless IDX can hold ``array`` (dtype, number and sizes of dimensions)."""
    key = array.dtype.newbyteorder("=") if array.dtype.byteorder != "|" else array.dtype
    if key not in _TYPE_CODES:
        allowed = ", ".join(dtype.name for dtype in IDX_DTYPES.values())
        raise ValueError(
            f"IDX cannot hold dtype {array.dtype.name}; expected one of {allowed} "
            f"(convert first, e.g. array.astype(np.int32))."
        )
    if array.ndim == 0:
        raise ValueError("IDX needs an array with at least 1 dimension; got a 0-d array (a scalar).")
    if not all(0 < d <= _MAX_DIM for d in array.shape):
        raise ValueError(f"IDX needs every dimension in [1, {_MAX_DIM}]; got shape {array.shape}.")


def write_idx(target, array, *, compress=None):
    """Write an array as an IDX file, raw or gzipped.

    Parameters
    ----------
    target : str, os.PathLike or binary file object
        A path, or an object with a ``write()`` method accepting bytes. A path is written
        to a temporary file in the same directory and then renamed into place
        (``os.replace``), so readers never see a half-written file.
    array : array_like of shape (d_0, ..., d_{n-1})
        At least one dimension, every size in ``[1, 2**31 - 1]``, dtype uint8, int8,
        int16, int32, float32 or float64 (any byte order).
    compress : bool or None, default=None
        Gzip the output. ``None`` means: gzip when ``target`` is a path ending in ``.gz``,
        otherwise write raw bytes. Gzip output has mtime 0, so equal arrays give equal files.

    Raises
    ------
    ValueError
        If IDX cannot hold the array's dtype (e.g. int64, uint16, bool), the array is 0-d,
        or a dimension is 0 (``read_idx`` rejects empty dimensions).

    See Also
    --------
    read_idx : the inverse; ``read_idx(f)`` returns an array equal to ``array``.

    Examples
    --------
    A round trip through memory:

    >>> import io
    >>> import numpy as np
    >>> buffer = io.BytesIO()
    >>> write_idx(buffer, np.arange(6, dtype=np.int16).reshape(2, 3))
    >>> buffer.getvalue()[:4].hex()  # magic: two zero bytes, type code 0x0b (int16), 2 dimensions
    '00000b02'
    >>> read_idx(io.BytesIO(buffer.getvalue()))
    array([[0, 1, 2],
           [3, 4, 5]], dtype=int16)
    >>> packed = io.BytesIO()
    >>> write_idx(packed, np.array([0.5, -2.0]), compress=True)  # gzip, detected again when read
    >>> read_idx(io.BytesIO(packed.getvalue()))
    array([ 0.5, -2. ])
    """
    array = np.asarray(array)
    _check_writable(array)
    is_path = isinstance(target, (str, os.PathLike))
    if compress is None:
        compress = is_path and os.fspath(target).endswith(".gz")
    data = _encode(array)
    if compress:
        data = gzip.compress(data, compresslevel=6, mtime=0)
    if is_path:
        write_atomically(target, data)
    else:
        target.write(data)
