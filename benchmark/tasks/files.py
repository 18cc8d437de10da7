"""The source files of a file-based dataset: which splits were found, and finding them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SplitFiles", "locate_files"]


@dataclass(frozen=True)
class SplitFiles:
    """The (images, labels) files of each split found, in pooling order (train, test)."""

    splits: dict[str, tuple[Path, Path]]

    def fingerprint(self) -> list[list]:
        """Names and sizes of the files: a cache built from other files is not reused."""
        return [[p.name, p.stat().st_size] for pair in self.splits.values() for p in pair]

    def describe(self) -> dict:
        """Where the data came from, for the task's metadata."""
        return {
            "sources": [str(p) for pair in self.splits.values() for p in pair],
            "splits_present": list(self.splits),
        }


def locate_files(
    search: Callable[[], dict[str, tuple[Path, Path]]],
    download: Callable[[], None] | None,
    missing_message: str,
) -> SplitFiles:
    """The files ``search()`` finds; when it finds none, ``download()`` (None: not allowed) and
    search again. Raises ValueError with ``missing_message`` when there still are none."""
    found = search()
    if not found and download is not None:
        try:
            download()
        except (OSError, RuntimeError) as err:
            raise ValueError(f"{missing_message}. Download failed: {err}") from err
        found = search()
    if not found:
        raise ValueError(missing_message)
    return SplitFiles(found)
