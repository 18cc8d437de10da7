"""The IDX file format of MNIST (LeCun et al.), plain or gzip-compressed.

Layout: a 4-byte big-endian magic number ``0x0000TTDD`` (TT: element type, DD: number of
dimensions), then DD big-endian int32 sizes, then the elements in C order. MNIST images are
``0x00000803`` (uint8, 3 dims: n x 28 x 28), labels ``0x00000801`` (uint8, 1 dim: n).
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

__all__ = ["IDX_IMAGES_MAGIC", "IDX_LABELS_MAGIC", "read_idx", "write_idx"]

IDX_IMAGES_MAGIC = 0x00000803
IDX_LABELS_MAGIC = 0x00000801

# Element type codes of the IDX format; numbers are big-endian.
_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(f"cannot read IDX file {path}: {err} (truncated or not gzip?)") from err


def read_idx(path: str | Path, expected_magic: int | None = None) -> np.ndarray:
    """The array stored in an IDX file (``.gz`` is decompressed).

    Raises ValueError naming the file when the magic number is not an IDX one (or not
    ``expected_magic``), or when the file is shorter or longer than its header says.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise ValueError(f"IDX file {path} is truncated: {len(data)} bytes, no header")
    magic = int.from_bytes(data[:4], "big")
    type_code, ndim = data[2], data[3]
    if data[0] != 0 or data[1] != 0 or type_code not in _DTYPES or ndim == 0:
        expected = f"{expected_magic:#010x}" if expected_magic is not None else "0x0000TTDD"
        raise ValueError(
            f"{path} has magic number {magic:#010x}, which is not an IDX file (expected {expected})"
        )
    if expected_magic is not None and magic != expected_magic:
        raise ValueError(f"{path} has magic number {magic:#010x}, expected {expected_magic:#010x}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"IDX file {path} is truncated inside its header")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = _DTYPES[type_code]
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(
            f"IDX file {path} holds {len(data) - header} bytes of data, expected {expected} "
            f"for shape {shape} (truncated or corrupted)"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write ``array`` (uint8) as an IDX file, gzip-compressed when ``path`` ends in ``.gz``;
    for tests and for making small datasets in the real format."""
    path = Path(path)
    array = np.ascontiguousarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"write_idx writes uint8 arrays, got dtype {array.dtype}")
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(size).to_bytes(4, "big") for size in array.shape
    )
    payload = header + array.tobytes()
    if path.suffix == ".gz":
        payload = gzip.compress(payload)
    path.write_bytes(payload)
