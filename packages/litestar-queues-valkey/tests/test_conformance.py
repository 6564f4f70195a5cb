"""The shared conformance suite against a real Valkey server (``LQ_VALKEY_URL``) and a real 3-shard Valkey cluster
(``LQ_VALKEY_CLUSTER_URL``)."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from litestar_queues.backends.resp.testing import corrupt_args, corrupt_event
from litestar_queues.backends.valkey import ValkeyBackend, ValkeyBackendConfig
from litestar_queues.records import new_record_id
from litestar_queues.testing import BackendConformance
from litestar_queues.testing.servers import server_url


class TestValkeyBackend(BackendConformance):
    @pytest.fixture(params=["LQ_VALKEY_URL", "LQ_VALKEY_CLUSTER_URL"], ids=["server", "cluster"])
    def config(self, request: pytest.FixtureRequest) -> ValkeyBackendConfig:
        """A key prefix of its own per test, so tests never see each other's records."""
        return ValkeyBackendConfig(url=server_url(request.param), key_prefix=f"lqtest:{new_record_id()}")

    @pytest.fixture
    async def backend(self, config: ValkeyBackendConfig) -> AsyncIterator[ValkeyBackend]:
        async with config.create_backend() as backend:
            try:
                yield backend
            finally:
                await backend.purge()

    @pytest.fixture
    async def second_backend(self, backend: ValkeyBackend, config: ValkeyBackendConfig) -> AsyncIterator[ValkeyBackend]:
        async with config.create_backend() as other:
            yield other

    @pytest.fixture
    def corrupt_record(self, backend: ValkeyBackend) -> Callable[[str], Awaitable[str]]:
        return functools.partial(corrupt_args, backend)

    @pytest.fixture
    def corrupt_event(self, backend: ValkeyBackend) -> Callable[[str], Awaitable[None]]:
        return functools.partial(corrupt_event, backend)

    @pytest.fixture
    def limit_history_scan(self, backend: ValkeyBackend) -> Callable[[int], None]:
        return lambda window: setattr(backend, "event_scan_window", window)
