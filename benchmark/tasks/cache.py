"""Cache of built tasks: one ``torch.save`` file per protocol, keyed by sha256.

Key: sha256 of the canonical JSON (sorted keys) of what determines the built tensors (task,
build options, source files) plus the package version and the cache format. A file holds plain
tensors, strings and numbers only, read back with ``torch.load(weights_only=True)``, and a
CRC-32 of every tensor so that a corrupted file is told apart from a good one. Writers write a
temporary file in the same folder and ``os.replace`` it: two processes building the same task
at once each replace the file whole, and a reader never sees half a file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import secrets
import zlib
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch

__all__ = [
    "CACHE_FORMAT",
    "cache_file",
    "cache_key",
    "load_or_build",
    "load_payload",
    "save_payload",
]

CACHE_FORMAT = 2
logger = logging.getLogger(__name__)


def _package_version() -> str:
    try:
        return version("sefl-bench")
    except PackageNotFoundError:
        return "unknown"


def cache_key(spec: dict) -> str:
    """sha256 of the canonical JSON of ``spec`` plus the package version and cache format."""
    full = {"spec": spec, "version": _package_version(), "format": CACHE_FORMAT}
    text = json.dumps(full, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def cache_file(cache_dir: Path, task: str, key: str) -> Path:
    return cache_dir / f"{task}-{key[:20]}.pt"


def _tensors(tree, prefix: str = ""):
    """(path, tensor) of every tensor in nested dicts, in a fixed order."""
    if isinstance(tree, torch.Tensor):
        yield prefix, tree
    elif isinstance(tree, dict):
        for name in sorted(tree):
            yield from _tensors(tree[name], f"{prefix}/{name}")


def _checksum(tensors: dict) -> int:
    crc = 0
    for path, tensor in _tensors(tensors):
        header = f"{path}|{tensor.dtype}|{tuple(tensor.shape)}".encode()
        crc = zlib.crc32(header, crc)
        crc = zlib.crc32(memoryview(tensor.contiguous().numpy()).cast("B"), crc)
    return crc


def save_payload(path: Path, key: str, tensors: dict, metadata: dict) -> None:
    """Write ``tensors`` (nested dicts of tensors) and JSON-able ``metadata`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "format": CACHE_FORMAT,
        "key": key,
        "checksum": _checksum(tensors),
        "metadata": json.dumps(metadata, sort_keys=True),
        "tensors": tensors,
    }
    # A name of our own in the same folder (os.replace is atomic only within a filesystem);
    # opened like any file, so the cache gets the usual permissions (mkstemp's are 0600).
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temporary, "xb") as stream:
            torch.save(record, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def load_payload(path: Path, key: str) -> tuple[dict, dict] | None:
    """(tensors, metadata) from a cache file, or None when it is missing, unreadable, from
    another key or corrupted (then a warning names the file; the caller rebuilds it)."""
    if not path.is_file():
        return None
    try:
        # Memory-mapped: no copy of the data. Safe because writers never change a cache file
        # in place; they replace it, and a mapping keeps the file it was made from.
        record = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        problem = None
        if not isinstance(record, dict) or record.get("format") != CACHE_FORMAT:
            problem = "unknown format"
        elif record.get("key") != key:
            problem = "it belongs to another protocol"
        elif _checksum(record["tensors"]) != record.get("checksum"):
            problem = "checksum mismatch"
    except (
        RuntimeError,
        EOFError,
        OSError,
        ValueError,
        KeyError,
        TypeError,
        pickle.UnpicklingError,
    ) as err:
        problem = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    if problem is not None:
        logger.warning("cache file %s is unusable (%s); rebuilding it", path, problem)
        return None
    return record["tensors"], json.loads(record["metadata"])


def load_or_build(
    path: Path, key: str, build: Callable[[], tuple[dict, dict]]
) -> tuple[dict, dict, bool]:
    """(tensors, metadata, loaded_from_cache): from the cache file when it is good, else from
    ``build()``, then saved. A cache folder that cannot be written (read-only data) only costs
    a warning: the task is built and used without caching."""
    cached = load_payload(path, key)
    if cached is not None:
        return (*cached, True)
    tensors, metadata = build()
    try:
        save_payload(path, key, tensors, metadata)
    except OSError as err:
        logger.warning("cannot write cache file %s (%s); continuing without cache", path, err)
    return tensors, metadata, False
