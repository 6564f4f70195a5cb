"""How the container entry point finds the app's QueueConfig, and what it says when it cannot."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from litestar_queues import QueueConfig
from litestar_queues.errors import ConfigurationError
from litestar_queues.execution.cloudrun import ExitCode
from litestar_queues.execution.cloudrun.container import AttemptIds, load_queue_config, main

MODULE = """
from litestar import Litestar
from litestar_queues import QueueConfig, QueuePlugin

config = QueueConfig(task_modules=("json",))
app = Litestar([], plugins=[QueuePlugin(config=config)])

def create_app():
    return app

nothing = 42
"""


@pytest.fixture
def app_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "lq_container_app.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "lq_container_app"


@pytest.mark.parametrize("attribute", [":config", ":app", "", ":create_app"])
def test_a_config_an_app_or_a_factory_is_found(app_module: str, attribute: str) -> None:
    config = load_queue_config(f"{app_module}{attribute}")
    assert isinstance(config, QueueConfig) and config.task_modules == ("json",)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("lq_no_such_module:app", "cannot import 'lq_no_such_module'"),
        ("{module}:missing", "has no attribute 'missing'"),
        ("{module}:nothing", "neither a QueueConfig nor a Litestar app"),
        (":app", "is not 'module:attribute'"),
    ],
)
def test_a_wrong_path_is_a_configuration_error(app_module: str, path: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_queue_config(path.format(module=app_module))


@pytest.fixture
def logging_restored() -> Iterator[None]:
    """``main`` configures logging as a process's entry point does; undo that for the tests after this one."""
    root, ours = logging.getLogger(), logging.getLogger("litestar_queues")
    handlers, level = list(root.handlers), ours.level
    yield
    root.handlers[:] = handlers
    ours.setLevel(level)


@pytest.mark.usefixtures("logging_restored")
def test_the_environment_must_name_the_attempt(monkeypatch: pytest.MonkeyPatch, app_module: str) -> None:
    env = {
        "LITESTAR_QUEUES_RECORD_ID": "r",
        "LITESTAR_QUEUES_FENCE_TOKEN": "x",
        "LITESTAR_QUEUES_QUEUE": "q",
        "LITESTAR_QUEUES_EXECUTION_BACKEND": "cloudrun",
        "CLOUD_RUN_JOB": "worker",
        "CLOUD_RUN_EXECUTION": "worker-abcde",
    }
    with pytest.raises(ConfigurationError, match="malformed LITESTAR_QUEUES_FENCE_TOKEN"):
        AttemptIds.from_env(env)
    with pytest.raises(ConfigurationError, match="missing environment variable"):
        AttemptIds.from_env({})
    assert AttemptIds.from_env({**env, "LITESTAR_QUEUES_FENCE_TOKEN": "7"}).token == 7
    for name in env:
        monkeypatch.delenv(name, raising=False)
    assert main([f"{app_module}:app"]) == ExitCode.CONFIGURATION_ERROR
    monkeypatch.delenv("LITESTAR_APP", raising=False)
    assert main([]) == ExitCode.CONFIGURATION_ERROR
