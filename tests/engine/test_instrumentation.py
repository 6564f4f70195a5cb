"""The instrumentation hooks of core: where they wrap, what they see, and the attempt log line."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest
from tests.engine.conftest import FAST_WORKER

from litestar_queues import (
    ConfigurationError,
    EnqueueOutcome,
    Outcome,
    QueueConfig,
    QueueService,
    TaskError,
    TaskRecord,
    TaskRegistry,
    TaskStatus,
    Worker,
    task,
)
from litestar_queues.instrumentation import TRACE_CONTEXT_KEY, Instrumentation, stored_trace_id
from litestar_queues.worker import Worker as WorkerType

pytestmark = pytest.mark.anyio

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class Recording(Instrumentation):
    """Records every hook call in order; enqueue stamps each record's metadata before it is sent."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.ticks: list[str] = []

    async def enqueue(
        self, records: Sequence[TaskRecord], send: Callable[[], Awaitable[list[EnqueueOutcome]]]
    ) -> list[EnqueueOutcome]:
        for record in records:
            record.metadata[TRACE_CONTEXT_KEY] = {"traceparent": TRACEPARENT}
        self.calls.append(("enqueue", [record.task_name for record in records]))
        outcomes = await send()
        self.calls.append(("enqueued", [outcome.created for outcome in outcomes]))
        return outcomes

    async def attempt(self, record: TaskRecord, run: Callable[[], Awaitable[TaskRecord | None]]) -> TaskRecord | None:
        self.calls.append(("attempt", record.attempts))
        final = await run()
        self.calls.append(("attempted", None if final is None else final.status.value))
        return final

    async def finish(
        self, record: TaskRecord, outcome: Outcome, write: Callable[[], Awaitable[TaskRecord | None]]
    ) -> TaskRecord | None:
        self.calls.append(("finish", outcome.status.value))
        return await write()

    async def tick(self, worker: WorkerType) -> None:
        self.ticks.append(worker.id)
        if len(self.ticks) == 1:
            raise RuntimeError("a failing tick is logged, and maintenance goes on")


@pytest.fixture
def recording() -> Recording:
    return Recording()


@pytest.fixture
async def service(registry: TaskRegistry, make_config: Callable[..., QueueConfig], recording: Recording) -> Any:
    async with QueueService(make_config(instrumentation=recording), registry=registry) as opened:
        yield opened


async def test_hooks_wrap_the_enqueue_the_attempt_and_its_outcome_write(
    service: QueueService, registry: TaskRegistry, recording: Recording
) -> None:
    @task("hooks.flaky", registry=registry, retries=1, retry_backoff=0)
    async def flaky() -> None:
        from litestar_queues import current_task_context

        context = current_task_context()
        assert context is not None
        if context.attempt == 1:
            raise ValueError("first time")

    outcome = await service.enqueue(flaky)
    stored = await service.get_task(outcome.id)
    assert stored is not None and stored.metadata[TRACE_CONTEXT_KEY] == {"traceparent": TRACEPARENT}
    await Worker(service).run_until_idle()
    assert recording.calls == [
        ("enqueue", ["hooks.flaky"]),
        ("enqueued", [True]),
        ("attempt", 1),
        ("finish", "pending"),
        ("attempted", "pending"),
        ("attempt", 2),
        ("finish", "completed"),
        ("attempted", "completed"),
    ]


async def test_an_attempt_ended_without_running_goes_through_the_finish_hook_only(
    service: QueueService, registry: TaskRegistry, recording: Recording
) -> None:
    @task("hooks.remote", registry=registry)
    async def remote() -> None:
        return None

    await service.enqueue(remote)
    (claimed,) = await service.backend.claim(["default"], owner="w", limit=1, now=service.clock.now(), lease_seconds=5)
    error = TaskError(type="gone", message="stopped elsewhere")
    await service.runner("w").end(claimed, Outcome(status=TaskStatus.FAILED, error=error))
    assert recording.calls[2:] == [("finish", "failed")]


async def test_an_outcome_held_through_an_outage_is_one_write_in_the_finish_hook(
    service: QueueService, registry: TaskRegistry, recording: Recording
) -> None:
    @task("hooks.held", registry=registry)
    async def held() -> str:
        return "done"

    backend = service.backend
    original = backend.finish
    failures = {"left": 2}
    written: list[str | None] = []

    async def flaky_finish(*args: Any, **kwargs: Any) -> Any:
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("server went away")
        return await original(*args, **kwargs)

    async def finish(
        record: TaskRecord, outcome: Outcome, write: Callable[[], Awaitable[TaskRecord | None]]
    ) -> TaskRecord | None:
        final = await write()  # the held tries happen inside: the hook sees the write that took
        written.append(None if final is None else final.status.value)
        return final

    backend.finish = flaky_finish  # type: ignore[method-assign]
    recording.finish = finish  # type: ignore[method-assign]
    outcome = await service.enqueue(held)
    config = dataclasses.replace(FAST_WORKER, stale_threshold=5)
    await Worker(service, config).run_until_idle()
    assert failures["left"] == 0 and written == ["completed"]
    assert recording.calls[2:] == [("attempt", 1), ("attempted", "completed")]
    assert await service.result(outcome.id) == "done"


async def test_only_the_maintenance_lock_holder_ticks_and_a_failing_tick_is_logged(
    registry: TaskRegistry, make_config: Callable[..., QueueConfig], caplog: pytest.LogCaptureFixture
) -> None:
    recording = Recording()
    slow = dataclasses.replace(FAST_WORKER, maintenance_interval=30)  # passes on demand only; the lock lasts 60 s
    async with QueueService(make_config(instrumentation=recording, worker=slow), registry=registry) as service:
        first, second = Worker(service), Worker(service)
        await first.start()  # its pass at start takes the lock and ticks
        await second.start()
        try:
            await first._maintenance()
            await second._maintenance()
        finally:
            await second.stop()
            await first.stop()
    assert recording.ticks == [first.id, first.id]
    assert "the instrumentation's maintenance tick failed" in caplog.text


async def test_every_attempt_outcome_is_one_structured_log_line(
    service: QueueService, registry: TaskRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    @task("hooks.fails", registry=registry)
    async def fails() -> None:
        raise RuntimeError("broken")

    caplog.set_level(logging.INFO, "litestar_queues.worker")
    outcome = await service.enqueue(fails)
    await Worker(service).run_until_idle()
    (line,) = [r for r in caplog.records if getattr(r, "task_id", None) == outcome.id]
    assert (line.levelno, line.task_name, line.queue, line.attempt, line.status) == (  # type: ignore[attr-defined]
        logging.ERROR,
        "hooks.fails",
        "default",
        1,
        "failed",
    )
    assert line.trace_id == TRACEPARENT[3:35] and 0 < line.duration < 5  # type: ignore[attr-defined]
    message = line.getMessage()
    assert message.startswith(f"task {outcome.id} (hooks.fails) attempt 1 failed in ") and "(broken)" in message
    assert message.endswith(f"trace_id={TRACEPARENT[3:35]}")


async def test_without_instrumentation_the_log_line_has_no_trace_id_and_nothing_is_stored(
    registry: TaskRegistry, make_config: Callable[..., QueueConfig], caplog: pytest.LogCaptureFixture
) -> None:
    @task("hooks.plain", registry=registry)
    async def plain() -> int:
        return 1

    caplog.set_level(logging.INFO, "litestar_queues.worker")
    async with QueueService(make_config(), registry=registry) as service:
        outcome = await service.enqueue(plain)
        await Worker(service).run_until_idle()
    assert TRACE_CONTEXT_KEY not in outcome.record.metadata
    (line,) = [r for r in caplog.records if getattr(r, "task_id", None) == outcome.id]
    assert (line.status, line.trace_id) == ("completed", None)  # type: ignore[attr-defined]
    assert "trace_id" not in line.getMessage()


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({TRACE_CONTEXT_KEY: {"traceparent": TRACEPARENT}}, TRACEPARENT[3:35]),
        ({TRACE_CONTEXT_KEY: {"traceparent": "garbage"}}, None),
        ({TRACE_CONTEXT_KEY: "00-not-a-carrier"}, None),
        ({}, None),
    ],
)
def test_stored_trace_id(metadata: dict[str, Any], expected: str | None) -> None:
    from litestar_queues.clock import utc_now

    now = utc_now()
    record = TaskRecord(id="x", task_name="t", created_at=now, scheduled_at=now, metadata=metadata)
    assert stored_trace_id(record) == expected


def test_the_config_refuses_what_is_no_instrumentation() -> None:
    with pytest.raises(ConfigurationError, match="must be an Instrumentation"):
        QueueConfig(instrumentation=object())  # type: ignore[arg-type]
