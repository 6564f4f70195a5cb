"""Litestar plugin for litestar-queues: QueuePlugin, QueueService dependency, CLI, websocket/SSE event streaming."""
