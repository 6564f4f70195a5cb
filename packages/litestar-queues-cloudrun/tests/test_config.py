"""Configuration mistakes fail at construction or at startup, with a message that says what to change."""

from __future__ import annotations

from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials

from litestar_queues import QueueConfig, QueueService, TaskRegistry, task
from litestar_queues.backend import QueueBackend
from litestar_queues.backends.memory import MemoryBackend
from litestar_queues.errors import ConfigurationError
from litestar_queues.execution.cloudrun import CloudRunExecutionConfig

pytestmark = pytest.mark.anyio


def cloudrun(**changes: Any) -> CloudRunExecutionConfig:
    values: dict[str, Any] = {
        "project": "demo",
        "region": "europe-west1",
        "job": "worker",
        "profiles": {"worker-heavy": "worker-heavy"},
        "credentials": AnonymousCredentials(),
    }
    values.update(changes)
    return CloudRunExecutionConfig(**values)


class SharedMemoryBackend(MemoryBackend):
    """A memory backend that claims to be reachable from elsewhere (to get past the local-only check)."""

    local_only = False


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"project": ""}, "project must be a non-empty project id"),
        ({"region": " "}, "region must be a non-empty region id"),
        ({"job": ""}, "job must be a non-empty job id"),
        ({"job": "a/b"}, "neither a job id nor a full"),
        ({"profiles": {"heavy": ""}}, "maps execution profiles to job ids"),
        ({"max_timeout": 8 * 24 * 3600}, "at most 168 hours"),
        ({"name": "local"}, "built-in"),
        ({"start_timeout": 0}, "start_timeout must be positive"),
        ({"api_endpoint": "run.googleapis.com"}, "http"),
    ],
)
def test_bad_settings_fail_at_construction(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        cloudrun(**changes)


def test_jobs_resolve_to_full_names() -> None:
    config = cloudrun(profiles={"big": "projects/other/locations/us-east1/jobs/big"})
    assert config.job_name(None) == "projects/demo/locations/europe-west1/jobs/worker"
    assert config.job_name("big") == "projects/other/locations/us-east1/jobs/big"
    with pytest.raises(ConfigurationError, match=r"profile 'tiny' is not in .*known: big"):
        config.job_name("tiny")


@pytest.mark.parametrize(
    ("task_timeout", "grace", "maximum", "expected"),
    [(None, 60, 86400, None), (600, 60, 86400, 660), (0.2, 0, 86400, 1), (10**6, 60, 86400, 86400), (100.5, 0, 99, 99)],
)
def test_the_attempt_timeout_is_clamped_to_the_platform(
    task_timeout: float | None, grace: float, maximum: float, expected: int | None
) -> None:
    assert cloudrun(timeout_grace=grace, max_timeout=maximum).attempt_timeout(task_timeout) == expected


def test_queue_config_takes_it_as_default_or_as_an_extra_backend() -> None:
    target = cloudrun()
    as_default = QueueConfig(execution_backend=target)
    assert as_default.default_execution_backend == "cloudrun" and as_default.execution_configs == (target,)
    as_extra = QueueConfig(execution_backends=(target,))
    assert as_extra.default_execution_backend == "local" and as_extra.execution_configs == (target,)
    with pytest.raises(ConfigurationError, match="used twice"):
        QueueConfig(execution_backend=target, execution_backends=(cloudrun(),))
    with pytest.raises(ConfigurationError, match="unknown execution_backend 'cloudrun'"):
        QueueConfig(execution_backend="cloudrun")


async def open_service(backend: QueueBackend | str, registry: TaskRegistry, **config: Any) -> None:
    async with QueueService(QueueConfig(queue_backend=backend, **config), registry=registry):
        pass


async def test_a_process_local_backend_is_refused_at_startup() -> None:
    with pytest.raises(ConfigurationError, match="cannot reach the memory queue backend of this process"):
        await open_service("memory", TaskRegistry(), execution_backends=(cloudrun(),))


async def test_a_backend_that_cannot_hand_attempts_over_is_refused_at_startup() -> None:
    class NoTransfer(SharedMemoryBackend):
        capabilities = frozenset()

    with pytest.raises(ConfigurationError, match=r"Capability.TRANSFER"):
        await open_service(NoTransfer(), TaskRegistry(), execution_backends=(cloudrun(),))


async def test_an_unknown_profile_fails_at_startup_and_at_enqueue() -> None:
    registry = TaskRegistry()

    @task("heavy", execution_backend="cloudrun", execution_profile="worker-huge", registry=registry)
    async def heavy() -> None: ...

    with pytest.raises(ConfigurationError, match=r"task 'heavy': execution profile 'worker-huge' is not in"):
        await open_service(SharedMemoryBackend(), registry, execution_backends=(cloudrun(),))
    registry.unregister("heavy")

    @task("light", execution_backend="cloudrun", registry=registry)
    async def light() -> None: ...

    config = QueueConfig(queue_backend=SharedMemoryBackend(), execution_backends=(cloudrun(),))
    async with QueueService(config, registry=registry) as service:
        with pytest.raises(ConfigurationError, match="execution profile 'nope'"):
            await service.enqueue(light.using(execution_profile="nope"))
        assert (await service.enqueue(light.using(execution_profile="worker-heavy"))).record.execution_profile


async def test_a_task_naming_an_unconfigured_backend_fails_at_startup() -> None:
    registry = TaskRegistry()

    @task("remote", execution_backend="cloudrun", registry=registry)
    async def remote() -> None: ...

    with pytest.raises(ConfigurationError, match=r"task 'remote' runs on execution backend 'cloudrun', which"):
        await open_service("memory", registry)
