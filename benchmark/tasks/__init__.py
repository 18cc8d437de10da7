"""Scale tasks (datasets) of the benchmark: MNIST-scale ("fourier" and "sesn" protocols),
STL-10-scale and MNIST-1D-scale, built from the real files, cached and seeded.

    from benchmark.tasks import get_task
    task = get_task("mnist_scale", protocol="fourier", seed=0)
    for x, y, r in task.loader("train", batch_size=64, epoch=0): ...
"""

from benchmark.tasks.catalog import default_cache_dir, default_data_dir, get_task, list_tasks
from benchmark.tasks.task import Task

__all__ = ["Task", "default_cache_dir", "default_data_dir", "get_task", "list_tasks"]
