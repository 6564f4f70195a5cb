"""SQL backend for litestar-queues through Advanced Alchemy (SQLAlchemy)."""
