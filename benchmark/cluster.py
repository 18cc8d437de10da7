"""Connecting the driver to Ray: a local Ray on 127.0.0.1, or an existing cluster.

Ray 2.5x specifics handled here: ``ray.init()`` without an address would join a cluster that
``ray start`` left on this machine, so a local run asks for ``address="local"``; a new local
cluster turns token authentication on and writes ``~/.ray/auth_token`` (Ray's default, kept),
while an explicit address only uses a token when told to, so the driver does when one exists;
and Tune's own tables and warnings are quieted unless ``verbose``, Ray's driver-side logging
going to a file instead of the console.

A cluster can die under the driver (its processes killed, its head machine gone). Ray's core
worker then waits a minute for the GCS and ends the process with a dump on stderr; a
``ClusterWatch`` notices within seconds instead (the GCS or the driver's raylet stops taking
connections) so that the runner can close its records and say how to resume.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import sys
import sysconfig
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

__all__ = ["DEFAULT_GPU_SHARE", "ClusterWatch", "connect", "gpu_share", "log_ray_to_file",
           "outside_modules"]

_OUR_PACKAGES = {"sefl", "baselines", "benchmark", "reports"}

# The GPU a trial of each task gets by default on a cluster with GPUs (README "Run on a
# cluster"): MNIST-1D nets (40-72 samples, a few thousand weights) and MNIST-scale nets
# (28-56 px, batches of 128, under a million weights) leave most of a GPU idle, so several
# share one; STL-10's 96 px RGB nets at batch 128 fill one.
DEFAULT_GPU_SHARE = {"mnist1d_scale": 0.25, "mnist_scale": 0.5, "stl10_scale": 1.0}


def gpu_share(task: str, cluster_gpus: float, asked: float | None) -> float:
    """The GPUs one trial of ``task`` gets: ``asked`` (``--gpus-per-trial``, 0 forcing the
    CPU) when given, else none on a cluster without GPUs, else the task's default share
    (a whole GPU for a task without one), never more than the cluster has."""
    if asked is not None:
        return asked
    if cluster_gpus <= 0:
        return 0.0
    return min(DEFAULT_GPU_SHARE.get(task, 1.0), cluster_gpus)


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
    # A checkpoint per epoch snapshots Tune's state each time; cheap here
    # (small JSON), but Tune warns about it.
    os.environ["TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S"] = "0"
    logging.getLogger("ray._private.authentication").setLevel(logging.ERROR)
    # Tune logs each failed trial's traceback; the summary names it and MLflow keeps it.
    logging.getLogger("ray.tune").setLevel(logging.CRITICAL)


def log_ray_to_file(path: Path) -> None:
    """Send the driver's Ray and Tune log records to ``path`` instead of the console."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("ray")
    for old in list(logger.handlers):
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.propagate = False
    # The cluster's error messages (a node marked dead, a raylet's last log lines) are printed
    # by the driver's error listener straight to the console: they go to the file too. Ray
    # looks this function up by name on each message, so replacing it takes effect at once.
    from ray._private import worker

    def to_file(data: dict, ignore_prefix: bool = False) -> None:
        with path.open("a") as out:
            out.writelines(f"({data.get('pid')}) {line}\n" for line in data.get("lines", []))

    worker.print_to_stdstream = to_file


def connect(address: str | None, *, num_cpus: int | None = None, cpus_per_trial: float = 1.0,
            gpus_per_trial: float = 0.0, modules: Sequence[ModuleType] = (),
            verbose: bool = False, log_file: Path | None = None) -> dict[str, float]:
    """Start a local Ray (``address`` None) or join the cluster at ``address``; the
    cluster's resources (``{"CPU": 2.0, "GPU": 1.0, ...}``).

    Raises ValueError when Ray cannot start or be reached, or when the cluster has fewer CPUs
    or GPUs than one trial asks for (it would wait for them forever).
    """
    loopback = address is not None and address.rpartition(":")[0] in ("127.0.0.1", "localhost")
    if (address is None or loopback) and "ray" not in sys.modules:
        # Ray's switch for single-machine clusters: every Ray server binds 127.0.0.1 only, and
        # a head at 127.0.0.1 is not rewritten to this machine's network address.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    if address and "RAY_AUTH_MODE" not in os.environ and _token_available():
        # A cluster started after a local run (which created ~/.ray/auth_token) expects it.
        os.environ["RAY_AUTH_MODE"] = "token"
    if not verbose:
        _quiet()
    import ray

    if log_file is not None:
        log_ray_to_file(log_file)  # before init: it logs too
    try:
        ray.init(address=address or "local", num_cpus=num_cpus, include_dashboard=False,
                 log_to_driver=verbose,
                 logging_level=logging.INFO if verbose else logging.WARNING,
                 runtime_env={"py_modules": list(modules)} if modules else None)
    except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as err:
        raise ValueError(f"cannot start or reach Ray (--address {address or 'local'}): "
                         f"{err}") from err
    if log_file is not None:
        log_ray_to_file(log_file)  # init sets its own handlers up again
    have = ray.cluster_resources()
    for flag, resource, wanted in (("--cpus-per-trial", "CPU", cpus_per_trial),
                                   ("--gpus-per-trial", "GPU", gpus_per_trial)):
        if wanted > have.get(resource, 0):
            ray.shutdown()
            raise ValueError(f"{flag} {wanted:g}: the Ray cluster has "
                             f"{have.get(resource, 0):g} {resource}s")
    return have


def _answers(address: str, timeout_s: float = 1.0) -> bool:
    """Whether ``host:port`` accepts a TCP connection."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            return True
    except OSError:
        return False


class ClusterWatch:
    """Checks, every ``interval_s`` on a thread of its own, that the connected cluster's GCS
    and this driver's raylet still take connections; calls ``on_lost(description)`` once,
    from that thread, when one has not for ``grace_s`` (a restart of either takes longer)."""

    def __init__(self, on_lost: Callable[[str], None], interval_s: float = 0.5,
                 grace_s: float = 2.0):
        import ray

        node = ray._private.worker.global_worker.node
        self.endpoints = {"the GCS": ray.get_runtime_context().gcs_address,
                          "this machine's raylet":
                              f"{node.node_ip_address}:{node.node_manager_port}"}
        self.on_lost, self.interval_s, self.grace_s = on_lost, interval_s, grace_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="cluster-watch", daemon=True)

    def dead(self) -> str | None:
        """The first endpoint that does not answer now, described; None when all do."""
        for name, address in self.endpoints.items():
            if not _answers(address):
                return f"{name} at {address} stopped answering"
        return None

    def _watch(self) -> None:
        since = None
        while not self._stop.wait(self.interval_s):
            problem = self.dead()
            if problem is None:
                since = None
            elif since is None:
                since = time.monotonic()
            elif time.monotonic() - since >= self.grace_s:
                self.on_lost(problem)
                return

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
