"""QueueEvent wire format and channel names, field for field against the documented envelope."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from litestar_queues.events import (
    InMemoryQueueEventSink,
    QueueChannels,
    QueueEvent,
    QueueEventConfig,
    QueueEventPublisher,
)

WIRE_FIELDS = [
    "id", "type", "scope", "scopeKey", "taskId", "taskName", "queue", "workerId", "executionBackend",
    "executionProfile", "attempt", "sequence", "level", "message", "progressCurrent", "progressTotal",
    "progressPercent", "actor", "entity", "payload", "occurredAt", "eventKey", "schemaVersion",
]  # fmt: skip


def _event(**fields: object) -> QueueEvent:
    base: dict[str, object] = {
        "id": "evt-1",
        "type": "task.progress",
        "scope_key": "task-1",
        "task_id": "task-1",
        "occurred_at": datetime(2026, 11, 22, 10, 30, 0, 123456, tzinfo=timezone.utc),
    }
    base.update(fields)
    return QueueEvent(**base)  # type: ignore[arg-type]


def test_wire_names_are_camel_case_and_nulls_are_kept() -> None:
    wire = json.loads(_event().to_json())
    assert sorted(wire) == sorted(WIRE_FIELDS)
    assert wire["workerId"] is None
    assert wire["progressPercent"] is None
    assert wire["schemaVersion"] == 1
    assert wire["scopeKey"] == "task-1"


def test_occurred_at_is_rfc3339_utc_with_z() -> None:
    wire = json.loads(_event().to_json())
    assert wire["occurredAt"] == "2026-11-22T10:30:00.123456Z"


def test_payload_passes_through_verbatim() -> None:
    payload = {"video_id": "v1", "nested_key": {"snake_case": 1}}
    wire = json.loads(_event(payload=payload).to_json())
    assert wire["payload"] == payload


def test_round_trip() -> None:
    event = _event(payload={"a": 1}, event_key="k", progress_current=1.0, progress_total=4.0)
    assert QueueEvent.from_json(event.to_json()) == event
    assert event.dedup_key == "k"
    assert _event().dedup_key == "evt-1"


def test_channel_names_are_canonical() -> None:
    assert QueueChannels.task("abc") == "litestar_queues:task:abc:events"
    assert QueueChannels.queue("emails") == "litestar_queues:queue:emails:events"
    assert QueueChannels.worker("w-1") == "litestar_queues:worker:w-1:events"
    assert QueueChannels.global_() == "litestar_queues:global:events"
    assert QueueChannels.custom("tenant-7") == "litestar_queues:custom:tenant-7:events"


@pytest.mark.anyio
async def test_publisher_resolves_channels_without_duplicates() -> None:
    sink = InMemoryQueueEventSink()
    publisher = QueueEventPublisher(QueueEventConfig(enabled=True, sink=sink, publish_global_lifecycle=True))
    started = _event(type="task.started")
    await publisher.publish(started, ["litestar_queues:task:task-1:events", "extra"])
    await publisher.publish(_event(type="task.log"))
    assert sink.published[0][1] == ("litestar_queues:task:task-1:events", "litestar_queues:global:events", "extra")
    assert sink.published[1][1] == ("litestar_queues:task:task-1:events",)  # not a lifecycle event


@pytest.mark.anyio
async def test_disabled_publisher_publishes_nothing() -> None:
    sink = InMemoryQueueEventSink()
    await QueueEventPublisher(QueueEventConfig(sink=sink)).publish(_event())
    assert sink.events == []


class _BrokenSink:
    async def publish(self, event: QueueEvent, channels: object) -> None:
        raise ConnectionError("sink down")


@pytest.mark.anyio
async def test_best_effort_logs_and_strict_raises(caplog: pytest.LogCaptureFixture) -> None:
    await QueueEventPublisher(QueueEventConfig(enabled=True, sink=_BrokenSink())).publish(_event())
    assert "publishing task.progress event evt-1 failed" in caplog.text
    with pytest.raises(ConnectionError):
        await QueueEventPublisher(QueueEventConfig(enabled=True, sink=_BrokenSink(), strict=True)).publish(_event())
