"""Copies that keep stored records and the caller's objects apart.

Stored values are msgspec builtins (JSON types), so only ``list`` and ``dict`` can be mutated in place;
every other value (strings, numbers, datetimes, frozen structs) is shared safely.
"""

from __future__ import annotations

from typing import Any

from msgspec.structs import replace

from litestar_queues.records import TaskRecord, WorkerInfo

__all__ = ("copy_record", "copy_value", "copy_worker")

_CONTAINERS = frozenset({list, dict})


def copy_value(value: Any) -> Any:
    """Return ``value`` with every nested list and dict copied."""
    kind = type(value)
    if kind is list:
        return [item if type(item) not in _CONTAINERS else copy_value(item) for item in value]
    if kind is dict:
        return {key: item if type(item) not in _CONTAINERS else copy_value(item) for key, item in value.items()}
    return value


def copy_record(record: TaskRecord) -> TaskRecord:
    """Return a copy of ``record`` that shares no mutable state with it."""
    copied = replace(record)
    copied.args = [item if type(item) not in _CONTAINERS else copy_value(item) for item in record.args]
    copied.kwargs = {
        key: item if type(item) not in _CONTAINERS else copy_value(item) for key, item in record.kwargs.items()
    }
    copied.metadata = copy_value(record.metadata) if record.metadata else {}
    if type(record.result) in _CONTAINERS:
        copied.result = copy_value(record.result)
    return copied


def copy_worker(info: WorkerInfo) -> WorkerInfo:
    """Return a copy of ``info`` that shares no mutable state with it."""
    copied = replace(info)
    copied.queues = list(info.queues)
    copied.metadata = copy_value(info.metadata)
    return copied
