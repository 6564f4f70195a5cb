"""Dedup keys: which active record holds a key, and every record that ever carried it."""

from __future__ import annotations

from litestar_queues.records import TaskRecord

__all__ = ("KeyIndex",)


class KeyIndex:
    """Holders of dedup keys (at most one active record per key) and the records carrying each key."""

    __slots__ = ("_carriers", "holders")

    def __init__(self) -> None:
        """Create an empty index."""
        self.holders: dict[str, str] = {}
        """Key to the id of the active record holding it."""
        self._carriers: dict[str, set[str]] = {}

    def add(self, record: TaskRecord) -> None:
        """Remember that ``record`` (newly stored, with a key) carries its key."""
        if record.key is not None:
            self._carriers.setdefault(record.key, set()).add(record.id)

    def discard(self, record: TaskRecord) -> None:
        """Forget ``record`` (being deleted) as a carrier and, if it holds its key, as the holder."""
        key = record.key
        if key is None:
            return
        self.release(record)
        carriers = self._carriers.get(key)
        if carriers is not None:
            carriers.discard(record.id)
            if not carriers:
                del self._carriers[key]

    def hold(self, record: TaskRecord) -> None:
        """Make ``record`` (becoming active) the holder of its key."""
        if record.key is not None:
            self.holders[record.key] = record.id

    def release(self, record: TaskRecord) -> None:
        """Free the key of ``record`` (becoming terminal) if it holds it."""
        if record.key is not None and self.holders.get(record.key) == record.id:
            del self.holders[record.key]

    def latest(self, key: str, records: dict[str, TaskRecord]) -> TaskRecord | None:
        """Return the most recently created stored record carrying ``key`` (by ``created_at``, then id)."""
        carriers = self._carriers.get(key)
        if not carriers:
            return None
        return max((records[record_id] for record_id in carriers), key=lambda record: (record.created_at, record.id))
