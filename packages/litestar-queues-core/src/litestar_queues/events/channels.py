"""Canonical channel names for queue events."""

from __future__ import annotations

from typing import Final

__all__ = ("CHANNEL_PREFIX", "QueueChannels")

CHANNEL_PREFIX: Final = "litestar_queues"


class QueueChannels:
    """Build the canonical channel names: ``litestar_queues:<scope>[:<key>]:events``."""

    __slots__ = ()

    @staticmethod
    def task(task_id: str) -> str:
        """Events of one task record."""
        return f"{CHANNEL_PREFIX}:task:{task_id}:events"

    @staticmethod
    def queue(name: str) -> str:
        """Events of one queue."""
        return f"{CHANNEL_PREFIX}:queue:{name}:events"

    @staticmethod
    def worker(worker_id: str) -> str:
        """Events of one worker."""
        return f"{CHANNEL_PREFIX}:worker:{worker_id}:events"

    @staticmethod
    def global_() -> str:
        """Lifecycle events of every task (when ``publish_global_lifecycle`` is on)."""
        return f"{CHANNEL_PREFIX}:global:events"

    @staticmethod
    def custom(scope_key: str) -> str:
        """Application-defined scopes."""
        return f"{CHANNEL_PREFIX}:custom:{scope_key}:events"

    @classmethod
    def for_scope(cls, scope: str, scope_key: str | None) -> str:
        """The canonical channel of an event's scope."""
        if scope == "global":
            return cls.global_()
        if scope_key is None:
            raise ValueError(f"scope {scope!r} needs a scope key")
        builders = {"task": cls.task, "queue": cls.queue, "worker": cls.worker, "custom": cls.custom}
        try:
            return builders[scope](scope_key)
        except KeyError:
            raise ValueError(f"unknown event scope {scope!r}") from None
