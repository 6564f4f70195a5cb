from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import pytest
from litestar import Litestar, Request, WebSocket, get, post, websocket
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.connection import ASGIConnection
from litestar.exceptions import WebSocketDisconnect
from litestar.params import FromPath
from litestar.response import ServerSentEvent
from litestar.testing import TestClient

from litestar_queues import QueueConfig, QueueService, WorkerConfig, default_registry, task
from litestar_queues.events import (
    QueueChannels,
    QueueEventConfig,
    publish_task_log,
    publish_task_progress,
    sse_queue_events,
    stream_queue_events,
)
from litestar_queues.litestar import ChannelAuthorizer, NamedDependency, QueuePlugin

FAST = WorkerConfig(poll_interval=0.05, heartbeat_interval=0.05, stale_threshold=1.0, maintenance_interval=0.5)
TERMINAL = {"task.completed", "task.failed", "task.cancelled"}


@task("streaming_tests.steps")
async def steps(count: int) -> int:
    for number in range(1, count + 1):
        await publish_task_progress(current=number, total=count, message=f"step {number}")
        await asyncio.sleep(0)
    await publish_task_log("finished", event_key="finished-log")
    return count


@pytest.fixture(autouse=True, scope="module")
def _forget_tasks() -> Iterator[None]:
    """This module's tasks are registered globally; unregister them so later apps do not schedule or list them."""
    yield
    for registered in list(default_registry):
        if registered.name.startswith("streaming_tests."):
            default_registry.unregister(registered.name)


GATES = {name: threading.Event() for name in ("second", "third")}
"""Opened by the test thread to let ``gated`` go on (the task runs in the app's event loop, in another thread)."""


@task("streaming_tests.gated")
async def gated() -> str:
    await publish_task_progress(current=1, total=3)
    for number, name in enumerate(("second", "third"), start=2):
        await asyncio.to_thread(GATES[name].wait, 10)
        await publish_task_progress(current=number, total=3)
    return "done"


@post("/jobs")
async def create(queue_service: NamedDependency[QueueService]) -> str:
    return (await queue_service.enqueue(steps, 3)).record.id


@post("/gated")
async def create_gated(queue_service: NamedDependency[QueueService]) -> str:
    return (await queue_service.enqueue(gated)).record.id


@get("/jobs/{task_id:str}/progress")
async def progress(task_id: FromPath[str], queue_service: NamedDependency[QueueService]) -> float | None:
    record = await queue_service.get_task(task_id)
    return None if record is None or record.progress is None else record.progress.current


@get("/jobs/{task_id:str}/done")
async def done(task_id: FromPath[str], queue_service: NamedDependency[QueueService]) -> str:
    return (await queue_service.wait_for(task_id, timeout=5)).status.value


@websocket("/jobs/{task_id:str}/events")
async def events(socket: WebSocket, task_id: FromPath[str]) -> None:
    await stream_queue_events(socket, [QueueChannels.task(task_id)])


@websocket("/tenants/{tenant:str}/events")
async def tenant_events(socket: WebSocket, tenant: FromPath[str]) -> None:
    await stream_queue_events(socket, [QueueChannels.custom(tenant)], authorize=only_tenant_acme)


@get("/jobs/{task_id:str}/sse")
async def sse(request: Request, task_id: FromPath[str]) -> ServerSentEvent:
    return await sse_queue_events(request, [QueueChannels.task(task_id)])


async def only_tenant_acme(connection: ASGIConnection[Any, Any, Any, Any], channels: list[str]) -> bool:
    return channels == [QueueChannels.custom("acme")]


def make_app(channels_backend: Any, *, authorize: ChannelAuthorizer | None = None, history: bool = False) -> Litestar:
    channels = ChannelsPlugin(channels_backend, arbitrary_channels_allowed=True)
    events_config = QueueEventConfig(enabled=True, channels_backend=channels, history=history)
    config = QueueConfig(worker=FAST, event_config=events_config)
    return Litestar(
        [create, create_gated, progress, done, events, tenant_events, sse],
        plugins=[channels, QueuePlugin(config, authorize_channels=authorize)],
    )


def receive_until_finished(ws: Any) -> list[dict[str, Any]]:
    received: list[dict[str, Any]] = []
    while not received or received[-1]["type"] not in TERMINAL:
        received.append(msgspec.json.decode(ws.receive_text(timeout=5)))
    return received


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def test_live_events_in_order_without_duplicates(channels_backend: Any) -> None:
    with TestClient(make_app(channels_backend)) as client:
        task_id = client.post("/jobs").text
        with client.websocket_connect(f"/jobs/{task_id}/events") as ws:
            received = receive_until_finished(ws)
    types = [event["type"] for event in received]
    assert types == ["task.started", *["task.progress"] * 3, "task.log", "task.completed"]
    assert [event["sequence"] for event in received] == sorted(event["sequence"] for event in received)
    assert len({event["id"] for event in received}) == len(received)
    assert {event["taskId"] for event in received} == {task_id}


def test_a_late_subscriber_gets_the_history(channels_backend: Any) -> None:
    with TestClient(make_app(channels_backend)) as client:
        task_id = client.post("/jobs").text
        assert client.get(f"/jobs/{task_id}/done").text == "completed"
        with client.websocket_connect(f"/jobs/{task_id}/events") as ws:
            received = receive_until_finished(ws)
    assert [event["type"] for event in received] == [
        "task.started",
        *["task.progress"] * 3,
        "task.log",
        "task.completed",
    ]


def test_disconnect_releases_the_subscription(channels_backend: Any) -> None:
    with TestClient(make_app(channels_backend)) as client:
        channel = QueueChannels.task("never-runs")
        with client.websocket_connect("/jobs/never-runs/events"):
            wait_until(lambda: channel in channels_backend.active)
        wait_until(lambda: channel not in channels_backend.active)


def test_plugin_default_authorization_refuses(channels_backend: Any) -> None:
    def nobody(connection: ASGIConnection[Any, Any, Any, Any], channels: list[str]) -> bool:
        return False

    with TestClient(make_app(channels_backend, authorize=nobody)) as client:
        with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/jobs/x/events") as ws:
            ws.receive_text(timeout=5)
        assert refused.value.code == 1008
        assert client.get("/jobs/x/sse").status_code == 403
        assert channels_backend.active == set()


def test_per_route_authorization(channels_backend: Any) -> None:
    with TestClient(make_app(channels_backend)) as client:
        with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/tenants/globex/events") as ws:
            ws.receive_text(timeout=5)
        assert refused.value.code == 1008
        with client.websocket_connect("/tenants/acme/events"):
            wait_until(lambda: QueueChannels.custom("acme") in channels_backend.active)


def test_streaming_without_channels_is_a_clear_error() -> None:
    app = Litestar([sse], plugins=[QueuePlugin(QueueConfig(worker=FAST))])
    with TestClient(app) as client:
        response = client.get("/jobs/x/sse")
    assert response.status_code == 500


def test_a_page_opened_after_the_job_finished_replays_its_stored_history() -> None:
    # The Channels backend keeps nothing: every event the late page gets comes from the durable history.
    with TestClient(make_app(MemoryChannelsBackend(history=0), history=True)) as client:
        task_id = client.post("/jobs").text
        assert client.get(f"/jobs/{task_id}/done").text == "completed"
        with client.websocket_connect(f"/jobs/{task_id}/events") as ws:
            received = receive_until_finished(ws)
    assert [event["type"] for event in received] == [
        "task.started",
        *["task.progress"] * 3,
        "task.log",
        "task.completed",
    ]
    assert {event["taskId"] for event in received} == {task_id}


def test_a_reconnect_mid_job_misses_nothing() -> None:
    for gate in GATES.values():
        gate.clear()
    with TestClient(make_app(MemoryChannelsBackend(history=0), history=True)) as client:
        task_id = client.post("/gated").text
        with client.websocket_connect(f"/jobs/{task_id}/events") as ws:
            first = [msgspec.json.decode(ws.receive_text(timeout=5)) for _ in range(2)]
        assert [event["type"] for event in first] == ["task.started", "task.progress"]
        GATES["second"].set()  # progress 2 is published while nobody listens
        wait_until(lambda: client.get(f"/jobs/{task_id}/progress").json() == 2)
        with client.websocket_connect(f"/jobs/{task_id}/events") as ws:
            again = [msgspec.json.decode(ws.receive_text(timeout=5)) for _ in range(3)]
            GATES["third"].set()
            again += receive_until_finished(ws)
    assert [(event["type"], event["progressCurrent"]) for event in again] == [
        ("task.started", None),
        ("task.progress", 1),
        ("task.progress", 2),
        ("task.progress", 3),
        ("task.completed", None),
    ]
    assert [event["id"] for event in again[:2]] == [event["id"] for event in first]
