"""The suite catches deliberately broken backends, and passes the reference backend."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

_TEST_FILE = """
import pytest

from litestar_queues.backends.memory import MemoryBackend
from litestar_queues.testing import {area}
from mutants import *


class TestCandidate({area}):
    wakeup_timeout = 2.0  # a forgotten wakeup fails after 1 s, not 10

    @pytest.fixture
    async def backend(self):
        async with {backend}() as backend:
            yield backend
{extra}"""

_SAME_STORAGE = """
    @pytest.fixture
    def second_backend(self, backend):
        return backend
"""


def _run(pytester: pytest.Pytester, backend: str, area: str, *args: str, extra: str = "") -> pytest.RunResult:
    pytester.syspathinsert(Path(__file__).parent)
    pytester.makepyfile(test_candidate=_TEST_FILE.format(area=area, backend=backend, extra=extra))
    # Plugins this run does not need are left out: faker and hypothesis alone cost a second per run.
    unused = ("cacheprovider", "valkey", "faker", "hypothesispytest")
    return pytester.runpytest_inprocess(*(f"-pno:{plugin}" for plugin in unused), "-W", "error", "-rf", *args)


@pytest.mark.parametrize(
    ("backend", "area", "select", "caught_by", "says"),
    [
        (
            "DoubleClaimingBackend",
            "ConcurrencyConformance",
            None,
            ["test_concurrency_claimers_claim_every_record_exactly_once"],
            ["no record is ever returned to two claimers"],
        ),
        (
            "FenceIgnoringBackend",
            "FencingConformance",
            None,
            [
                "test_fencing_old_lease_cannot_finish_after_recovery_and_reclaim[[]completed[]]",
                "test_fencing_old_lease_cannot_renew_after_recovery_and_reclaim",
                "test_fencing_mismatched_lease_cannot_finish_a_running_record[[]other owner[]]",
            ],
            ["a failed fence changes nothing"],
        ),
        (
            "FenceIgnoringBackend",
            "LeaseConformance",
            None,
            ["test_lease_renew_of_a_lease_not_held_reports_lost_and_changes_nothing[[]older token[]]"],
            ["LOST when the fence does not match"],
        ),
        (
            "ScheduleIgnoringBackend",
            "ClaimConformance",
            None,
            [
                "test_claim_never_returns_records_not_yet_due",
                "test_claim_prefers_a_due_record_to_a_higher_priority_delayed_one",
            ],
            ["records not yet due are never returned"],
        ),
        (
            "ScheduleIgnoringBackend",
            "RetryConformance",
            None,
            ["test_retry_is_not_claimed_before_its_scheduled_at"],
            ["a retry waits for its backoff"],
        ),
        (
            "KeyIgnoringBackend",
            "DedupConformance",
            None,
            [
                "test_dedup_active_key_returns_the_pending_holder",
                "test_dedup_duplicate_keys_inside_one_bulk_call_resolve_to_the_first",
                "test_dedup_concurrent_enqueues_of_one_key_create_exactly_one",
            ],
            ["an active (pending or running) record holds that key"],
        ),
        (
            "TransferRacingBackend",
            "TransferConformance",
            None,
            ["test_transfer_from_many_callers_applies_once"],
            ["of two transfers presenting the same lease at most one applies"],
        ),
        (
            "KeyRacingBackend",
            "DedupConformance",
            None,
            ["test_dedup_concurrent_enqueues_of_one_key_create_exactly_one"],
            ["concurrent enqueues of the same key from many callers create exactly one record"],
        ),
        (
            "EnqueueOnlyWakeupBackend",
            "WakeupConformance",
            "transition_to_pending",
            [
                f"test_wakeup_wait_for_work_returns_early_after_a_transition_to_pending[[]{transition}[]]"
                for transition in ("retry", "stale recovery", "hand-back", "requeue")
            ],
            ["return promptly after every transition that makes a record of any one of queues pending"],
        ),
        (
            "FirstQueueOnlyWakeupBackend",
            "WakeupConformance",
            "listens_on_every_queue",
            [
                "test_wakeup_wait_for_work_listens_on_every_queue[[]middle queue[]]",
                "test_wakeup_wait_for_work_listens_on_every_queue[[]last queue[]]",
            ],
            ["return when work may be available on queues: any one of them"],
        ),
        (
            "BusyWaitingBackend",
            "WakeupConformance",
            "lasts_its_timeout",
            [
                "test_wakeup_wait_for_work_with_nothing_due_lasts_its_timeout",
                "test_wakeup_wait_for_finish_of_an_active_record_lasts_its_timeout",
            ],
            ["not at once again and again"],
        ),
        (
            "FinishOnlyWakeupBackend",
            "WakeupConformance",
            "transition_to_terminal",
            [
                "test_wakeup_wait_for_finish_returns_early_after_a_transition_to_terminal[[]cancel pending[]]",
                "test_wakeup_wait_for_finish_returns_early_after_a_transition_to_terminal[[]expire[]]",
            ],
            ["return promptly after every transition that makes the record terminal"],
        ),
        (
            "NewestByKeyBackend",
            "DedupConformance",
            "get_by_key",
            ["test_dedup_get_by_key_prefers_the_active_holder_to_newer_terminal_records"],
            ["return the active record holding key, even over terminal records created after it"],
        ),
        (
            "LastStoredByKeyBackend",
            "DedupConformance",
            "get_by_key",
            ["test_dedup_get_by_key_returns_the_most_recently_created_terminal_record"],
            ["the most recently created record with that key (terminal): greatest created_at, then greatest id"],
        ),
        (
            "ConditionOverwritingQueryBackend",
            "QueryConformance",
            None,
            [
                "test_query_filters_by_every_field_it_sets[[]status+queue[]]",
                "test_query_filters_by_every_field_it_sets[[]all three[]]",
            ],
            ["a record matches when it has every field where sets"],
        ),
        (
            "CancelledCountedAsFailedBackend",
            "StatisticsConformance",
            None,
            ["test_statistics_counts_every_status_per_queue_and_overall"],
            ["count records by status (every status present)"],
        ),
        (
            "OldestOfAllPendingBackend",
            "StatisticsConformance",
            None,
            ["test_statistics_with_nothing_due_has_no_oldest_pending[[]delayed[]]"],
            ["or None when no record is due: delayed, expired and running records never count"],
        ),
        (
            "UnboundedNegativeLimitBackend",
            "BackendConformance",
            "limit_below_one",
            [
                "test_history_query_with_limit_below_one_returns_an_empty_last_page[[]-1[]]",
                "test_history_prune_with_limit_below_one_deletes_nothing[[]-1[]]",
                "test_query_with_limit_below_one_returns_an_empty_last_page[[]-1[]]",
                "test_prune_with_limit_below_one_deletes_nothing[[]-1[]]",
                "test_expire_with_limit_below_one_marks_nothing[[]-1[]]",
                "test_lease_expired_leases_with_limit_below_one_returns_nothing[[]-1[]]",
            ],
            ["limit <= 0 selects nothing"],
        ),
        (
            "SlicingClaimLimitBackend",
            "ClaimConformance",
            "limit_below_one",
            ["test_claim_with_limit_below_one_returns_nothing[[]-1[]]"],
            ["limit <= 0 returns []", "limit=-1 claimed 2 of 3"],
        ),
        (
            "FreshOnlyExpiryBackend",
            "ExpiryConformance",
            None,
            ["test_expire_marks_a_record_waiting_for_a_retry"],
            ["a record waiting for a retry is pending too"],
        ),
        (
            "RefundResettingBackend",
            "RetryConformance",
            None,
            ["test_retry_refund_attempt_gives_the_attempt_back"],
            ["decrement attempts when outcome.refund_attempt"],
        ),
        (
            "PartialRequeueBackend",
            "RequeueConformance",
            None,
            [
                "test_requeue_resets_an_ended_record_to_pending[[]failed[]]",
                "test_requeue_resets_an_ended_record_to_pending[[]cancelled[]]",
                "test_requeue_resets_an_ended_record_to_pending[[]stored failed with every field set[]]",
            ],
            [
                "clears expires_at, finished_at, result, error, progress and cancel_requested",
                "cancel_requested: expected False",
            ],
        ),
        (
            "ProgressKeepingRequeueBackend",
            "RequeueConformance",
            None,
            [
                "test_requeue_resets_an_ended_record_to_pending[[]failed[]]",
                "test_requeue_resets_an_ended_record_to_pending[[]stored failed with every field set[]]",
            ],
            ["progress: expected None"],
        ),
        (
            "SequenceIgnoringHistoryBackend",
            "EventHistoryConformance",
            None,
            ["test_history_orders_by_time_then_sequence_then_id"],
            ["order by (occurred_at, sequence, id) ascending"],
        ),
        (
            "SequenceAsTextHistoryBackend",
            "EventHistoryConformance",
            None,
            ["test_history_orders_by_time_then_sequence_then_id"],
            ["order by (occurred_at, sequence, id) ascending"],
        ),
        (
            "MissingSequenceLastHistoryBackend",
            "EventHistoryConformance",
            None,
            ["test_history_orders_by_time_then_sequence_then_id"],
            ["a missing sequence counts as 0"],
        ),
        (
            "MillisecondHistoryBackend",
            "EventHistoryConformance",
            None,
            [
                "test_history_stores_every_field_as_given",
                "test_history_orders_by_time_then_sequence_then_id",
                "test_history_time_range_includes_since_and_excludes_before",
            ],
            ["each event is stored exactly as given"],
        ),
        (
            "OrFilterHistoryBackend",
            "EventHistoryConformance",
            "filters",
            [
                "test_history_filters_by_every_field_it_sets[[]task_id+type[]]",
                "test_history_filters_by_every_field_it_sets[[]type+queue[]]",
                "test_history_filters_by_every_field_it_sets[[]all[]]",
            ],
            ["an event matches when it has every field where sets"],
        ),
        (
            "InclusiveBeforeHistoryBackend",
            "EventHistoryConformance",
            None,
            [
                "test_history_filters_by_every_field_it_sets[[]before[]]",
                "test_history_time_range_includes_since_and_excludes_before",
            ],
            ["since <= occurred_at < before"],
        ),
        (
            "OffsetCursorHistoryBackend",
            "EventHistoryConformance",
            None,
            ["test_history_cursor_is_a_position_not_an_offset"],
            ["the next page holds the events after the cursor's position"],
        ),
        (
            "DuplicatingHistoryBackend",
            "EventHistoryConformance",
            None,
            ["test_history_appending_an_event_again_stores_it_once"],
            ["an event whose id is already stored, or appears earlier in the same call, is not stored again"],
        ),
        (
            "InclusivePruneHistoryBackend",
            "EventHistoryConformance",
            None,
            ["test_history_prune_deletes_events_that_occurred_before"],
            ["delete events with occurred_at < occurred_before"],
        ),
        (
            "NewestFirstPruneHistoryBackend",
            "EventHistoryConformance",
            None,
            ["test_history_prune_deletes_at_most_limit_oldest_first"],
            ["oldest first, in history order"],
        ),
        (
            "UnboundedPruneHistoryBackend",
            "EventHistoryConformance",
            None,
            ["test_history_prune_deletes_at_most_limit_oldest_first"],
            ["delete up to limit events"],
        ),
        (
            "FenceIgnoringProgressBackend",
            "ProgressConformance",
            None,
            [
                f"test_progress_with_a_fence_that_does_not_match_changes_nothing[[]{kind}[]]"
                for kind in ("other owner", "old token", "pending record", "finished record")
            ],
            ["when the fence does not match, nothing changes"],
        ),
        (
            "FirstReportWinsProgressBackend",
            "ProgressConformance",
            None,
            ["test_progress_later_report_replaces_the_earlier_one"],
            ["a later update of the same record wins"],
        ),
        (
            "ProgressClearingFinishBackend",
            "ProgressConformance",
            None,
            [
                f"test_progress_stays_through_finish_and_the_next_claim[[]{ending}[]]"
                for ending in ("completed", "failed", "retry")
            ],
            ["progress stays on the record through finish"],
        ),
        (
            "UncappedStatisticsBackend",
            "StatisticsConformance",
            "count_limit",
            [
                "test_statistics_with_a_count_limit_caps_each_count_just_above_it[[]0[]]",
                "test_statistics_with_a_count_limit_caps_each_count_just_above_it[[]2[]]",
            ],
            ["a status with more than count_limit records is reported as exactly count_limit + 1"],
        ),
        (
            "CappedTotalStatisticsBackend",
            "StatisticsConformance",
            "count_limit",
            ["test_statistics_with_a_count_limit_caps_each_count_just_above_it[[]4[]]"],
            ["a count up to count_limit is exact"],
        ),
        (
            "PrefixPauseBackend",
            "PauseConformance",
            None,
            ["test_pause_skips_the_paused_queue_among_several_claimed_together"],
            ["a paused queue among queues is skipped and the others are claimed as usual"],
        ),
        (
            "FirstQueuePauseBackend",
            "PauseConformance",
            None,
            ["test_pause_skips_the_paused_queue_among_several_claimed_together"],
            ["Left contains 3 more items"],
        ),
        (
            "RestampingPauseBackend",
            "PauseConformance",
            None,
            ["test_pause_and_resume_report_whether_they_changed_anything"],
            ["a second pause keeps the first paused_at"],
        ),
        (
            "SilentResumeBackend",
            "WakeupConformance",
            "resume",
            ["test_wakeup_wait_for_work_returns_early_after_a_transition_to_pending[[]resume[]]"],
            ["after a resume_queue of one of queues"],
        ),
        (
            "PausedEnqueueWakingBackend",
            "WakeupConformance",
            "ignores_new_work",
            ["test_wakeup_wait_for_work_ignores_new_work_of_a_paused_queue"],
            ["a transition that makes one pending does not end a wait either"],
        ),
        (
            "PausedWorkWakingBackend",
            "WakeupConformance",
            "paused",
            ["test_wakeup_wait_for_work_on_a_paused_queue_with_due_work_lasts_its_timeout"],
            ["records of a paused queue are no work"],
        ),
        (
            "RawDuplicateErrorBackend",
            "BackendConformance",
            "requeue_refuses or existing_id",
            [
                "test_requeue_refuses_when_another_active_record_holds_the_key",
                "test_dedup_existing_id_returns_the_stored_record_not_created",
            ],
            [
                "raises DuplicateTaskError if another active record holds its key",
                "expected DuplicateTaskError, but it raised sqlite3.IntegrityError",
                "if a record with the same id exists, return it with created=False",
                "it raised sqlite3.IntegrityError: UNIQUE constraint failed: tasks.id instead",
            ],
        ),
    ],
)
def test_suite_catches_a_broken_backend(
    pytester: pytest.Pytester, *, backend: str, area: str, select: str | None, caught_by: list[str], says: list[str]
) -> None:
    result = _run(pytester, backend, area, *(("-k", select) if select else ()))
    assert result.parseoutcomes().get("failed", 0) >= len(caught_by), result.stdout.str()
    result.stdout.fnmatch_lines([f"FAILED *::{test}*" for test in caught_by], consecutive=False)
    for text in says:
        assert text in result.stdout.str(), f"the failure message should say {text!r}"


def test_suite_passes_the_reference_backend_keeping_ids_in_a_uuid_column(pytester: pytest.Pytester) -> None:
    # The memory backend, raising on any record id that is not a UUID string, as a native UUID column would.
    result = _run(pytester, "UUIDColumnBackend", "BackendConformance")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("errors", 0) == 0, result.stdout.str()
    assert outcomes["passed"] > 150, outcomes


def test_suite_passes_the_list_history_every_history_mutant_starts_from(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "ListHistoryBackend", "EventHistoryConformance")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("errors", 0) == 0, result.stdout.str()
    assert outcomes["passed"] > 20, outcomes


def test_cross_connection_tests_run_when_a_second_backend_is_provided(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "MemoryBackend", "BackendConformance", "-k", "connection", extra=_SAME_STORAGE)
    result.assert_outcomes(passed=9)


def test_cross_connection_tests_catch_a_double_claim_across_connections(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "DoubleClaimingBackend", "ConcurrencyConformance", "-k", "connections", extra=_SAME_STORAGE)
    result.stdout.fnmatch_lines(
        ["FAILED *test_concurrency_claimers_on_two_connections_claim_every_record_exactly_once*"]
    )
