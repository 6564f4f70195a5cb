"""Fixtures: every test here runs against real Redis and real Valkey, each under a key prefix of its own."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from litestar_queues.backends.redis import RedisBackendConfig
from litestar_queues.backends.resp import RespBackend, RespBackendConfig
from litestar_queues.backends.valkey import ValkeyBackendConfig
from litestar_queues.clock import utc_now
from litestar_queues.records import new_record_id
from litestar_queues.testing.servers import server_url

FLAVORS: dict[str, tuple[type[RespBackendConfig], str, str]] = {
    "redis": (RedisBackendConfig, "LQ_REDIS_URL", "LQ_REDIS_BIN"),
    "valkey": (ValkeyBackendConfig, "LQ_VALKEY_URL", "LQ_VALKEY_BIN"),
}

BackendFactory = Callable[..., AbstractAsyncContextManager[RespBackend]]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=sorted(FLAVORS))
def flavor(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(flavor: str) -> str:
    return server_url(FLAVORS[flavor][1])


@pytest.fixture
def key_prefix() -> str:
    return f"lqtest:{new_record_id()}"


@pytest.fixture
def open_backend(flavor: str, server: str, key_prefix: str) -> BackendFactory:
    """Open a backend on the flavor's server (same prefix unless given); purge its keys afterwards."""
    config_class = FLAVORS[flavor][0]

    @asynccontextmanager
    async def factory(**options: Any) -> AsyncIterator[RespBackend]:
        options.setdefault("url", server)
        options.setdefault("key_prefix", key_prefix)
        backend = config_class(**options).create_backend()
        assert isinstance(backend, RespBackend)
        async with backend:
            try:
                yield backend
            finally:
                await backend.purge()

    return factory


@pytest.fixture
async def backend(open_backend: BackendFactory) -> AsyncIterator[RespBackend]:
    async with open_backend() as backend:
        yield backend


@pytest.fixture
def now() -> datetime:
    return utc_now()


@pytest.fixture
def config_class(flavor: str) -> type[RespBackendConfig]:
    return FLAVORS[flavor][0]


@pytest.fixture
def throwaway(flavor: str, tmp_path: Path) -> Iterator[ThrowawayServer]:
    """A server of the flavor's binary (``LQ_REDIS_BIN`` / ``LQ_VALKEY_BIN``) that the test may kill and restart."""
    server = ThrowawayServer(server_url(FLAVORS[flavor][2]), tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ThrowawayServer:
    """A server on a free port with an append-only file fsynced on every write, so a kill loses nothing."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--dir", str(self.directory),
        ]  # fmt: skip
        with (self.directory / "server.log").open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.binary} exited: {(self.directory / 'server.log').read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"{self.binary} did not answer on port {self.port}")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None
