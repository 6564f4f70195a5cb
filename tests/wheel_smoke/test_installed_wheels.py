"""Smoke test for ``litestar-queues[all]`` installed from the built wheels into a fresh venv outside the repository.

.ci/run builds every wheel, installs the umbrella distribution with all extras from them (dependencies such as
msgspec come from PyPI), copies this file into a temporary directory and runs it there with ``LQ_WHEEL_SMOKE=1``
and ``LQ_REPO_ROOT`` set. Keep it self-contained: no conftest, no helper imports from the repository.
"""

import importlib
import importlib.metadata
import json
import os
import sys
import sysconfig
from pathlib import Path

import pytest

PUBLIC_MODULES = (
    "litestar_queues",
    "litestar_queues.events",
    "litestar_queues.cron",
    "litestar_queues.backends.memory",
    "litestar_queues.backends.redis",
    "litestar_queues.backends.valkey",
    "litestar_queues.backends.sqlspec",
    "litestar_queues.backends.advanced_alchemy",
    "litestar_queues.execution.cloudrun",
    "litestar_queues.opentelemetry",
    "litestar_queues.litestar",
    "litestar_queues.testing",
)

SITE_PACKAGES = Path(sysconfig.get_paths()["purelib"]).resolve()


def _repo_root() -> Path | None:
    root = os.environ.get("LQ_REPO_ROOT")
    return Path(root).resolve() if root else None


def test_runs_outside_the_repository() -> None:
    root = _repo_root()
    assert root is not None, "LQ_REPO_ROOT must be set by .ci/run"
    assert not Path.cwd().resolve().is_relative_to(root)
    assert not any(Path(entry or ".").resolve().is_relative_to(root) for entry in sys.path), sys.path


@pytest.mark.parametrize("name", PUBLIC_MODULES)
# Advanced Alchemy 1.12 decorates its mixins with declarative_mixin, which SQLAlchemy 2.1 deprecates (harmless).
@pytest.mark.filterwarnings("ignore:The declarative_mixin decorator:DeprecationWarning")
def test_module_imports_from_the_installed_wheels(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__file__ is not None, f"{name} is a bare namespace package: its distribution is missing"
    location = Path(module.__file__).resolve()
    assert location.is_relative_to(SITE_PACKAGES), f"{name} was imported from {location}, not from {SITE_PACKAGES}"


def test_queue_plugin_is_reexported_from_the_root_package() -> None:
    from litestar_queues import QueuePlugin

    assert QueuePlugin.__module__.startswith("litestar_queues.litestar"), QueuePlugin.__module__


def test_every_litestar_queues_distribution_comes_from_a_built_wheel() -> None:
    found = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if not name.startswith("litestar-queues"):
            continue
        direct_url = json.loads(dist.read_text("direct_url.json") or "{}")
        found[name] = direct_url.get("url", "")
        assert not direct_url.get("dir_info", {}).get("editable"), f"{name} is an editable install"
        assert found[name].startswith("file://"), f"{name} came from {found[name] or 'an index'}, not a built wheel"
        assert found[name].endswith(".whl"), f"{name} was installed from {found[name]}, not a wheel"
    expected = set(os.environ.get("LQ_EXPECTED_DISTS", "").split())
    assert expected, "LQ_EXPECTED_DISTS (the distributions that were built) must be set by .ci/run"
    assert {name.replace("-", "_") for name in found} == {name.replace("-", "_") for name in expected}


# The conformance suite against the memory backend, from the installed wheels, exactly as a third party writes it.
from litestar_queues.backends.memory import MemoryBackend, MemoryBackendConfig  # noqa: E402
from litestar_queues.testing import BackendConformance  # noqa: E402


class TestMemoryBackendFromWheels(BackendConformance):
    @pytest.fixture
    async def backend(self):  # type: ignore[no-untyped-def]
        async with MemoryBackend(MemoryBackendConfig()) as backend:
            yield backend


def test_the_cloud_run_entry_point_is_installed_and_explains_a_missing_environment() -> None:
    import subprocess

    script = Path(sys.executable).with_name("litestar-queues-cloudrun-worker")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("LITESTAR_", "CLOUD_RUN_"))}
    result = subprocess.run([str(script), "app:app"], capture_output=True, text=True, env=env, timeout=120, check=False)
    assert result.returncode == 78, result.stderr  # ExitCode.CONFIGURATION_ERROR
    assert "missing environment variable" in result.stderr


def test_the_dashboard_renders_from_the_installed_wheel() -> None:
    # Its templates and assets are package data of the plugin wheel: a page renders and every asset it links loads.
    import re

    from litestar import Litestar
    from litestar.testing import TestClient

    from litestar_queues import DashboardConfig, QueueConfig, QueuePlugin

    config = QueueConfig(in_app_worker=False, dashboard=DashboardConfig(guards=[lambda connection, handler: None]))
    with TestClient(Litestar(plugins=[QueuePlugin(config=config)])) as client:
        for path in ("/queues/", "/queues/jobs"):
            page = client.get(path)
            assert page.status_code == 200, page.text
            assets = re.findall(r'(?:href|src)="(/queues/static/[^"]+)"', page.text)
            assert sorted(set(assets)) == ["/queues/static/dashboard.css", "/queues/static/dashboard.js"]
            for asset in assets:
                assert client.get(asset).status_code == 200, asset


def test_an_attempt_is_traced_and_counted_with_the_installed_opentelemetry_extra() -> None:
    import asyncio

    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from litestar_queues import QueueConfig, QueueService, TaskRegistry, Worker, task
    from litestar_queues.opentelemetry import OpenTelemetryInstrumentation

    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    instrumentation = OpenTelemetryInstrumentation(tracer_provider=tracer_provider, meter_provider=meter_provider)
    registry = TaskRegistry()

    @task("smoke.traced", registry=registry)
    async def traced() -> int:
        return 1

    async def run() -> None:
        async with QueueService(QueueConfig(instrumentation=instrumentation), registry=registry) as service:
            await service.enqueue(traced)
            await Worker(service).run_until_idle()

    asyncio.run(run())
    enqueue, process = sorted(spans.get_finished_spans(), key=lambda span: span.start_time or 0)
    assert (enqueue.name, process.name) == ("enqueue default", "process default")
    assert process.parent is not None and process.parent.span_id == enqueue.context.span_id
    assert instrumentation.metrics is not None and instrumentation.metrics.completed == {("default", "smoke.traced"): 1}
