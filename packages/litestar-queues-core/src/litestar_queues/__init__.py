"""Durable task queues, workers, schedules and realtime job events for Litestar applications."""

__path__ = __import__("pkgutil").extend_path(__path__, __name__)
