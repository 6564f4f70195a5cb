"""The docs' example backend (docs/examples/sqlite_backend.py) passes the whole conformance suite, across two
connections to one file and with a corrupted row."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from tests.modules import load_file

from litestar_queues.testing import BackendConformance

example = load_file("docs/examples/sqlite_backend.py")


class TestExampleSQLiteBackend(BackendConformance):
    @pytest.fixture
    def path(self, tmp_path: Path) -> str:
        return str(tmp_path / "queue.db")

    @pytest.fixture
    async def backend(self, path: str) -> AsyncIterator[Any]:
        async with example.SQLiteBackendConfig(path=path).create_backend() as backend:
            yield backend

    @pytest.fixture
    async def second_backend(self, path: str, backend: Any) -> AsyncIterator[Any]:
        async with example.SQLiteBackend(example.SQLiteBackendConfig(path=path)) as second:
            yield second

    @pytest.fixture
    def corrupt_record(self, path: str, backend: Any) -> Callable[[str], Awaitable[str]]:
        async def corrupt(record_id: str) -> str:
            with sqlite3.connect(path) as db:
                db.execute("UPDATE tasks SET args = 'not json' WHERE id = ?", (record_id,))
            return "args"

        return corrupt
