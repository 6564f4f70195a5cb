"""Runnable example applications (``uvicorn examples.app:app``)."""
