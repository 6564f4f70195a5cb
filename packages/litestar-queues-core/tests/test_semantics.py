"""The contract's record semantics as pure functions: every rule with data a wrong implementation gets wrong."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import msgspec
import pytest

from litestar_queues.errors import DuplicateTaskError
from litestar_queues.records import (
    Lease,
    LeaseState,
    Outcome,
    RecordFilter,
    TaskError,
    TaskProgress,
    TaskRecord,
    TaskStatus,
)
from litestar_queues.semantics import (
    cancelled_record,
    check_outcome,
    claimed_record,
    enqueue_rounds,
    expired_record,
    finished_record,
    holds,
    is_due,
    is_expired,
    lease_expired,
    lease_expiry,
    lease_state,
    lease_states,
    matches,
    queue_statistics,
    record_page,
    renewed_record,
    requeue_conflict,
    requeue_refused,
    requeued_record,
    transferred_record,
)

NOW = datetime(2026, 5, 4, 3, 2, 1, 123457, tzinfo=timezone.utc)
US = timedelta(microseconds=1)
replace = msgspec.structs.replace


def full(status: TaskStatus = TaskStatus.FAILED, **changes: object) -> TaskRecord:
    """A record with every field set to a value no transition would invent."""
    record = TaskRecord(
        id="01a2057f-b4c0-7000-a2dd-da000b792152",
        task_name="mail.send",
        queue="mail",
        args=[1, "two"],
        kwargs={"three": 3.0},
        priority=7,
        status=status,
        key="user-42",
        attempts=3,
        max_retries=5,
        retry_delay=2.5,
        timeout=30.0,
        created_at=NOW - timedelta(hours=2),
        scheduled_at=NOW - timedelta(hours=1),
        expires_at=NOW + timedelta(hours=3),
        started_at=NOW - timedelta(minutes=30),
        finished_at=NOW - timedelta(minutes=1),
        result={"sent": True},
        error=TaskError(type="SMTPError", message="refused"),
        execution_backend="cloudrun",
        execution_profile="large",
        metadata={"tenant": "acme"},
        owner="worker-1",
        token=9,
        lease_expires_at=NOW + timedelta(seconds=30),
        cancel_requested=True,
        progress=TaskProgress(current=1, total=2, message="half", attempt=3, updated_at=NOW - timedelta(minutes=2)),
    )
    return replace(record, **changes)


def running(**changes: object) -> TaskRecord:
    record = full(TaskStatus.RUNNING, finished_at=None, result=None, error=None, cancel_requested=False)
    return replace(record, **changes)


def pending(**changes: object) -> TaskRecord:
    record = full(
        TaskStatus.PENDING, owner=None, lease_expires_at=None, finished_at=None, result=None, cancel_requested=False
    )
    return replace(record, **changes)


# -- the due rule ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "due"),
    [
        ({"scheduled_at": NOW}, True),
        ({"scheduled_at": NOW + US}, False),
        ({"scheduled_at": NOW - US, "expires_at": NOW}, False),
        ({"scheduled_at": NOW - US, "expires_at": NOW + US}, True),
        ({"scheduled_at": NOW - US, "expires_at": None}, True),
        ({"status": "pending", "scheduled_at": NOW}, True),
    ],
)
def test_is_due_is_pending_scheduled_at_or_before_now_and_not_expired(changes: dict[str, object], due: bool) -> None:
    assert is_due(pending(**changes), NOW) is due


@pytest.mark.parametrize("status", [s for s in TaskStatus if s is not TaskStatus.PENDING])
def test_only_pending_records_are_due_expired_and_only_running_ones_lease_expired(status: TaskStatus) -> None:
    record = full(status, scheduled_at=NOW - US, expires_at=NOW - US, lease_expires_at=NOW - US)
    assert not is_due(record, NOW)
    assert not is_expired(record, NOW)
    assert lease_expired(record, NOW) is (status is TaskStatus.RUNNING)


def test_expiry_and_lease_expiry_are_inclusive_at_now() -> None:
    assert is_expired(pending(expires_at=NOW), NOW)
    assert not is_expired(pending(expires_at=NOW + US), NOW)
    assert not is_expired(pending(expires_at=None), NOW)
    assert lease_expired(running(lease_expires_at=NOW), NOW)
    assert not lease_expired(running(lease_expires_at=NOW + US), NOW)
    assert lease_expiry(NOW, 1.5) == NOW + timedelta(seconds=1.5)


# -- the fence -------------------------------------------------------------------------------------


def test_holds_needs_a_running_record_with_the_same_id_owner_and_token() -> None:
    record = running()
    assert holds(record, Lease(record.id, "worker-1", 9))
    assert not holds(record, Lease(record.id, "worker-2", 9))
    assert not holds(record, Lease(record.id, "worker-1", 8))
    assert not holds(record, Lease(record.id, "worker-1", 10))
    assert not holds(record, Lease("01a2057f-b4c0-7000-a2dd-da000b792153", "worker-1", 9))
    assert not holds(replace(record, status=TaskStatus.PENDING), Lease(record.id, "worker-1", 9))
    assert not holds(None, Lease(record.id, "worker-1", 9))


def test_lease_state_reports_held_cancel_requested_and_lost() -> None:
    lease = Lease(running().id, "worker-1", 9)
    assert lease_state(running(), lease) is LeaseState.HELD
    assert lease_state(running(cancel_requested=True), lease) is LeaseState.CANCEL_REQUESTED
    assert lease_state(running(token=10, cancel_requested=True), lease) is LeaseState.LOST
    assert lease_state(None, lease) is LeaseState.LOST


def test_lease_states_answers_every_lease_from_the_matched_ones() -> None:
    leases = [Lease("a", "w", 1), Lease("b", "w", 1), Lease("c", "w", 1)]
    states = lease_states(leases, {"c": True, "a": False})
    assert states == {"a": LeaseState.HELD, "b": LeaseState.LOST, "c": LeaseState.CANCEL_REQUESTED}
    assert list(states) == ["a", "b", "c"]


# -- transitions -----------------------------------------------------------------------------------


def test_claimed_record_changes_exactly_the_claim_fields() -> None:
    record = pending(owner=None, token=4, attempts=2)
    lease_expires_at = NOW + timedelta(seconds=60)
    claimed = claimed_record(record, owner="worker-2", now=NOW, lease_expires_at=lease_expires_at)
    assert claimed == replace(
        record,
        status=TaskStatus.RUNNING,
        owner="worker-2",
        token=5,
        attempts=3,
        started_at=NOW,
        lease_expires_at=lease_expires_at,
    )
    assert record.status is TaskStatus.PENDING  # the argument is left alone


def test_renewed_and_transferred_records() -> None:
    record = running(cancel_requested=True)
    later = NOW + timedelta(minutes=5)
    assert renewed_record(record, later) == replace(record, lease_expires_at=later)
    assert transferred_record(record, owner="remote", lease_expires_at=later) == replace(
        record, owner="remote", token=10, lease_expires_at=later
    )


@pytest.mark.parametrize("status", [TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED])
def test_finished_record_with_a_terminal_outcome(status: TaskStatus) -> None:
    record = running(cancel_requested=True)
    error = TaskError(type="Boom", message="late")
    finished = finished_record(record, Outcome(status=status, result=[0.5], error=error), NOW)
    assert finished == replace(
        record,
        status=status,
        finished_at=NOW,
        result=[0.5],
        error=error,
        owner=None,
        lease_expires_at=None,
        cancel_requested=False,
    )


@pytest.mark.parametrize(("refund", "attempts"), [(False, 3), (True, 2)])
def test_finished_record_with_a_pending_outcome_is_a_retry(refund: bool, attempts: int) -> None:
    record = running()
    error = TaskError(type="Flaky", message="again")
    retry_at = NOW + timedelta(seconds=8)
    outcome = Outcome(status=TaskStatus.PENDING, error=error, scheduled_at=retry_at, refund_attempt=refund)
    assert finished_record(record, outcome, NOW) == replace(
        record,
        status=TaskStatus.PENDING,
        scheduled_at=retry_at,
        error=error,
        attempts=attempts,
        owner=None,
        lease_expires_at=None,
    )
    refunded = finished_record(replace(record, attempts=0), outcome, NOW)
    assert refunded.attempts == 0


def test_finished_record_lets_a_cancel_request_win_over_a_retry() -> None:
    record = running(cancel_requested=True)
    error = TaskError(type="Flaky", message="again")
    outcome = Outcome(
        status=TaskStatus.PENDING, error=error, scheduled_at=NOW + timedelta(seconds=8), refund_attempt=True
    )
    assert finished_record(record, outcome, NOW) == replace(
        record,
        status=TaskStatus.CANCELLED,
        finished_at=NOW,
        error=error,
        owner=None,
        lease_expires_at=None,
        cancel_requested=False,
    )


def test_check_outcome_accepts_finishing_statuses_only() -> None:
    assert check_outcome(Outcome(status="completed")) is TaskStatus.COMPLETED  # type: ignore[arg-type]
    assert check_outcome(Outcome(status=TaskStatus.PENDING, scheduled_at=NOW)) is TaskStatus.PENDING
    for status in (TaskStatus.RUNNING, TaskStatus.EXPIRED):
        with pytest.raises(ValueError, match=status.value):
            check_outcome(Outcome(status=status))
    with pytest.raises(ValueError, match="scheduled_at"):
        check_outcome(Outcome(status=TaskStatus.PENDING))


def test_cancelled_record_per_status() -> None:
    record = pending()
    assert cancelled_record(record, NOW) == replace(record, status=TaskStatus.CANCELLED, finished_at=NOW)
    assert record.status is TaskStatus.PENDING
    active = running()
    assert cancelled_record(active, NOW) == replace(active, cancel_requested=True)
    for status in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.EXPIRED):
        ended = full(status, cancel_requested=False)
        assert cancelled_record(ended, NOW) == ended


@pytest.mark.parametrize("status", [TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.EXPIRED])
def test_requeued_record_resets_a_failed_cancelled_or_expired_record(status: TaskStatus) -> None:
    record = full(status)
    assert requeued_record(record, NOW) == replace(
        record,
        status=TaskStatus.PENDING,
        scheduled_at=NOW,
        attempts=0,
        expires_at=None,
        finished_at=None,
        result=None,
        error=None,
        progress=None,
        cancel_requested=False,
    )


@pytest.mark.parametrize("status", [TaskStatus.COMPLETED, TaskStatus.PENDING, TaskStatus.RUNNING])
def test_requeued_record_leaves_completed_and_active_records_alone(status: TaskStatus) -> None:
    record = full(status)
    assert requeued_record(record, NOW) == record


def test_requeue_conflict_only_for_another_active_holder_of_a_requeueable_record() -> None:
    record = full(TaskStatus.FAILED)
    error = requeue_conflict(record, "01a2057f-b4c0-7000-a2dd-da000b792199")
    assert isinstance(error, DuplicateTaskError)
    assert str(error) == f"cannot requeue {record.id}: active record 01a2057f-b4c0-7000-a2dd-da000b792199 holds its key"
    assert requeue_conflict(record, None) is None
    assert requeue_conflict(record, record.id) is None
    assert requeue_conflict(full(TaskStatus.COMPLETED), "01a2057f-b4c0-7000-a2dd-da000b792199") is None
    assert str(requeue_refused("r")) == "cannot requeue r: another active record holds its key"


def test_expired_record() -> None:
    record = pending(expires_at=NOW - US)
    assert expired_record(record, NOW) == replace(record, status=TaskStatus.EXPIRED, finished_at=NOW)


# -- enqueue ---------------------------------------------------------------------------------------


def test_enqueue_rounds_separate_records_sharing_an_id_or_a_key() -> None:
    a = pending(id="a", key="k1")
    records = [
        a,
        pending(id="b", key="k2"),
        pending(id="c", key="k1"),  # a's key
        pending(id="a", key=None),  # a's id
        pending(id="e", key=None),
        pending(id="f", key="k1"),  # after c
        pending(id="g", key="k2"),  # after b only
    ]
    assert enqueue_rounds(records) == [[0, 1, 4], [2, 3, 6], [5]]
    assert enqueue_rounds([]) == []


# -- reading ---------------------------------------------------------------------------------------


def test_matches_needs_every_field_the_filter_sets() -> None:
    record = pending(queue="mail", task_name="mail.send")
    assert matches(record, RecordFilter())
    assert matches(record, RecordFilter(status=TaskStatus.PENDING, queue="mail", task_name="mail.send"))
    assert matches(replace(record, status="pending"), RecordFilter(status=TaskStatus.PENDING))
    assert not matches(record, RecordFilter(status=TaskStatus.PENDING, queue="mail", task_name="mail.other"))
    assert not matches(record, RecordFilter(status=TaskStatus.PENDING, queue="sms", task_name="mail.send"))
    assert not matches(record, RecordFilter(status=TaskStatus.RUNNING, queue="mail", task_name="mail.send"))


def test_record_page_from_one_record_more_than_the_page() -> None:
    rows = [pending(id=name) for name in ("c", "b", "a")]
    assert record_page(rows, 2).records == rows[:2]
    assert record_page(rows, 2).next_cursor == "b"
    assert record_page(rows, 3).records == rows
    assert record_page(rows, 3).next_cursor is None
    assert record_page(rows, 4).next_cursor is None
    for limit in (0, -1):
        assert record_page(rows, limit).records == []
        assert record_page(rows, limit).next_cursor is None
    assert len(rows) == 3


def test_queue_statistics_fill_every_status_and_cap_at_count_limit_plus_one() -> None:
    stats = queue_statistics({"pending": 5, TaskStatus.FAILED: 1}, oldest_pending_at=NOW, queue="mail")
    assert stats.counts == dict.fromkeys(TaskStatus, 0) | {TaskStatus.PENDING: 5, TaskStatus.FAILED: 1}
    assert all(type(status) is TaskStatus for status in stats.counts)
    assert (stats.oldest_pending_at, stats.queue) == (NOW, "mail")
    pairs = [("pending", 2), ("running", 1), ("pending", 3), ("completed", 7)]
    assert queue_statistics(pairs, oldest_pending_at=None, queue=None).counts[TaskStatus.PENDING] == 5
    capped = queue_statistics(pairs, oldest_pending_at=None, queue=None, count_limit=2).counts
    assert capped == dict.fromkeys(TaskStatus, 0) | {
        TaskStatus.PENDING: 3,
        TaskStatus.RUNNING: 1,
        TaskStatus.COMPLETED: 3,
    }
    assert queue_statistics(pairs, oldest_pending_at=None, queue=None, count_limit=0).counts[TaskStatus.RUNNING] == 1
