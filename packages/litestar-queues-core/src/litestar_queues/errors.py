"""One exception hierarchy for everything litestar-queues raises on purpose."""

from __future__ import annotations

__all__ = (
    "BackendUnavailableError",
    "ConfigurationError",
    "DuplicateTaskError",
    "NonRetryableError",
    "QueueError",
    "RecordNotFoundError",
    "RecordStateError",
    "SerializationError",
    "TaskFailedError",
    "TaskNotFoundError",
    "TaskTimeoutError",
    "UnsupportedOperation",
)


class QueueError(Exception):
    """Base class of every error raised by litestar-queues."""


class ConfigurationError(QueueError, ValueError):
    """The configuration cannot work; the message says what to change."""


class BackendUnavailableError(QueueError, ConnectionError):
    """The backend's server cannot be reached right now; callers may retry (workers do, with backoff)."""


class SerializationError(QueueError, TypeError):
    """A task argument or result cannot be encoded with msgspec (JSON)."""


class TaskNotFoundError(QueueError, LookupError):
    """No task is registered under the given name (is its module in ``task_modules``?)."""


class RecordNotFoundError(QueueError, LookupError):
    """No queue record exists with the given id."""


class RecordStateError(QueueError, ValueError):
    """The record's status does not allow the operation, e.g. retrying a record that completed; ``record`` is it."""

    def __init__(self, record: object, message: str) -> None:
        super().__init__(message)
        self.record = record


class DuplicateTaskError(QueueError):
    """A record cannot be (re)queued because another active record holds its dedup key."""


class UnsupportedOperation(QueueError, NotImplementedError):  # noqa: N818 - public name from the design
    """The backend does not declare the capability an operation needs."""


class TaskTimeoutError(QueueError, TimeoutError):
    """The task ran longer than its ``timeout``."""


class NonRetryableError(QueueError):
    """Raise (or subclass) inside a task to fail it at once, without using its remaining retries."""


class TaskFailedError(QueueError):
    """The awaited record ended ``failed``, ``cancelled`` or ``expired``; ``record`` says why."""

    def __init__(self, record: object, message: str) -> None:
        super().__init__(message)
        self.record = record
