"""Per-attempt dependencies: values by parameter name, opened after task.started, closed once the task's outcome is
known, errors following the retry policy, never stored as arguments."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest

from litestar_queues import (
    ConfigurationError,
    QueueConfig,
    QueueService,
    TaskExecutionContext,
    TaskRegistry,
    TaskStatus,
    task,
)
from litestar_queues.events import QueueEvent, QueueEventConfig

pytestmark = pytest.mark.anyio


class Timeline:
    """One list of what happened, events and dependencies alike (also the event sink)."""

    def __init__(self) -> None:
        self.entries: list[str] = []

    async def publish(self, event: QueueEvent, channels: Sequence[str]) -> None:
        del channels
        self.entries.append(event.type)

    def resource(self, name: str) -> Callable[[TaskExecutionContext], Any]:
        @asynccontextmanager
        async def open_resource(context: TaskExecutionContext) -> AsyncIterator[str]:
            self.entries.append(f"open {name} #{context.attempt}")
            try:
                yield f"{name} of {context.job_id}"
            except BaseException as error:
                self.entries.append(f"close {name} after {type(error).__name__}")
                raise
            self.entries.append(f"close {name}")

        return open_resource


def _service(timeline: Timeline, registry: TaskRegistry, **config: Any) -> QueueService:
    return QueueService(
        QueueConfig(
            execution_backend="immediate", event_config=QueueEventConfig(enabled=True, sink=timeline), **config
        ),
        registry=registry,
        state={"greeting": "hello"},
    )


async def test_values_come_by_parameter_name_between_started_and_the_outcome() -> None:
    timeline, registry = Timeline(), TaskRegistry()
    received: dict[str, object] = {}

    @task("deps.values", registry=registry, dependencies={"client": timeline.resource("task client")})
    async def work(user_id: int, session: str, client: str, _task_context: TaskExecutionContext) -> int:
        received.update(session=session, client=client, state=_task_context.state)
        timeline.entries.append("run")
        return user_id

    config = {"dependencies": {"session": timeline.resource("session"), "client": timeline.resource("config client")}}
    async with _service(timeline, registry, **config) as service:
        outcome = await service.enqueue(work, 7)
    assert outcome.status is TaskStatus.COMPLETED and outcome.record.result == 7
    assert outcome.record.args == [7] and outcome.record.kwargs == {}, "dependencies are never stored"
    assert received == {
        "session": f"session of {outcome.id}",
        "client": f"task client of {outcome.id}",  # the task's own wins over the config's
        "state": {"greeting": "hello"},
    }
    assert timeline.entries == [
        "task.started",
        "open session #1",
        "open task client #1",
        "run",
        "close task client",
        "close session",
        "task.completed",
    ]


async def test_a_failing_task_closes_its_dependencies_with_the_error_and_a_retry_opens_new_ones() -> None:
    timeline, registry = Timeline(), TaskRegistry()
    runs: list[int] = []

    @task("deps.flaky", registry=registry, retries=1, retry_backoff=0)
    async def flaky(session: str) -> None:
        del session
        runs.append(1)
        if len(runs) == 1:
            raise RuntimeError("first attempt fails")

    async with _service(timeline, registry, dependencies={"session": timeline.resource("session")}) as service:
        outcome = await service.enqueue(flaky)
    assert outcome.status is TaskStatus.COMPLETED and outcome.record.attempts == 2
    assert timeline.entries == [
        "task.started",
        "open session #1",
        "close session after RuntimeError",
        "task.retrying",
        "task.started",
        "open session #2",
        "close session",
        "task.completed",
    ]


@pytest.mark.parametrize("fails_on", ["open", "close"])
async def test_dependency_errors_follow_the_retry_policy(fails_on: str) -> None:
    timeline, registry = Timeline(), TaskRegistry()
    attempts: list[int] = []

    @asynccontextmanager
    async def broken(context: TaskExecutionContext) -> AsyncIterator[str]:
        attempts.append(context.attempt)
        if fails_on == "open" and context.attempt == 1:
            raise ConnectionError("database unreachable")
        yield "session"
        if fails_on == "close" and context.attempt < 3:
            raise ConnectionError("commit failed")

    @task("deps.broken", registry=registry, retries=1, retry_backoff=0)
    async def work(session: str) -> str:
        return session

    async with _service(timeline, registry, dependencies={"session": broken}) as service:
        outcome = await service.enqueue(work)
    if fails_on == "open":  # the first attempt fails before the task runs; the retry succeeds
        assert outcome.status is TaskStatus.COMPLETED and outcome.record.attempts == 2
    else:  # both attempts ran the task and failed when closing: retries exhausted
        assert outcome.status is TaskStatus.FAILED and outcome.record.attempts == 2
        assert outcome.record.error is not None and outcome.record.error.message == "commit failed"
    assert attempts == [1, 2]


async def test_the_timeout_bounds_the_dependencies_too() -> None:
    timeline, registry = Timeline(), TaskRegistry()

    @asynccontextmanager
    async def hangs(context: TaskExecutionContext) -> AsyncIterator[None]:
        del context
        await asyncio.Event().wait()
        yield

    @task("deps.hang", registry=registry, timeout=0.05)
    async def work(session: None) -> None:
        del session

    async with _service(timeline, registry, dependencies={"session": hangs}) as service:
        outcome = await service.enqueue(work)
    assert outcome.status is TaskStatus.FAILED
    assert outcome.record.error is not None and "timeout" in outcome.record.error.message


async def test_only_the_dependencies_a_task_declares_are_opened_and_none_may_be_passed() -> None:
    timeline, registry = Timeline(), TaskRegistry()

    @task("deps.none", registry=registry)
    async def plain(user_id: int) -> int:
        return user_id

    @task("deps.some", registry=registry)
    async def needs(user_id: int, session: str) -> str:
        return f"{user_id}:{session}"

    async with _service(timeline, registry, dependencies={"session": timeline.resource("session")}) as service:
        assert (await service.enqueue(plain, 1)).record.result == 1
        assert "open session #1" not in timeline.entries
        with pytest.raises(TypeError, match="injected at run time"):
            await service.enqueue(needs, 1, session="mine")
        with pytest.raises(TypeError, match="user_id"):
            await service.enqueue(needs)  # type: ignore[call-arg]
    # Without the service's dependencies, ``session`` is an ordinary, missing argument.
    with pytest.raises(TypeError, match="session"):
        needs.check_call((1,), {})


def test_dependency_names_and_factories_are_checked_where_they_are_given() -> None:
    with pytest.raises(ConfigurationError, match="_job_id"):
        QueueConfig(dependencies={"_job_id": lambda context: None})  # type: ignore[arg-type,return-value]
    with pytest.raises(ConfigurationError, match="callable"):
        task("deps.bad", registry=TaskRegistry(), dependencies={"session": "not a factory"})(lambda session: None)  # type: ignore[dict-item]
