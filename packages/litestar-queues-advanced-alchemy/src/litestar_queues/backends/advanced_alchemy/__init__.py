"""SQL backend for litestar-queues in the application's own SQLAlchemy database, through Advanced Alchemy."""

from litestar_queues.backends.advanced_alchemy.backend import AdvancedAlchemyBackend
from litestar_queues.backends.advanced_alchemy.config import AdvancedAlchemyBackendConfig
from litestar_queues.backends.advanced_alchemy.tables import DEFAULT_TABLE_PREFIX, QueueTables

__all__ = ("DEFAULT_TABLE_PREFIX", "AdvancedAlchemyBackend", "AdvancedAlchemyBackendConfig", "QueueTables")
