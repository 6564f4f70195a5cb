"""How stored events are keyed: a position key's byte order is the history order over every value a position takes."""

from __future__ import annotations

from datetime import datetime, timezone

from litestar_queues.backends.resp.codec import (
    encode_event,
    event_position_key,
    position_key_cursor,
    time_key,
)
from litestar_queues.events import QueueEvent
from litestar_queues.events.history import EventPosition, event_cursor, event_position

_UTC = timezone.utc
MOMENTS = [
    datetime.min.replace(tzinfo=_UTC),
    datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=_UTC),
    datetime(1970, 1, 1, tzinfo=_UTC),
    datetime(2026, 12, 4, 18, 55, 43, 498_913, tzinfo=_UTC),
    datetime.max.replace(tzinfo=_UTC),
]
SEQUENCES = [-(2**63), -1, 0, 1, 9, 10, 1023, 1024, 2**40, 2**63 - 1]  # small ones come from a table, the rest not


def test_position_keys_sort_as_positions_and_name_them_back() -> None:
    positions = [
        EventPosition(moment, sequence, event_id)
        for moment in MOMENTS
        for sequence in SEQUENCES
        for event_id in ("a", "b")
    ]
    keys = [event_position_key(position) for position in positions]
    assert all(len(key) == 33 for key in keys)  # 16 + 16 hex digits, then the id
    assert sorted(keys) == keys  # positions were listed in ascending order
    assert [position_key_cursor(key) for key in keys] == [event_cursor(position) for position in positions]
    assert [time_key(moment) for moment in MOMENTS] == [
        event_position_key(EventPosition(m, 0, ""))[:16] for m in MOMENTS
    ]


def test_an_event_is_sent_as_its_position_key_its_task_and_its_stored_value() -> None:
    event = QueueEvent(type="task.progress", task_id="t1", queue="q", sequence=2, progress_current=1.0)
    key, task, stored = encode_event(event)
    assert key == event_position_key(event_position(event)) and key.endswith(event.id)
    assert task == "t1"
    assert stored.startswith("task.progress\0q\0t1\0[")
    _, task, stored = encode_event(QueueEvent(type="custom", scope="global"))
    assert task == "" and stored.startswith("custom\0\0\0[")  # None as ""
