"""Shared Redis-protocol storage logic (Lua scripts, key layout) for the Redis and Valkey backends of litestar-queues."""
