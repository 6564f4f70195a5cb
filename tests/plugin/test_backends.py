"""QueuePlugin in an app on every backend: the dependency enqueues, the in-app worker runs, events stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar, get, post, websocket
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.connection import WebSocket
from litestar.params import FromPath
from litestar.testing import TestClient

from litestar_queues import QueueConfig, QueueService, WorkerConfig, default_registry, task
from litestar_queues.events import (
    QueueChannels,
    QueueEvent,
    QueueEventConfig,
    publish_task_progress,
    stream_queue_events,
)
from litestar_queues.litestar import NamedDependency, QueuePlugin
from litestar_queues.testing.servers import server_url

QUEUE = f"plugin-backends-{uuid.uuid4().hex[:8]}"
"""This module's own queue, so its workers never take other tests' work on a shared server."""


@task("plugin_backends.count", queue=QUEUE)
async def count_to(limit: int) -> int:
    for number in range(1, limit + 1):
        await publish_task_progress(current=number, total=limit)
        await asyncio.sleep(0)
    return limit


@pytest.fixture(autouse=True, scope="module")
def _forget_tasks() -> Iterator[None]:
    """This module's tasks are registered globally; unregister them so later apps do not schedule or list them."""
    yield
    for registered in list(default_registry):
        if registered.name.startswith("plugin_backends."):
            default_registry.unregister(registered.name)


@post("/count/{limit:int}")
async def enqueue_count(limit: FromPath[int], queue_service: NamedDependency[QueueService]) -> str:
    return (await queue_service.enqueue(count_to, limit)).record.id


@post("/count-later")
async def enqueue_later(queue_service: NamedDependency[QueueService]) -> str:
    return (await queue_service.enqueue(count_to.using(delay=3600), 1)).record.id


@post("/cancel/{record_id:str}")
async def cancel(record_id: FromPath[str], queue_service: NamedDependency[QueueService]) -> str:
    return (await queue_service.cancel(record_id)).status.value


@get("/result/{record_id:str}")
async def result(record_id: FromPath[str], queue_service: NamedDependency[QueueService]) -> Any:
    return await queue_service.result(record_id, timeout=10)


@get("/progress/{record_id:str}")
async def progress(record_id: FromPath[str], queue_service: NamedDependency[QueueService]) -> dict[str, Any] | None:
    record = await queue_service.get_task(record_id)
    assert record is not None
    return None if record.progress is None else {"current": record.progress.current, "percent": record.progress.percent}


@post("/announce/{record_id:str}")
async def announce(record_id: FromPath[str], queue_service: NamedDependency[QueueService]) -> None:
    event = QueueEvent(type="task.log", scope="task", scope_key=record_id, task_id=record_id, message="hello")
    await queue_service.publisher.publish(event)


ROUTES = [enqueue_count, enqueue_later, cancel, result, progress, announce]


@websocket("/events/{record_id:str}")
async def events(socket: WebSocket, record_id: FromPath[str]) -> None:
    await stream_queue_events(socket, [QueueChannels.task(record_id)])


def _unique(prefix: str) -> str:
    return f"{prefix}t{uuid.uuid4().hex[:8]}"  # a letter first: an all-digit segment is not a valid SQL prefix


@pytest.fixture(params=["memory", "sqlite", "postgresql", "redis", "valkey"])
def queue_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    name = request.param
    if name == "memory":
        return "memory"
    if name == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.db'}"
    if name == "postgresql":
        from litestar_queues.backends.sqlspec import SQLSpecBackendConfig

        return SQLSpecBackendConfig.from_url(server_url("LQ_POSTGRES_DSN"), table_prefix=_unique("lqplugin_") + "_")
    if name == "redis":
        from litestar_queues.backends.redis import RedisBackendConfig

        return RedisBackendConfig(server_url("LQ_REDIS_URL"), key_prefix=_unique("lqplugin-"))
    from litestar_queues.backends.valkey import ValkeyBackendConfig

    return ValkeyBackendConfig(server_url("LQ_VALKEY_URL"), key_prefix=_unique("lqplugin-"))


def test_enqueue_run_stream_and_cancel(queue_backend: Any) -> None:
    channels = ChannelsPlugin(MemoryChannelsBackend(history=50), arbitrary_channels_allowed=True)
    config = QueueConfig(
        queue_backend=queue_backend,
        worker=WorkerConfig(queues=(QUEUE,), poll_interval=0.05, heartbeat_interval=0.2, stale_threshold=5.0),
        event_config=QueueEventConfig(enabled=True, channels_backend=channels),
    )
    app = Litestar([*ROUTES, events], plugins=[channels, QueuePlugin(config=config)])
    with TestClient(app) as client:
        record_id = client.post("/count/3").text
        with client.websocket_connect(f"/events/{record_id}") as ws:
            received = [json.loads(ws.receive_text(timeout=10))]
            while received[-1]["type"] != "task.completed":
                received.append(json.loads(ws.receive_text(timeout=10)))
        assert [event["type"] for event in received] == ["task.started", *["task.progress"] * 3, "task.completed"]
        assert client.get(f"/result/{record_id}").json() == 3

        later = client.post("/count-later").text
        assert client.post(f"/cancel/{later}").text == "cancelled"


def receive_until_completed(ws: Any) -> list[dict[str, Any]]:
    received = [json.loads(ws.receive_text(timeout=10))]
    while received[-1]["type"] != "task.completed":
        received.append(json.loads(ws.receive_text(timeout=10)))
    return received


def test_a_finished_job_replays_its_stored_history_and_keeps_its_progress(queue_backend: Any) -> None:
    # The Channels backend keeps nothing: a page opened after the job finished gets every event from the backend.
    channels = ChannelsPlugin(MemoryChannelsBackend(history=0), arbitrary_channels_allowed=True)
    config = QueueConfig(
        queue_backend=queue_backend,
        worker=WorkerConfig(queues=(QUEUE,), poll_interval=0.05, heartbeat_interval=0.2, stale_threshold=5.0),
        event_config=QueueEventConfig(enabled=True, channels_backend=channels, history=True),
    )
    app = Litestar([*ROUTES, events], plugins=[channels, QueuePlugin(config=config)])
    with TestClient(app) as client:
        record_id = client.post("/count/3").text
        assert client.get(f"/result/{record_id}").json() == 3
        with client.websocket_connect(f"/events/{record_id}") as ws:
            received = receive_until_completed(ws)
        assert client.get(f"/progress/{record_id}").json() == {"current": 3, "percent": 100.0}
    assert [event["type"] for event in received] == ["task.started", *["task.progress"] * 3, "task.completed"]
    assert [event["progressCurrent"] for event in received[1:4]] == [1, 2, 3]


def redis_pub_sub_app(*, history: bool) -> Litestar:
    from litestar.channels.backends.redis import RedisChannelsPubSubBackend
    from redis.asyncio import Redis

    from litestar_queues.backends.redis import RedisBackendConfig

    redis = Redis.from_url(server_url("LQ_REDIS_URL"))
    channels = ChannelsPlugin(RedisChannelsPubSubBackend(redis=redis), arbitrary_channels_allowed=True)
    config = QueueConfig(
        queue_backend=RedisBackendConfig(server_url("LQ_REDIS_URL"), key_prefix=_unique("lqplugin-")),
        worker=WorkerConfig(queues=(QUEUE,), poll_interval=0.05, heartbeat_interval=0.2, stale_threshold=5.0),
        event_config=QueueEventConfig(enabled=True, channels_backend=channels, history=history),
    )
    # The app owns the client: it closes it after the Channels plugin stopped using it.
    return Litestar([*ROUTES, events], plugins=[channels, QueuePlugin(config=config)], on_shutdown=[redis.aclose])


def test_redis_pub_sub_channels_stream_with_the_default_history() -> None:
    # Redis pub/sub keeps no history (its get_history raises NotImplementedError): nothing to replay, live events flow.
    with TestClient(redis_pub_sub_app(history=False)) as client:
        quiet = str(uuid.uuid4())
        with client.websocket_connect(f"/events/{quiet}") as ws:
            # The socket is accepted before it subscribes, and pub/sub keeps nothing: announce until one arrives.
            for _ in range(50):
                client.post(f"/announce/{quiet}")
                with contextlib.suppress(queue.Empty):
                    assert json.loads(ws.receive_text(timeout=0.2))["message"] == "hello"
                    break
            else:
                pytest.fail("no live event arrived over Redis pub/sub")


def test_redis_pub_sub_channels_replay_the_stored_history() -> None:
    with TestClient(redis_pub_sub_app(history=True)) as client:
        record_id = client.post("/count/2").text
        assert client.get(f"/result/{record_id}").json() == 2
        with client.websocket_connect(f"/events/{record_id}") as ws:
            received = receive_until_completed(ws)
    assert [event["type"] for event in received] == ["task.started", "task.progress", "task.progress", "task.completed"]
