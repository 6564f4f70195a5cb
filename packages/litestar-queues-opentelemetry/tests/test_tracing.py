"""Spans of enqueues, attempts and outcome writes: names, kinds, attributes, parents and links, errors."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry import baggage, context, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.trace import SpanKind, StatusCode

from litestar_queues import (
    Outcome,
    QueueConfig,
    QueueService,
    TaskError,
    TaskRegistry,
    TaskStatus,
    Worker,
    task,
)
from litestar_queues.instrumentation import TRACE_CONTEXT_KEY
from litestar_queues.opentelemetry import OpenTelemetryInstrumentation

if TYPE_CHECKING:
    from conftest import Telemetry

pytestmark = pytest.mark.anyio


def define_tasks(registry: TaskRegistry, tracer: trace.Tracer) -> dict[str, Any]:
    @task("obs.ok", registry=registry)
    async def ok(n: int) -> dict[str, Any]:
        with tracer.start_as_current_span("inside the task"):
            pass
        return {"n": n, "baggage": baggage.get_baggage("tenant")}

    @task("obs.flaky", registry=registry, retries=1, retry_backoff=0)
    async def flaky() -> None:
        raise ValueError("not today")

    return {"ok": ok, "flaky": flaky}


def hex_id(value: int, digits: int) -> str:
    return format(value, f"0{digits}x")


async def test_an_attempt_is_a_child_of_the_enqueue_that_is_a_child_of_the_caller(
    service: QueueService, registry: TaskRegistry, telemetry: Telemetry
) -> None:
    tracer = telemetry.tracer_provider.get_tracer("test")
    tasks = define_tasks(registry, tracer)
    with tracer.start_as_current_span("POST /reports") as request:
        token = context.attach(baggage.set_baggage("tenant", "acme"))
        try:
            outcome = await service.enqueue(tasks["ok"], 7)
        finally:
            context.detach(token)
    (enqueue,) = telemetry.finished("enqueue default")
    assert enqueue.kind is SpanKind.PRODUCER
    assert enqueue.parent is not None and enqueue.parent.span_id == request.get_span_context().span_id
    assert dict(enqueue.attributes or {}) == {
        "messaging.system": "litestar_queues",
        "messaging.operation.name": "enqueue",
        "messaging.operation.type": "send",
        "messaging.destination.name": "default",
        "litestar_queues.task.name": "obs.ok",
        "messaging.message.id": outcome.id,
    }
    stored = outcome.record.metadata[TRACE_CONTEXT_KEY]
    trace_id = hex_id(enqueue.context.trace_id, 32)
    flags = hex_id(enqueue.context.trace_flags, 2)
    assert stored["traceparent"] == f"00-{trace_id}-{hex_id(enqueue.context.span_id, 16)}-{flags}"
    assert stored["baggage"] == "tenant=acme"

    await Worker(service).run_until_idle()
    assert await service.result(outcome.id, timeout=5) == {"n": 7, "baggage": "acme"}
    (process,) = telemetry.finished("process default")
    assert process.kind is SpanKind.CONSUMER
    assert process.context.trace_id == enqueue.context.trace_id
    assert process.parent is not None and process.parent.span_id == enqueue.context.span_id
    assert not process.links
    attributes = dict(process.attributes or {})
    assert attributes["messaging.operation.type"] == "process"
    assert attributes["messaging.message.id"] == outcome.id
    assert attributes["litestar_queues.task.attempt"] == 1
    assert attributes["litestar_queues.task.status"] == "completed"
    assert attributes["messaging.client.id"].startswith("worker-")
    assert process.status.status_code is StatusCode.UNSET
    record = await service.get_task(outcome.id)
    assert record is not None and record.started_at is not None
    claim, finish = process.events
    assert claim.name == "claim" and claim.timestamp == int(record.started_at.timestamp() * 1e9)
    assert finish.name == "finish" and (finish.attributes or {})["litestar_queues.task.status"] == "completed"
    assert claim.timestamp < finish.timestamp < (process.end_time or 0)
    assert 0 < (finish.attributes or {})["litestar_queues.finish.duration"] < 5
    (inside,) = telemetry.finished("inside the task")
    assert inside.parent is not None and inside.parent.span_id == process.context.span_id
    assert not telemetry.finished("finish default")  # the outcome's write of an attempt is an event of its span


async def test_a_retry_opens_a_new_trace_linked_to_the_enqueue_and_errors_are_recorded(
    service: QueueService, registry: TaskRegistry, telemetry: Telemetry
) -> None:
    tasks = define_tasks(registry, telemetry.tracer_provider.get_tracer("test"))
    outcome = await service.enqueue(tasks["flaky"])
    await Worker(service).run_until_idle()
    (enqueue,) = telemetry.finished("enqueue default")
    first, second = sorted(telemetry.finished("process default"), key=lambda span: span.start_time or 0)
    assert first.parent is not None and first.parent.span_id == enqueue.context.span_id
    assert first.context.trace_id == enqueue.context.trace_id and not first.links
    assert second.parent is None and second.context.trace_id != enqueue.context.trace_id
    (link,) = second.links
    assert (link.context.trace_id, link.context.span_id) == (enqueue.context.trace_id, enqueue.context.span_id)
    for span, attempt, status in ((first, 1, "retrying"), (second, 2, "failed")):
        attributes = dict(span.attributes or {})
        assert (attributes["litestar_queues.task.attempt"], attributes["litestar_queues.task.status"]) == (
            attempt,
            status,
        )
        assert attributes["error.type"] == "builtins.ValueError"
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description == "builtins.ValueError: not today"
        (exception,) = [event for event in span.events if event.name == "exception"]
        assert (exception.attributes or {})["exception.message"] == "not today"
        assert "raise ValueError" in str((exception.attributes or {})["exception.stacktrace"])
    finishes = [[event for event in span.events if event.name == "finish"] for span in (first, second)]
    assert [(event.attributes or {})["litestar_queues.task.status"] for (event,) in finishes] == ["pending", "failed"]
    record = await service.get_task(outcome.id)
    assert record is not None and record.attempts == 2


async def test_a_batch_shares_one_enqueue_span_and_a_callers_own_context_is_kept(
    service: QueueService, registry: TaskRegistry, telemetry: Telemetry
) -> None:
    tasks = define_tasks(registry, telemetry.tracer_provider.get_tracer("test"))
    own = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    requests = [service.request(tasks["ok"], n) for n in range(3)]
    requests.append(service.request(tasks["ok"].using(metadata={TRACE_CONTEXT_KEY: own}), 3))
    outcomes = await service.enqueue_many(requests)
    (enqueue,) = telemetry.finished("enqueue default")
    assert (enqueue.attributes or {})["messaging.batch.message_count"] == 4
    carriers = [outcome.record.metadata[TRACE_CONTEXT_KEY]["traceparent"] for outcome in outcomes]
    assert len(set(carriers[:3])) == 1 and hex_id(enqueue.context.span_id, 16) in carriers[0]
    assert carriers[3] == own["traceparent"]
    await Worker(service).run_until_idle()
    parents = sorted(span.parent.span_id for span in telemetry.finished("process default") if span.parent)
    assert parents == sorted([enqueue.context.span_id] * 3 + [0xB7AD6B7169203331])


async def test_an_attempt_ended_without_running_here_has_its_finish_in_the_enqueue_trace(
    service: QueueService, registry: TaskRegistry, telemetry: Telemetry
) -> None:
    tasks = define_tasks(registry, telemetry.tracer_provider.get_tracer("test"))
    await service.enqueue(tasks["ok"], 1)
    (claimed,) = await service.backend.claim(["default"], owner="w", limit=1, now=service.clock.now(), lease_seconds=5)
    error = TaskError(type="gone", message="stopped elsewhere")  # as a remote target's reconcile ends one
    final = await service.runner("w").end(claimed, Outcome(status=TaskStatus.FAILED, error=error))
    assert final is not None and final.status is TaskStatus.FAILED
    (enqueue,) = telemetry.finished("enqueue default")
    (finish,) = telemetry.finished("finish default")
    assert finish.parent is not None and finish.parent.span_id == enqueue.context.span_id
    assert (finish.attributes or {})["litestar_queues.task.status"] == "failed"
    assert not telemetry.finished("process default")
    assert telemetry.points("litestar_queues.tasks.failed") == {(("queue", "default"), ("task", "obs.ok")): 1}


async def test_the_attempt_log_line_carries_the_attempts_trace_id(
    service: QueueService, registry: TaskRegistry, telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    tasks = define_tasks(registry, telemetry.tracer_provider.get_tracer("test"))
    caplog.set_level(logging.INFO, "litestar_queues.worker")
    outcome = await service.enqueue(tasks["flaky"])
    await Worker(service).run_until_idle()
    lines = [r for r in caplog.records if getattr(r, "task_id", None) == outcome.id]
    processes = sorted(telemetry.finished("process default"), key=lambda span: span.start_time or 0)
    assert [(r.attempt, r.status, r.trace_id) for r in lines] == [  # type: ignore[attr-defined]
        (1, "retrying", hex_id(processes[0].context.trace_id, 32)),
        (2, "failed", hex_id(processes[1].context.trace_id, 32)),
    ]
    assert all(r.duration > 0 and f"trace_id={r.trace_id}" in r.getMessage() for r in lines)  # type: ignore[attr-defined]


async def test_traces_off_records_no_span_and_stores_no_context(
    registry: TaskRegistry, telemetry: Telemetry, make_config: Callable[..., QueueConfig]
) -> None:
    tasks = define_tasks(registry, telemetry.tracer_provider.get_tracer("test"))
    reader = InMemoryMetricReader()
    instrumentation = OpenTelemetryInstrumentation(
        tracer_provider=telemetry.tracer_provider, meter_provider=MeterProvider(metric_readers=[reader]), traces=False
    )
    async with QueueService(make_config(instrumentation=instrumentation), registry=registry) as service:
        outcome = await service.enqueue(tasks["ok"], 1)
        await Worker(service).run_until_idle()
    assert TRACE_CONTEXT_KEY not in outcome.record.metadata
    assert [span.name for span in telemetry.finished()] == ["inside the task"]
    assert instrumentation.metrics is not None and instrumentation.metrics.completed == {("default", "obs.ok"): 1}
