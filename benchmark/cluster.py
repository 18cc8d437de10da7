"""Connecting the driver to Ray: a local Ray on 127.0.0.1, or an existing cluster.

Ray 2.5x specifics handled here: ``ray.init()`` without an address would join a cluster that
``ray start`` left on this machine, so a local run asks for ``address="local"``; a new local
cluster turns token authentication on and writes ``~/.ray/auth_token`` (Ray's default, kept),
while an explicit address only uses a token when told to, so the driver does when one exists;
and Tune's own tables and warnings are quieted unless ``verbose``.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import sysconfig
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

__all__ = ["connect", "outside_modules"]

_OUR_PACKAGES = {"sefl", "baselines", "benchmark", "reports"}


def outside_modules(specs: Sequence[str]) -> list[ModuleType]:
    """The top-level modules of ``module:factory`` models that Ray must ship to its workers:
    neither ours nor installed (a file beside the user's suite, say)."""
    installed = Path(sysconfig.get_paths()["purelib"]).resolve()
    modules = []
    for spec in specs:
        top = spec.partition(":")[0].split(".")[0]
        module = importlib.import_module(top)
        location = Path(getattr(module, "__file__", None) or installed).resolve()
        if top not in _OUR_PACKAGES and installed not in location.parents:
            modules.append(module)
    return modules


def _token_available() -> bool:
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return True
    return (Path.home() / ".ray" / "auth_token").is_file()


def _quiet() -> None:
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"  # the legacy reporter is silent at verbose=0
    # A checkpoint per epoch with num_to_keep=1 snapshots Tune's state each time; cheap here
    # (small JSON), but Tune warns about it.
    os.environ["TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S"] = "0"
    logging.getLogger("ray._private.authentication").setLevel(logging.ERROR)
    # Tune logs each failed trial's traceback; the summary names it and MLflow keeps it.
    logging.getLogger("ray.tune").setLevel(logging.CRITICAL)


def connect(address: str | None, *, num_cpus: int | None = None, cpus_per_trial: float = 1.0,
            gpus_per_trial: float = 0.0, modules: Sequence[ModuleType] = (),
            verbose: bool = False) -> None:
    """Start a local Ray (``address`` None) or join the cluster at ``address``.

    Raises ValueError when Ray cannot start or be reached, or when the cluster has fewer CPUs
    or GPUs than one trial asks for (it would wait for them forever).
    """
    if address is None and "ray" not in sys.modules:
        # Ray's switch for single-machine clusters: every Ray server binds 127.0.0.1 only.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    if address and "RAY_AUTH_MODE" not in os.environ and _token_available():
        # A cluster started after a local run (which created ~/.ray/auth_token) expects it.
        os.environ["RAY_AUTH_MODE"] = "token"
    if not verbose:
        _quiet()
    import ray

    try:
        ray.init(address=address or "local", num_cpus=num_cpus, include_dashboard=False,
                 log_to_driver=verbose,
                 logging_level=logging.INFO if verbose else logging.WARNING,
                 runtime_env={"py_modules": list(modules)} if modules else None)
    except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as err:
        raise ValueError(f"cannot start or reach Ray (--address {address or 'local'}): "
                         f"{err}") from err
    have = ray.cluster_resources()
    for flag, resource, wanted in (("--cpus-per-trial", "CPU", cpus_per_trial),
                                   ("--gpus-per-trial", "GPU", gpus_per_trial)):
        if wanted > have.get(resource, 0):
            ray.shutdown()
            raise ValueError(f"{flag} {wanted:g}: the Ray cluster has "
                             f"{have.get(resource, 0):g} {resource}s")
