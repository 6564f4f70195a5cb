"""The wire contract, checked with Google's own ``google-cloud-run`` client: it drives the emulator, and our client
sends the same request body and reads the same executions, so neither side can drift from the real API's shapes."""

from __future__ import annotations

import asyncio

import pytest
from google.api_core.client_options import ClientOptions
from google.api_core.exceptions import NotFound
from google.auth.credentials import AnonymousCredentials
from google.cloud import run_v2

from litestar_queues.execution.cloudrun import CloudRunClient
from litestar_queues.execution.cloudrun.resources import ContainerOverride, EnvVar, Overrides
from litestar_queues.execution.cloudrun.testing import CloudRunEmulator

pytestmark = pytest.mark.anyio

JOB = "projects/demo/locations/europe-west1/jobs/worker"


def official(emulator: CloudRunEmulator) -> tuple[run_v2.JobsClient, run_v2.ExecutionsClient]:
    options = ClientOptions(api_endpoint=emulator.url)
    credentials = AnonymousCredentials()
    return (
        run_v2.JobsClient(credentials=credentials, transport="rest", client_options=options),
        run_v2.ExecutionsClient(credentials=credentials, transport="rest", client_options=options),
    )


async def test_our_run_request_is_the_official_clients_request(emulator: CloudRunEmulator) -> None:
    jobs, _ = official(emulator)
    env = [("LITESTAR_QUEUES_RECORD_ID", "rec-1"), ("LITESTAR_QUEUES_FENCE_TOKEN", "3")]
    request = run_v2.RunJobRequest(
        name=JOB,
        overrides=run_v2.RunJobRequest.Overrides(
            container_overrides=[
                run_v2.RunJobRequest.Overrides.ContainerOverride(
                    name="app", env=[run_v2.EnvVar(name=name, value=value) for name, value in env]
                )
            ],
            task_count=1,
            timeout={"seconds": 90},
        ),
    )
    operation = await asyncio.to_thread(jobs.run_job, request=request, timeout=10)
    ours = Overrides(
        container_overrides=[ContainerOverride(name="app", env=[EnvVar(name, value) for name, value in env])],
        task_count=1,
        timeout="90s",
    )
    async with CloudRunClient(endpoint=emulator.url, credentials=AnonymousCredentials()) as client:
        execution = await client.run_job(JOB, ours)
    theirs_sent, ours_sent = emulator.requests
    assert (theirs_sent.method, theirs_sent.path) == (ours_sent.method, ours_sent.path) == ("POST", f"{JOB}:run")
    assert theirs_sent.body == ours_sent.body
    # the official client reads the execution's name from the operation's metadata, as ours does
    assert operation.metadata.name.startswith(f"{JOB}/executions/worker-") and execution.name != operation.metadata.name


async def test_the_official_client_reads_what_the_emulator_answers(emulator: CloudRunEmulator) -> None:
    jobs, executions = official(emulator)
    emulator.add_job("failing", ["false"])
    operation = await asyncio.to_thread(jobs.run_job, name=JOB.replace("worker", "failing"), timeout=10)
    name = operation.metadata.name
    await emulator.wait_finished(name)
    failed = await asyncio.to_thread(executions.get_execution, name=name, timeout=10)
    assert failed.failed_count == 1 and failed.completion_time and failed.task_count == 1
    condition = failed.conditions[0]
    assert condition.state == run_v2.Condition.State.CONDITION_FAILED
    assert condition.execution_reason == run_v2.Condition.ExecutionReason.NON_ZERO_EXIT_CODE
    async with CloudRunClient(endpoint=emulator.url, credentials=AnonymousCredentials()) as client:
        ours = await client.get_execution(name)
    assert (ours.failed_count, ours.task_count, ours.finished, ours.succeeded) == (1, 1, True, False)

    emulator.lose_next()
    pending = (await asyncio.to_thread(jobs.run_job, name=JOB, timeout=10)).metadata.name
    cancel = await asyncio.to_thread(executions.cancel_execution, name=pending, timeout=10)
    assert cancel.done()
    cancelled = await asyncio.to_thread(executions.get_execution, name=pending, timeout=10)
    assert cancelled.cancelled_count == 1
    assert cancelled.conditions[0].execution_reason == run_v2.Condition.ExecutionReason.CANCELLED
    listed = await asyncio.to_thread(lambda: [e.name for e in executions.list_executions(parent=JOB, timeout=10)])
    assert listed == [pending]
    with pytest.raises(NotFound):
        await asyncio.to_thread(executions.get_execution, name=f"{JOB}/executions/worker-nope1", timeout=10)
