"""``get_task`` and ``list_tasks``: names -> built (or cached) tasks."""

from __future__ import annotations

import logging
import os
import stat
import time
from pathlib import Path

from benchmark.tasks.cache import cache_file, cache_key, load_or_build
from benchmark.tasks.mnist1d_scale import MNIST1D_SCALE
from benchmark.tasks.mnist_scale import MNIST_SCALE
from benchmark.tasks.options import build_options, resolve_options
from benchmark.tasks.spec import TaskSpec, assemble
from benchmark.tasks.stl10 import STL10_SCALE
from benchmark.tasks.task import Task

__all__ = ["default_cache_dir", "default_data_dir", "get_task", "list_tasks"]

logger = logging.getLogger(__name__)
_SPECS: dict[str, TaskSpec] = {
    spec.name: spec for spec in (MNIST_SCALE, STL10_SCALE, MNIST1D_SCALE)
}


def list_tasks() -> list[str]:
    """Sorted task names."""
    return sorted(_SPECS)


def default_data_dir() -> Path:
    """``$SEFL_DATA_DIR`` when set, else ``./data``."""
    return Path(os.environ.get("SEFL_DATA_DIR") or "data")


def default_cache_dir(data_dir: Path) -> Path:
    """``$SEFL_CACHE_DIR`` when set; ``./data/cache`` when ``data_dir`` has no write permission
    (a shared, read-only copy stays untouched); else ``<data_dir>/cache``."""
    if os.environ.get("SEFL_CACHE_DIR"):
        return Path(os.environ["SEFL_CACHE_DIR"])
    # The mode bits, not os.access: root may write anywhere, but should not write there.
    if data_dir.is_dir() and stat.S_IMODE(data_dir.stat().st_mode) & 0o222 == 0:
        return Path("data", "cache")
    return data_dir / "cache"


def get_task(
    name: str,
    data_dir: str | Path | None = None,
    *,
    cache_dir: str | Path | None = None,
    **protocol,
) -> Task:
    """Build task ``name`` under its protocol options, or load it from the cache.

    data_dir: where the source data lives (None: ``default_data_dir()``); cache_dir: where
    built tasks are cached (None: ``default_cache_dir(data_dir)``). Unknown names, options or values,
    and missing or malformed data raise ValueError naming them. When the sizes had to be
    reduced (part of the data missing), one warning with the sizes used is logged.
    """
    if name not in _SPECS:
        raise ValueError(f"unknown task {name!r}; tasks: {', '.join(list_tasks())}")
    spec = _SPECS[name]
    options = resolve_options(name, spec.options, protocol)
    spec.check(options)
    layout, train_augment = spec.layout(options)
    start = time.perf_counter()
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    source = spec.locate(data_dir, options)
    key = cache_key(
        {
            "task": name,
            "options": build_options(spec.options, options),
            "source": source.fingerprint(),
        }
    )
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir(data_dir)
    path = cache_file(folder, name, key)
    tensors, metadata, hit = load_or_build(path, key, lambda: spec.build(source, options))
    task = assemble(name, layout, train_augment, tensors, metadata, options)
    task.metadata.update(
        cache_file=str(path), loaded_from_cache=hit, seconds=time.perf_counter() - start
    )
    if metadata["reduced_size_warning"]:
        logger.warning(metadata["reduced_size_warning"])
    return task
