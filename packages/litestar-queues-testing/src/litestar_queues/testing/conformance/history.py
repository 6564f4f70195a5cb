"""The event history ([EVENT_HISTORY]): events stored as given, queried in ``(occurred_at, sequence, id)`` order
through filters and cursors, pruned oldest first in bounded batches.

Two tests need hooks from the backend's test file, and skip without them:

* ``limit_history_scan``: a function ``limit(n)`` making the backend examine at most ``n`` stored events per page
  of a query (``HISTORY_SCAN_WINDOW`` by default; every backend of this project has an ``event_scan_window``
  attribute: ``lambda n: setattr(backend, "event_scan_window", n)``);
* ``corrupt_event``: an async function ``corrupt(event_id)`` damaging a stored event so that it no longer decodes
  (keeping what the backend filters on).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from litestar_queues.backend import Capability, QueueBackend
from litestar_queues.events.envelope import QueueEvent
from litestar_queues.events.history import EventFilter, event_position, parse_event_cursor
from litestar_queues.records import TaskProgress, new_record_id
from litestar_queues.testing.conformance.base import ConformanceBase, optional_fixture
from litestar_queues.testing.conformance.support import QUEUE, claim_one, enqueue_one, make_record, require, rule, stale

__all__ = ("EventHistoryConformance",)

CorruptEvent = Callable[[str], Awaitable[None]]

_MICROSECOND = timedelta(microseconds=1)
_PAGES = 1000
"""Most pages a test reads: a cursor that never ends fails instead of hanging."""


def make_event(moment: datetime, **changes: Any) -> QueueEvent:
    """Return a ``task.progress`` event of a new task in :data:`QUEUE` at ``moment``, with ``changes`` applied."""
    task_id = changes.pop("task_id", new_record_id())
    values: dict[str, Any] = {
        "type": "task.progress",
        "scope_key": task_id,
        "task_id": task_id,
        "task_name": "conformance.noop",
        "queue": QUEUE,
        "attempt": 1,
        "sequence": 1,
        "occurred_at": moment,
    }
    values.update(changes)
    return QueueEvent(**values)


def _ids(events: list[QueueEvent]) -> list[str]:
    return [event.id for event in events]


def _ordered(events: list[QueueEvent], *, newest_first: bool = False) -> list[str]:
    return _ids(sorted(events, key=event_position, reverse=newest_first))


async def _all_pages(
    backend: QueueBackend, where: EventFilter, limit: int, *, newest_first: bool = False
) -> list[list[QueueEvent]]:
    pages: list[list[QueueEvent]] = []
    cursor: str | None = None
    for _ in range(_PAGES):
        page = await backend.query_events(where, limit=limit, cursor=cursor, newest_first=newest_first)
        assert len(page.events) <= limit, rule("query_events", "at most limit per page", f"got {len(page.events)}")
        pages.append(page.events)
        if page.next_cursor is None:
            return pages
        _check_cursor(page.next_cursor, page.events, newest_first=newest_first)
        cursor = page.next_cursor
    pytest.fail(rule("query_events", "iterating pages visits every matching event exactly once", "no last page"))


def _check_cursor(cursor: str, events: list[QueueEvent], *, newest_first: bool) -> None:
    try:
        position = parse_event_cursor(cursor)
    except ValueError:
        pytest.fail(rule("query_events", "a cursor is a position, made with event_cursor", f"got {cursor!r}"))
    if events:
        last = event_position(events[-1])
        assert (position <= last) if newest_first else (position >= last), rule(
            "query_events", "the next page starts after the cursor: at or after the page's last event", repr(position)
        )


async def _stored(backend: QueueBackend, where: EventFilter | None = None) -> list[QueueEvent]:
    """Every stored event matching ``where`` in history order (through pages of 100)."""
    pages = await _all_pages(backend, where or EventFilter(), 100)
    return [event for page in pages for event in page]


def _filters(start: datetime) -> Iterator[tuple[str, EventFilter]]:
    since, before = start + timedelta(seconds=1), start + timedelta(seconds=3)
    yield "task_id", EventFilter(task_id="task-b")
    yield "type", EventFilter(type="task.log")
    yield "queue", EventFilter(queue="beta")
    yield "since", EventFilter(since=since)
    yield "before", EventFilter(before=before)
    yield "time range", EventFilter(since=since, before=before)
    yield "task_id+type", EventFilter(task_id="task-a", type="task.log")
    yield "type+queue", EventFilter(type="task.progress", queue="beta")
    yield "task_id+queue", EventFilter(task_id="task-b", queue="alpha")
    yield "task_id+time range", EventFilter(task_id="task-a", since=since, before=before)
    yield "all", EventFilter(task_id="task-b", type="task.log", queue="beta", since=since, before=before)


_FILTER_START = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)
_FILTERS = list(_filters(_FILTER_START))


class EventHistoryConformance(ConformanceBase):
    """``append_events``, ``query_events`` and ``prune_events`` keep the event history (when declared)."""

    async def test_history_stores_every_field_as_given(self, backend: QueueBackend, now: datetime) -> None:
        require(backend, Capability.EVENT_HISTORY)
        full = QueueEvent(
            id=new_record_id(),
            type="reports.page_rendered",
            scope="task",
            scope_key="0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
            task_id="0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
            task_name="reports.build",
            queue="history-round-trip",
            worker_id="worker-7",
            execution_backend="cloudrun",
            execution_profile="large",
            attempt=3,
            sequence=9_007_199_254_740_993,  # above 2**53: a double would round it
            level="warning",
            message="page 3 of 4 — done ✓",
            progress_current=2.5,
            progress_total=4.0,
            progress_percent=62.5,
            actor="user:42",
            entity="report:7",
            payload={"camelCase": [1, 2.5, None, {"nested": True}], "snake_case": "kept verbatim"},
            occurred_at=now.replace(microsecond=123457),
            event_key="report:7:page:3",
        )
        bare = QueueEvent(id=new_record_id(), type="custom", scope="global", occurred_at=now + timedelta(seconds=1))
        await backend.append_events([full, bare])
        stored = await _stored(backend)
        assert stored == [full, bare], rule(
            "append_events",
            "each event is stored exactly as given: every field comes back from query_events",
            f"appended {[full, bare]!r}, got {stored!r}",
        )
        assert all(event.occurred_at.utcoffset() == timedelta(0) for event in stored), rule(
            "query_events", "all datetimes are aware UTC"
        )

    async def test_history_orders_by_time_then_sequence_then_id(self, backend: QueueBackend, now: datetime) -> None:
        require(backend, Capability.EVENT_HISTORY)
        # Ids sort against the expected order wherever they do not decide it; sequences 2 and 10 sort the other way
        # as text; one event is a microsecond after the tie (a millisecond store would tie it); None counts as 0.
        ids = sorted(new_record_id() for _ in range(9))
        tied = now.replace(microsecond=500_000)
        expected = [
            make_event(tied - _MICROSECOND, id=ids[8], sequence=99),
            make_event(tied, id=ids[7], sequence=-1),
            make_event(tied, id=ids[6], sequence=None),
            make_event(tied, id=ids[1], sequence=2),
            make_event(tied, id=ids[2], sequence=2),
            make_event(tied, id=ids[5], sequence=3),
            make_event(tied, id=ids[0], sequence=10),
            make_event(tied + _MICROSECOND, id=ids[4], sequence=0),
            make_event(tied + timedelta(hours=1), id=ids[3], sequence=None),
        ]
        scrambled = [expected[index] for index in (4, 7, 0, 8, 2, 6, 1, 3, 5)]
        await backend.append_events(scrambled[:4])
        for event in scrambled[4:]:
            await backend.append_events([event])
        got = await backend.query_events(EventFilter(), limit=100)
        assert _ids(got.events) == _ids(expected), rule(
            "query_events",
            "order by (occurred_at, sequence, id) ascending; a missing sequence counts as 0",
            f"positions in the order returned: {[event_position(event) for event in got.events]}",
        )
        newest = await backend.query_events(EventFilter(), limit=100, newest_first=True)
        assert _ids(newest.events) == _ids(expected)[::-1], rule(
            "query_events", "newest_first: the same order descending"
        )

    @pytest.mark.parametrize("where", [where for _, where in _FILTERS], ids=[name for name, _ in _FILTERS])
    async def test_history_filters_by_every_field_it_sets(self, backend: QueueBackend, where: EventFilter) -> None:
        require(backend, Capability.EVENT_HISTORY)
        # One event for each task x type x queue x second: dropping any part of the filter, or or-ing its parts,
        # or moving a bound by a microsecond, selects other events than the filter does.
        events = [
            make_event(_FILTER_START + timedelta(seconds=second) + shift, task_id=task, type=kind, queue=queue)
            for task in ("task-a", "task-b")
            for kind in ("task.progress", "task.log")
            for queue in ("alpha", "beta")
            for second in range(5)
            for shift in (-_MICROSECOND, timedelta(0))
        ]
        events.append(make_event(_FILTER_START + timedelta(seconds=2), task_id=None, scope="global", queue="beta"))
        await backend.append_events(events[::-1])
        expected = _ordered([event for event in events if where.matches(event)])
        got = await _stored(backend, where)
        assert _ids(got) == expected, rule(
            "query_events",
            "an event matches when it has every field where sets (since <= occurred_at < before), in history order",
            f"filter {where!r}: expected {len(expected)} events, got {len(got)}",
        )

    async def test_history_time_range_includes_since_and_excludes_before(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        require(backend, Capability.EVENT_HISTORY)
        since, before = now, now + timedelta(seconds=10)
        moments = [since - _MICROSECOND, since, before - _MICROSECOND, before]
        events = [make_event(moment) for moment in moments]
        await backend.append_events(events)
        got = await backend.query_events(EventFilter(since=since, before=before), limit=10)
        assert [event.occurred_at for event in got.events] == moments[1:3], rule(
            "query_events", "since <= occurred_at < before (to the microsecond)"
        )

    @pytest.mark.parametrize("newest_first", [False, True], ids=["oldest first", "newest first"])
    @pytest.mark.parametrize("limit", [1, 3, 7, 50])
    async def test_history_pages_visit_every_event_exactly_once(
        self, backend: QueueBackend, now: datetime, limit: int, newest_first: bool
    ) -> None:
        require(backend, Capability.EVENT_HISTORY)
        task_id = new_record_id()
        # Several events share a moment (and some a sequence), so a cursor that keeps only the time, or the time and
        # the sequence, skips or repeats events at a page boundary.
        events = [
            make_event(
                now + timedelta(seconds=number // 6), task_id=task_id if number % 4 else None, sequence=number % 2
            )
            for number in range(26)
        ]
        await backend.append_events(events)
        where = EventFilter(task_id=task_id)
        pages = await _all_pages(backend, where, limit, newest_first=newest_first)
        visited = [event.id for page in pages for event in page]
        expected = _ordered([event for event in events if event.task_id == task_id], newest_first=newest_first)
        assert visited == expected, rule(
            "query_events",
            "iterating pages visits every matching event exactly once, in history order",
            f"visited {len(visited)} ids ({len(set(visited))} distinct) of {len(expected)}",
        )

    async def test_history_cursor_is_a_position_not_an_offset(self, backend: QueueBackend, now: datetime) -> None:
        require(backend, Capability.EVENT_HISTORY)
        events = [make_event(now + timedelta(seconds=number)) for number in range(6)]
        await backend.append_events(events)
        first = await backend.query_events(EventFilter(), limit=3)
        assert _ids(first.events) == _ids(events[:3]) and first.next_cursor is not None, rule(
            "query_events", "at most limit per page, in history order, with a cursor while more follow"
        )
        # Meanwhile: two events appended before the cursor, one after everything, and the oldest event pruned (an
        # offset would now point one event earlier than the cursor does).
        earlier = [make_event(now + timedelta(seconds=1, microseconds=shift)) for shift in (5, 6)]
        later = make_event(now + timedelta(seconds=60))
        await backend.append_events([*earlier, later])
        assert await backend.prune_events(occurred_before=now + _MICROSECOND, limit=10) == 1, rule(
            "prune_events", "delete the events with occurred_at < occurred_before"
        )
        rest: list[QueueEvent] = []
        cursor: str | None = first.next_cursor
        for _ in range(_PAGES):
            if cursor is None:
                break
            page = await backend.query_events(EventFilter(), limit=3, cursor=cursor)
            rest += page.events
            cursor = page.next_cursor
        assert _ids(rest) == _ids([*events[3:], later]), rule(
            "query_events",
            "the next page holds the events after the cursor's position, even when events were appended or pruned "
            "meanwhile at positions the pages already passed",
            f"expected the last 3 events and the one appended after them, got {len(rest)} events",
        )

    async def test_history_appending_an_event_again_stores_it_once(self, backend: QueueBackend, now: datetime) -> None:
        require(backend, Capability.EVENT_HISTORY)
        first, second, third = (make_event(now + timedelta(seconds=number)) for number in range(3))
        await backend.append_events([first, second])
        await backend.append_events([second, third, third])
        assert _ids(await _stored(backend)) == _ids([first, second, third]), rule(
            "append_events",
            "an event whose id is already stored, or appears earlier in the same call, is not stored again",
        )

    @pytest.mark.parametrize("limit", [0, -1])
    async def test_history_query_with_limit_below_one_returns_an_empty_last_page(
        self, backend: QueueBackend, now: datetime, limit: int
    ) -> None:
        require(backend, Capability.EVENT_HISTORY)
        await backend.append_events([make_event(now), make_event(now)])
        page = await backend.query_events(EventFilter(), limit=limit)
        assert (page.events, page.next_cursor) == ([], None), rule(
            "query_events", "limit <= 0 returns an empty last page", f"limit={limit}: {len(page.events)} events"
        )

    async def test_history_query_of_nothing_returns_an_empty_last_page(self, backend: QueueBackend) -> None:
        require(backend, Capability.EVENT_HISTORY)
        page = await backend.query_events(EventFilter(), limit=10)
        assert (page.events, page.next_cursor) == ([], None), rule("query_events", "no events: an empty last page")

    async def test_history_prune_deletes_events_that_occurred_before(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        require(backend, Capability.EVENT_HISTORY)
        cutoff = now.replace(microsecond=250_000)
        old = [make_event(cutoff - timedelta(hours=2)), make_event(cutoff - _MICROSECOND)]
        kept = [make_event(cutoff, sequence=0), make_event(cutoff + timedelta(hours=1))]
        await backend.append_events([*kept, *old])
        deleted = await backend.prune_events(occurred_before=cutoff, limit=10)
        assert deleted == 2, rule("prune_events", "delete events with occurred_at < occurred_before; return how many")
        assert _ids(await _stored(backend)) == _ids(kept), rule(
            "prune_events", "occurred_at < occurred_before is strict (to the microsecond): later events stay"
        )

    async def test_history_prune_deletes_at_most_limit_oldest_first(self, backend: QueueBackend, now: datetime) -> None:
        require(backend, Capability.EVENT_HISTORY)
        tied = now - timedelta(hours=1)
        events = [
            make_event(tied - timedelta(minutes=5)),
            make_event(tied, sequence=1),
            make_event(tied, sequence=2),
            make_event(tied, sequence=3),
            make_event(tied + timedelta(minutes=5)),
        ]
        await backend.append_events([events[index] for index in (3, 0, 4, 2, 1)])
        for expected_deleted, remaining in ((2, 3), (2, 1), (1, 0)):
            deleted = await backend.prune_events(occurred_before=now, limit=2)
            assert deleted == expected_deleted, rule("prune_events", "delete up to limit events; return how many")
            assert _ids(await _stored(backend)) == _ids(events[len(events) - remaining :]), rule(
                "prune_events", "oldest first, in history order (occurred_at, sequence, id)"
            )
        assert await backend.prune_events(occurred_before=now, limit=2) == 0, rule(
            "prune_events", "nothing left to delete: return 0"
        )

    @pytest.mark.parametrize("limit", [0, -1])
    async def test_history_prune_with_limit_below_one_deletes_nothing(
        self, backend: QueueBackend, now: datetime, limit: int
    ) -> None:
        require(backend, Capability.EVENT_HISTORY)
        events = [make_event(now - timedelta(hours=1)) for _ in range(3)]
        await backend.append_events(events)
        assert await backend.prune_events(occurred_before=now, limit=limit) == 0, rule(
            "prune_events", "limit <= 0 deletes nothing: return 0"
        )
        assert len(await _stored(backend)) == 3, rule("prune_events", "limit <= 0 deletes nothing")

    async def test_history_is_shared_by_every_connection(
        self, backend: QueueBackend, cross_connection_backend: QueueBackend, now: datetime
    ) -> None:
        require(backend, Capability.EVENT_HISTORY)
        task_id = new_record_id()
        events = [make_event(now + timedelta(seconds=number), task_id=task_id) for number in range(3)]
        await backend.append_events(events[:2])
        await cross_connection_backend.append_events(events[1:])
        for reader in (backend, cross_connection_backend):
            got = await reader.query_events(EventFilter(task_id=task_id), limit=10)
            assert _ids(got.events) == _ids(events), rule(
                "append_events",
                "stored events are visible to query_events as soon as this returns (through any connection), "
                "and an id already stored is not stored again",
            )

    @pytest.fixture
    def history_scan_window(self, request: pytest.FixtureRequest) -> Callable[[int], None]:
        """The backend's ``limit_history_scan`` fixture, or skip (see the module docstring)."""
        hook: Callable[[int], None] = optional_fixture(
            request,
            "limit_history_scan",
            "bounded-scan test: define a `limit_history_scan` fixture returning `limit(n)` that makes the backend "
            "examine at most n events per page of a history query",
        )
        return hook

    @pytest.mark.parametrize("newest_first", [False, True], ids=["oldest first", "newest first"])
    @pytest.mark.parametrize(
        "where",
        [EventFilter(type="task.log"), EventFilter(queue="beta"), EventFilter(type="task.log", queue="beta")],
        ids=["type", "queue", "type+queue"],
    )
    async def test_history_pages_of_a_bounded_scan_go_on_until_every_match(
        self,
        backend: QueueBackend,
        history_scan_window: Callable[[int], None],
        now: datetime,
        where: EventFilter,
        newest_first: bool,
    ) -> None:
        require(backend, Capability.EVENT_HISTORY)
        window, limit = 4, 3
        history_scan_window(window)
        # Runs of matches longer than a page, single matches, and gaps of 3 to 14 non-matching events (longer than
        # the window, exactly the window and shorter), at the start and at the end: a page that stops at its window
        # must hand on a cursor at the last event it examined, not at its last match, and not end the query.
        runs = [0, 2, 14, 1, 4, 5, 3, 7, 1, 0, 9, 4, 13]
        events: list[QueueEvent] = []
        moment = now - timedelta(hours=1)
        for number, gap in enumerate(runs):
            for _ in range(gap):
                moment += _MICROSECOND * 7
                events.append(make_event(moment, type="task.progress", queue="alpha" if number % 2 else "beta"))
            for _ in range(number % 5):
                moment += _MICROSECOND * 7
                events.append(make_event(moment, type="task.log", queue="beta"))
        # Ties broken by sequence and id next to a window's edge.
        events += [make_event(moment, type="task.log", queue="beta", sequence=2) for _ in range(3)]
        events += [make_event(moment, type="task.progress", queue="alpha", sequence=2) for _ in range(3)]
        events.append(make_event(moment + _MICROSECOND, type="task.log", queue="beta", sequence=0))
        await backend.append_events(events[::-1])
        expected = _ordered([event for event in events if where.matches(event)], newest_first=newest_first)
        positions = sorted(map(event_position, events), reverse=newest_first)
        pages: list[list[QueueEvent]] = []
        cursor: str | None = None
        for _ in range(_PAGES):
            page = await backend.query_events(where, limit=limit, cursor=cursor, newest_first=newest_first)
            pages.append(page.events)
            # How many events (of any type and queue) come at or before the cursor in the page order.
            start = 0
            if cursor is not None:
                at = parse_event_cursor(cursor)
                start = sum(1 for position in positions if (position >= at if newest_first else position <= at))
            if page.events:
                reached = positions.index(event_position(page.events[-1])) + 1
                assert len(page.events) <= limit and reached - start <= window, rule(
                    "query_events",
                    "a backend whose scan is limited to n events examines at most n events past the cursor per page",
                    f"a page reached {reached - start} events past its cursor with the scan limited to {window}",
                )
            if page.next_cursor is None:
                break
            _check_cursor(page.next_cursor, page.events, newest_first=newest_first)
            cursor = page.next_cursor
        visited = [event.id for page in pages for event in page]
        assert visited == expected, rule(
            "query_events",
            "a page may be short (a backend bounds the work of one call) while next_cursor goes on: iterating pages "
            "visits every matching event exactly once, in history order",
            f"visited {len(visited)} ids ({len(set(visited))} distinct) of {len(expected)}",
        )
        assert any(len(page) < limit for page in pages[:-1]), rule(
            "query_events", "a page whose scan ran out before limit matches is short and has a next_cursor"
        )

    @pytest.fixture
    def damage_event(self, request: pytest.FixtureRequest) -> CorruptEvent:
        """The backend's ``corrupt_event`` fixture, or skip (see the module docstring)."""
        hook: CorruptEvent = optional_fixture(
            request,
            "corrupt_event",
            "undecodable-event test: define a `corrupt_event` fixture returning `async corrupt(event_id)` that damages "
            "a stored event",
        )
        return hook

    @pytest.mark.parametrize("limit", [1, 2, 100])
    async def test_history_query_skips_an_event_that_cannot_be_decoded(
        self,
        backend: QueueBackend,
        damage_event: CorruptEvent,
        now: datetime,
        limit: int,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        require(backend, Capability.EVENT_HISTORY)
        task_id = new_record_id()
        events = [make_event(now + timedelta(seconds=number), task_id=task_id, queue="beta") for number in range(5)]
        await backend.append_events(events)
        broken = events[2]
        await damage_event(broken.id)
        readable = _ids([event for event in events if event is not broken])
        caplog.set_level(logging.WARNING)
        for where in (EventFilter(), EventFilter(task_id=task_id), EventFilter(queue="beta")):
            for newest_first in (False, True):
                pages = await _all_pages(backend, where, limit, newest_first=newest_first)
                visited = [event.id for page in pages for event in page]
                assert visited == (readable[::-1] if newest_first else readable), rule(
                    "query_events",
                    "a stored event that cannot be decoded is logged and left out; the rest of every page is returned",
                    f"filter {where!r}, limit {limit}: visited {visited}",
                )
        assert any(record.levelno >= logging.WARNING for record in caplog.records), rule(
            "query_events", "a stored event that cannot be decoded is logged"
        )

    async def test_history_events_with_progress_store_both_under_the_fence(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        require(backend, Capability.EVENT_HISTORY)
        await enqueue_one(backend, make_record(now))
        await enqueue_one(backend, make_record(now))
        running, other = await claim_one(backend, now), await claim_one(backend, now)

        def progress(current: float) -> TaskProgress:
            return TaskProgress(current=current, total=4.0, percent=current * 25, attempt=1, updated_at=now)

        events = [make_event(now + timedelta(seconds=number), task_id=running.id) for number in range(3)]
        await backend.append_events_with_progress(
            events[:2],
            [
                (running.lease, progress(1.0)),
                (stale(other.lease, owner="worker-z"), progress(3.0)),
                (running.lease, progress(2.0)),
            ],
        )
        await backend.append_events_with_progress(events[1:], [])
        await backend.append_events_with_progress([], [(other.lease, progress(4.0))])
        assert _ids(await _stored(backend)) == _ids(events), rule(
            "append_events_with_progress", "store the events as append_events does (an id already stored once)"
        )
        stored, untouched = await backend.get(running.id), await backend.get(other.id)
        assert stored is not None and stored.progress == progress(2.0), rule(
            "append_events_with_progress",
            "store the progress as save_progress does: the last update of a fence wins",
            repr(stored),
        )
        assert untouched is not None and untouched.progress == progress(4.0), rule(
            "append_events_with_progress", "a progress whose fence does not match changes nothing", repr(untouched)
        )
