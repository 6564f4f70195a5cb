"""QueuePlugin in an app on every backend: the dependency enqueues, the in-app worker runs, events stream."""

from __future__ import annotations

import asyncio
import json
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
from litestar_queues.events import QueueChannels, QueueEventConfig, publish_task_progress, stream_queue_events
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


@websocket("/events/{record_id:str}")
async def events(socket: WebSocket, record_id: FromPath[str]) -> None:
    await stream_queue_events(socket, [QueueChannels.task(record_id)])


def _unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


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
    app = Litestar(
        [enqueue_count, enqueue_later, cancel, result, events], plugins=[channels, QueuePlugin(config=config)]
    )
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
