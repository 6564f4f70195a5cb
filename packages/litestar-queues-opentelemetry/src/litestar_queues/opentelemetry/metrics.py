"""Queue metrics through the OpenTelemetry metrics API, cheap on the hot path.

Counters are kept as plain per-``(queue, task)`` integers and reported by observable counters when a reader collects
(a Prometheus scrape, a periodic export): counting a job costs a dict update, not an SDK call. Histograms are recorded
per attempt, as histograms must be. Queue gauges come from a snapshot the worker holding the maintenance lock takes
once per maintenance pass; a snapshot older than three passes is no longer reported, so a worker that lost the lock
stops reporting its stale view.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from litestar_queues.records import Outcome, QueueStatistics, TaskRecord, TaskStatus, WorkerInfo
from opentelemetry.metrics import CallbackOptions, Meter, Observation

__all__ = ("DURATION_BUCKETS", "QueueMetrics")

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
"""Histogram bucket boundaries in seconds: from 5 ms to an hour."""

_Counts = dict[tuple[str, str], int]


@dataclass(frozen=True)
class _Snapshot:
    statistics: Sequence[QueueStatistics]
    workers: dict[str, int]
    paused: frozenset[str]
    taken_at: datetime
    expires: float
    """``time.monotonic()`` after which it is no longer reported."""


class QueueMetrics:
    """The instruments of one :class:`~litestar_queues.opentelemetry.OpenTelemetryInstrumentation`."""

    __slots__ = (
        "_labels",
        "_snapshot",
        "cancelled",
        "completed",
        "enqueued",
        "failed",
        "retried",
        "run_duration",
        "started",
        "wait_duration",
    )

    def __init__(self, meter: Meter) -> None:
        self._labels: dict[tuple[str, str, str], dict[str, str]] = {}
        self._snapshot: _Snapshot | None = None
        self.enqueued: _Counts = {}
        self.started: _Counts = {}
        self.completed: _Counts = {}
        self.failed: _Counts = {}
        self.retried: _Counts = {}
        self.cancelled: _Counts = {}
        counters = {
            "enqueued": (self.enqueued, "Tasks enqueued (new records; a deduplicated enqueue is not counted)"),
            "started": (self.started, "Attempts started"),
            "completed": (self.completed, "Attempts that completed"),
            "failed": (self.failed, "Attempts that failed for good (no retry left, or not retryable)"),
            "retried": (self.retried, "Attempts that failed and will be retried"),
            "cancelled": (self.cancelled, "Attempts cancelled while running"),
        }
        for name, (counts, description) in counters.items():
            meter.create_observable_counter(
                f"litestar_queues.tasks.{name}", [_observer(counts)], unit="{task}", description=description
            )
        self.run_duration = meter.create_histogram(
            "litestar_queues.task.run.duration",
            unit="s",
            description="Duration of an attempt in this process, its outcome's write included",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.wait_duration = meter.create_histogram(
            "litestar_queues.task.wait.duration",
            unit="s",
            description="Time from when an attempt was due to when a worker claimed it",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        gauges = {
            "queue.depth": (_depth, "{task}", "Records by queue and status"),
            "queue.oldest_due.age": (_oldest_due_age, "s", "Wait of the oldest due pending record (0 when none)"),
            "workers": (_workers, "{worker}", "Live workers serving each queue"),
            "queue.paused": (_paused, "1", "1 while the queue is paused (nothing is claimed from it), else 0"),
        }
        for name, (read, unit, description) in gauges.items():
            meter.create_observable_gauge(
                f"litestar_queues.{name}",
                [self._gauge(read)],
                unit=unit,
                description=f"{description}, as of the last maintenance pass",
            )

    # -- per job -------------------------------------------------------------------------------------

    def count_enqueued(self, records: Iterable[TaskRecord]) -> None:
        counts = self.enqueued
        for record in records:
            key = (record.queue, record.task_name)
            counts[key] = counts.get(key, 0) + 1

    def attempt_started(self, record: TaskRecord) -> None:
        key = (record.queue, record.task_name)
        self.started[key] = self.started.get(key, 0) + 1
        if record.started_at is not None:
            waited = (record.started_at - record.scheduled_at).total_seconds()
            self.wait_duration.record(max(0.0, waited), self._attributes(record, ""))

    def attempt_ended(self, record: TaskRecord, status: str, seconds: float) -> None:
        self.run_duration.record(seconds, self._attributes(record, status))

    def outcome_written(self, outcome: Outcome, final: TaskRecord) -> None:
        status = final.status
        if status is TaskStatus.COMPLETED:
            counts = self.completed
        elif status is TaskStatus.FAILED:
            counts = self.failed
        elif status is TaskStatus.CANCELLED:
            counts = self.cancelled
        elif status is TaskStatus.PENDING and not outcome.refund_attempt:  # a shutdown hand-back is no retry
            counts = self.retried
        else:
            return
        key = (final.queue, final.task_name)
        counts[key] = counts.get(key, 0) + 1

    def _attributes(self, record: TaskRecord, status: str) -> dict[str, str]:
        key = (record.queue, record.task_name, status)
        attributes = self._labels.get(key)
        if attributes is None:
            attributes = {"queue": record.queue, "task": record.task_name}
            if status:
                attributes["status"] = status
            self._labels[key] = attributes
        return attributes

    # -- per maintenance pass ------------------------------------------------------------------------

    def take_snapshot(
        self,
        statistics: Sequence[QueueStatistics],
        workers: Sequence[WorkerInfo],
        paused: Iterable[str],
        now: datetime,
        ttl: float,
    ) -> None:
        serving = {stats.queue or "": sum(stats.queue in info.queues for info in workers) for stats in statistics}
        self._snapshot = _Snapshot(statistics, serving, frozenset(paused), now, time.monotonic() + ttl)

    def _gauge(self, read: Callable[[_Snapshot], list[Observation]]) -> Callable[[CallbackOptions], list[Observation]]:
        """A gauge's callback: ``read`` of the current snapshot, nothing once it expired."""

        def observe(options: CallbackOptions) -> list[Observation]:
            snapshot = self._snapshot
            return read(snapshot) if snapshot is not None and time.monotonic() < snapshot.expires else []

        return observe


def _depth(snapshot: _Snapshot) -> list[Observation]:
    return [
        Observation(count, {"queue": stats.queue or "", "status": status.value})
        for stats in snapshot.statistics
        for status, count in stats.counts.items()
    ]


def _oldest_due_age(snapshot: _Snapshot) -> list[Observation]:
    return [
        Observation(stats.oldest_pending_age(snapshot.taken_at) or 0.0, {"queue": stats.queue or ""})
        for stats in snapshot.statistics
    ]


def _workers(snapshot: _Snapshot) -> list[Observation]:
    return [Observation(count, {"queue": queue}) for queue, count in snapshot.workers.items()]


def _paused(snapshot: _Snapshot) -> list[Observation]:
    return [Observation(int(queue in snapshot.paused), {"queue": queue}) for queue in snapshot.workers]


def _observer(counts: _Counts) -> Callable[[CallbackOptions], Iterable[Observation]]:
    def observe(options: CallbackOptions) -> Iterable[Observation]:
        # a copy: a reader collects in its own thread while the event loop's thread counts on
        return [Observation(value, {"queue": queue, "task": task}) for (queue, task), value in counts.copy().items()]

    return observe
