"""Valkey backend for litestar-queues (valkey-py)."""
