"""Find and read the STL-10 binary files (Coates et al. 2011), pooling the labelled splits.

Format (``stl10_binary/``): ``{train,test}_X.bin`` hold uint8 images of 3 x 96 x 96, each channel
stored column-major (the column index varies slowest); ``{train,test}_y.bin`` hold one uint8
label 1..10 per image. Searched in ``<data_dir>/stl10/stl10_binary/`` then
``<data_dir>/stl10_binary/``; ``download=True`` fetches them through torchvision into the first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from benchmark.tasks.files import SplitFiles, locate_files

__all__ = ["STL10_FILES", "find_stl10", "read_stl10", "write_stl10_split"]

STL10_FILES = {"train": ("train_X.bin", "train_y.bin"), "test": ("test_X.bin", "test_y.bin")}
IMAGE_SHAPE = (3, 96, 96)
IMAGE_BYTES = 3 * 96 * 96
URL = "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz"


def _folders(data_dir: Path) -> list[Path]:
    return [data_dir / "stl10" / "stl10_binary", data_dir / "stl10_binary"]


def _search(data_dir: Path) -> dict[str, tuple[Path, Path]]:
    found = {}
    for split, (x_name, y_name) in STL10_FILES.items():
        for folder in _folders(data_dir):
            x_path, y_path = folder / x_name, folder / y_name
            if x_path.is_file() != y_path.is_file():
                missing = y_path if x_path.is_file() else x_path
                raise ValueError(f"STL-10 {split} split is incomplete: {missing} is missing")
            if x_path.is_file():
                found[split] = (x_path, y_path)
                break
    return found


def _download(data_dir: Path) -> None:
    from torchvision.datasets import STL10  # heavy import, only when downloading

    STL10(root=str(data_dir / "stl10"), split="train", download=True)


def _missing_message(data_dir: Path) -> str:
    names = ", ".join(name for pair in STL10_FILES.values() for name in pair)
    return (
        f"no STL-10 files found in {_folders(data_dir)[0]} (also looked in "
        f"{_folders(data_dir)[1]}); expected the binary files {names}. Download them with "
        f"get_task('stl10_scale', download=True) (command line: --download), or unpack "
        f"{URL} into {data_dir / 'stl10'}"
    )


def find_stl10(data_dir: Path, download: bool = False) -> SplitFiles:
    """The STL-10 files present under ``data_dir``; downloads when none is and ``download``."""
    fetch = (lambda: _download(data_dir)) if download else None
    return locate_files(lambda: _search(data_dir), fetch, _missing_message(data_dir))


def _read_split(x_path: Path, y_path: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = np.fromfile(x_path, dtype=np.uint8)
    if raw.size == 0 or raw.size % IMAGE_BYTES:
        raise ValueError(
            f"{x_path} holds {raw.size} bytes, not a whole number of 3 x 96 x 96 images "
            f"({IMAGE_BYTES} bytes each): truncated or not STL-10"
        )
    # Column-major channels: the stored axes are (image, channel, column, row).
    images = raw.reshape(-1, 3, 96, 96).transpose(0, 1, 3, 2)
    labels = np.fromfile(y_path, dtype=np.uint8)
    if labels.size != len(images):
        raise ValueError(f"{y_path} holds {labels.size} labels but {x_path} {len(images)} images")
    if labels.min() < 1 or labels.max() > 10:
        bad = labels[(labels < 1) | (labels > 10)][0]
        raise ValueError(f"{y_path} holds label {int(bad)}; STL-10 labels are 1..10")
    return np.ascontiguousarray(images), labels.astype(np.int64) - 1


def read_stl10(files: SplitFiles) -> tuple[torch.Tensor, torch.Tensor]:
    """Pool the splits found: images uint8 ``[P, 3, 96, 96]`` (row-major) and labels int64
    ``[P]`` in 0..9. Raises ValueError naming the file when one is malformed."""
    parts = [_read_split(x_path, y_path) for x_path, y_path in files.splits.values()]
    images = torch.from_numpy(np.concatenate([p[0] for p in parts]))
    return images, torch.from_numpy(np.concatenate([p[1] for p in parts]))


def write_stl10_split(
    folder: str | Path, split: str, images: np.ndarray, labels: np.ndarray
) -> None:
    """Write images uint8 ``[n, 3, 96, 96]`` and labels 1..10 in the STL-10 binary format; for
    tests and for making small datasets in the real format."""
    if split not in STL10_FILES:
        raise ValueError(f"split {split!r} must be one of {tuple(STL10_FILES)}")
    if images.dtype != np.uint8 or images.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"images must be uint8 [n, 3, 96, 96], got {images.dtype} {images.shape}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    x_name, y_name = STL10_FILES[split]
    (folder / x_name).write_bytes(np.ascontiguousarray(images.transpose(0, 1, 3, 2)).tobytes())
    (folder / y_name).write_bytes(np.asarray(labels, dtype=np.uint8).tobytes())
