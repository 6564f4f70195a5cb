"""Test helpers for the Redis-protocol backends."""

from __future__ import annotations

import json

from litestar_queues.backends.resp.backend import RespBackend

__all__ = ("corrupt_args", "corrupt_event")


async def corrupt_args(backend: RespBackend, record_id: str) -> str:
    """Replace the ``args`` of a stored record's JSON body with a string, so that the record no longer decodes.

    The conformance suite's ``corrupt_record`` hook (see ``UndecodableConformance``):
    ``functools.partial(corrupt_args, backend)``. Returns the field it broke, ``"args"``.
    """
    client = backend._client
    if client is None:
        raise RuntimeError(f"{type(backend).__name__} is not open")
    slots = backend._slots
    prefix = backend.key_prefix if slots is None else await slots.record_prefix(record_id)
    key = f"{prefix}:b:{record_id}"
    body = json.loads(await client.get(key))  # type: ignore[attr-defined]
    body[1] = "not a list"
    await client.set(key, json.dumps(body))  # type: ignore[attr-defined]
    return "args"


async def corrupt_event(backend: RespBackend, event_id: str) -> None:
    """Replace the stored form of a stored event with text that is no event (its type, queue and task id stay, so the
    scripts still filter it), so that it no longer decodes.

    The conformance suite's ``corrupt_event`` hook (see ``EventHistoryConformance``):
    ``functools.partial(corrupt_event, backend)``.
    """
    client = backend._client
    if client is None:
        raise RuntimeError(f"{type(backend).__name__} is not open")
    key = f"{backend.key_prefix}:ev"
    value = await client.hget(key, event_id)  # type: ignore[attr-defined]
    kept = (value if isinstance(value, bytes) else value.encode()).rsplit(b"\0", 1)[0]
    await client.hset(key, event_id, kept + b"\0[not a stored event")  # type: ignore[attr-defined]
