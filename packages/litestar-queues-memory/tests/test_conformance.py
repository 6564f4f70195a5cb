import pytest

from litestar_queues.backends.memory import MemoryBackend, MemoryBackendConfig
from litestar_queues.testing import BackendConformance


class TestMemoryBackend(BackendConformance):
    @pytest.fixture
    async def backend(self):
        async with MemoryBackend(MemoryBackendConfig()) as backend:
            yield backend
