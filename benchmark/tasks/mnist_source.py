"""Find and read the MNIST IDX files in a data directory, pooling the splits present.

Accepted layouts (searched in this order): ``<data_dir>/mnist/`` (flat), torchvision's
``<data_dir>/mnist/MNIST/raw/`` and ``<data_dir>/MNIST/raw/``; each file plain or ``.gz``.
``download=True`` fetches missing files through torchvision into ``<data_dir>/MNIST/raw/``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from benchmark.tasks.files import SplitFiles, locate_files
from benchmark.tasks.idx import IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, read_idx, write_idx

__all__ = ["MNIST_FILES", "find_mnist", "read_mnist", "write_mnist_split"]

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"


def _folders(data_dir: Path) -> list[Path]:
    return [data_dir / "mnist", data_dir / "mnist" / "MNIST" / "raw", data_dir / "MNIST" / "raw"]


def _find_file(folders: list[Path], name: str) -> Path | None:
    for folder in folders:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _search(data_dir: Path) -> dict[str, tuple[Path, Path]]:
    folders = _folders(data_dir)
    found = {}
    for split, (images_name, labels_name) in MNIST_FILES.items():
        images, labels = _find_file(folders, images_name), _find_file(folders, labels_name)
        if (images is None) != (labels is None):
            present, missing = (images, labels_name) if labels is None else (labels, images_name)
            raise ValueError(
                f"MNIST {split} split is incomplete: found {present} but not {missing}[.gz] "
                f"in {present.parent}"
            )
        if images is not None:
            found[split] = (images, labels)
    return found


def _download(data_dir: Path) -> None:
    """Fetch both MNIST splits through torchvision into ``<data_dir>/MNIST/raw``."""
    from torchvision.datasets import MNIST  # heavy import, only when downloading

    for train in (True, False):
        MNIST(root=str(data_dir), train=train, download=True)


def _missing_message(data_dir: Path) -> str:
    names = ", ".join(f"{name}[.gz]" for pair in MNIST_FILES.values() for name in pair)
    return (
        f"no MNIST files found in {data_dir / 'mnist'} (also looked in "
        f"{', '.join(str(f) for f in _folders(data_dir)[1:])}); expected the IDX files {names}. "
        f"Download them with get_task('mnist_scale', download=True) (command line: --download), "
        f"or copy them from {MIRROR} into {data_dir / 'mnist'}, or point --data-dir / "
        f"SEFL_DATA_DIR at the folder that holds mnist/"
    )


def find_mnist(data_dir: Path, download: bool = False) -> SplitFiles:
    """The MNIST files present under ``data_dir``; downloads when none is and ``download``.

    Raises ValueError naming the folder, the expected file names and how to download them when
    no split is present (and downloading is off or fails).
    """
    fetch = (lambda: _download(data_dir)) if download else None
    return locate_files(lambda: _search(data_dir), fetch, _missing_message(data_dir))


def read_mnist(files: SplitFiles) -> tuple[torch.Tensor, torch.Tensor]:
    """Pool the splits found: images uint8 ``[P, 1, 28, 28]`` and labels int64 ``[P]`` (0..9).

    Raises ValueError naming the file when a file is not MNIST-shaped or a label is not 0..9.
    """
    images, labels = [], []
    for images_path, labels_path in files.splits.values():
        x = read_idx(images_path, IDX_IMAGES_MAGIC)
        y = read_idx(labels_path, IDX_LABELS_MAGIC)
        if x.ndim != 3 or x.shape[1:] != (28, 28):
            raise ValueError(f"{images_path} holds images of shape {x.shape[1:]}, expected 28 x 28")
        if len(y) != len(x):
            raise ValueError(
                f"{labels_path} holds {len(y)} labels but {images_path} {len(x)} images"
            )
        if y.size and y.max() > 9:
            raise ValueError(f"{labels_path} holds label {int(y.max())}; MNIST labels are 0..9")
        images.append(x)
        labels.append(y)
    pooled = torch.from_numpy(np.concatenate(images)).unsqueeze(1)
    return pooled, torch.from_numpy(np.concatenate(labels).astype(np.int64))


def write_mnist_split(
    folder: str | Path, split: str, images: np.ndarray, labels: np.ndarray, gz: bool = True
) -> None:
    """Write images uint8 ``[n, 28, 28]`` and labels ``[n]`` as the IDX files of an MNIST split
    (``.gz`` when ``gz``); for tests and for making small datasets in the real format."""
    if split not in MNIST_FILES:
        raise ValueError(f"split {split!r} must be one of {tuple(MNIST_FILES)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    images_name, labels_name = MNIST_FILES[split]
    write_idx(folder / f"{images_name}{suffix}", np.asarray(images, dtype=np.uint8))
    write_idx(folder / f"{labels_name}{suffix}", np.asarray(labels, dtype=np.uint8))
