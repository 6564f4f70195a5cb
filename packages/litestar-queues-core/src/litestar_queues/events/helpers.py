"""Publish events from task code without passing the context around."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from litestar_queues.context import current_task_context
from litestar_queues.events.envelope import QueueEventType

__all__ = ("publish_task_event", "publish_task_log", "publish_task_progress")


async def publish_task_event(
    event_type: str = QueueEventType.EVENT,
    *,
    message: str | None = None,
    payload: dict[str, Any] | None = None,
    level: str | None = None,
    channels: Iterable[str] = (),
    event_key: str | None = None,
    actor: str | None = None,
    entity: str | None = None,
) -> None:
    """Publish a custom event about the running task. Outside a task (a direct call in a unit test) it does nothing."""
    context = current_task_context()
    if context is not None:
        await context.publish_event(
            event_type,
            message=message,
            payload=payload,
            level=level,
            channels=channels,
            event_key=event_key,
            actor=actor,
            entity=entity,
        )


async def publish_task_log(
    message: str,
    *,
    level: str = "info",
    payload: dict[str, Any] | None = None,
    channels: Iterable[str] = (),
    event_key: str | None = None,
) -> None:
    """Publish a ``task.log`` event about the running task (no-op outside a task)."""
    context = current_task_context()
    if context is not None:
        await context.publish_log(message, level=level, payload=payload, channels=channels, event_key=event_key)


async def publish_task_progress(
    current: float,
    total: float | None = None,
    *,
    message: str | None = None,
    payload: dict[str, Any] | None = None,
    channels: Iterable[str] = (),
    event_key: str | None = None,
) -> None:
    """Publish a ``task.progress`` event about the running task (no-op outside a task)."""
    context = current_task_context()
    if context is not None:
        await context.publish_progress(
            current, total, message=message, payload=payload, channels=channels, event_key=event_key
        )
