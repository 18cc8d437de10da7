"""Readers of the real file formats: IDX (MNIST), STL-10 binary, and finding MNIST files."""

import gzip

import numpy as np
import pytest

from benchmark.tasks import mnist_source
from benchmark.tasks.files import SplitFiles
from benchmark.tasks.idx import IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, read_idx, write_idx
from benchmark.tasks.mnist_source import find_mnist, read_mnist, write_mnist_split
from benchmark.tasks.stl10_source import read_stl10, write_stl10_split


def _idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file written by hand from the format's definition (the oracle for the reader)."""
    dims = b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return bytes([0, 0, 8, array.ndim]) + dims + array.astype(np.uint8).tobytes()


@pytest.mark.parametrize("shape", [(5, 28, 28), (3, 7, 9), (11,)])
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_matches_hand_made_file(tmp_path, shape, gz):
    array = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    data = _idx_bytes(array)
    path = tmp_path / ("a.idx.gz" if gz else "a.idx")
    path.write_bytes(gzip.compress(data) if gz else data)
    np.testing.assert_array_equal(read_idx(path), array)


def test_write_idx_round_trip(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "b.gz", array)
    assert gzip.decompress((tmp_path / "b.gz").read_bytes()) == _idx_bytes(array)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda b: b"\x12\x34" + b[2:], "not an IDX file"),
        (lambda b: b[: len(b) - 5], "truncated"),
        (lambda b: b + b"\x00", "corrupted"),
        (lambda b: b[:2], "truncated"),
    ],
)
def test_read_idx_rejects_bad_files_naming_them(tmp_path, mutate, message):
    path = tmp_path / "bad-images-idx3-ubyte"
    path.write_bytes(mutate(_idx_bytes(np.zeros((4, 28, 28), np.uint8))))
    with pytest.raises(ValueError, match=message) as err:
        read_idx(path, IDX_IMAGES_MAGIC)
    assert str(path) in str(err.value)


def test_read_idx_rejects_the_wrong_kind_of_idx(tmp_path):
    path = tmp_path / "labels-as-images"
    path.write_bytes(_idx_bytes(np.zeros(10, np.uint8)))
    with pytest.raises(ValueError, match=f"expected {IDX_IMAGES_MAGIC:#010x}"):
        read_idx(path, IDX_IMAGES_MAGIC)
    assert len(read_idx(path, IDX_LABELS_MAGIC)) == 10


def test_read_idx_rejects_broken_gzip(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(_idx_bytes(np.zeros(100, np.uint8)))[:-12])
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.gz"):
        read_idx(path)


def _fake_mnist(n: int, seed: int):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), np.arange(n) % 10


@pytest.mark.parametrize("layout", ["mnist", "mnist/MNIST/raw", "MNIST/raw"])
@pytest.mark.parametrize("gz", [False, True])
def test_find_mnist_accepts_flat_and_torchvision_layouts(tmp_path, layout, gz):
    images, labels = _fake_mnist(12, 0)
    write_mnist_split(tmp_path / layout, "test", images, labels, gz=gz)
    files = find_mnist(tmp_path)
    assert list(files.splits) == ["test"]
    x, y = read_mnist(files)
    np.testing.assert_array_equal(x[:, 0].numpy(), images)
    np.testing.assert_array_equal(y.numpy(), labels)


def test_read_mnist_pools_train_then_test(tmp_path):
    train, test = _fake_mnist(20, 1), _fake_mnist(10, 2)
    write_mnist_split(tmp_path / "mnist", "train", *train)
    write_mnist_split(tmp_path / "mnist", "test", *test)
    x, y = read_mnist(find_mnist(tmp_path))
    np.testing.assert_array_equal(x[:, 0].numpy(), np.concatenate([train[0], test[0]]))
    np.testing.assert_array_equal(y.numpy(), np.concatenate([train[1], test[1]]))


def test_missing_mnist_names_folder_files_and_download(tmp_path):
    with pytest.raises(ValueError) as err:
        find_mnist(tmp_path)
    text = str(err.value)
    for needed in (
        str(tmp_path / "mnist"),
        "t10k-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "download=True",
    ):
        assert needed in text


def test_failed_download_is_one_clear_error(tmp_path, monkeypatch):
    def offline(data_dir):
        raise OSError("network unreachable")

    monkeypatch.setattr(mnist_source, "_download", offline)
    with pytest.raises(ValueError, match="Download failed: network unreachable") as err:
        find_mnist(tmp_path, download=True)
    assert "t10k-images-idx3-ubyte" in str(err.value)


def test_incomplete_mnist_split_names_missing_file(tmp_path):
    images, labels = _fake_mnist(10, 0)
    write_mnist_split(tmp_path / "mnist", "test", images, labels)
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte"):
        find_mnist(tmp_path)


def test_mnist_labels_out_of_range_name_the_file(tmp_path):
    images, labels = _fake_mnist(10, 0)
    labels[3] = 10
    write_mnist_split(tmp_path / "mnist", "test", images, labels)
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.gz holds label 10"):
        read_mnist(find_mnist(tmp_path))


def test_stl10_reader_reads_column_major_channels(tmp_path):
    # Hand-made file: every channel stored column by column, as the STL-10 README specifies.
    image = np.zeros((3, 96, 96), np.uint8)
    image[0, 2, 70] = 200  # row 2, column 70 of channel 0
    image[2, 95, 1] = 7
    stored = b"".join(image[c].flatten(order="F").tobytes() for c in range(3))
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    (folder / "test_X.bin").write_bytes(stored)
    (folder / "test_y.bin").write_bytes(bytes([10]))
    x, y = read_stl10(SplitFiles({"test": (folder / "test_X.bin", folder / "test_y.bin")}))
    np.testing.assert_array_equal(x[0].numpy(), image)
    assert y.tolist() == [9]


def test_write_stl10_split_round_trip(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (4, 3, 96, 96), dtype=np.uint8)
    write_stl10_split(tmp_path, "train", images, np.array([1, 2, 3, 10]))
    files = SplitFiles({"train": (tmp_path / "train_X.bin", tmp_path / "train_y.bin")})
    x, y = read_stl10(files)
    np.testing.assert_array_equal(x.numpy(), images)
    assert y.tolist() == [0, 1, 2, 9]


@pytest.mark.parametrize(
    "x_bytes, labels, message",
    [
        (3 * 96 * 96 * 2 - 1, [1, 2], "truncated"),
        (3 * 96 * 96 * 2, [1, 11], "holds label 11"),
        (3 * 96 * 96 * 2, [0, 3], "holds label 0"),
        (3 * 96 * 96 * 2, [1], "1 labels"),
    ],
)
def test_stl10_reader_rejects_bad_files(tmp_path, x_bytes, labels, message):
    (tmp_path / "test_X.bin").write_bytes(bytes(x_bytes))
    (tmp_path / "test_y.bin").write_bytes(bytes(labels))
    files = SplitFiles({"test": (tmp_path / "test_X.bin", tmp_path / "test_y.bin")})
    with pytest.raises(ValueError, match=message) as err:
        read_stl10(files)
    assert str(tmp_path) in str(err.value)
