"""In-process memory backend for litestar-queues (the default and the reference implementation)."""
