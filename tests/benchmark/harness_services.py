"""Services the runner's tests start and stop themselves: a private PostgreSQL cluster in a
temporary folder and an ``mlflow server`` on it, both on 127.0.0.1."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness_checks import free_port, start, stop


def postgres_bin() -> Path | None:
    """The folder of PostgreSQL's server programs (Debian keeps them out of PATH)."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(versions[-1]).parent if versions else None


def _as_server_user(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root: as root, run it as the postgres account.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextmanager
def postgres_cluster() -> Iterator[str]:
    """A fresh PostgreSQL cluster on 127.0.0.1 and a free port (trust authentication for
    user ``sefl``); yields the URI of a database for it, stops and removes it after."""
    bin_dir = postgres_bin()
    assert bin_dir is not None
    # Short path: the server's socket path has a length limit.
    folder = Path(tempfile.mkdtemp(prefix="pg", dir="/tmp"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    data, port = folder / "data", free_port()
    ctl = [str(bin_dir / "pg_ctl"), "-D", str(data)]
    subprocess.run(_as_server_user([str(bin_dir / "initdb"), "-D", str(data), "-U", "sefl",
                                    "--auth=trust", "-E", "UTF8"]),
                   check=True, capture_output=True)
    subprocess.run(_as_server_user([*ctl, "-o", f"-h 127.0.0.1 -p {port} -k {folder}", "-l",
                                    str(folder / "server.log"), "-w", "start"]),
                   check=True, capture_output=True)
    try:
        yield f"postgresql://sefl@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_server_user([*ctl, "-m", "fast", "-w", "stop"]), check=False,
                       capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def wait_for(url: str, process: subprocess.Popen, log: Path, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while True:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            assert time.monotonic() < deadline, f"{url} did not answer; {log.read_text()[-2000:]}"
            time.sleep(0.5)


class MlflowServer:
    """``mlflow server`` on a database and an artifact folder, at a fixed port, so that it can
    be stopped and started again at the same address."""

    def __init__(self, backend: str, artifacts: Path, folder: Path, env: dict[str, str]):
        self.backend, self.artifacts, self.folder, self.env = backend, artifacts, folder, env
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = self.folder / f"mlflow-{self.starts}.log"
        self.process = start([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1",
                              "--port", str(self.port), "--backend-store-uri", self.backend,
                              "--artifacts-destination", str(self.artifacts),
                              "--workers", "1"], self.folder, self.env, log)
        wait_for(f"{self.uri}/health", self.process, log)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None
