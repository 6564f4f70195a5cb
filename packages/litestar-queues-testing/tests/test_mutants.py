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
    ("backend", "area", "caught_by", "rule"),
    [
        (
            "DoubleClaimingBackend",
            "ConcurrencyConformance",
            ["test_concurrency_claimers_claim_every_record_exactly_once"],
            "no record is ever returned to two claimers",
        ),
        (
            "FenceIgnoringBackend",
            "FencingConformance",
            [
                "test_fencing_old_lease_cannot_finish_after_recovery_and_reclaim[[]completed[]]",
                "test_fencing_old_lease_cannot_renew_after_recovery_and_reclaim",
                "test_fencing_mismatched_lease_cannot_finish_a_running_record[[]other owner[]]",
            ],
            "a failed fence changes nothing",
        ),
        (
            "FenceIgnoringBackend",
            "LeaseConformance",
            ["test_lease_renew_of_a_lease_not_held_reports_lost_and_changes_nothing[[]older token[]]"],
            "LOST when the fence does not match",
        ),
        (
            "ScheduleIgnoringBackend",
            "ClaimConformance",
            [
                "test_claim_never_returns_records_not_yet_due",
                "test_claim_prefers_a_due_record_to_a_higher_priority_delayed_one",
            ],
            "records not yet due are never returned",
        ),
        (
            "ScheduleIgnoringBackend",
            "RetryConformance",
            ["test_retry_is_not_claimed_before_its_scheduled_at"],
            "a retry waits for its backoff",
        ),
        (
            "KeyIgnoringBackend",
            "DedupConformance",
            [
                "test_dedup_active_key_returns_the_pending_holder",
                "test_dedup_duplicate_keys_inside_one_bulk_call_resolve_to_the_first",
                "test_dedup_concurrent_enqueues_of_one_key_create_exactly_one",
            ],
            "an active (pending or running) record holds that key",
        ),
        (
            "KeyRacingBackend",
            "DedupConformance",
            ["test_dedup_concurrent_enqueues_of_one_key_create_exactly_one"],
            "concurrent enqueues of the same key from many callers create exactly one record",
        ),
    ],
)
def test_suite_catches_a_broken_backend(
    pytester: pytest.Pytester, backend: str, area: str, caught_by: list[str], rule: str
) -> None:
    result = _run(pytester, backend, area)
    assert result.parseoutcomes().get("failed", 0) >= len(caught_by), result.stdout.str()
    result.stdout.fnmatch_lines([f"FAILED *::{test}*" for test in caught_by], consecutive=False)
    assert rule in result.stdout.str(), f"the failure message should quote the broken rule {rule!r}"


def test_suite_passes_the_reference_backend(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "MemoryBackend", "BackendConformance")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("errors", 0) == 0, result.stdout.str()
    assert outcomes["passed"] > 150, outcomes


def test_cross_connection_tests_run_when_a_second_backend_is_provided(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "MemoryBackend", "BackendConformance", "-k", "connections", extra=_SAME_STORAGE)
    result.assert_outcomes(passed=3)


def test_cross_connection_tests_catch_a_double_claim_across_connections(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "DoubleClaimingBackend", "ConcurrencyConformance", "-k", "connections", extra=_SAME_STORAGE)
    result.stdout.fnmatch_lines(
        ["FAILED *test_concurrency_claimers_on_two_connections_claim_every_record_exactly_once*"]
    )
