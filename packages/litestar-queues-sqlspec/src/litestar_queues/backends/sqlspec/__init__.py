"""SQL backend for litestar-queues through SQLSpec: PostgreSQL, SQLite, MySQL/MariaDB."""
