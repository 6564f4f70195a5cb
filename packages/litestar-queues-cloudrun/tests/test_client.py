"""The API client against the emulated Admin API: the calls, their bodies, errors, retries and credentials."""

from __future__ import annotations

import pytest
from google.auth.credentials import AnonymousCredentials
from google.oauth2.credentials import Credentials

from litestar_queues.execution.cloudrun import CloudRunApiError, CloudRunClient, CloudRunNotFoundError
from litestar_queues.execution.cloudrun.resources import ContainerOverride, EnvVar, Overrides
from litestar_queues.execution.cloudrun.testing import CloudRunEmulator

pytestmark = pytest.mark.anyio

JOB = "projects/demo/locations/europe-west1/jobs/worker"
OVERRIDES = Overrides(
    container_overrides=[ContainerOverride(env=[EnvVar("LITESTAR_QUEUES_RECORD_ID", "rec-1")])],
    task_count=1,
    timeout="90s",
)


def client_for(emulator: CloudRunEmulator, **options: object) -> CloudRunClient:
    values: dict[str, object] = {"credentials": AnonymousCredentials(), "backoff": 0.01}
    values.update(options)
    return CloudRunClient(endpoint=emulator.url, **values)  # type: ignore[arg-type]


async def test_run_job_sends_the_overrides_and_returns_the_execution_at_once(emulator: CloudRunEmulator) -> None:
    async with client_for(emulator) as client:
        emulator.start_delay = 0.5  # the call returns before the container even starts
        execution = await client.run_job(JOB, OVERRIDES)
        assert execution.name.startswith(f"{JOB}/executions/worker-") and not execution.finished
        (request,) = emulator.requests
        assert (request.method, request.path) == ("POST", f"{JOB}:run")
        assert request.body == {
            "overrides": {
                "containerOverrides": [{"env": [{"name": "LITESTAR_QUEUES_RECORD_ID", "value": "rec-1"}]}],
                "taskCount": 1,
                "timeout": "90s",
            }
        }
        finished = await emulator.wait_finished(execution.name)
        assert finished.exit_codes == [0] and finished.output.strip() == "rec-1"
        read = await client.get_execution(execution.name)
        assert read.finished and read.succeeded and not read.cancelled
        assert read.env()["LITESTAR_QUEUES_RECORD_ID"] == "rec-1"


async def test_failed_and_cancelled_executions_read_as_such(emulator: CloudRunEmulator) -> None:
    emulator.add_job("failing", ["false"])
    emulator.lose_next()  # never starts: only a cancel ends it
    async with client_for(emulator) as client:
        lost = await client.run_job(JOB, OVERRIDES)
        failing = await client.run_job(JOB.replace("worker", "failing"), Overrides())
        await emulator.wait_finished(failing.name)
        failed = await client.get_execution(failing.name)
        assert failed.finished and not failed.succeeded and not failed.cancelled and "failed" in failed.describe()
        assert not (await client.get_execution(lost.name)).finished
        await client.cancel_execution(lost.name)
        cancelled = await client.get_execution(lost.name)
        assert cancelled.finished and cancelled.cancelled and cancelled.describe() == "was cancelled"


async def test_list_executions_pages_newest_first(emulator: CloudRunEmulator) -> None:
    emulator.lose_next(3)
    async with client_for(emulator) as client:
        names = [(await client.run_job(JOB, OVERRIDES)).name for _ in range(3)]
        first = await client.list_executions(JOB, page_size=2)
        second = await client.list_executions(JOB, page_size=2, page_token=first.next_page_token)
        assert [e.name for e in first.executions + second.executions] == names[::-1]
        assert second.next_page_token == ""


async def test_unknown_resources_raise_not_found(emulator: CloudRunEmulator) -> None:
    async with client_for(emulator) as client:
        with pytest.raises(CloudRunNotFoundError, match="NOT_FOUND"):
            await client.run_job(JOB.replace("worker", "missing"), OVERRIDES)
        with pytest.raises(CloudRunNotFoundError):
            await client.get_execution(f"{JOB}/executions/worker-nope1")


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_throttling_and_server_errors_are_retried(emulator: CloudRunEmulator, status: int) -> None:
    emulator.fail_next(3, status)
    async with client_for(emulator, retries=3) as client:
        execution = await client.run_job(JOB, OVERRIDES)
    assert [request.status for request in emulator.requests] == [status, status, status, 200]
    assert list(emulator.executions) == [execution.name]


async def test_a_burst_longer_than_the_retries_raises_a_retryable_error(emulator: CloudRunEmulator) -> None:
    emulator.fail_next(3, 503)
    async with client_for(emulator, retries=2) as client:
        with pytest.raises(CloudRunApiError) as raised:
            await client.run_job(JOB, OVERRIDES)
    assert raised.value.retryable and raised.value.status == 503
    assert not emulator.executions


@pytest.mark.parametrize("status", [400, 403])
async def test_client_errors_are_not_retried(emulator: CloudRunEmulator, status: int) -> None:
    emulator.fail_next(1, status)
    async with client_for(emulator) as client:
        with pytest.raises(CloudRunApiError) as raised:
            await client.run_job(JOB, OVERRIDES)
    assert not raised.value.retryable and len(emulator.requests) == 1


async def test_credentials_put_a_bearer_token_on_every_call(emulator: CloudRunEmulator) -> None:
    async with client_for(emulator, credentials=Credentials(token="token-123")) as client:
        execution = await client.run_job(JOB, OVERRIDES)
        await client.get_execution(execution.name)
    assert [request.headers.get("authorization") for request in emulator.requests] == ["Bearer token-123"] * 2


async def test_anonymous_credentials_send_no_authorization(emulator: CloudRunEmulator) -> None:
    async with client_for(emulator) as client:
        await client.run_job(JOB, OVERRIDES)
    assert "authorization" not in emulator.requests[0].headers


async def test_unreachable_api_is_a_retryable_transport_error() -> None:
    async with CloudRunClient(endpoint="http://127.0.0.1:9", credentials=AnonymousCredentials(), retries=0) as client:
        with pytest.raises(CloudRunApiError) as raised:
            await client.get_execution(f"{JOB}/executions/worker-abcde")
    assert raised.value.retryable and raised.value.status == 0
