"""``CloudRunExecutionConfig``: which Cloud Run jobs run the attempts, and how they are started."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from litestar_queues.config import BUILTIN_EXECUTION_BACKENDS
from litestar_queues.errors import ConfigurationError

if TYPE_CHECKING:
    from litestar_queues.execution.cloudrun.target import CloudRunTarget

__all__ = ("DEFAULT_MAX_TIMEOUT", "PLATFORM_MAX_TIMEOUT", "CloudRunExecutionConfig")

PLATFORM_MAX_TIMEOUT = 7 * 24 * 3600.0
"""Cloud Run's longest task timeout (168 hours; more than 24 hours is a Preview feature)."""
DEFAULT_MAX_TIMEOUT = 24 * 3600.0
"""The longest per-attempt timeout sent unless ``max_timeout`` allows more."""


@dataclass(frozen=True, kw_only=True)
class CloudRunExecutionConfig:
    """Run attempts as Cloud Run job executions: one execution per attempt, started by a worker.

    Use it as ``QueueConfig(execution_backend=CloudRunExecutionConfig(...))`` (every task runs there unless it
    names another backend) or in ``QueueConfig(execution_backends=(...))`` (tasks opt in with
    ``@task(execution_backend="cloudrun")``). Each job runs the ``litestar-queues-cloudrun-worker`` entry point
    in a container image of the application and must be deployed with ``--max-retries 0``: the queue owns retries.

    Attributes:
        project: The Google Cloud project id of the jobs.
        region: Their region, e.g. ``"europe-west1"``.
        job: The job that runs tasks without an ``execution_profile`` (a job id, or a full
            ``projects/…/locations/…/jobs/…`` name).
        profiles: ``execution_profile`` → job, e.g. ``{"worker-heavy": "worker-heavy"}`` for a job with more
            memory. A task naming a profile that is not here fails at startup.
        name: The name tasks give as ``execution_backend``.
        container: The container of the job that gets the overrides; ``None`` for single-container jobs.
        start_timeout: Seconds an execution may take to start and claim its record; after that reconcile cancels
            it and the attempt counts as failed.
        timeout_grace: Seconds added to a task's ``timeout`` for the per-attempt timeout sent to Cloud Run (the
            container's start, imports, and writing the outcome); the task's own timeout still stops the task.
        max_timeout: The longest per-attempt timeout sent (clamped): 24 hours by default, at most 168 hours.
        api_endpoint: The Admin API's base URL; an ``http://127.0.0.1:PORT`` emulator in tests.
        credentials: google-auth credentials for the API; ``None`` uses Application Default Credentials.
        request_timeout: Seconds each API request may take.
        api_retries: Extra tries of an API call that failed with 429, 5xx or a transport error.
        api_backoff: Base of the exponential backoff between those tries, in seconds.
    """

    project: str
    region: str
    job: str
    profiles: Mapping[str, str] = field(default_factory=dict)
    name: str = "cloudrun"
    container: str | None = None
    start_timeout: float = 600.0
    timeout_grace: float = 60.0
    max_timeout: float = DEFAULT_MAX_TIMEOUT
    api_endpoint: str = "https://run.googleapis.com"
    credentials: Any = field(default=None, repr=False, compare=False)
    request_timeout: float = 30.0
    api_retries: int = 4
    api_backoff: float = 0.5

    def __post_init__(self) -> None:
        for attribute in ("project", "region", "job", "name"):
            value = getattr(self, attribute)
            if not isinstance(value, str) or not value.strip() or ("/" in value and attribute != "job"):
                raise ConfigurationError(
                    f"CloudRunExecutionConfig.{attribute} must be a non-empty {attribute} id, got {value!r}"
                )
        if self.name in BUILTIN_EXECUTION_BACKENDS:
            raise ConfigurationError(f"CloudRunExecutionConfig.name {self.name!r} is a built-in execution backend")
        object.__setattr__(self, "profiles", MappingProxyType(dict(self.profiles)))
        for profile, job in self.profiles.items():
            if not profile or not isinstance(job, str) or not job.strip():
                raise ConfigurationError(
                    f"CloudRunExecutionConfig.profiles maps execution profiles to job ids, got {profile!r}: {job!r}"
                )
            self.job_name(profile)
        self.job_name(None)
        if not 0 < self.max_timeout <= PLATFORM_MAX_TIMEOUT:
            raise ConfigurationError(
                f"CloudRunExecutionConfig.max_timeout must be in (0, {PLATFORM_MAX_TIMEOUT:g}] seconds (Cloud Run "
                f"allows at most 168 hours per attempt), got {self.max_timeout!r}"
            )
        for attribute in ("start_timeout", "request_timeout"):
            if getattr(self, attribute) <= 0:
                raise ConfigurationError(f"CloudRunExecutionConfig.{attribute} must be positive")
        if self.timeout_grace < 0 or self.api_retries < 0 or self.api_backoff < 0:
            raise ConfigurationError(
                "CloudRunExecutionConfig.timeout_grace, api_retries and api_backoff must not be negative"
            )
        if not self.api_endpoint.startswith(("https://", "http://")):
            raise ConfigurationError(
                f"CloudRunExecutionConfig.api_endpoint must be an http(s) URL, got {self.api_endpoint!r}"
            )

    def create_target(self) -> CloudRunTarget:
        """Build the (unopened) execution target."""
        from litestar_queues.execution.cloudrun.target import CloudRunTarget  # noqa: PLC0415 - target imports us

        return CloudRunTarget(self)

    def job_name(self, profile: str | None) -> str:
        """The full resource name of the job that runs ``profile`` (``None``: the default job).

        Raises:
            ConfigurationError: ``profile`` is not in ``profiles``.
        """
        if profile is None:
            job = self.job
        else:
            try:
                job = self.profiles[profile]
            except KeyError:
                known = ", ".join(sorted(self.profiles)) or "none"
                raise ConfigurationError(
                    f"execution profile {profile!r} is not in CloudRunExecutionConfig(name={self.name!r}).profiles "
                    f"(known: {known})"
                ) from None
        if job.startswith("projects/"):
            parts = job.split("/")
            if len(parts) != 6 or parts[2] != "locations" or parts[4] != "jobs" or not all(parts):
                raise ConfigurationError(f"{job!r} is not a job name of the form projects/P/locations/L/jobs/J")
            return job
        if "/" in job:
            raise ConfigurationError(f"{job!r} is neither a job id nor a full projects/…/jobs/… name")
        return f"projects/{self.project}/locations/{self.region}/jobs/{job}"

    def execution_name(self, job_id: str, execution_id: str) -> str:
        """The full resource name of an execution of ``job_id`` (how the container names itself)."""
        return f"projects/{self.project}/locations/{self.region}/jobs/{job_id}/executions/{execution_id}"

    def attempt_timeout(self, task_timeout: float | None) -> int | None:
        """The per-attempt timeout sent to Cloud Run for a task's ``timeout``, in whole seconds, clamped to
        ``[1, max_timeout]``; ``None`` (no timeout) keeps the job's own."""
        if task_timeout is None:
            return None
        return max(1, min(math.ceil(task_timeout + self.timeout_grace), math.floor(self.max_timeout)))
