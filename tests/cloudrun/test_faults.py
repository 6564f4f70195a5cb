"""Cloud Run execution end to end, against the emulated Admin API and the real container entry point, on Redis and
PostgreSQL: the normal path, and each fault ending in the right record state without a double effect."""

from __future__ import annotations

import signal

import pytest
from tests.cloudrun.conftest import Harness

from litestar_queues import TaskStatus
from litestar_queues.clock import utc_now
from litestar_queues.execution.cloudrun import ExitCode

pytestmark = pytest.mark.anyio

IDS = {
    "LITESTAR_QUEUES_RECORD_ID",
    "LITESTAR_QUEUES_FENCE_TOKEN",
    "LITESTAR_QUEUES_QUEUE",
    "LITESTAR_QUEUES_EXECUTION_BACKEND",
}


async def test_a_task_runs_in_its_profiles_job_with_only_ids_in_the_overrides(harness: Harness) -> None:
    record_id = await harness.enqueue("wait", execution_profile="heavy", timeout=45, retries=2)
    await harness.started()
    running = await harness.record(record_id)
    (execution,) = harness.emulator.executions
    assert execution.startswith("projects/demo/locations/europe-west1/jobs/worker-heavy/executions/worker-heavy-")
    assert running.status is TaskStatus.RUNNING and running.owner == f"{execution}#0"  # the name is stored
    assert harness.worker.running == 0  # the worker did not wait for the execution
    (request,) = harness.run_requests()
    overrides = request.body["overrides"]
    assert overrides["timeout"] == "45s" and overrides["taskCount"] == 1
    (container,) = overrides["containerOverrides"]
    assert {item["name"] for item in container["env"]} == IDS and "args" not in container
    sent = {item["name"]: item["value"] for item in container["env"]}
    assert sent["LITESTAR_QUEUES_RECORD_ID"] == record_id and sent["LITESTAR_QUEUES_QUEUE"] == running.queue
    assert int(sent["LITESTAR_QUEUES_FENCE_TOKEN"]) == running.token - 2  # claim, hand-over, take-over
    harness.release()
    final = await harness.final(record_id)
    assert (final.status, final.result, final.attempts) == (TaskStatus.COMPLETED, 1, 1)
    (finished,) = await harness.all_finished()
    assert finished.exit_codes == [ExitCode.COMPLETED]
    assert harness.effects() == [f"start 1 {execution.rsplit('/', 1)[-1]}", "done 1"]


async def test_throttling_is_retried_and_a_dispatch_that_keeps_failing_follows_the_retry_policy(
    harness: Harness,
) -> None:
    harness.emulator.fail_next(2, 429, only=":run")  # retried by the client: one dispatch
    first = await harness.final(await harness.enqueue())
    assert first.status is TaskStatus.COMPLETED and first.attempts == 1
    harness.emulator.fail_next(3, 503, only=":run")  # longer than the client's retries: the attempt fails
    second = await harness.final(await harness.enqueue(retries=1, retry_backoff=0.1))
    assert second.status is TaskStatus.COMPLETED and second.attempts == 2
    assert second.error is None or second.error.type == "cloudrun_dispatch_failed"
    harness.emulator.fail_next(3, 503, only=":run")
    third = await harness.final(await harness.enqueue())  # no retries left
    assert third.status is TaskStatus.FAILED and third.error is not None
    assert third.error.type == "cloudrun_dispatch_failed" and "503" in third.error.message
    assert len(harness.emulator.executions) == 2 and len(harness.effects()) == 4


async def test_an_ambiguous_api_failure_may_start_two_executions_but_one_runs_the_task(harness: Harness) -> None:
    harness.emulator.fail_after_run_next()  # created, but answered 500: the client tries again
    record_id = await harness.enqueue()
    final = await harness.final(record_id)
    assert final.status is TaskStatus.COMPLETED
    finished = await harness.all_finished()
    assert len(finished) == 2
    ran = [e for e in finished if e.exit_codes == [ExitCode.COMPLETED]]
    idle = [e for e in finished if e not in ran]
    assert len(ran) == 1 and (idle[0].state == "cancelled" or idle[0].exit_codes == [ExitCode.NOT_OWNER])
    assert [line.split()[:2] for line in harness.effects()] == [["start", "1"], ["done", "1"]]


@pytest.mark.parametrize("start_timeout", [1.0])
async def test_a_lost_execution_is_cancelled_and_ends_the_attempt(harness: Harness) -> None:
    harness.emulator.lose_next()
    final = await harness.final(await harness.enqueue())
    assert final.status is TaskStatus.FAILED and final.error is not None
    assert final.error.type == "cloudrun_execution_stalled" and "did not start within" in final.error.message
    (lost,) = await harness.all_finished()
    assert lost.state == "cancelled" and lost.exit_codes == [] and harness.effects() == []


async def test_a_crashed_container_is_reconciled_under_the_retry_policy(harness: Harness) -> None:
    record_id = await harness.enqueue("crash-once", retries=1, retry_backoff=0.1)
    await harness.started()
    first = next(iter(harness.emulator.executions))
    harness.emulator.signal(first, signal.SIGKILL)  # an OOM kill
    final = await harness.final(record_id)
    assert (final.status, final.result, final.attempts) == (TaskStatus.COMPLETED, 2, 2)
    crashed, retried = await harness.all_finished()
    assert crashed.exit_codes == [-signal.SIGKILL] and retried.exit_codes == [ExitCode.COMPLETED]
    assert [line.split()[:2] for line in harness.effects()] == [["start", "1"], ["start", "2"], ["done", "2"]]


async def test_the_platform_timeout_ends_a_wedged_task(harness: Harness) -> None:
    final = await harness.final(await harness.enqueue("block", timeout=4))  # the container starts within it
    assert final.status is TaskStatus.FAILED and final.error is not None
    assert final.error.type in {"cloudrun_execution_ended", "cloudrun_execution_stalled"}
    (timed_out,) = await harness.all_finished()
    assert timed_out.timed_out and timed_out.state == "failed"
    assert [request.body["overrides"]["timeout"] for request in harness.run_requests()] == ["4s"]
    # on a loaded machine the timeout may even strike before the task started: never is it done, or run twice
    assert [line.split()[0] for line in harness.effects()] in (["start"], [])


async def test_cancel_stops_the_execution_and_the_record_ends_cancelled(harness: Harness) -> None:
    record_id = await harness.enqueue("wait")
    await harness.started()
    cancelled = await harness.service.cancel(record_id)
    assert cancelled.status is TaskStatus.CANCELLED and cancelled.error is not None
    (execution,) = await harness.all_finished()
    assert execution.state == "cancelled"
    assert execution.exit_codes in ([ExitCode.TERMINATED], [ExitCode.NOT_OWNER])
    harness.release()
    assert (await harness.record(record_id)).status is TaskStatus.CANCELLED
    assert [line.split()[0] for line in harness.effects()] == ["start"]
    cancels = [request for request in harness.emulator.requests if request.path.endswith(":cancel")]
    assert [request.path for request in cancels] == [f"{next(iter(harness.emulator.executions))}:cancel"]


async def test_a_job_that_retries_by_itself_cannot_run_a_task_twice(harness: Harness) -> None:
    harness.emulator.jobs["projects/demo/locations/europe-west1/jobs/worker"].max_retries = 2  # deployed wrongly
    final = await harness.final(await harness.enqueue("fail"))
    assert final.status is TaskStatus.FAILED and final.error is not None and "on purpose" in final.error.message
    (execution,) = await harness.all_finished()
    assert execution.exit_codes == [ExitCode.FAILED, ExitCode.NOT_OWNER, ExitCode.NOT_OWNER]
    assert "--max-retries 0" in execution.output
    assert len(harness.effects()) == 1


async def test_reconcile_stores_the_execution_a_dead_worker_started(harness: Harness) -> None:
    record_id = await harness.enqueue(queue="not-served")  # no worker claims it: the test plays the dying one
    backend = harness.service.backend
    claimed = await backend.claim_record(record_id, owner="dead-worker", now=utc_now(), lease_seconds=0.5)
    assert claimed is not None
    harness.emulator.start_delay = 4.0  # the container starts after reconcile had to step in
    job = harness.target.config.job_name(None)
    execution = await harness.target.client.run_job(job, harness.target.overrides(claimed))
    # the worker "dies" here, before storing the execution's name; reconcile finds it by its ids
    await harness.until(lambda: _owned_by(harness, record_id, execution.name), "reconcile to store the execution")
    final = await harness.final(record_id)
    assert (final.status, final.attempts) == (TaskStatus.COMPLETED, 1)
    assert len(harness.emulator.executions) == 1 and len(harness.effects()) == 2


async def _owned_by(harness: Harness, record_id: str, owner: str) -> bool:
    return (await harness.record(record_id)).owner == owner


async def test_maintenance_signals_lengthen_the_lease_and_do_not_stop_the_task(harness: Harness) -> None:
    record_id = await harness.enqueue("wait")
    await harness.started()
    execution = next(iter(harness.emulator.executions))

    async def lease_left() -> float:
        record = await harness.record(record_id)
        assert record.lease_expires_at is not None
        return (record.lease_expires_at - utc_now()).total_seconds()

    harness.emulator.signal(execution, signal.SIGTSTP)
    await harness.until(lambda: _longer(lease_left(), 60), "the lease to be lengthened")
    harness.emulator.signal(execution, signal.SIGCONT)
    await harness.until(lambda: _longer(lease_left(), -60, shorter_than=30), "the lease to be back to normal")
    harness.release()
    final = await harness.final(record_id)
    assert final.status is TaskStatus.COMPLETED
    (finished,) = await harness.all_finished()
    assert finished.exit_codes == [ExitCode.COMPLETED] and "SIGTSTP" in finished.output and "SIGCONT" in finished.output


async def _longer(left: object, seconds: float, shorter_than: float = float("inf")) -> bool:
    value = await left  # type: ignore[misc]
    return bool(seconds < value < shorter_than)
