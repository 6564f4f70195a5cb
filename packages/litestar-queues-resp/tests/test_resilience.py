"""Script cache loss, server restarts and dropped connections."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from typing import Any

import pytest

from litestar_queues.backends.resp import RespBackend, RespBackendConfig, RespConnectionError
from litestar_queues.records import Outcome, TaskStatus
from litestar_queues.testing.conformance.support import QUEUE, make_record

pytestmark = pytest.mark.anyio


async def script_flush(backend: RespBackend) -> None:
    client: Any = backend._client
    await client.script_flush()


async def test_scripts_are_reloaded_after_script_flush(
    config_class: type[RespBackendConfig], throwaway: Any, now: datetime
) -> None:
    # A private server: SCRIPT FLUSH on the shared one would pull scripts from under concurrent test sessions.
    config = config_class(url=throwaway.url, key_prefix="flush", enqueue_chunk_size=3)
    async with config.create_backend() as backend:
        await script_flush(backend)
        outcomes = await backend.enqueue([make_record(now) for _ in range(10)])  # pipelined chunks
        assert all(outcome.created for outcome in outcomes)
        await script_flush(backend)
        claimed = await backend.claim([QUEUE], owner="w", limit=10, now=now, lease_seconds=30)
        assert len(claimed) == 10
        await script_flush(backend)
        assert await backend.finish(claimed[0].lease, Outcome(status=TaskStatus.COMPLETED), now=now) is not None


async def test_unreachable_server_fails_fast_on_open(config_class: type[RespBackendConfig]) -> None:
    config = config_class(url="redis://127.0.0.1:1/0", key_prefix="unused")
    started = time.perf_counter()
    with pytest.raises(RespConnectionError, match="unreachable"):
        async with config.create_backend():
            pass  # pragma: no cover
    assert time.perf_counter() - started < 2


async def test_server_restart_mid_run(
    config_class: type[RespBackendConfig], throwaway: Any, now: datetime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="litestar_queues.backends.resp")
    config = config_class(url=throwaway.url, key_prefix="restart")
    async with config.create_backend() as backend:
        records = [make_record(now) for _ in range(20)]
        await backend.enqueue(records)
        claimed = await backend.claim([QUEUE], owner="w", limit=5, now=now, lease_seconds=300)
        await backend.wait_for_work([QUEUE], timeout=1)  # the listener is up

        throwaway.kill()
        for _ in range(20):
            started = time.perf_counter()
            with pytest.raises(RespConnectionError):
                await backend.claim([QUEUE], owner="w", limit=5, now=now, lease_seconds=300)
            assert time.perf_counter() - started < 1
        waiting_started = time.perf_counter()
        await backend.wait_for_work([QUEUE], timeout=0.3)  # outage: behaves like a poll interval
        assert time.perf_counter() - waiting_started < 1

        throwaway.start()
        for _ in range(3):  # a pooled connection may still report the old one's death once
            try:
                survivors = await backend.claim([QUEUE], owner="w", limit=100, now=now, lease_seconds=300)
                break
            except RespConnectionError:
                await asyncio.sleep(0.05)
        else:
            pytest.fail("the backend did not recover after the server came back")
        # nothing lost, nothing handed out twice: the 5 claimed before keep their leases
        assert {r.id for r in survivors} | {r.id for r in claimed} == {r.id for r in records}
        assert not {r.id for r in survivors} & {r.id for r in claimed}
        for done in claimed:
            assert await backend.finish(done.lease, Outcome(status=TaskStatus.COMPLETED), now=now) is not None

        # the wakeup listener reconnects by itself
        deadline = time.monotonic() + 10
        while True:
            await backend.wait_for_work([QUEUE], timeout=0.2)  # consumes the re-subscription hint
            waiting = asyncio.ensure_future(backend.wait_for_work([QUEUE], timeout=5))
            await asyncio.sleep(0.05)
            await backend.enqueue([make_record(now)])
            started = time.perf_counter()
            await waiting
            if time.perf_counter() - started < 0.5:
                break
            assert time.monotonic() < deadline, "no push wakeups after the restart"
        await backend.purge()

    lost = [r for r in caplog.records if "connection lost" in r.getMessage()]
    restored = [r for r in caplog.records if "connection restored" in r.getMessage()]
    assert len(lost) == 1, [r.getMessage() for r in lost]
    assert len(restored) == 1, [r.getMessage() for r in restored]
    assert all(r.exc_info is None for r in caplog.records)


async def test_a_busy_service_waits_for_a_connection(open_backend: Any, now: datetime) -> None:
    """More concurrent calls than the pool has connections wait for one: a busy service is not an outage."""
    async with open_backend() as backend:
        record = make_record(now)
        await backend.enqueue([record])
        found = await asyncio.gather(*(backend.get(record.id) for _ in range(250)))
        assert all(item is not None and item.id == record.id for item in found)


async def test_the_pool_size_is_configurable(
    config_class: type[RespBackendConfig], throwaway: Any, now: datetime
) -> None:
    config = config_class(url=throwaway.url, key_prefix="pool", max_connections=4, pool_timeout=30)
    async with config.create_backend() as backend:
        record = make_record(now)
        await backend.enqueue([record])
        found = await asyncio.gather(*(backend.get(record.id) for _ in range(100)))
        assert all(item is not None for item in found)
        client: Any = backend._client
        info = await client.info("clients")
        # the calls shared the pool's four connections; the fifth is the backend's own for lone calls
        assert info["connected_clients"] <= 5, info


async def test_a_pool_wait_is_bounded(config_class: type[RespBackendConfig], throwaway: Any, now: datetime) -> None:
    config = config_class(url=throwaway.url, key_prefix="pool", max_connections=2, pool_timeout=0.2)
    async with config.create_backend() as backend:
        client: Any = backend._client
        # two blocking pops hold both connections
        held = [asyncio.ensure_future(client.execute_command("BLPOP", f"pool:never:{n}", 2)) for n in range(2)]
        while (await _clients(throwaway)) < 2 + 1:  # the pops' connections, and this probe's
            await asyncio.sleep(0.01)
        started = time.perf_counter()
        # one call takes the backend's own connection, the other waits for the pool, and not for long
        found, failed = await asyncio.gather(backend.get("missing"), backend.get("missing"), return_exceptions=True)
        assert found is None
        assert isinstance(failed, RespConnectionError) and "no free connection" in str(failed), failed
        assert time.perf_counter() - started < 1.5
        await asyncio.gather(*held)
        assert await backend.get("missing") is None  # a connection came free: calls go on


async def _clients(server: Any) -> int:
    """Connections the server has, counting the one that asks."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"INFO clients\r\n")
    await writer.drain()
    data = await reader.read(4096)
    writer.close()
    return int(data.split(b"connected_clients:")[1].split(b"\r\n")[0])


async def test_a_cancelled_call_leaves_no_reply_behind(
    config_class: type[RespBackendConfig], throwaway: Any, now: datetime
) -> None:
    """A lone call goes over the backend's own connection; cancelled while its reply is on its way, that reply
    must not reach the next call (the connection is dropped and made again)."""
    config = config_class(url=throwaway.url, key_prefix="cancel")
    async with config.create_backend() as backend:
        first, second = make_record(now), make_record(now)
        await backend.enqueue([first, second])
        client: Any = backend._client
        await client.execute_command("CLIENT", "PAUSE", "300", "ALL")  # the server holds every reply a while
        call = asyncio.ensure_future(backend.get(first.id))
        await asyncio.sleep(0.1)
        assert not call.done()
        call.cancel()
        found = await backend.get(second.id)
        assert found is not None and found.id == second.id
        found = await backend.get(first.id)
        assert found is not None and found.id == first.id


async def test_a_lone_call_without_a_reply_times_out_and_the_next_call_gets_its_own(
    config_class: type[RespBackendConfig], throwaway: Any, now: datetime
) -> None:
    """A lone call over the backend's own connection runs under one timer (``socket_timeout``) for its request and
    reply: a server that does not answer in time fails the call as a lost connection, the connection is dropped,
    and the next call reads its own reply, not the late one."""
    config = config_class(url=throwaway.url, key_prefix="timeout", socket_timeout=0.2)
    async with config.create_backend() as backend:
        first, second = make_record(now), make_record(now)
        await backend.enqueue([first, second])
        client: Any = backend._client
        await client.execute_command("CLIENT", "PAUSE", "1500", "ALL")  # longer than the timeout
        with pytest.raises(RespConnectionError):
            await backend.get(first.id)
        unpaused = type(client).from_url(throwaway.url)  # no timeout: returns once the pause is over
        try:
            await unpaused.ping()
        finally:
            await unpaused.aclose()
        found = await backend.get(second.id)
        assert found is not None and found.id == second.id
