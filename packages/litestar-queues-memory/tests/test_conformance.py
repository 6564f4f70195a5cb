from collections.abc import Awaitable, Callable

import pytest

from litestar_queues.backends.memory import MemoryBackend, MemoryBackendConfig
from litestar_queues.testing import BackendConformance


class TestMemoryBackend(BackendConformance):
    @pytest.fixture
    async def backend(self):
        async with MemoryBackend(MemoryBackendConfig()) as backend:
            yield backend

    @pytest.fixture
    def limit_history_scan(self, backend: MemoryBackend) -> Callable[[int], None]:
        return lambda window: setattr(backend, "event_scan_window", window)

    @pytest.fixture
    def corrupt_event(self, backend: MemoryBackend) -> Callable[[str], Awaitable[None]]:
        async def corrupt(event_id: str) -> None:
            backend._history._events[event_id].data = b"[not a stored event"

        return corrupt
