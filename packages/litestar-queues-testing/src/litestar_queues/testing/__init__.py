"""Conformance test suite and test helpers for litestar-queues backends."""
