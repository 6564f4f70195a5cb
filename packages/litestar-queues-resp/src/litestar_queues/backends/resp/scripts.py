"""The Lua scripts: loaded from package files, called by SHA1, reloaded when the server lost them.

Every state change is one script so it is atomic on the server. ``EVALSHA`` sends only the digest; a server
that restarted or ran ``SCRIPT FLUSH`` answers ``NOSCRIPT``, and the runner loads every script again and
retries once (a script that got ``NOSCRIPT`` did not run, so the retry cannot apply anything twice).

Arguments travel as one MessagePack array and replies come back as one MessagePack string (decoded in C by
msgspec), instead of dozens of protocol arguments and nested reply arrays that the client library would
encode and parse one by one in Python. A client that decodes responses to ``str`` cannot carry binary
replies, so with such a client scripts answer with plain nested arrays instead.

A lone call (a single enqueue, an idle worker's claim) is a round trip whose client side is mostly the client
library's: a pool checkout with a timer for the wait, command dispatch, argument encoding. So the runner keeps one
connection of its own (made by the client's pool, not counted in its ``max_connections``): a call that finds it
free writes the command, packed here from a per-script prefix, to it and reads the reply directly; a call made
while it is busy goes through the client as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from importlib import resources
from typing import Any

import msgspec

from litestar_queues.backends.resp.client import RespClient, RespConnection, RespErrorTypes, RespPipeline
from litestar_queues.backends.resp.connection import ConnectionMonitor

__all__ = ("Script", "ScriptRunner")

Arg = Any
"""Script arguments: strings (times as decimal strings), small ints, or lists of those; MessagePack-encoded."""

Call = tuple["Script", Sequence[Arg]] | tuple["Script", Sequence[Arg], str]
"""A script, its arguments, and optionally the key prefix it runs under (one queue's, in the per-queue layout)."""

_pack = msgspec.msgpack.Encoder().encode
_unpack = msgspec.msgpack.Decoder().decode


class Script(str, enum.Enum):
    """The scripts, named after their files in ``lua/``."""

    ENQUEUE = "enqueue"
    CLAIM = "claim"
    CLAIM_RECORD = "claim_record"
    RENEW = "renew"
    TRANSFER = "transfer"
    FINISH = "finish"
    EXPIRED_LEASES = "expired_leases"
    CANCEL = "cancel"
    REQUEUE = "requeue"
    EXPIRE = "expire"
    PRUNE = "prune"
    GET = "get"
    GET_BY_KEY = "get_by_key"
    STATUS = "status"
    QUERY = "query"
    STATISTICS = "statistics"
    PAUSE_QUEUE = "pause_queue"
    RESUME_QUEUE = "resume_queue"
    PAUSED_QUEUES = "paused_queues"
    REGISTER_WORKER = "register_worker"
    REMOVE_WORKER = "remove_worker"
    LIST_WORKERS = "list_workers"
    ACQUIRE_LOCK = "acquire_lock"
    RELEASE_LOCK = "release_lock"
    SAVE_PROGRESS = "save_progress"
    APPEND_EVENTS = "append_events"
    QUERY_EVENTS = "query_events"
    PRUNE_EVENTS = "prune_events"
    # the per-queue cluster layout's own (slots.py)
    LAYOUT = "layout"
    QUEUE_NAMES = "queue_names"
    ADD_QUEUES = "add_queues"
    PEEK = "peek"
    CLAIM_IDS = "claim_ids"
    RESERVE_KEYS = "reserve_keys"
    TAKE_KEY = "take_key"
    SWEEP_KEYS = "sweep_keys"
    RELEASE_KEYS = "release_keys"


_DEFINED = re.compile(r"^local (?:function )?([A-Za-z_]\w*(?:, *[A-Za-z_]\w*)*)", re.MULTILINE)
_WORD = re.compile(r"[A-Za-z_]\w*")


def link(prelude: str, body: str) -> str:
    """Return ``body`` preceded by the prelude's first block and the blocks defining names it needs.

    Lua creates a script's local functions on every call, so carrying unused helpers costs every call.
    Blocks are separated by blank lines and keep their order, so definitions still precede their uses.
    """
    head, *blocks = prelude.split("\n\n")
    names = [{name.strip() for match in _DEFINED.findall(block) for name in match.split(",")} for block in blocks]
    chosen = [False] * len(blocks)
    used = set(_WORD.findall(body))
    grown = True
    while grown:
        grown = False
        for index, defined in enumerate(names):
            if not chosen[index] and defined & used:
                chosen[index] = grown = True
                used |= set(_WORD.findall(blocks[index]))
    return "\n\n".join([head, *(block for block, keep in zip(blocks, chosen, strict=True) if keep), body])


def _load_sources() -> dict[Script, tuple[str, str]]:
    folder = resources.files("litestar_queues.backends.resp").joinpath("lua")
    prelude = folder.joinpath("_prelude.lua").read_text(encoding="utf-8").strip()
    sources: dict[Script, tuple[str, str]] = {}
    for script in Script:
        source = link(prelude, folder.joinpath(f"{script.value}.lua").read_text(encoding="utf-8"))
        sources[script] = (source, hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest())
    return sources


_SOURCES = _load_sources()


async def _exchange(connection: RespConnection, command: bytes, timeout: float) -> Any:
    """Send ``command`` and read its reply within ``timeout`` seconds, under one timer.

    The timer cancels the exchange (the connection drops itself) and the call raises ``asyncio.TimeoutError``,
    which the runner reports as a lost connection. A cancel from elsewhere stays a cancel (counted on 3.11+).
    """
    task = asyncio.current_task()
    if task is None:  # pragma: no cover - always called from a task
        raise RuntimeError("no running task")
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        task.cancel()

    timer = asyncio.get_running_loop().call_later(timeout, expire)
    try:
        await connection.send_packed_command(command)
        return await connection.read_response()
    except asyncio.CancelledError:
        if not expired or (sys.version_info >= (3, 11) and task.uncancel() > 0):
            raise
        raise asyncio.TimeoutError(f"no reply within {timeout:g}s") from None
    finally:
        timer.cancel()


class ScriptRunner:
    """Runs scripts against one client under one key prefix, translating connection failures."""

    __slots__ = (
        "_client",
        "_cluster",
        "_direct",
        "_direct_busy",
        "_direct_timeout",
        "_errors",
        "_heads",
        "_heal",
        "_mode",
        "_monitor",
        "_packed",
        "_prefix",
        "_tail",
    )

    def __init__(
        self,
        client: RespClient,
        errors: RespErrorTypes,
        monitor: ConnectionMonitor,
        prefix: str,
        *,
        packed: bool,
        cluster: bool = False,
        heal: Callable[[], None] | None = None,
    ) -> None:
        """Create a runner.

        Args:
            client: The connected client.
            errors: The client library's exception classes.
            monitor: Where connection failures are reported.
            prefix: The key prefix, passed to every script as ``KEYS[1]``.
            packed: Ask for MessagePack replies (the client must return bytes, not decoded ``str``).
            cluster: ``client`` is a cluster client: scripts are loaded on every primary, and every call goes
                through a pipeline (see ``_call_pipelined``).
            heal: Called after every failed call, before the error is raised (the cluster client's repair).
        """
        self._client = client
        self._errors = errors
        self._monitor = monitor
        self._prefix = prefix
        self._packed = packed
        self._mode = "p" if packed else ""
        self._cluster = cluster
        self._heal = heal
        # the direct connection (none on a cluster, or for a client whose pool cannot make one)
        make_connection = getattr(getattr(client, "connection_pool", None), "make_connection", None)
        self._direct: RespConnection | None = None if cluster or make_connection is None else make_connection()
        self._direct_busy = False
        # one timer per exchange (request and reply) instead of the client's one per write and one per read
        self._direct_timeout: float | None = None
        if self._direct is not None:
            self._direct_timeout, self._direct.socket_timeout = self._direct.socket_timeout, None
        # EVALSHA <sha> 1 <prefix> <payload> <mode> in the protocol's encoding (arrays of length-prefixed strings):
        # everything but the payload, packed once
        key, mode = prefix.encode(), self._mode.encode()
        self._heads = {
            script: b"*6\r\n$7\r\nEVALSHA\r\n$40\r\n%s\r\n$1\r\n1\r\n$%d\r\n%s\r\n" % (sha.encode(), len(key), key)
            for script, (_, sha) in _SOURCES.items()
        }
        self._tail = b"\r\n$%d\r\n%s\r\n" % (len(mode), mode)

    async def close(self) -> None:
        """Close the runner's own connection (the client is its owner's to close)."""
        if self._direct is not None:
            await self._direct.disconnect()

    async def load_all(self) -> None:
        """Load every script into the server's script cache (one round trip; on a cluster, into every primary's,
        the scripts side by side)."""
        with self._connection_errors():
            if self._cluster:
                await asyncio.gather(*(self._client.script_load(source) for source, _ in _SOURCES.values()))
            else:
                pipe: RespPipeline = self._client.pipeline(transaction=False)
                for source, _ in _SOURCES.values():
                    pipe.script_load(source)
                await pipe.execute()
        self._monitor.succeeded()

    @contextlib.contextmanager
    def _connection_errors(self) -> Iterator[None]:
        """Raise a connection error of the client as the monitor's ``RespConnectionError``; others as they are."""
        try:
            yield
        except BaseException as exc:
            if self._heal is not None:
                self._heal()
            if not self._errors.is_connection_error(exc):
                raise
            if self._errors.is_pool_timeout(exc):
                raise self._monitor.busy() from exc
            raise self._monitor.failed(exc) from exc

    async def call(self, script: Script, args: Sequence[Arg], prefix: str | None = None) -> Any:
        """Run one script and return its reply; ``prefix`` is the key prefix it runs under (the runner's by default;
        only a cluster runner takes another).

        Raises:
            RespConnectionError: the server could not be reached.
        """
        if self._cluster:
            call: Call = (script, args) if prefix is None else (script, args, prefix)
            return (await self._call_pipelined([call]))[0]
        payload = _pack(args)
        with self._connection_errors():
            try:
                reply = await self._evalsha(script, payload)
            except self._errors.no_script:
                await self.load_all()
                reply = await self._evalsha(script, payload)
        self._monitor.succeeded()
        return _unpack(reply) if self._packed else reply

    async def _evalsha(self, script: Script, payload: bytes) -> Any:
        direct = self._direct
        if direct is None or self._direct_busy:
            return await self._client.evalsha(_SOURCES[script][1], 1, self._prefix, payload, self._mode)
        self._direct_busy = True
        try:
            # the connection drops itself on any failure but an error reply (a timeout, a lost connection, a call
            # cancelled while its reply is on its way), so no reply is ever left for the next call to read
            command = b"%s$%d\r\n%s%s" % (self._heads[script], len(payload), payload, self._tail)
            if self._direct_timeout is None:
                await direct.send_packed_command(command)
                return await direct.read_response()
            return await _exchange(direct, command, self._direct_timeout)
        finally:
            self._direct_busy = False

    async def call_many(self, calls: Sequence[Call]) -> list[Any]:
        """Run several scripts in one pipelined round trip (each atomic on its own) and return their replies.

        Raises:
            RespConnectionError: the server could not be reached.
        """
        if len(calls) == 1 and not self._cluster:
            script, args = calls[0][:2]
            return [await self.call(script, args)]
        return await self._call_pipelined(calls)

    async def _call_pipelined(self, calls: Sequence[Call]) -> list[Any]:
        # On a cluster every call takes this path: a cluster pipeline sends a command once, while valkey-py's cluster
        # client retries a lone command after a connection error (and cannot run pipelines when told not to retry).
        with self._connection_errors():
            replies = await self._pipeline(calls)
            missing = [i for i, reply in enumerate(replies) if isinstance(reply, self._errors.no_script)]
            if missing:
                await self.load_all()
                retried = await self._pipeline([calls[i] for i in missing])
                for i, reply in zip(missing, retried, strict=True):
                    replies[i] = reply
            # a cluster pipeline returns a node's connection failure in place of the replies it lost
            lost = next(
                (r for r in replies if isinstance(r, BaseException) and self._errors.is_connection_error(r)), None
            )
            if lost is not None:
                raise lost
        self._monitor.succeeded()
        for reply in replies:
            if isinstance(reply, BaseException):
                raise reply
        return [_unpack(reply) for reply in replies] if self._packed else replies

    async def _pipeline(self, calls: Sequence[Call]) -> list[Any]:
        pipe: RespPipeline = self._client.pipeline(transaction=False)
        for call in calls:
            sha, payload = _SOURCES[call[0]][1], _pack(call[1])
            if len(call) == 2 or call[2] == self._prefix:
                pipe.execute_command("EVALSHA", sha, 1, self._prefix, payload, self._mode)
            else:  # a queue's prefix; wakeup channels stay under the runner's (ARGV[3])
                pipe.execute_command("EVALSHA", sha, 1, call[2], payload, self._mode, self._prefix)
        return await pipe.execute(raise_on_error=False)
