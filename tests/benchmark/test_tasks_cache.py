"""The task cache: reuse, corruption, atomic writes and concurrent builders."""

import dataclasses
import logging
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.tasks import cache as cache_module
from benchmark.tasks import catalog, get_task
from benchmark.tasks.cache import cache_key, load_payload, save_payload
from benchmark.tasks.mnist_source import write_mnist_split

SIZES = {"n_train": 40, "n_val": 20, "n_test": 40}


@pytest.fixture(autouse=True)
def _cache_beside_the_data(monkeypatch):
    monkeypatch.delenv("SEFL_CACHE_DIR", raising=False)  # caches go to <data_dir>/cache


@pytest.fixture
def data_dir(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (150, 28, 28), dtype=np.uint8)
    write_mnist_split(tmp_path / "mnist", "test", images, np.arange(150) % 10)
    return tmp_path


def _cache_files(data_dir: Path) -> list[Path]:
    folder = data_dir / "cache"
    return sorted(folder.iterdir()) if folder.exists() else []


def _same_task(a, b):
    for split in ("train", "val", "test"):
        assert torch.equal(a.splits[split].pool_index, b.splits[split].pool_index)
        assert torch.equal(a.splits[split].resolutions, b.splits[split].resolutions)
        idx = torch.nonzero(a.splits[split].resolutions == 8).flatten()
        torch.testing.assert_close(a.splits[split].fetch(idx), b.splits[split].fetch(idx))


def _forbid_builds(monkeypatch):
    def fail(source, options):
        raise AssertionError("the task was rebuilt instead of loaded from the cache")

    spec = catalog._SPECS["mnist_scale"]
    monkeypatch.setitem(catalog._SPECS, "mnist_scale", dataclasses.replace(spec, build=fail))


def test_cache_key_is_canonical_sha256():
    key = cache_key({"b": 1, "a": [1, 2]})
    assert len(key) == 64 and int(key, 16) >= 0
    assert key == cache_key({"a": [1, 2], "b": 1})
    assert key != cache_key({"a": [1, 2], "b": 2})


def test_second_load_comes_from_the_cache(data_dir, monkeypatch):
    first = get_task("mnist_scale", data_dir, **SIZES)
    assert not first.metadata["loaded_from_cache"]
    assert [p.suffix for p in _cache_files(data_dir)] == [".pt"]
    _forbid_builds(monkeypatch)
    second = get_task("mnist_scale", data_dir, canvas_mode="resize", **SIZES)
    assert second.metadata["loaded_from_cache"]
    _same_task(first, second)


def test_build_options_get_their_own_cache_file(data_dir):
    get_task("mnist_scale", data_dir, **SIZES)
    get_task("mnist_scale", data_dir, seed=1, **SIZES)
    get_task("mnist_scale", data_dir, protocol="sesn", **SIZES)
    assert len(_cache_files(data_dir)) == 3


def _truncate(raw):
    return raw[: len(raw) // 2]


def _flip_a_byte(raw):
    corrupted = bytearray(raw)
    corrupted[len(raw) * 3 // 5] ^= 0xFF
    return bytes(corrupted)


@pytest.mark.parametrize(
    "damage", [_truncate, _flip_a_byte, lambda raw: b"garbage", lambda raw: b""]
)
def test_damaged_cache_is_detected_and_rebuilt(data_dir, caplog, damage):
    first = get_task("mnist_scale", data_dir, **SIZES)
    path = Path(first.metadata["cache_file"])
    path.write_bytes(damage(path.read_bytes()))
    with caplog.at_level(logging.WARNING, logger="benchmark.tasks"):
        rebuilt = get_task("mnist_scale", data_dir, **SIZES)
    assert not rebuilt.metadata["loaded_from_cache"]
    assert any(
        str(path) in r.getMessage() and "rebuilding" in r.getMessage() for r in caplog.records
    )
    _same_task(first, rebuilt)
    assert get_task("mnist_scale", data_dir, **SIZES).metadata["loaded_from_cache"]


def test_cache_of_another_key_is_not_used(tmp_path):
    path = tmp_path / "x.pt"
    save_payload(path, "key-a", {"t": torch.arange(3)}, {"m": 1})
    tensors, metadata = load_payload(path, "key-a")
    assert torch.equal(tensors["t"], torch.arange(3)) and metadata == {"m": 1}
    assert load_payload(path, "key-b") is None


def test_failed_write_leaves_nothing_behind(data_dir, monkeypatch):
    def half_write(obj, stream):
        stream.write(b"PK\x03\x04 half a file")
        raise RuntimeError("killed while writing")

    monkeypatch.setattr(cache_module.torch, "save", half_write)
    with pytest.raises(RuntimeError, match="killed while writing"):
        get_task("mnist_scale", data_dir, **SIZES)
    assert _cache_files(data_dir) == []


def test_full_disk_costs_a_warning_not_the_task(data_dir, monkeypatch, caplog):
    def disk_full(obj, stream):
        stream.write(b"PK\x03\x04")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache_module.torch, "save", disk_full)
    with caplog.at_level(logging.WARNING, logger="benchmark.tasks"):
        task = get_task("mnist_scale", data_dir, **SIZES)
    assert len(task.splits["train"]) == 40
    assert any("continuing without cache" in r.getMessage() for r in caplog.records)
    assert _cache_files(data_dir) == []


def test_unwritable_cache_folder_costs_a_warning(data_dir, caplog):
    blocker = data_dir / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    with caplog.at_level(logging.WARNING, logger="benchmark.tasks"):
        task = get_task("mnist_scale", data_dir, cache_dir=blocker / "cache", **SIZES)
    assert len(task.splits["test"]) == 40
    assert any("continuing without cache" in r.getMessage() for r in caplog.records)


CHILD = """
import sys, time, zlib
from pathlib import Path
from benchmark.tasks import get_task
data_dir = Path(sys.argv[1])
(data_dir / f"ready-{sys.argv[2]}").touch()
while not (data_dir / "go").exists():
    time.sleep(0.005)
task = get_task("mnist_scale", data_dir, n_train=40, n_val=20, n_test=40)
crc = 0
for split in task.splits.values():
    crc = zlib.crc32(split.pool_index.numpy().tobytes(), crc)
    crc = zlib.crc32(split.resolutions.numpy().tobytes(), crc)
print(crc)
"""


def test_two_processes_building_at_once_leave_one_whole_file(data_dir):
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(data_dir), str(i)], stdout=subprocess.PIPE, text=True
        )
        for i in range(2)
    ]
    deadline = time.monotonic() + 60
    while not all((data_dir / f"ready-{i}").exists() for i in range(2)):
        assert time.monotonic() < deadline, "child processes did not start"
        time.sleep(0.01)
    (data_dir / "go").touch()  # both start building now
    outputs = [child.communicate(timeout=60)[0] for child in children]
    assert [child.returncode for child in children] == [0, 0]
    assert outputs[0] == outputs[1]
    files = _cache_files(data_dir)
    assert [p.suffix for p in files] == [".pt"]  # no temporary file left
    assert load_payload(files[0], torch.load(files[0], weights_only=True)["key"]) is not None


def test_cache_dir_from_environment_and_file_permissions(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SEFL_CACHE_DIR", str(tmp_path / "elsewhere"))
    task = get_task("mnist_scale", data_dir, **SIZES)
    path = Path(task.metadata["cache_file"])
    assert path.parent == tmp_path / "elsewhere" and _cache_files(data_dir) == []
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # readable like any file


def test_a_read_only_data_folder_keeps_its_cache_elsewhere(tmp_path, monkeypatch):
    from benchmark.tasks import default_cache_dir

    monkeypatch.delenv("SEFL_CACHE_DIR", raising=False)
    data = tmp_path / "shared"
    data.mkdir()
    assert default_cache_dir(data) == data / "cache"
    data.chmod(0o555)
    try:
        assert default_cache_dir(data) == Path("data", "cache")
        monkeypatch.setenv("SEFL_CACHE_DIR", str(tmp_path / "mine"))
        assert default_cache_dir(data) == tmp_path / "mine"
    finally:
        data.chmod(0o755)
