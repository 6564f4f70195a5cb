"""Configuration and client wiring of ``RedisBackendConfig`` and ``ValkeyBackendConfig``."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta
from typing import Any

import pytest
import redis.asyncio
import valkey.asyncio

from litestar_queues.backend import BackendConfig
from litestar_queues.backends.redis import RedisBackend, RedisBackendConfig
from litestar_queues.backends.resp import RespBackendConfig, describe_server, redact_url
from litestar_queues.backends.valkey import ValkeyBackend, ValkeyBackendConfig
from litestar_queues.errors import ConfigurationError
from litestar_queues.records import TaskRecord, new_record_id

CLIENTS: dict[str, Any] = {"redis": redis.asyncio.Redis, "valkey": valkey.asyncio.Valkey}
POOLS: dict[str, Any] = {"redis": redis.asyncio.ConnectionPool, "valkey": valkey.asyncio.ConnectionPool}


def test_import_names() -> None:
    assert RedisBackendConfig(url="redis://localhost:6379/0").create_backend().__class__ is RedisBackend
    assert ValkeyBackendConfig(url="valkey://localhost:6379/0").create_backend().__class__ is ValkeyBackend
    assert RedisBackend.name == "redis" and ValkeyBackend.name == "valkey"


@pytest.mark.parametrize("config_type", [RedisBackendConfig, ValkeyBackendConfig])
def test_configs_satisfy_the_backend_config_protocol(config_type: type[RespBackendConfig]) -> None:
    assert isinstance(config_type(), BackendConfig)


def test_from_url_and_defaults() -> None:
    redis_config = RedisBackendConfig.from_url("redis://example:6380/2")
    assert isinstance(redis_config, RedisBackendConfig) and redis_config.url == "redis://example:6380/2"
    valkey_config = ValkeyBackendConfig.from_url("valkey://example:6380/2")
    assert isinstance(valkey_config, ValkeyBackendConfig) and valkey_config.effective_url == "valkey://example:6380/2"
    assert RedisBackendConfig().effective_url == "redis://localhost:6379/0"
    assert ValkeyBackendConfig().effective_url == "valkey://localhost:6379/0"
    assert RedisBackendConfig("redis://positional/0").url == "redis://positional/0"


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ConfigurationError, match="only one of"):
        RedisBackendConfig(url="redis://x", client=redis.asyncio.Redis())
    with pytest.raises(ConfigurationError, match="key_prefix"):
        ValkeyBackendConfig(key_prefix="")
    with pytest.raises(ConfigurationError, match="enqueue_chunk_size"):
        RedisBackendConfig(enqueue_chunk_size=0)
    with pytest.raises(ConfigurationError, match="max_connections"):
        RedisBackendConfig(max_connections=1)
    with pytest.raises(ConfigurationError, match="pool_timeout"):
        ValkeyBackendConfig(pool_timeout=0)
    with pytest.raises(ConfigurationError, match="finished_retention"):
        RedisBackendConfig(finished_retention=-1)
    assert RedisBackendConfig(finished_retention=timedelta(hours=1)).retention_seconds == 3600
    assert RedisBackendConfig(finished_retention=None).retention_seconds is None


def test_redact_url_and_describe_server() -> None:
    assert describe_server("redis://:secret@host:1/0", None) == "redis://***@host:1/0"
    pool = redis.asyncio.ConnectionPool.from_url("redis://:secret@example:6390/3")
    assert describe_server("unused", pool) == "example:6390/3"
    assert describe_server("unused", redis.asyncio.Redis(connection_pool=pool)) == "example:6390/3"
    assert redact_url("redis://user:secret@host:1/0") == "redis://user:***@host:1/0"
    assert redact_url("redis://:secret@host:1/0") == "redis://***@host:1/0"
    assert redact_url("redis://host:1/0") == "redis://host:1/0"


def test_the_shared_package_imports_neither_client() -> None:
    code = (
        "import sys, litestar_queues.backends.resp\n"
        "assert 'redis' not in sys.modules and 'valkey' not in sys.modules, sorted(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.anyio
async def test_an_adopted_client_is_used_and_left_open(
    flavor: str, server: str, config_class: type[RespBackendConfig], key_prefix: str, now: datetime
) -> None:
    client = CLIENTS[flavor].from_url(server)
    try:
        async with config_class(client=client, key_prefix=key_prefix).create_backend() as backend:
            record = TaskRecord(id=new_record_id(), task_name="t", created_at=now, scheduled_at=now)
            await backend.enqueue([record])
            assert await backend.get(record.id) == record
            await backend.purge()
        assert await client.ping()
    finally:
        await client.aclose()


@pytest.mark.anyio
async def test_an_adopted_pool_is_used_and_left_open(
    flavor: str, server: str, config_class: type[RespBackendConfig], key_prefix: str, now: datetime
) -> None:
    pool = POOLS[flavor].from_url(server)
    try:
        async with config_class(connection_pool=pool, key_prefix=key_prefix).create_backend() as backend:
            assert await backend.get("missing") is None
        client = CLIENTS[flavor](connection_pool=pool)
        assert await client.ping()
    finally:
        await pool.aclose()


@pytest.mark.anyio
async def test_a_decoding_client_works_too(
    flavor: str, server: str, config_class: type[RespBackendConfig], key_prefix: str, now: datetime
) -> None:
    client = CLIENTS[flavor].from_url(server, decode_responses=True)
    try:
        async with config_class(client=client, key_prefix=key_prefix).create_backend() as backend:
            record = TaskRecord(id=new_record_id(), task_name="t", key="k", created_at=now, scheduled_at=now)
            await backend.enqueue([record])
            (claimed,) = await backend.claim(["default"], owner="w", limit=1, now=now, lease_seconds=5)
            assert claimed.owner == "w" and claimed.key == "k"
            assert await backend.renew([claimed.lease], now=now, lease_seconds=5) == {claimed.id: "held"}
            await backend.purge()
    finally:
        await client.aclose()


@pytest.mark.anyio
async def test_valkey_scheme_works_with_the_redis_client(server: str, key_prefix: str) -> None:
    url = "valkey://" + server.split("://", 1)[1]
    async with RedisBackendConfig(url=url, key_prefix=key_prefix).create_backend() as backend:
        assert await backend.get("missing") is None
