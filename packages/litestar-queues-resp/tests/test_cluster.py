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
from litestar_queues.events import QueueEvent
from litestar_queues.events.history import EventFilter
from litestar_queues.records import Outcome, RecordFilter, TaskProgress, TaskRecord, TaskStatus, new_record_id
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


async def _keys_by_slot(backend: RespBackend, pattern: str) -> dict[int, list[str]]:
    client: Any = backend._client
    slots: dict[int, list[str]] = {}
    async for key in client.scan_iter(match=pattern):
        name = key.decode() if isinstance(key, bytes) else key
        slots.setdefault(int(await client.cluster_keyslot(name)), []).append(name)
    return slots


_QUEUES = [f"queue-{index}" for index in range(12)]


async def _use_every_kind_of_key(backend: RespBackend, now: datetime) -> None:
    """Records of every queue (one with a dedup key), claims, a finish, a pause, a lock, and an event stored with a
    running record's progress (one script call in the one-slot layout, one call per slot in the per-queue one)."""
    records = [
        TaskRecord(id=new_record_id(), task_name="t", queue=queue, created_at=now, scheduled_at=now, key=f"key-{queue}")
        for queue in _QUEUES
    ]
    assert all(outcome.created for outcome in await backend.enqueue(records))
    claimed = await backend.claim(_QUEUES, owner="w", now=now, limit=3, lease_seconds=30)
    assert len(claimed) == 3
    assert claimed[0].lease is not None
    await backend.finish(claimed[0].lease, Outcome(status=TaskStatus.COMPLETED), now=now, claimed=claimed[0])
    await backend.pause_queue(_QUEUES[-1], now=now)
    await backend.acquire_lock("maintenance", owner="w", ttl_seconds=30, now=now)
    running = claimed[1]
    assert running.lease is not None
    event = QueueEvent(type="task.progress", task_id=running.id, queue=running.queue, progress_current=1.0)
    progress = TaskProgress(current=1.0, attempt=running.attempts, updated_at=now)
    await backend.append_events_with_progress([event], [(running.lease, progress)])
    assert (await backend.query_events(EventFilter(task_id=running.id), limit=10)).events == [event]
    stored = await backend.get(running.id)
    assert stored is not None and stored.progress == progress


@pytest.mark.anyio
@pytest.mark.parametrize("flavor", sorted(CLUSTERS))
async def test_each_queue_has_a_slot_of_its_own_and_queues_spread_over_the_shards(flavor: str, now: datetime) -> None:
    """A new prefix on a cluster gets the per-queue layout: every key of a queue (record, body, pending, status and
    task indexes, lease and retention indexes, pause flag) is in the queue's slot, the prefix's own keys (known
    queues, dedup-key holders, locks, the layout marker) in the prefix's slot, and twelve queues reach every shard."""
    config_class, env = CLUSTERS[flavor]
    config = config_class(url=server_url(env), key_prefix=f"lqtest:{new_record_id()}")
    async with config.create_backend() as backend:
        try:
            await _use_every_kind_of_key(backend, now)
            client: Any = backend._client
            slots = backend._slots
            assert slots is not None
            shards = set()
            for queue in _QUEUES:
                prefix = slots.queue_prefix(queue)
                keys = await _keys_by_slot(backend, prefix + ":*")
                assert list(keys) == [int(await client.cluster_keyslot(prefix))], keys
                assert len(keys[next(iter(keys))]) >= 5, keys  # record, body, pending and status indexes, ...
                shards.add(client.get_node_from_key(prefix).name)
            assert len(shards) == 3, shards
            own = await _keys_by_slot(backend, backend.key_prefix + ":*")
            assert list(own) == [int(await client.cluster_keyslot(backend.key_prefix))], own
            assert {name.rsplit(":", 1)[-1] for name in own[next(iter(own))]} >= {"layout", "queues", "ka"}
        finally:
            await backend.purge()
        assert await _keys_by_slot(backend, "*" + config.key_prefix + "*") == {}, "purge deletes every queue's keys"


@pytest.mark.anyio
@pytest.mark.parametrize("flavor", sorted(CLUSTERS))
@pytest.mark.parametrize("how", ["marker", "data", "tag"])
async def test_a_prefix_of_the_one_slot_layout_keeps_it(flavor: str, how: str, now: datetime) -> None:
    """A cluster prefix created before per-queue slots (its data found without a layout marker, or marked) keeps
    every key in the prefix's slot, and so does a prefix with a hash tag of its own: nothing to migrate."""
    config_class, env = CLUSTERS[flavor]
    run = new_record_id()
    key_prefix = f"lqtest:{{{run}}}" if how == "tag" else f"lqtest:{run}"
    tagged = hash_tagged(key_prefix)
    config = config_class(url=server_url(env), key_prefix=key_prefix)
    async with config.create_backend() as seeder:
        client: Any = seeder._client
        try:
            await seeder.purge()  # the layout marker this open wrote: the prefix starts empty below
            if how == "marker":
                await client.set(f"{tagged}:layout", "prefix")
            elif how == "data":
                await client.sadd(f"{tagged}:queues", "old-queue")
            async with config.create_backend() as backend:
                assert backend._slots is None
                await _use_every_kind_of_key(backend, now)
                stored = await _keys_by_slot(backend, "*" + run + "*")
                assert list(stored) == [int(await client.cluster_keyslot(tagged))], stored
                assert len((await backend.query(RecordFilter(), limit=100)).records) == len(_QUEUES)
        finally:
            await seeder.purge()


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


@pytest.mark.anyio
@pytest.mark.parametrize("flavor", sorted(CLUSTERS))
async def test_dedup_key_holders_are_released_by_the_maintenance_and_a_dead_reservation_is_taken_over(
    flavor: str, now: datetime
) -> None:
    """The holders of dedup keys in the prefix's slot are not released by a finish (another slot): the maintenance's
    expire step releases those whose record ended or never came, so the hash does not grow with every key ever used;
    a reservation older than the grace (server clock) without its record is an enqueue that died between its steps,
    and the next enqueue of the key takes it over at once."""
    config_class, env = CLUSTERS[flavor]
    config = config_class(url=server_url(env), key_prefix=f"lqtest:{new_record_id()}")
    async with config.create_backend() as backend:
        try:
            client: Any = backend._client
            holders = f"{backend.key_prefix}:ka"
            records = [
                TaskRecord(id=new_record_id(), task_name="t", queue=q, created_at=now, scheduled_at=now, key=f"k-{q}")
                for q in _QUEUES[:4]
            ]
            await backend.enqueue(records)
            claimed = await backend.claim(_QUEUES[:2], owner="w", now=now, limit=2, lease_seconds=30)
            for record in claimed:
                assert record.lease is not None
                await backend.finish(record.lease, Outcome(status=TaskStatus.COMPLETED), now=now)
            await client.hset(holders, "dead", f"{_QUEUES[0]}\0{new_record_id()}\0{0}")  # reserved at the epoch
            young = f"{_QUEUES[0]}\0{new_record_id()}\0{10**17}"  # reserved in the far future: still being written
            await client.hset(holders, "young", young)
            assert await client.hlen(holders) == 6
            await backend.expire(now=now, limit=100)
            left = {key.decode() if isinstance(key, bytes) else key for key in await client.hkeys(holders)}
            assert left == {f"k-{q}" for q in _QUEUES[2:4]} | {"young"}
            await client.hset(holders, "dead", f"{_QUEUES[0]}\0{new_record_id()}\0{0}")
            fresh = TaskRecord(
                id=new_record_id(), task_name="t", queue=_QUEUES[5], created_at=now, scheduled_at=now, key="dead"
            )
            (outcome,) = await backend.enqueue([fresh])
            assert outcome.created and await backend.get_by_key("dead") == fresh
        finally:
            await backend.purge()
