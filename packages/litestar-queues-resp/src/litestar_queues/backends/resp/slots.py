"""One hash slot per queue on a Redis Cluster / Valkey cluster: the per-queue key layout and its routing.

With every key of a prefix in one slot, one shard does all the work. In the per-queue layout each queue's keys (its
records and bodies, pending sets, status and task indexes, lease, expiry and retention indexes, pause flag) start
with the queue's own prefix ``<prefix>{q:<queue>}``, whose hash tag gives the queue a slot of its own; they are the
keys of the one-slot layout, written by the same scripts called with the queue's prefix. What spans queues stays in
the prefix's slot ``{<prefix>}``: the known queues, the holders of dedup keys, the event history, workers and locks.
Every script call touches one slot. How each cross-queue operation is routed is said at its method; in short:

- a record's queue is known from what this backend claimed (in memory, so a worker's hot path pays nothing), else
  found by asking every known queue's slot (one pipelined call per node); there is no global id index to maintain;
- a dedup key is reserved in the prefix's slot before its record is written in the queue's slot; finishing does not
  release it (another slot): the next enqueue of the key finds the holder ended and takes the key over, and the
  maintenance releases ended holders so the hash does not grow;
- a claim over several queues reads each queue's due order, merges it, and claims the chosen records per queue.

Single servers and prefixes created before (or with a hash tag of their own) keep the one-slot layout; the layout is
decided once per prefix and stored (``{<prefix>}:layout``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

from litestar_queues.backends.resp.batching import GroupCommit
from litestar_queues.backends.resp.codec import decode_optional_record, decode_record
from litestar_queues.backends.resp.scripts import Call, Script, ScriptRunner
from litestar_queues.records import EnqueueOutcome, TaskRecord

__all__ = ("QueueSlots", "glob_escaped")

_ACTIVE = frozenset({"pending", "running"})
_ENDED = frozenset({"completed", "failed", "cancelled", "expired"})
_RESERVATION_GRACE_US = 10_000_000
"""How long a dedup-key reservation whose record is not written yet counts as being written (server clock); after
that the enqueue that made it is taken for dead and the key is free."""
_REMEMBERED = 100_000
"""Most record → queue entries kept in memory (the oldest go first)."""
_FINISH_BATCH = 200

# positions in a record row (codec.decode_record: the state fields in read_record's order, the body, the id)
_STATUS, _QUEUE, _KEY, _LEASE_EXPIRES = 0, 1, 4, 11


def _id(row: Sequence[Any]) -> str:
    return str(row[-1])


def glob_escaped(text: str) -> str:
    """``text`` as a literal in a ``SCAN MATCH`` pattern."""
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)


def _number(value: Any) -> float:
    """A stored time as a number; one that is not (a corrupted hash) sorts last."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("inf")


class QueueSlots:
    """Routes the backend's calls to the slots of the queues they concern (per-queue cluster layout)."""

    __slots__ = ("_finishes", "_key_prefix", "_known", "_queue_of", "_runner")

    def __init__(self, runner: ScriptRunner, key_prefix: str) -> None:
        """Create the router.

        Args:
            runner: The backend's script runner (a cluster runner, whose own prefix is the prefix's slot).
            key_prefix: The configured prefix, without a hash tag of its own.
        """
        self._runner = runner
        self._key_prefix = key_prefix
        self._known: set[str] = set()
        self._queue_of: dict[str, str] = {}
        self._finishes = GroupCommit(self._finish_batch, max_batch=_FINISH_BATCH)

    def queue_prefix(self, queue: str) -> str:
        """The prefix of every key of ``queue``: its hash tag is the queue's own."""
        return f"{self._key_prefix}{{q:{queue}}}"

    @property
    def queue_key_pattern(self) -> str:
        """A ``SCAN`` pattern matching the keys of every queue (for ``purge``)."""
        return glob_escaped(self._key_prefix + "{q:") + "*"

    # -- what records and queues there are ---------------------------------------------------------

    def _remember(self, rows: Iterable[Any]) -> None:
        self._remember_queues((_id(row), str(row[_QUEUE])) for row in rows if row)

    def _remember_queues(self, pairs: Iterable[tuple[str, str]]) -> None:
        known = self._queue_of
        known.update(pairs)
        while len(known) > _REMEMBERED:
            del known[next(iter(known))]

    async def _register(self, queues: Iterable[str]) -> None:
        """Add queues to the known queues (before anything of theirs is written, so every visit finds them)."""
        fresh = sorted(set(queues) - self._known)
        if fresh:
            await self._runner.call(Script.ADD_QUEUES, fresh)
            self._known.update(fresh)

    async def queues(self) -> list[str]:
        """Every queue that ever held a record or was paused."""
        return sorted(str(name) for name in await self._runner.call(Script.QUEUE_NAMES, []))

    async def _find(self, record_ids: Sequence[str]) -> dict[str, Any]:
        """The rows of those of ``record_ids`` that exist, from every known queue's slot (one pipelined call)."""
        names = await self.queues()
        replies = await self._fan([(Script.GET, list(record_ids), self.queue_prefix(name)) for name in names])
        found = {_id(row): row for reply in replies for row in reply if row}
        self._remember(found.values())
        return found

    async def _queues_of(self, record_ids: Iterable[str]) -> dict[str, str]:
        """The queue of each existing record: remembered, else found."""
        ids = list(dict.fromkeys(record_ids))
        queues = {record_id: self._queue_of[record_id] for record_id in ids if record_id in self._queue_of}
        missing = [record_id for record_id in ids if record_id not in queues]
        if missing:
            queues.update({record_id: str(row[_QUEUE]) for record_id, row in (await self._find(missing)).items()})
        return queues

    async def _queue(self, record_id: str) -> str | None:
        return (await self._queues_of([record_id])).get(record_id)

    async def record_prefix(self, record_id: str) -> str | None:
        """The prefix of an existing record's keys (for tests that reach into them)."""
        queue = await self._queue(record_id)
        return None if queue is None else self.queue_prefix(queue)

    async def _by_queue(self, script: Script, record_id: str, args: list[Any]) -> Any:
        """Run a script of one record in its queue's slot; ``False`` (no row) when the record does not exist."""
        queue = await self._queue(record_id)
        if queue is None:
            return False
        return await self._runner.call(script, args, self.queue_prefix(queue))

    async def _fan(self, calls: Sequence[Call]) -> list[Any]:
        """Run calls in one pipeline (the cluster client sends each node its share); none for no calls."""
        return await self._runner.call_many(calls) if calls else []

    # -- writing work ------------------------------------------------------------------------------

    async def enqueue(
        self, records: Sequence[TaskRecord], inserts: Sequence[list[str]], chunk_size: int
    ) -> list[EnqueueOutcome]:
        """Insert records with id and key dedup: keys reserved first in the prefix's slot, then one script per queue
        (and chunk), pipelined. Ids are unique within a queue; the core's ids (UUIDv7) are unique anyway, but a
        caller-chosen id reused on another queue makes a second record."""
        await self._register(record.queue for record in records)
        replies: list[Any] = [None] * len(records)
        first_with_key: dict[str, int] = {}
        later: dict[int, int] = {}
        reserving: list[int] = []
        for index, record in enumerate(records):
            if record.key is not None:
                if record.key in first_with_key:
                    later[index] = first_with_key[record.key]  # resolves as the call's first record with the key
                else:
                    first_with_key[record.key] = index
                    reserving.append(index)
        if reserving:
            holders = await self._reserve([(str(records[i].key), records[i].queue, records[i].id) for i in reserving])
            for index, holder in zip(reserving, holders, strict=True):
                replies[index] = holder
        by_queue: dict[str, list[int]] = {}
        for index, record in enumerate(records):
            if replies[index] is None and index not in later:
                by_queue.setdefault(record.queue, []).append(index)
        calls: list[Call] = []
        parts: list[list[int]] = []
        for queue, indexes in by_queue.items():
            for start in range(0, len(indexes), chunk_size):
                part = indexes[start : start + chunk_size]
                calls.append((Script.ENQUEUE, [inserts[i] for i in part], self.queue_prefix(queue)))
                parts.append(part)
        if calls:
            for part, reply in zip(parts, await self._fan(calls), strict=True):
                for index, value in zip(part, reply, strict=True):
                    replies[index] = value
        outcomes = [
            EnqueueOutcome(decode_record(reply), False) if isinstance(reply, list) else EnqueueOutcome(record, True)
            for record, reply in zip(records, replies, strict=True)
            if reply is not None
        ]
        self._remember_queues((outcome.record.id, outcome.record.queue) for outcome in outcomes)
        if not later:
            return outcomes
        done = iter(outcomes)
        result: list[EnqueueOutcome] = []
        for index in range(len(records)):
            if index in later:
                first = result[later[index]]
                result.append(EnqueueOutcome(first.record, False))
            else:
                result.append(next(done))
        return result

    async def _reserve(self, claims: list[tuple[str, str, str]]) -> list[Any]:
        """Reserve dedup keys (key, queue, id) in the prefix's slot; per claim ``None`` when the key is the record's,
        else the row of the active record holding it.

        A holder whose record ended is taken over (compare-and-set); one whose record is not there yet is an enqueue
        between its two steps, waited for until the reservation is ``_RESERVATION_GRACE_US`` old on the server's
        clock (then its enqueue is taken for dead).
        """
        results: list[Any] = [None] * len(claims)
        waiting = list(range(len(claims)))
        delay = 0.001
        while waiting:
            answers = await self._runner.call(
                Script.RESERVE_KEYS, [value for index in waiting for value in claims[index]]
            )
            conflicts = [(index, answer) for index, answer in zip(waiting, answers, strict=True) if answer != 1]
            if not conflicts:
                break
            rows = await self._rows((str(answer[0]), str(answer[1])) for _, answer in conflicts)
            retry: list[int] = []
            takes: list[tuple[int, str]] = []
            being_written = False
            for index, (_, holder_id, age) in conflicts:
                row = rows.get(str(holder_id))
                if row is not None and row[_STATUS] in _ACTIVE:
                    results[index] = row
                elif row is None and int(age) < _RESERVATION_GRACE_US:
                    retry.append(index)
                    being_written = True
                else:
                    takes.append((index, str(holder_id)))
            if takes:
                taken = await self._fan(
                    [
                        (Script.TAKE_KEY, [claims[index][0], holder, claims[index][1], claims[index][2]])
                        for index, holder in takes
                    ]
                )
                retry += [index for (index, _), ok in zip(takes, taken, strict=True) if not ok]
            if being_written:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.05)
            waiting = sorted(retry)
        return results

    async def _rows(self, located: Iterable[tuple[str, str]]) -> dict[str, Any]:
        """The rows of records whose queues are known: (queue, id) pairs; missing records are left out."""
        by_queue: dict[str, list[str]] = {}
        for queue, record_id in located:
            by_queue.setdefault(queue, []).append(record_id)
        names = list(by_queue)
        replies = await self._fan([(Script.GET, by_queue[name], self.queue_prefix(name)) for name in names])
        return {_id(row): row for reply in replies for row in reply if row}

    # -- claiming and running ----------------------------------------------------------------------

    async def claim(self, queues: Sequence[str], args: list[Any]) -> list[Any]:
        """Claim over ``queues`` (``args``: owner, limit, now, lease until). One queue: its claim script. Several: a
        read of each queue's due order (pipelined), merged by priority, ``scheduled_at`` and id, then the chosen
        records claimed per queue (pipelined; one taken meanwhile is skipped, so a claim may come back short)."""
        owner, limit, now, lease = args
        names = list(dict.fromkeys(queues))
        if len(names) == 1:
            rows: list[Any] = await self._runner.call(
                Script.CLAIM, [owner, limit, now, lease, names[0]], self.queue_prefix(names[0])
            )
        else:
            peeks = await self._fan([(Script.PEEK, [limit, now, name], self.queue_prefix(name)) for name in names])
            due = sorted(
                (-int(flat[i + 1]), int(flat[i + 2]), str(flat[i]).encode(), str(flat[i]), name)
                for name, flat in zip(names, peeks, strict=True)
                for i in range(0, len(flat), 3)
            )[:limit]
            chosen: dict[str, list[str]] = {}
            for *_, record_id, name in due:
                chosen.setdefault(name, []).append(record_id)
            if not chosen:
                return []
            replies = await self._fan(
                [
                    (Script.CLAIM_IDS, [owner, now, lease, name, *ids], self.queue_prefix(name))
                    for name, ids in chosen.items()
                ]
            )
            order = {entry[3]: position for position, entry in enumerate(due)}
            rows = sorted((row for reply in replies for row in reply), key=lambda row: order[_id(row)])
        self._remember(rows)
        return rows

    async def claim_record(self, record_id: str, args: list[Any]) -> Any:
        row = await self._by_queue(Script.CLAIM_RECORD, record_id, args)
        self._remember([row])
        return row

    async def renew(self, lease_until: str, fences: list[tuple[str, str, str]]) -> list[str]:
        """Per fence (id, owner, token): its lease state, renewed in each record's queue slot; 'l' for a record that
        is gone."""
        queues = await self._queues_of(record_id for record_id, _, _ in fences)
        by_queue: dict[str, list[int]] = {}
        for index, (record_id, _, _) in enumerate(fences):
            if record_id in queues:
                by_queue.setdefault(queues[record_id], []).append(index)
        states = ["l"] * len(fences)
        names = list(by_queue)
        replies = await self._fan(
            [
                (Script.RENEW, [lease_until, *(v for i in by_queue[name] for v in fences[i])], self.queue_prefix(name))
                for name in names
            ]
        )
        for name, reply in zip(names, replies, strict=True):
            for index, state in zip(by_queue[name], reply, strict=True):
                states[index] = str(state)
        return states

    async def save_progress(self, updates: list[list[str]]) -> None:
        """Store progress updates (id, owner, token, progress) in their records' queue slots, in order per record."""
        queues = await self._queues_of(update[0] for update in updates)
        by_queue: dict[str, list[list[str]]] = {}
        for update in updates:
            if update[0] in queues:
                by_queue.setdefault(queues[update[0]], []).append(update)
        if by_queue:
            await self._fan(
                [(Script.SAVE_PROGRESS, batch, self.queue_prefix(name)) for name, batch in by_queue.items()]
            )

    async def transfer(self, record_id: str, args: list[str]) -> Any:
        return await self._by_queue(Script.TRANSFER, record_id, args)

    async def finish(self, args: list[str], queue: str | None) -> Any:
        """End an attempt in its record's queue slot (``queue``: from the claimed record, if the caller has it).
        Concurrent finishes share one pipeline: one script call per queue."""
        record_id = args[0]
        if queue is None:
            queue = await self._queue(record_id)
            if queue is None:
                return False
        row = await self._finishes.submit((queue, args))
        if row and row[_STATUS] in _ENDED:
            self._queue_of.pop(record_id, None)
        return row

    async def _finish_batch(self, batch: list[tuple[str, list[str]]]) -> list[Any]:
        by_queue: dict[str, list[int]] = {}
        for index, (queue, _) in enumerate(batch):
            by_queue.setdefault(queue, []).append(index)
        names = list(by_queue)
        replies = await self._fan(
            [(Script.FINISH, [batch[i][1] for i in by_queue[name]], self.queue_prefix(name)) for name in names]
        )
        rows: list[Any] = [None] * len(batch)
        for name, reply in zip(names, replies, strict=True):
            for index, row in zip(by_queue[name], reply, strict=True):
                rows[index] = row
        return rows

    async def expired_leases(self, now: str, limit: int) -> list[Any]:
        """Up to ``limit`` running records whose lease expired, soonest expiry first, from every queue's slot."""
        names = await self.queues()
        replies = await self._fan([(Script.EXPIRED_LEASES, [now, limit], self.queue_prefix(name)) for name in names])
        rows = sorted((row for reply in replies for row in reply), key=lambda row: _number(row[_LEASE_EXPIRES]))[:limit]
        self._remember(rows)
        return rows

    # -- control -----------------------------------------------------------------------------------

    async def cancel(self, record_id: str, now: str) -> Any:
        return await self._by_queue(Script.CANCEL, record_id, [record_id, now])

    async def requeue(self, record_id: str, now: str) -> Any:
        """Manual retry in the record's queue slot; a record with a dedup key first takes the key back in the
        prefix's slot (refused with ``['dup', holder id]`` while another active record holds it)."""
        found = await self._find([record_id])
        row = found.get(record_id)
        if row is None:
            return ["ok", False]
        queue, key = str(row[_QUEUE]), row[_KEY]
        if key and row[_STATUS] in _ENDED - {"completed"}:
            (holder,) = await self._reserve([(str(key), queue, record_id)])
            if holder is not None:
                return ["dup", _id(holder)]
        return await self._runner.call(Script.REQUEUE, [record_id, now], self.queue_prefix(queue))

    async def _each_in_turn(self, script: Script, moment: str, limit: int) -> int:
        """Run a limited maintenance script over the queues in turn, each getting what the earlier left of ``limit``."""
        done = 0
        for name in await self.queues():
            if done >= limit:
                break
            done += int(await self._runner.call(script, [moment, limit - done], self.queue_prefix(name)))
        return done

    async def expire(self, now: str, limit: int) -> int:
        """Expire pending records past ``expires_at``, queue by queue; then one step of the dedup-key sweep (the
        maintenance runs ``expire`` every round)."""
        expired = await self._each_in_turn(Script.EXPIRE, now, limit)
        await self._sweep_keys(limit)
        return expired

    async def prune(self, before: str, limit: int) -> int:
        return await self._each_in_turn(Script.PRUNE, before, limit)

    async def _sweep_keys(self, count: int) -> None:
        """Release the dedup keys, of the next ``count`` or so holders, whose records ended (or never came: a
        reservation older than the grace without a record)."""
        reply = await self._runner.call(Script.SWEEP_KEYS, [count])
        now = int(reply[0])
        holders = [
            (str(reply[i]), str(reply[i + 1]), str(reply[i + 2]), str(reply[i + 3])) for i in range(1, len(reply), 4)
        ]
        if not holders:
            return
        rows = await self._rows((queue, record_id) for _, queue, record_id, _ in holders)
        released: list[str] = []
        for key, _, record_id, at in holders:
            row = rows.get(record_id)
            if row[_STATUS] in _ENDED if row is not None else now - int(at) > _RESERVATION_GRACE_US:
                released += (key, record_id, at)
        if released:
            await self._runner.call(Script.RELEASE_KEYS, released)

    # -- reading -----------------------------------------------------------------------------------

    async def get(self, record_id: str) -> Any:
        """The record's row (``False`` when missing)."""
        queue = self._queue_of.get(record_id)
        if queue is not None:
            (row,) = await self._runner.call(Script.GET, [record_id], self.queue_prefix(queue))
            if row:
                return row
        return (await self._find([record_id])).get(record_id, False)

    async def status(self, record_id: str) -> Any:
        return await self._by_queue(Script.STATUS, record_id, [record_id])

    async def get_by_key(self, key: str) -> Any:
        """Every queue's answer (its active holder of ``key``, else its latest record with it), merged: an active
        one, else the most recently created."""
        names = await self.queues()
        rows = [
            row
            for row in await self._fan([(Script.GET_BY_KEY, [key], self.queue_prefix(name)) for name in names])
            if row
        ]
        active = [row for row in rows if row[_STATUS] in _ACTIVE]
        if active:
            return active[0]
        records = [(decode_optional_record(row), row) for row in rows]
        latest = max(
            ((record.created_at, record.id, row) for record, row in records if record is not None), default=None
        )
        return False if latest is None else latest[2]

    async def query(self, args: list[Any], queue: str | None) -> list[Any]:
        """A page of records newest first (``args``: the query script's, ``queue`` the filter's queue). Without a
        queue every queue's page is read from the same cursor and the pages merged by id; a queue whose page stopped
        early (its scan budget) bounds the merged page, so nothing below its cursor is skipped."""
        if queue is not None:
            return list(await self._runner.call(Script.QUERY, args, self.queue_prefix(queue)))
        limit = int(args[3])
        names = await self.queues()
        replies = await self._fan(
            [(Script.QUERY, [args[0], "=" + name, *args[2:]], self.queue_prefix(name)) for name in names]
        )
        floor: bytes | None = None
        rows: list[Any] = []
        for reply in replies:
            if reply[0]:
                cursor = str(reply[0]).encode()
                floor = cursor if floor is None else max(floor, cursor)
            rows += reply[1:]
        rows.sort(key=lambda row: _id(row).encode(), reverse=True)
        if floor is not None:
            rows = [row for row in rows if _id(row).encode() >= floor]
        page = rows[:limit]
        next_cursor: Any = False
        if len(rows) > limit or floor is not None:
            next_cursor = _id(page[-1]) if page else floor.decode() if floor is not None else False
        return [next_cursor, *page]

    async def statistics(self, now: str, queue: str | None) -> list[Any]:
        """Counts and the oldest due pending record: one queue's slot, or every queue's summed."""
        if queue is not None:
            return list(await self._runner.call(Script.STATISTICS, [now, "=" + queue], self.queue_prefix(queue)))
        names = await self.queues()
        replies = await self._fan([(Script.STATISTICS, [now, "=" + name], self.queue_prefix(name)) for name in names])
        totals: dict[str, int] = {}
        oldest: int | None = None
        for reply in replies:
            if reply[0]:
                oldest = int(reply[0]) if oldest is None else min(oldest, int(reply[0]))
            for status, count in zip(reply[1::2], reply[2::2], strict=True):
                totals[str(status)] = totals.get(str(status), 0) + int(count)
        return [False if oldest is None else str(oldest), *(v for item in totals.items() for v in item)]

    # -- pausing queues ----------------------------------------------------------------------------

    async def pause_queue(self, queue: str, now: str) -> Any:
        await self._register([queue])
        return await self._runner.call(Script.PAUSE_QUEUE, [queue, now], self.queue_prefix(queue))

    async def resume_queue(self, queue: str) -> Any:
        return await self._runner.call(Script.RESUME_QUEUE, [queue], self.queue_prefix(queue))

    async def paused_queues(self) -> list[Any]:
        names = await self.queues()
        replies = await self._fan([(Script.PAUSED_QUEUES, [], self.queue_prefix(name)) for name in names])
        return [value for reply in replies for value in reply]
