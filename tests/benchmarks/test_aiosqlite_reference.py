"""The benchmarks' aiosqlite reference backend (benchmarks/aiosqlite_reference.py) is a fair yardstick: it passes the
conformance suite's core lifecycle (enqueue and dedup, claiming, leases, fencing, retries) on a file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.modules import load_file

from litestar_queues.testing.conformance.claiming import ClaimConformance
from litestar_queues.testing.conformance.dedup import DedupConformance
from litestar_queues.testing.conformance.enqueue import EnqueueConformance
from litestar_queues.testing.conformance.fencing import FencingConformance
from litestar_queues.testing.conformance.leases import LeaseConformance
from litestar_queues.testing.conformance.retries import RetryConformance

reference = load_file("benchmarks/aiosqlite_reference.py")


class TestAiosqliteReference(
    EnqueueConformance, DedupConformance, ClaimConformance, LeaseConformance, FencingConformance, RetryConformance
):
    @pytest.fixture
    def path(self, tmp_path: Path) -> str:
        return str(tmp_path / "queue.db")

    @pytest.fixture
    async def backend(self, path: str) -> AsyncIterator[Any]:
        async with reference.ReferenceConfig(path=path).create_backend() as backend:
            yield backend

    @pytest.fixture
    async def second_backend(self, path: str, backend: Any) -> AsyncIterator[Any]:
        async with reference.ReferenceConfig(path=path).create_backend() as second:
            yield second
