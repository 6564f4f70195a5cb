"""Helpers the conformance areas share: record factories, moments, and failure messages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from msgspec.structs import fields, replace

from litestar_queues.backend import Capability, QueueBackend
from litestar_queues.records import Lease, Outcome, TaskRecord, TaskStatus, new_record_id

__all__ = (
    "LEASE_SECONDS",
    "CallerTransaction",
    "OWNER",
    "QUEUE",
    "after",
    "claim_one",
    "claimed_state",
    "completed",
    "diff",
    "enqueue_one",
    "make_record",
    "obeying",
    "raising",
    "require",
    "retry_at",
    "rule",
    "stale",
)

QUEUE = "conformance"
"""The queue the suite's records use unless a test says otherwise."""
OWNER = "worker-a"
LEASE_SECONDS = 30


@dataclass
class CallerTransaction:
    """An open transaction of the caller's own on the backend's database (for ``TRANSACTIONAL_ENQUEUE``)."""

    session: object
    """What the backend's ``enqueue_within`` takes (e.g. a SQLAlchemy ``AsyncSession``)."""
    commit: Callable[[], Awaitable[None]]
    rollback: Callable[[], Awaitable[None]]


def after(now: datetime, seconds: float) -> datetime:
    """Return the moment ``seconds`` after ``now`` (negative: before)."""
    return now + timedelta(seconds=seconds)


def rule(method: str, text: str, detail: str = "") -> str:
    """Return a failure message naming the contract rule that was broken.

    Args:
        method: The ``QueueBackend`` method whose docstring states the rule.
        text: The rule, quoted from the docstring where possible.
        detail: What the backend did instead.
    """
    message = f"QueueBackend.{method}: {text}"
    return f"{message}\n  {detail}" if detail else message


def _described(error: BaseException) -> str:
    kind = type(error)
    return f"{kind.__module__}.{kind.__qualname__}: {error}"


@contextmanager
def raising(expected: type[Exception], method: str, text: str) -> Iterator[None]:
    """Expect the block to raise ``expected``; fail quoting the rule when it raises something else or nothing.

    A driver's own error (a unique-constraint violation where ``DuplicateTaskError`` is due) fails the test with
    the contract's expectation, not with a traceback that leaves the reader to guess the rule.
    """
    try:
        yield
    except expected:
        return
    except Exception as error:  # any other exception breaks the rule: say which
        pytest.fail(rule(method, text, f"expected {expected.__name__}, but it raised {_described(error)}"))
    pytest.fail(rule(method, text, f"expected {expected.__name__}, but nothing was raised"))


@contextmanager
def obeying(method: str, text: str) -> Iterator[None]:
    """Fail quoting the rule when the block raises: the contract expects a result here, not an exception."""
    try:
        yield
    except AssertionError:
        raise
    except Exception as error:  # any exception breaks the rule: say which
        pytest.fail(rule(method, text, f"it raised {_described(error)} instead"))


def diff(expected: TaskRecord | None, actual: TaskRecord | None) -> str:
    """Describe which fields of ``actual`` differ from ``expected``."""
    if expected is None or actual is None:
        return f"expected {expected!r}, got {actual!r}"
    changed = [
        f"{name}: expected {getattr(expected, name)!r}, got {getattr(actual, name)!r}"
        for name in (field.name for field in fields(TaskRecord))
        if getattr(expected, name) != getattr(actual, name)
    ]
    return "fields that differ: " + "; ".join(changed) if changed else "no field differs"


def make_record(now: datetime, **changes: Any) -> TaskRecord:
    """Return a new pending record of :data:`QUEUE` created and due at ``now``, with ``changes`` applied."""
    values: dict[str, Any] = {
        "id": new_record_id(),
        "task_name": "conformance.noop",
        "queue": QUEUE,
        "created_at": now,
        "scheduled_at": now,
    }
    values.update(changes)
    return TaskRecord(**values)


async def enqueue_one(backend: QueueBackend, record: TaskRecord) -> TaskRecord:
    """Enqueue ``record``, check it was created, and return what the backend returned."""
    outcomes = await backend.enqueue([record])
    assert len(outcomes) == 1, rule("enqueue", "return one outcome per input", f"got {len(outcomes)} for 1 record")
    assert outcomes[0].created, rule(
        "enqueue", "a record with a new id and free key is stored and returned with created=True"
    )
    return outcomes[0].record


async def claim_one(
    backend: QueueBackend,
    now: datetime,
    *,
    owner: str = OWNER,
    queue: str = QUEUE,
    lease_seconds: float = LEASE_SECONDS,
) -> TaskRecord:
    """Claim exactly one due record of ``queue`` at ``now`` and return it."""
    claimed = await backend.claim([queue], owner=owner, limit=1, now=now, lease_seconds=lease_seconds)
    assert len(claimed) == 1, rule("claim", "claim due records (scheduled_at <= now)", f"claimed {claimed!r}")
    return claimed[0]


def claimed_state(record: TaskRecord, *, owner: str, now: datetime, lease_seconds: float) -> TaskRecord:
    """Return what ``record`` (pending) must look like once claimed by ``owner`` at ``now``."""
    return replace(
        record,
        status=TaskStatus.RUNNING,
        owner=owner,
        token=record.token + 1,
        attempts=record.attempts + 1,
        started_at=now,
        lease_expires_at=after(now, lease_seconds),
    )


def completed(result: Any = None) -> Outcome:
    """Return a ``completed`` outcome with ``result``."""
    return Outcome(status=TaskStatus.COMPLETED, result=result)


def retry_at(moment: datetime, **changes: Any) -> Outcome:
    """Return a ``pending`` outcome due at ``moment`` (a retry, recovery or hand-back)."""
    return Outcome(status=TaskStatus.PENDING, scheduled_at=moment, **changes)


def require(backend: QueueBackend, capability: Capability) -> None:
    """Skip the running test unless ``backend`` declares ``capability``."""
    if capability not in backend.capabilities:
        pytest.skip(f"{type(backend).__name__} does not declare {capability.value}")


def stale(lease: Lease, *, token: int | None = None, owner: str | None = None) -> Lease:
    """Return ``lease`` with another token or owner (a fence that must not match)."""
    return Lease(
        record_id=lease.record_id,
        owner=lease.owner if owner is None else owner,
        token=lease.token if token is None else token,
    )
