"""The application package of the plugin, CLI and realtime examples: ``app.tasks`` and ``app.asgi``."""
