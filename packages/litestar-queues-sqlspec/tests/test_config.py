"""Configuration, URLs and names: no database needed."""

from __future__ import annotations

import pytest
from sqlspec.adapters.aiosqlite import AiosqliteConfig
from sqlspec.adapters.asyncmy import AsyncmyConfig
from sqlspec.adapters.asyncpg import AsyncpgConfig
from sqlspec.adapters.psycopg import PsycopgAsyncConfig, PsycopgSyncConfig
from sqlspec.adapters.sqlite import SqliteConfig

from litestar_queues.backend import BackendConfig, Capability
from litestar_queues.backends.sqlspec import SQLSpecBackend, SQLSpecBackendConfig, migration_extension_config
from litestar_queues.backends.sqlspec.names import TableNames, validate_table_prefix
from litestar_queues.backends.sqlspec.urls import config_from_url
from litestar_queues.errors import ConfigurationError


@pytest.mark.parametrize(
    ("url", "config_type"),
    [
        ("postgresql://u@h:5432/db", AsyncpgConfig),
        ("postgres://u@h/db", AsyncpgConfig),
        ("postgresql+asyncpg://u@h/db", AsyncpgConfig),
        ("postgresql+psycopg://u@h/db", PsycopgAsyncConfig),
        ("sqlite:///jobs.db", AiosqliteConfig),
        ("sqlite+aiosqlite:////tmp/jobs.db", AiosqliteConfig),
        ("mysql://u:p@h:3306/db", AsyncmyConfig),
        ("mariadb://u@h/db", AsyncmyConfig),
        ("mysql+asyncmy://u@h/db", AsyncmyConfig),
    ],
)
def test_urls_map_to_sqlspec_configs(url: str, config_type: type) -> None:
    assert isinstance(config_from_url(url), config_type)


def test_sqlite_url_paths_follow_the_usual_slash_convention() -> None:
    assert config_from_url("sqlite:///jobs.db").connection_config["database"] == "jobs.db"
    assert config_from_url("sqlite:////var/lib/jobs.db").connection_config["database"] == "/var/lib/jobs.db"


def test_postgres_urls_keep_the_dsn_and_psycopg_runs_in_autocommit() -> None:
    assert config_from_url("postgresql://u@h:1/db").connection_config["dsn"] == "postgresql://u@h:1/db"
    psycopg = config_from_url("postgresql+psycopg://u@h:1/db")
    assert psycopg.connection_config["conninfo"] == "postgresql://u@h:1/db"
    assert psycopg.connection_config["autocommit"] is True


def test_mysql_urls_are_split_and_unquoted() -> None:
    config = config_from_url("mysql://us%40er:p%3Ass@db.example:3307/queues", {"maxsize": 4})
    connection = config.connection_config
    assert (connection["host"], connection["port"], connection["user"]) == ("db.example", 3307, "us@er")
    assert (connection["password"], connection["database"]) == ("p:ss", "queues")
    assert connection["autocommit"] is True
    assert connection["maxsize"] == 4


@pytest.mark.parametrize(
    "url",
    ["jobs.db", "redis://h", "sqlite://jobs.db", "sqlite:///", "sqlite:///x.db?mode=ro", "postgresql+pg8000://h/db"],
)
def test_unusable_urls_are_rejected(url: str) -> None:
    with pytest.raises(ConfigurationError):
        SQLSpecBackendConfig.from_url(url)


def test_aiomysql_is_refused_with_the_reason() -> None:
    with pytest.raises(ConfigurationError, match="asyncmy"):
        config_from_url("mysql+aiomysql://u@h/db")


def test_config_needs_exactly_one_source() -> None:
    with pytest.raises(ConfigurationError):
        SQLSpecBackendConfig()
    with pytest.raises(ConfigurationError):
        SQLSpecBackendConfig(dsn="sqlite:///a.db", sqlspec_config=AiosqliteConfig(connection_config={"database": "a"}))


@pytest.mark.parametrize("config", [SqliteConfig(), PsycopgSyncConfig(connection_config={"conninfo": "x"})])
def test_sync_or_unsupported_sqlspec_configs_are_rejected(config: object) -> None:
    with pytest.raises(ConfigurationError):
        SQLSpecBackendConfig(sqlspec_config=config)


def test_config_satisfies_the_backend_config_protocol_and_builds_the_backend() -> None:
    config = SQLSpecBackendConfig.from_url("postgresql://u@h/db", table_prefix="jobs_")
    assert isinstance(config, BackendConfig)
    backend = config.create_backend()
    assert isinstance(backend, SQLSpecBackend)
    assert backend.names.tasks == '"jobs_tasks"'


def test_app_owned_config_is_used_as_is_and_never_owned() -> None:
    app_config = AsyncpgConfig(connection_config={"dsn": "postgresql://u@h/db"})
    sqlspec_config, owned = SQLSpecBackendConfig(sqlspec_config=app_config).create_sqlspec_config()
    assert sqlspec_config is app_config
    assert owned is False
    with pytest.raises(ConfigurationError):
        SQLSpecBackendConfig(sqlspec_config=app_config, connection_options={"min_size": 1})


def test_push_capabilities_are_declared_only_where_notifications_work() -> None:
    always = {Capability.TRANSFER, Capability.TRANSACTIONAL_ENQUEUE, Capability.EVENT_HISTORY}
    push = {Capability.PUSH_WAKEUP, Capability.FINISH_WAKEUP, *always}
    assert SQLSpecBackendConfig.from_url("postgresql://u@h/db").create_backend().capabilities == push
    unlistened = SQLSpecBackendConfig.from_url("postgresql://u@h/db", listen_notify=False).create_backend()
    assert unlistened.capabilities == always
    assert SQLSpecBackendConfig.from_url("sqlite:///x.db").create_backend().capabilities == always
    assert SQLSpecBackendConfig.from_url("mysql://u@h/db").create_backend().capabilities == always
    assert SQLSpecBackend.capabilities == always


def test_transaction_pooling_turns_off_named_prepared_statements_and_listening_without_a_direct_dsn() -> None:
    pooled = SQLSpecBackendConfig.from_url("postgresql+asyncpg://u@bouncer/db", pooler_mode="transaction")
    assert pooled.create_sqlspec_config()[0].connection_config["statement_cache_size"] == 0
    psycopg = SQLSpecBackendConfig.from_url("postgresql+psycopg://u@bouncer/db", pooler_mode="transaction")
    assert psycopg.create_sqlspec_config()[0].connection_config["kwargs"]["prepare_threshold"] is None
    direct = SQLSpecBackendConfig.from_url("postgresql+asyncpg://u@db/db")
    assert "statement_cache_size" not in direct.create_sqlspec_config()[0].connection_config
    assert direct.pooler_mode == "session"
    assert "prepare_threshold" not in config_from_url("postgresql+psycopg://u@db/db").connection_config["kwargs"]
    push = {Capability.PUSH_WAKEUP, Capability.FINISH_WAKEUP}
    assert not push & pooled.create_backend().capabilities  # polls: nothing to LISTEN on
    listening = SQLSpecBackendConfig.from_url(
        "postgresql+psycopg://u@bouncer/db", pooler_mode="transaction", direct_dsn="postgresql://u@db:5432/db"
    )
    assert push <= listening.create_backend().capabilities
    listen_config = listening.direct_listen_config("psycopg")
    assert isinstance(listen_config, PsycopgAsyncConfig)  # the pool's driver, whatever the URL names
    assert listen_config.connection_config["conninfo"] == "postgresql://u@db:5432/db"
    assert "prepare_threshold" not in listen_config.connection_config["kwargs"]


def test_app_owned_configs_behind_a_transaction_pooler_must_not_prepare_statements() -> None:
    preparing = AsyncpgConfig(connection_config={"dsn": "postgresql://u@bouncer/db"})
    with pytest.raises(ConfigurationError, match="statement_cache_size"):
        SQLSpecBackendConfig(sqlspec_config=preparing, pooler_mode="transaction")
    psycopg = PsycopgAsyncConfig(connection_config={"conninfo": "postgresql://u@bouncer/db"})
    with pytest.raises(ConfigurationError, match="prepare_threshold"):
        SQLSpecBackendConfig(sqlspec_config=psycopg, pooler_mode="transaction")
    unprepared = PsycopgAsyncConfig(
        connection_config={"conninfo": "postgresql://u@bouncer/db", "kwargs": {"prepare_threshold": None}}
    )
    assert SQLSpecBackendConfig(sqlspec_config=unprepared, pooler_mode="transaction").pooler_mode == "transaction"
    # SQLSpec's own PgBouncer switch is followed: transaction pooling, hence polling without a direct URL
    flagged = AsyncpgConfig(connection_config={"dsn": "postgresql://u@bouncer/db"}, driver_features={"pgbouncer": True})
    followed = SQLSpecBackendConfig(sqlspec_config=flagged)
    assert followed.pooler_mode == "transaction"
    assert Capability.PUSH_WAKEUP not in followed.create_backend().capabilities
    with pytest.raises(ConfigurationError, match="contradicts"):
        SQLSpecBackendConfig(sqlspec_config=flagged, pooler_mode="session")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"dsn": "sqlite:///x.db", "pooler_mode": "transaction"}, "PostgreSQL only"),
        ({"dsn": "mysql://u@h/db", "direct_dsn": "postgresql://u@h/db"}, "PostgreSQL only"),
        ({"dsn": "postgresql://u@h/db", "pooler_mode": "statement"}, "pooler_mode must be one of"),
        ({"dsn": "postgresql://u@h/db", "direct_dsn": "mysql://u:secret@h/db"}, "postgresql:// URL"),
        ({"dsn": "postgresql://u@h/db", "direct_dsn": "postgresql://u@h/db", "listen_notify": False}, "only used"),
    ],
)
def test_pooler_settings_are_checked_where_they_are_given(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as raised:
        SQLSpecBackendConfig(**settings)  # type: ignore[arg-type]
    assert "secret" not in str(raised.value)


def test_only_sqlite_is_local_only() -> None:
    assert SQLSpecBackendConfig.from_url("sqlite:///x.db").create_backend().local_only
    assert not SQLSpecBackendConfig.from_url("postgresql://u@h/db").create_backend().local_only
    assert not SQLSpecBackendConfig.from_url("mysql://u@h/db").create_backend().local_only


@pytest.mark.parametrize("prefix", ["", "Jobs_", "1jobs", "jobs-", "jobs;drop", 'q"', "a_2024_", "x" * 41])
def test_table_prefixes_are_validated(prefix: str) -> None:
    with pytest.raises(ConfigurationError):
        validate_table_prefix(prefix)
    with pytest.raises(ConfigurationError):
        SQLSpecBackendConfig.from_url("sqlite:///x.db", table_prefix=prefix)


def test_names_are_quoted_per_family_and_derive_the_extension_name() -> None:
    postgres = TableNames("litestar_queues_", "postgres")
    assert (postgres.tasks, postgres.index("tasks_claim_ix")) == (
        '"litestar_queues_tasks"',
        '"litestar_queues_tasks_claim_ix"',
    )
    assert TableNames("q_", "mysql").locks == "`q_locks`"
    assert postgres.extension == "litestar_queues"
    assert (postgres.wakeup_channel, postgres.finish_channel) == ("litestar_queues_wakeup", "litestar_queues_finish")


def test_migration_extension_config_points_sqlspec_at_the_packaged_migrations() -> None:
    name, options = migration_extension_config("jobs_")
    assert name == "jobs"
    assert options == {"migrations_path": "litestar_queues.backends.sqlspec:migrations", "table_prefix": "jobs_"}


def test_workers_split_claims_only_on_postgresql() -> None:
    """A PostgreSQL claim is a transaction whose round trip a second claim can overlap; SQLite serializes writers."""
    assert SQLSpecBackendConfig.from_url("postgresql://u@h/db").create_backend().split_claims
    assert not SQLSpecBackendConfig.from_url("sqlite:///x.db").create_backend().split_claims
    assert not SQLSpecBackendConfig.from_url("mysql://u@h/db").create_backend().split_claims
