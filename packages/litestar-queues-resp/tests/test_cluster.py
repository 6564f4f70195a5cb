"""Cluster mode: where the keys land on a real 3-shard Redis Cluster / Valkey cluster, and its configuration."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from litestar_queues.backends.redis import RedisBackendConfig
from litestar_queues.backends.resp import RespBackend, RespBackendConfig, hash_tagged
from litestar_queues.backends.valkey import ValkeyBackendConfig
from litestar_queues.config import backend_config
from litestar_queues.errors import ConfigurationError
from litestar_queues.records import TaskRecord, new_record_id
from litestar_queues.testing.servers import server_url

CLUSTERS: dict[str, tuple[type[RespBackendConfig], str]] = {
    "redis": (RedisBackendConfig, "LQ_REDIS_CLUSTER_URL"),
    "valkey": (ValkeyBackendConfig, "LQ_VALKEY_CLUSTER_URL"),
}


@pytest.mark.parametrize(
    ("prefix", "tagged"),
    [("lq", "{lq}"), ("{app}", "{app}"), ("a{b}c", "a{b}c"), ("a{}b", "{a{}b}"), ("x}{y", "{x}{y}"), ("{", "{{}")],
)
def test_hash_tagged_keeps_a_tag_and_wraps_the_rest(prefix: str, tagged: str) -> None:
    assert hash_tagged(prefix) == tagged


@pytest.mark.parametrize("config_class", [RedisBackendConfig, ValkeyBackendConfig])
@pytest.mark.parametrize(
    ("url", "effective"),
    [
        ("redis+cluster://h:7000", "redis://h:7000"),
        ("REDISS+CLUSTER://u:p@h:7000/0", "rediss://u:p@h:7000/0"),
        ("valkey+cluster://h:7000", "valkey://h:7000"),
        ("valkeys+cluster://h:7000", "valkeys://h:7000"),
    ],
)
def test_a_cluster_url_switches_cluster_mode_on(
    config_class: type[RespBackendConfig], url: str, effective: str
) -> None:
    config = config_class(url=url)
    assert config.cluster and config.effective_url == effective
    assert not config_class(url="redis://h:7000").cluster


@pytest.mark.parametrize("config_class", [RedisBackendConfig, ValkeyBackendConfig])
def test_cluster_configuration_mistakes_are_named(config_class: type[RespBackendConfig]) -> None:
    with pytest.raises(ConfigurationError, match="only database 0"):
        config_class(url="redis+cluster://h:7000/3")
    with pytest.raises(ConfigurationError, match="connection_pool"):
        config_class(cluster=True, connection_pool=object())
    with pytest.raises(ConfigurationError, match="not a server URL"):
        config_class(url="cluster+redis://h:7000")


async def _keys_by_slot(backend: RespBackend) -> dict[int, list[str]]:
    client: Any = backend._client
    slots: dict[int, list[str]] = {}
    async for key in client.scan_iter(match=backend.key_prefix + ":*"):
        name = key.decode() if isinstance(key, bytes) else key
        slots.setdefault(int(await client.cluster_keyslot(name)), []).append(name)
    return slots


@pytest.mark.anyio
@pytest.mark.parametrize("flavor", sorted(CLUSTERS))
async def test_each_backend_keeps_its_keys_in_one_slot_and_prefixes_spread_over_the_shards(
    flavor: str, now: datetime
) -> None:
    """Every key (records, indexes, history) of one prefix shares the prefix's slot, whatever the queue, so each
    script touches one slot; and the prefixes of several apps (or of a partitioned app) land on different shards."""
    config_class, env = CLUSTERS[flavor]
    url = server_url(env)
    run = new_record_id()
    shards: dict[str, str] = {}
    for index in range(40):  # until the prefixes met all 3 shards (a miss of 40 in a row: odds 3 in 10 million)
        if len(set(shards.values())) == 3:
            break
        config = config_class(url=url, key_prefix=f"lqtest:{run}:{index}")
        async with config.create_backend() as backend:
            try:
                assert backend.key_prefix == "{" + config.key_prefix + "}"
                records = [
                    TaskRecord(id=new_record_id(), task_name="t", queue=queue, created_at=now, scheduled_at=now)
                    for queue in ("alpha", "beta", "gamma")
                ]
                await backend.enqueue(records)
                claimed = await backend.claim(["alpha", "beta", "gamma"], owner="w", now=now, limit=3, lease_seconds=30)
                assert sorted(record.id for record in claimed) == sorted(record.id for record in records)
                slots = await _keys_by_slot(backend)
                client: Any = backend._client
                assert list(slots) == [int(await client.cluster_keyslot(backend.key_prefix))], slots
                assert len(slots[next(iter(slots))]) > 6  # records, bodies, pending/running/status indexes
                node = client.get_node_from_key(backend.key_prefix)
                shards[config.key_prefix] = node.name
            finally:
                await backend.purge()
    assert len(set(shards.values())) == 3, shards


@pytest.mark.parametrize(
    ("url", "config_class"),
    [("redis+cluster://h:7000", RedisBackendConfig), ("valkeys+cluster://h:7000", ValkeyBackendConfig)],
)
def test_a_cluster_url_string_is_a_queue_backend(url: str, config_class: type[RespBackendConfig]) -> None:
    config = backend_config(url)
    assert type(config) is config_class and isinstance(config, RespBackendConfig) and config.cluster


@pytest.mark.anyio
async def test_a_valkey_cluster_client_that_lost_every_startup_node_finds_the_cluster_again() -> None:
    """After a whole-cluster restart valkey-py's cluster client has dropped every node it failed to reach from its
    startup nodes, and can then never reinitialise ("cannot be connected ... None"; redis-py 8 keeps such nodes):
    the state is reproduced here, and the backend's repair after the failed call gives the client its nodes back,
    so the next call works. (The chaos suite's whole-cluster restart is the end-to-end check.)"""
    config = ValkeyBackendConfig(url=server_url("LQ_VALKEY_CLUSTER_URL"), key_prefix=f"lqtest:{new_record_id()}")
    async with config.create_backend() as backend:
        client: Any = backend._client
        assert await backend.get("missing") is None
        client.nodes_manager.startup_nodes.clear()
        await client._reset_for_reinitialize()  # what a failed connection makes the client do
        with pytest.raises(Exception, match="cannot be connected"):
            await backend.get("missing")
        assert len(client.nodes_manager.startup_nodes) == 3
        assert await backend.get("missing") is None
