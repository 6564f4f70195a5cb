"""The shared conformance suite against a real Redis server (``LQ_REDIS_URL``)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis.asyncio import Redis

from litestar_queues.backends.redis import RedisBackend, RedisBackendConfig
from litestar_queues.records import new_record_id
from litestar_queues.testing import BackendConformance
from litestar_queues.testing.servers import server_url


class TestRedisBackend(BackendConformance):
    @pytest.fixture
    def config(self) -> RedisBackendConfig:
        """A key prefix of its own per test, so tests never see each other's records."""
        return RedisBackendConfig(url=server_url("LQ_REDIS_URL"), key_prefix=f"lqtest:{new_record_id()}")

    @pytest.fixture
    async def backend(self, config: RedisBackendConfig) -> AsyncIterator[RedisBackend]:
        async with config.create_backend() as backend:
            try:
                yield backend
            finally:
                await backend.purge()

    @pytest.fixture
    async def second_backend(self, backend: RedisBackend, config: RedisBackendConfig) -> AsyncIterator[RedisBackend]:
        async with config.create_backend() as other:
            yield other

    @pytest.fixture
    async def corrupt_record(self, config: RedisBackendConfig) -> AsyncIterator[Callable[[str], Awaitable[str]]]:
        """The suite's hook: replace the ``args`` of a stored record's body with a JSON string."""
        client = Redis.from_url(server_url("LQ_REDIS_URL"))

        async def corrupt(record_id: str) -> str:
            key = f"{config.key_prefix}:b:{record_id}"
            body = json.loads(await client.get(key))
            body[1] = "not a list"
            await client.set(key, json.dumps(body))
            return "args"

        yield corrupt
        await client.aclose()
