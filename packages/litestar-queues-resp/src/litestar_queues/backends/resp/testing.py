"""Test helpers for the Redis-protocol backends."""

from __future__ import annotations

import json

from litestar_queues.backends.resp.backend import RespBackend

__all__ = ("corrupt_args",)


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
