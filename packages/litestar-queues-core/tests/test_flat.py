"""A record as flat fields and back: exact values and types, plain storable values, and salvage of broken fields."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest

from litestar_queues.errors import SerializationError
from litestar_queues.flat import (
    FIELDS,
    field_readers,
    from_micros,
    read_flag,
    read_integer,
    read_text,
    record_fields,
    record_from_fields,
    to_micros,
)
from litestar_queues.records import TaskError, TaskProgress, TaskRecord, TaskStatus
from litestar_queues.salvage import UNDECODABLE, is_undecodable, salvage_record

NOW = datetime(2026, 5, 4, 3, 2, 1, 123457, tzinfo=timezone.utc)


def full() -> TaskRecord:
    return TaskRecord(
        id="01a2057f-b4c0-7000-a2dd-da000b792152",
        task_name="mail.send",
        queue="mail",
        args=[True, 1, 1.0, 1.5e300, "\x00", {}, [], None],
        kwargs={"nested": {"a": [1, {"b": False}]}},
        priority=-3,
        status=TaskStatus.RUNNING,
        key="user-42",
        attempts=2,
        max_retries=5,
        retry_delay=2,  # an int where a float is declared: it must come back a float
        timeout=30.5,
        created_at=NOW - timedelta(days=400),
        scheduled_at=NOW,
        expires_at=datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
        started_at=NOW + timedelta(microseconds=1),
        finished_at=None,
        result={"ok": 1.0},
        error=TaskError(type="Boom", message="bad", traceback="Traceback ..."),
        execution_backend="cloudrun",
        execution_profile="large",
        metadata={"tenant": "acme"},
        owner="worker-1",
        token=9,
        lease_expires_at=NOW + timedelta(seconds=30),
        cancel_requested=True,
        progress=TaskProgress(current=1, total=2, message="half", attempt=2, updated_at=NOW),
    )


def test_every_field_is_one_plain_value() -> None:
    fields = record_fields(full())
    assert tuple(fields) == FIELDS == TaskRecord.__struct_fields__
    assert all(value is None or type(value) in (str, int, float) for value in fields.values())
    assert fields["scheduled_at"] == to_micros(NOW) == 1777863721123457
    assert fields["status"] == "running"
    assert fields["cancel_requested"] == 1


@pytest.mark.parametrize(
    "record",
    [full(), TaskRecord(id="01a2057f-b4c0-7000-a2dd-da000b792153", task_name="t", created_at=NOW, scheduled_at=NOW)],
)
def test_a_record_comes_back_exactly_with_its_types(record: TaskRecord) -> None:
    back = record_from_fields(record_fields(record))
    assert back == msgspec.structs.replace(record, retry_delay=float(record.retry_delay))
    assert [type(value) for value in back.args] == [type(value) for value in record.args]
    assert type(back.retry_delay) is float
    assert back.status is record.status


def test_a_record_comes_back_from_a_database_row() -> None:
    with sqlite3.connect(":memory:") as db:
        db.execute(f"CREATE TABLE tasks ({', '.join(FIELDS)})")
        db.execute(f"INSERT INTO tasks VALUES ({', '.join(':' + name for name in FIELDS)})", record_fields(full()))
        cursor = db.execute("SELECT * FROM tasks")
        row = dict(zip([column[0] for column in cursor.description], cursor.fetchone(), strict=True))
    assert record_from_fields(row) == msgspec.structs.replace(full(), retry_delay=2.0)


def test_a_value_that_is_not_json_is_refused_naming_the_field() -> None:
    record = msgspec.structs.replace(full(), args=[object()])
    with pytest.raises(SerializationError, match="task arguments"):
        record_fields(record)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("args", "not json"),
        ("kwargs", "[1]"),
        ("priority", "7"),
        ("scheduled_at", "2026-05-04"),
        ("cancel_requested", 2),
        ("error", '{"type": 1}'),
        ("owner", 5),
    ],
)
def test_a_broken_field_is_salvaged_keeping_the_others(field: str, value: Any) -> None:
    fields = record_fields(full()) | {field: value}
    record = record_from_fields(fields)
    assert is_undecodable(record)
    assert record.error is not None and record.error.type == UNDECODABLE
    assert f"'{field}'" in record.error.message and full().id in record.error.message
    assert record.id == full().id
    assert record.queue == "mail" and record.token == 9  # the readable fields are kept
    if field != "status":
        assert record.status is TaskStatus.RUNNING


def test_an_unreadable_status_becomes_failed() -> None:
    record = record_from_fields(record_fields(full()) | {"status": "sleeping"})
    assert record.status is TaskStatus.FAILED
    assert record.error is not None and "'status'" in record.error.message


def test_field_readers_with_another_time_format_and_key_field() -> None:
    row = record_fields(full())
    row["dedup_key"] = row.pop("key")
    for name in ("created_at", "scheduled_at", "expires_at", "started_at", "finished_at", "lease_expires_at"):
        row[name] = None if row[name] is None else from_micros(row[name])  # as a driver returns timestamptz
    readers = field_readers(row, read_time=lambda value: value.astimezone(timezone.utc), key_field="dedup_key")
    assert salvage_record(full().id, readers) == msgspec.structs.replace(full(), retry_delay=2.0)


def test_microsecond_times() -> None:
    assert to_micros(datetime(1970, 1, 1, tzinfo=timezone.utc)) == 0
    assert to_micros(datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)) == -1
    assert to_micros(datetime(1970, 1, 1, 0, 0, 1)) == 1_000_000  # naive is UTC
    assert to_micros(datetime(1970, 1, 1, 1, tzinfo=timezone(timedelta(hours=1)))) == 0
    assert from_micros(to_micros(NOW)) == NOW
    assert from_micros(b"-1") == from_micros("-1") == datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)
    assert from_micros(0).tzinfo is timezone.utc


def test_readers_refuse_the_wrong_type() -> None:
    assert read_integer(3) == 3
    assert read_text(b"abc") == read_text("abc") == "abc"
    assert (read_flag(True), read_flag(1), read_flag(0), read_flag(False)) == (True, True, False, False)
    for read, value in [(read_integer, "3"), (read_integer, 3.0), (read_text, 3), (read_flag, 2), (read_flag, "1")]:
        with pytest.raises(TypeError):
            read(value)
