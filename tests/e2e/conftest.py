"""Real processes for end-to-end tests: the example app under uvicorn / ``litestar run``, and the ``litestar`` CLI.

Every wait is on a condition (a port answering, a process exiting, a record reaching a status) with a deadline;
processes are stopped by pid and their output is attached to failures.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(check: Callable[[], T | None], *, timeout: float = 15.0, what: str = "condition") -> T:
    """Call ``check`` until it returns something other than None/False; fail after ``timeout`` seconds.

    Checks start 10 ms apart and back off to 200 ms, so a long wait does not steal CPU from the processes under test.
    """
    deadline = time.monotonic() + timeout
    pause = 0.01
    while True:
        value = check()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(pause)
        pause = min(pause * 1.5, 0.2)


class Process:
    """A child process whose combined output goes to a file (no pipe to fill up)."""

    def __init__(
        self,
        args: Sequence[str],
        env: dict[str, str] | None = None,
        *,
        new_session: bool = False,
        cwd: Path = ROOT,
    ) -> None:
        self.args = list(args)
        self._log = tempfile.NamedTemporaryFile(prefix="lq-e2e-", suffix=".log", delete=False)  # noqa: SIM115
        self._group = new_session
        self.popen = subprocess.Popen(
            self.args,
            cwd=cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200", **(env or {})},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=new_session,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def output(self) -> str:
        return Path(self._log.name).read_text(errors="replace")

    def signal(self, signum: int) -> None:
        """Signal the process, or its whole process group when it was started in a session of its own."""
        if self._group:
            os.killpg(self.popen.pid, signum)
        else:
            self.popen.send_signal(signum)

    def wait(self, timeout: float = 20.0) -> int:
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.args} did not exit within {timeout}s; output:\n{self.output}") from None

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, then wait; kill (and fail) if it hangs."""
        if self.popen.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                return self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
                raise AssertionError(f"{self.args} ignored SIGTERM for {timeout}s; output:\n{self.output}") from None
        return self.popen.returncode

    def close(self) -> None:
        """Make sure nothing is left running: SIGTERM (lets a supervisor stop its children), then SIGKILL."""
        if self.popen.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.popen.wait()
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)

    def wait_for_output(self, text: str, timeout: float = 20.0) -> None:
        def seen() -> bool:
            if self.popen.poll() is not None and text not in self.output:
                raise AssertionError(f"{self.args} exited with {self.popen.returncode}:\n{self.output}")
            return text in self.output

        wait_for(seen, timeout=timeout, what=f"{text!r} in the output of {self.args}")


class Server(Process):
    """An HTTP server process on 127.0.0.1:<port>."""

    def __init__(
        self, args: Sequence[str], port: int, env: dict[str, str] | None = None, *, new_session: bool = False
    ) -> None:
        super().__init__(args, env, new_session=new_session)
        self.url = f"http://127.0.0.1:{port}"

    def wait_ready(self, timeout: float = 30.0) -> None:
        def answers() -> bool:
            if self.popen.poll() is not None:
                raise AssertionError(f"server exited with {self.popen.returncode}:\n{self.output}")
            try:
                return httpx.get(self.url + "/", timeout=1.0).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(answers, timeout=timeout, what=f"{self.url} to answer")


def uvicorn_args(port: int, app: str = "examples.app:app", workers: int = 1) -> list[str]:
    return [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]


def litestar_args(*args: str, app: str = "examples.app:app") -> list[str]:
    return [sys.executable, "-m", "litestar", "--app", app, *args]


class Launcher:
    """Starts processes for one test and cleans all of them up afterwards.

    Its processes share a database of the example app's own (``LITESTAR_QUEUES_EXAMPLE_DATABASE``): a new one, or
    another launcher's (``shares``), as a web process and its workers do.
    """

    def __init__(self, shares: Launcher | None = None) -> None:
        self.started: list[Process] = []
        self._directory: Path | None = None
        if shares is None:
            self._directory = Path(tempfile.mkdtemp(prefix="lq-e2e-app-"))
            self.database_url = f"sqlite+aiosqlite:///{self._directory / 'example.db'}"
        else:
            self.database_url = shares.database_url

    def _env(self, env: dict[str, str] | None) -> dict[str, str]:
        return {"LITESTAR_QUEUES_EXAMPLE_DATABASE": self.database_url, **(env or {})}

    def process(self, args: Sequence[str], env: dict[str, str] | None = None, cwd: Path = ROOT) -> Process:
        process = Process(args, self._env(env), cwd=cwd)
        self.started.append(process)
        return process

    def uvicorn(self, env: dict[str, str] | None = None, app: str = "examples.app:app", workers: int = 1) -> Server:
        """The app under uvicorn on a free port, in a process group of its own (not waited for: ``wait_ready``)."""
        port = free_port()
        server = Server(uvicorn_args(port, app, workers), port, self._env(env), new_session=True)
        self.started.append(server)
        return server

    def litestar_run(self, *options: str, env: dict[str, str] | None = None) -> Server:
        """``litestar run`` of the example app on a free port, in a process group of its own (not waited for)."""
        port = free_port()
        args = litestar_args("run", "--host", "127.0.0.1", "--port", str(port), *options)
        server = Server(args, port, self._env(env), new_session=True)
        self.started.append(server)
        return server

    def cli(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``litestar --app examples.app:app <args>`` to completion, as a user would."""
        return self.cli_together(args, env=env)[0]

    def cli_together(
        self, *commands: Sequence[str], env: dict[str, str] | None = None, timeout: float = 60.0
    ) -> list[subprocess.CompletedProcess[str]]:
        """Run several independent CLI commands at once (each pays for importing Litestar) and wait for all."""
        running = [
            subprocess.Popen(
                litestar_args(*command),
                cwd=ROOT,
                env={**os.environ, "COLUMNS": "200", **self._env(env)},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for command in commands
        ]
        results = []
        for command, popen in zip(commands, running, strict=False):
            stdout, stderr = popen.communicate(timeout=timeout)
            results.append(subprocess.CompletedProcess(list(command), popen.returncode, stdout, stderr))
        return results

    def close(self) -> None:
        for process in self.started:
            process.close()
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)


@pytest.fixture
def launch(module_launch: Launcher) -> Iterator[Launcher]:
    """Processes of one test, on the example database of the module's processes."""
    launcher = Launcher(shares=module_launch)
    yield launcher
    launcher.close()


@pytest.fixture(scope="module")
def module_launch() -> Iterator[Launcher]:
    """Like ``launch``, for processes shared by a module's tests."""
    launcher = Launcher()
    yield launcher
    launcher.close()


@pytest.fixture(name="wait_for")
def wait_for_fixture() -> Callable[..., Any]:
    return wait_for


@pytest.fixture(scope="module")
def example_server() -> Iterator[Server]:
    """The example app as a user runs it (memory backend, in-app worker), shared by a module's tests."""
    launcher = Launcher()
    server = launcher.uvicorn()
    try:
        server.wait_ready()
        yield server
        # uvicorn re-raises the signal after a graceful shutdown, so the exit status says SIGTERM.
        assert server.stop() in (0, -signal.SIGTERM), server.output
        assert "Application shutdown complete" in server.output
        assert "Traceback" not in server.output, server.output
    finally:
        launcher.close()
