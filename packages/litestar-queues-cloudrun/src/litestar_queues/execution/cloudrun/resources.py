"""The parts of the Cloud Run Admin API v2 JSON this package reads and writes, as msgspec structs.

Field names are the API's lowerCamelCase; unknown fields are ignored, so newer API versions still decode. Enums
arrive as names (``"CONDITION_SUCCEEDED"``) unless a client asks for numbers; both are accepted.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

__all__ = (
    "Condition",
    "ContainerOverride",
    "EnvVar",
    "Execution",
    "ExecutionList",
    "Operation",
    "OperationError",
    "Overrides",
    "RunJobRequest",
    "execution_id",
    "is_execution_name",
)

_EXECUTION_NAME = re.compile(r"^projects/[^/]+/locations/[^/]+/jobs/[^/]+/executions/[^/#]+$")
_CANCELLED_REASONS = frozenset({"CANCELLED", 3})


def is_execution_name(value: str | None) -> bool:
    """Whether ``value`` is a full execution resource name (``projects/…/jobs/…/executions/…``)."""
    return value is not None and _EXECUTION_NAME.match(value) is not None


def execution_id(name: str) -> str:
    """The short id of an execution (``job-abc12``), the last segment of its resource name."""
    return name.rsplit("/", 1)[-1]


class EnvVar(msgspec.Struct, frozen=True):
    """One environment variable of a container override."""

    name: str
    value: str


class ContainerOverride(msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=True):
    """Per-execution changes of one container: ``env`` is merged into the job's, ``args`` replace the job's."""

    name: str | None = None
    env: list[EnvVar] = msgspec.field(default_factory=list)
    args: list[str] = msgspec.field(default_factory=list)
    clear_args: bool = False


class Overrides(msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=True):
    """``RunJobRequest.overrides``; ``timeout`` is a Duration string such as ``"90s"`` (per attempt)."""

    container_overrides: list[ContainerOverride] = msgspec.field(default_factory=list)
    task_count: int | None = None
    timeout: str | None = None


class RunJobRequest(msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=True):
    """The body of ``POST …/jobs/{job}:run``."""

    overrides: Overrides | None = None
    validate_only: bool = False


class Condition(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One condition of an execution."""

    type: str = ""
    state: str | int = ""
    message: str = ""
    execution_reason: str | int | None = None


class Execution(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """An execution of a job (the fields reconcile reads; ``template`` is kept raw)."""

    name: str
    uid: str = ""
    job: str = ""
    create_time: str | None = None
    start_time: str | None = None
    completion_time: str | None = None
    task_count: int = 0
    running_count: int = 0
    succeeded_count: int = 0
    failed_count: int = 0
    cancelled_count: int = 0
    retried_count: int = 0
    conditions: list[Condition] = msgspec.field(default_factory=list)
    template: dict[str, Any] | None = None
    log_uri: str = ""

    @property
    def finished(self) -> bool:
        """The execution ended (its completion time is set)."""
        return bool(self.completion_time)

    @property
    def cancelled(self) -> bool:
        """It was cancelled (some task cancelled, or a condition says so)."""
        return self.cancelled_count > 0 or any(
            condition.execution_reason in _CANCELLED_REASONS for condition in self.conditions
        )

    @property
    def succeeded(self) -> bool:
        """Every task succeeded."""
        return self.failed_count == 0 and self.succeeded_count >= max(self.task_count, 1)

    def describe(self) -> str:
        """How it ended, in words, for error messages and logs."""
        if not self.finished:
            return "is still running"
        if self.cancelled:
            return "was cancelled"
        if self.succeeded:
            return "succeeded"
        return "failed (a non-zero exit, a crash, or its timeout)"

    def env(self) -> dict[str, str]:
        """The environment of its first container as the execution ran it (overrides applied)."""
        containers = (self.template or {}).get("containers") or [{}]
        return {item.get("name", ""): str(item.get("value", "")) for item in containers[0].get("env") or []}


class OperationError(msgspec.Struct, frozen=True, kw_only=True):
    """``google.rpc.Status`` of a failed long-running operation."""

    code: int = 0
    message: str = ""


class Operation(msgspec.Struct, frozen=True, kw_only=True):
    """A long-running operation; ``metadata`` is the execution it is about (set at once by ``run``)."""

    name: str = ""
    done: bool = False
    metadata: Execution | None = None
    response: Execution | None = None
    error: OperationError | None = None


class ExecutionList(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One page of ``GET …/executions``."""

    executions: list[Execution] = msgspec.field(default_factory=list)
    next_page_token: str = ""
