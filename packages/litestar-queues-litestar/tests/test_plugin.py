from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from litestar import Litestar, get, post
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.params import FromPath
from litestar.testing import TestClient

import litestar_queues
import litestar_queues.events
from litestar_queues import QueueConfig, QueueService, TaskStatus, Worker, WorkerConfig, default_registry, task
from litestar_queues.errors import ConfigurationError
from litestar_queues.events import InMemoryQueueEventSink, QueueEventConfig, QueueEventPublisher
from litestar_queues.litestar import NamedDependency, QueuePlugin, get_queue_plugin

FAST = WorkerConfig(poll_interval=0.05, heartbeat_interval=0.05, stale_threshold=1.0, maintenance_interval=0.5)


@task("plugin_tests.add")
async def add(a: int, b: int) -> int:
    return a + b


@task("plugin_tests.slow")
async def slow(seconds: float) -> str:
    import asyncio

    await asyncio.sleep(seconds)
    return "done"


@task("plugin_tests.nightly", cron="30 4 * * *")
async def nightly() -> None:
    return None


@pytest.fixture(autouse=True, scope="module")
def _forget_tasks() -> Iterator[None]:
    """This module's tasks are registered globally; unregister them so later apps do not schedule or list them."""
    yield
    for registered in list(default_registry):
        if registered.name.startswith("plugin_tests."):
            default_registry.unregister(registered.name)


@post("/add")
async def enqueue_add(queue_service: NamedDependency[QueueService]) -> dict[str, str]:
    outcome = await queue_service.enqueue(add, 2, 3)
    return {"id": outcome.record.id}


@post("/slow")
async def enqueue_slow(queue_service: NamedDependency[QueueService]) -> dict[str, str]:
    outcome = await queue_service.enqueue(slow, 0.3)
    return {"id": outcome.record.id}


@get("/records/{record_id:str}")
async def show(record_id: FromPath[str], queue_service: NamedDependency[QueueService]) -> dict[str, Any]:
    record = await queue_service.get_task(record_id)
    assert record is not None
    return {"status": record.status.value, "result": record.result}


@get("/wait/{record_id:str}")
async def wait(record_id: FromPath[str], queue_service: NamedDependency[QueueService]) -> dict[str, Any]:
    record = await queue_service.wait_for(record_id, timeout=5)
    return {"status": record.status.value, "result": record.result}


@get("/workers")
async def workers(queue_service: NamedDependency[QueueService]) -> int:
    return len(await queue_service.list_workers())


@get("/scheduled")
async def scheduled(queue_service: NamedDependency[QueueService]) -> list[str]:
    page = await queue_service.list_tasks(task_name="plugin_tests.nightly", status=TaskStatus.PENDING)
    return [record.id for record in page.records]


def make_app(**config: Any) -> Litestar:
    config.setdefault("worker", FAST)
    return Litestar(
        [enqueue_add, enqueue_slow, show, wait, workers, scheduled], plugins=[QueuePlugin(QueueConfig(**config))]
    )


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def test_dependency_worker_and_state() -> None:
    app = make_app()
    with TestClient(app) as client:
        record_id = client.post("/add").json()["id"]
        assert client.get(f"/wait/{record_id}").json() == {"status": "completed", "result": 5}
        assert isinstance(app.state["queue_service"], QueueService)
        assert isinstance(app.state["queue_worker"], Worker)
        assert isinstance(app.state["queue_event_publisher"], QueueEventPublisher)
        assert app.state["queue_channels_backend"] is None
    for key in ("queue_service", "queue_worker", "queue_event_publisher", "queue_channels_backend"):
        assert key not in app.state


def test_keys_are_configurable() -> None:
    @get("/service-type")
    async def service_type(jobs: NamedDependency[QueueService]) -> str:
        return type(jobs).__name__

    config = QueueConfig(
        worker=FAST,
        queue_service_dependency_key="jobs",
        queue_service_state_key="jobs_service",
        queue_worker_state_key="jobs_worker",
        queue_event_publisher_state_key="jobs_publisher",
        channels_backend_state_key="jobs_channels",
    )
    app = Litestar([service_type], plugins=[QueuePlugin(config)])
    with TestClient(app) as client:
        assert client.get("/service-type").text == "QueueService"
        assert {"jobs_service", "jobs_worker", "jobs_publisher", "jobs_channels"} <= set(app.state.keys())
        assert "queue_service" not in app.state


def test_without_in_app_worker_nothing_runs_here() -> None:
    app = make_app(in_app_worker=False)
    with TestClient(app) as client:
        assert app.state["queue_worker"] is None
        assert client.get("/workers").json() == 0


def test_schedules_are_initialised_at_startup() -> None:
    with TestClient(make_app()) as client:
        assert len(client.get("/scheduled").json()) == 1


def test_shutdown_drains_running_work() -> None:
    sink = InMemoryQueueEventSink()
    app = make_app(event_config=QueueEventConfig(enabled=True, sink=sink))
    with TestClient(app) as client:
        record_id = client.post("/slow").json()["id"]
        wait_until(lambda: client.get(f"/records/{record_id}").json()["status"] == "running")
    assert [event.type for event in sink.events if event.task_id == record_id] == ["task.started", "task.completed"]


def test_dependency_key_already_taken() -> None:
    from litestar.di import Provide

    with pytest.raises(ConfigurationError, match="already has a dependency named 'queue_service'"):
        Litestar(dependencies={"queue_service": Provide(lambda: 1, sync_to_thread=False)}, plugins=[QueuePlugin()])


@pytest.mark.parametrize("queue_first", [True, False], ids=["queue-plugin-first", "channels-plugin-first"])
def test_the_channels_plugin_outlives_the_worker_in_either_order(queue_first: bool) -> None:
    channels = ChannelsPlugin(MemoryChannelsBackend(history=10), arbitrary_channels_allowed=True)
    config = QueueConfig(worker=FAST, event_config=QueueEventConfig(enabled=True, channels_backend=channels))
    plugin = QueuePlugin(config)
    app = Litestar(plugins=[plugin, channels] if queue_first else [channels, plugin])
    lifespans = [getattr(manager, "__self__", manager) for manager in app._lifespan_managers]
    assert lifespans.index(channels) < lifespans.index(plugin), "the queue's lifespan starts after the channels'"
    assert lifespans[-1] is plugin


def test_a_bare_channels_backend_is_started_by_the_plugin() -> None:
    backend = MemoryChannelsBackend(history=10)
    sink = InMemoryQueueEventSink()
    config = QueueConfig(worker=FAST, event_config=QueueEventConfig(enabled=True, channels_backend=backend, sink=sink))
    app = make_app(**{"event_config": config.event_config})
    plugin = get_queue_plugin(app)
    assert isinstance(plugin.channels, ChannelsPlugin)
    with TestClient(app) as client:
        record_id = client.post("/add").json()["id"]
        assert client.get(f"/wait/{record_id}").json()["status"] == "completed"
        assert app.state["queue_channels_backend"] is backend
    assert sink.events, "events were published"


def test_a_missing_task_module_fails_startup_with_a_clear_message() -> None:
    # The test client reports a failed lifespan startup inside an exception group.
    app = make_app(task_modules=("plugin_tests_missing_module",))
    with pytest.raises(Exception) as raised, TestClient(app):  # noqa: PT011
        pass
    assert raised.group_contains(ConfigurationError, match="task module 'plugin_tests_missing_module'")


def test_an_unknown_backend_fails_when_the_config_is_made() -> None:
    with pytest.raises(ConfigurationError, match="unknown queue backend 'nosuch://x'"):
        make_app(queue_backend="nosuch://x")


def test_umbrella_names_resolve_to_this_package() -> None:
    from litestar_queues.litestar import channels, streaming

    assert litestar_queues.QueuePlugin is QueuePlugin
    assert litestar_queues.events.ChannelsQueueEventSink is channels.ChannelsQueueEventSink
    assert litestar_queues.events.stream_queue_events is streaming.stream_queue_events
    assert litestar_queues.events.sse_queue_events is streaming.sse_queue_events
