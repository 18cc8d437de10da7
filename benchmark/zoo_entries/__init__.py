"""Registration modules of the zoo, one per group of models."""

import importlib

_GROUPS = ("sefl_models", "mnist_classic", "mnist_steerable", "stl_1d", "stl_steerable")


def register_all() -> None:
    """Import every group once; each registers its models on import."""
    for group in _GROUPS:
        importlib.import_module(f"benchmark.zoo_entries.{group}")
