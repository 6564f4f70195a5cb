"""What a worker finished lately, per queue: counted as attempts end, reported with every heartbeat.

A worker counts each attempt it finishes (one ``Counter`` increment, whatever the outcome) and, at each
heartbeat, reports how many it finished per queue over roughly the last minute, in its ``WorkerInfo.metadata``.
Whoever reads the live workers (the dashboard, ``litestar queues status``) adds their reports up to a rate,
without reading a single record: see :func:`finished_per_minute`.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable
from typing import Any

from litestar_queues.records import WorkerInfo

__all__ = ("FINISHED_KEY", "WINDOW_KEY", "RecentCounts", "finished_per_minute")

FINISHED_KEY = "finished"
"""``WorkerInfo.metadata`` key: attempts finished per queue within the reported window."""
WINDOW_KEY = "finished_window"
"""``WorkerInfo.metadata`` key: the seconds the ``finished`` counts cover."""


class RecentCounts:
    """Counts per queue since a while ago: running totals, and a sample of them at every report."""

    __slots__ = ("_samples", "totals", "window")

    def __init__(self, window: float, now: float) -> None:
        """Start counting at ``now`` (a monotonic clock's seconds); reports cover about ``window`` seconds."""
        self.window = window
        self.totals: Counter[str] = Counter()
        """Everything counted so far (a worker increments it directly: the hot path is one increment)."""
        self._samples: deque[tuple[float, dict[str, int]]] = deque([(now, {})])

    def report(self, now: float) -> dict[str, Any]:
        """The counts since the oldest sample still within ``window`` of ``now``, and how long ago that was.

        The result goes into ``WorkerInfo.metadata`` as ``{"finished": {queue: n}, "finished_window": seconds}``.
        """
        samples = self._samples
        samples.append((now, dict(self.totals)))
        while len(samples) > 1 and now - samples[1][0] >= self.window:
            samples.popleft()
        since, before = samples[0]
        finished = {queue: total - before.get(queue, 0) for queue, total in self.totals.items()}
        return {
            FINISHED_KEY: {queue: count for queue, count in finished.items() if count},
            WINDOW_KEY: round(now - since, 3),
        }


def finished_per_minute(workers: Iterable[WorkerInfo]) -> dict[str, float]:
    """Attempts finished per minute and queue, summed over the reports of ``workers`` (each over its own window).

    Workers that report nothing yet (just started, or from an older version) add nothing.
    """
    rates: dict[str, float] = {}
    for worker in workers:
        window = worker.metadata.get(WINDOW_KEY)
        finished = worker.metadata.get(FINISHED_KEY)
        if not isinstance(window, (int, float)) or window <= 0 or not isinstance(finished, dict):
            continue
        for queue, count in finished.items():
            if isinstance(count, int):
                rates[queue] = rates.get(queue, 0.0) + count * 60.0 / window
    return rates
