"""Real ``litestar queues run`` processes of ``chaos_app.py`` against the shared servers (each test under a prefix of
its own) or a private one, with their ledgers and logs, stopped by pid after the test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ledger import LedgerLine, read_ledgers  # noqa: E402

from litestar_queues.testing import server_url  # noqa: E402

SHARED_URLS = {
    "redis": "LQ_REDIS_URL",
    "valkey": "LQ_VALKEY_URL",
    "postgres": "LQ_POSTGRES_DSN",
    "mariadb": "LQ_MARIADB_DSN",
    "redis_cluster": "LQ_REDIS_CLUSTER_URL",
    "valkey_cluster": "LQ_VALKEY_CLUSTER_URL",
}
BACKENDS = ("redis", "valkey", "postgres", "sqlite", "mariadb", "redis_cluster", "valkey_cluster")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def backend_url(backend: str, folder: Path) -> str:
    """The shared server of ``backend`` (a SQLite file in ``folder``)."""
    if backend == "sqlite":
        return f"sqlite:///{folder / 'queue.db'}"
    return server_url(SHARED_URLS[backend])


class WorkerProcess:
    """One ``litestar queues run`` of the chaos app; its output goes to a file."""

    def __init__(self, env: dict[str, str], log: Path, *options: str) -> None:
        self.log = log
        command = [sys.executable, "-m", "litestar", "--app-dir", str(HERE), "--app", "chaos_app:app", "queues", "run"]
        with log.open("wb") as out:
            self.popen = subprocess.Popen([*command, *options], env=env, stdout=out, stderr=subprocess.STDOUT)

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_output(self, text: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if self.popen.poll() is not None:
                raise AssertionError(f"worker exited with {self.popen.returncode} before {text!r}:\n{self.output}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} in the worker's output after {timeout}s:\n{self.output}")
            time.sleep(0.05)

    def exit_code(self, timeout: float) -> int:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the worker did not exit within {timeout}s:\n{self.output}") from None


class Chaos:
    """Settings for worker processes of one test (one backend, one prefix, one ledger folder) and their cleanup."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ledger = folder / "ledger"
        self.ledger.mkdir(parents=True, exist_ok=True)
        self.prefix = f"c{uuid.uuid4().hex[:10]}"
        self.url = ""
        self.settings: dict[str, str] = {"LQ_CHAOS_STALE": "30", "LQ_CHAOS_HEARTBEAT": "1", "LQ_CHAOS_MAINTENANCE": "5"}
        self.started: list[WorkerProcess] = []

    def env(self) -> dict[str, str]:
        assert self.url, "set the backend URL first"
        values = {"LQ_CHAOS_URL": self.url, "LQ_CHAOS_PREFIX": self.prefix, "LQ_CHAOS_LEDGER": str(self.ledger)}
        return {**os.environ, "PYTHONUNBUFFERED": "1", **self.settings, **values}

    def worker(self, *options: str) -> WorkerProcess:
        process = WorkerProcess(self.env(), self.folder / f"worker-{len(self.started)}.log", *options)
        self.started.append(process)
        return process

    def lines(self, record_id: str) -> list[LedgerLine]:
        return [line for line in read_ledgers(self.ledger) if line.record == record_id]

    def close(self) -> None:
        for process in self.started:
            if process.popen.poll() is None:
                process.popen.send_signal(signal.SIGKILL)
                process.popen.wait()


@pytest.fixture
def make_chaos(tmp_path: Path) -> Iterator[Callable[[], Chaos]]:
    """``make_chaos()``: a :class:`Chaos` of its own (a folder, a prefix), as many as a test needs."""
    made: list[Chaos] = []

    def make() -> Chaos:
        made.append(Chaos(tmp_path / f"chaos-{len(made)}"))
        return made[-1]

    try:
        yield make
    finally:
        for setup in made:
            setup.close()


@pytest.fixture
def chaos(make_chaos: Callable[[], Chaos]) -> Chaos:
    return make_chaos()


def until(check: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)
