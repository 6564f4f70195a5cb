"""Redis backend for litestar-queues (redis-py)."""
