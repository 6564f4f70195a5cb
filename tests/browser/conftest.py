"""Browser tests: headless Chromium (Debian's ``chromium``, driven by Playwright for Python) against apps served by
uvicorn on 127.0.0.1. The one place the browser is set up; any browser test uses these fixtures:

* ``browser``: a Chromium launched once per test module (``scripts/browser.sh`` installs it; Playwright's own
  browser download is never used), with the flags this machine needs. Not once per session: Playwright's sync API
  runs an event loop in the main thread while it is open, and the async tests of later modules need that thread;
* ``page``: a fresh page (its own cookies) per test;
* ``serve``: start an ASGI app (``"module:attribute"`` in ``tests/browser/``) under uvicorn with extra
  environment variables, and get its base URL; it is stopped after the test;
* ``spawn``: start another process (a worker: ``litestar … queues run``) for the test;
* ``screenshot``: save the page as ``<name>.png`` into ``$LQ_SCREENSHOTS`` when that is set (the docs' images).

Without Chromium the tests skip (saying how to install it), except in CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

playwright_sync = pytest.importorskip("playwright.sync_api", reason="the playwright package (dev group) is missing")

HERE = Path(__file__).resolve().parent
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
"""What Chromium needs here: root without a sandbox, no GPU, and no calls home."""

Serve = Callable[..., str]


def chromium_path() -> str | None:
    """``$LQ_CHROMIUM``, else Debian's ``/usr/bin/chromium``, else ``chromium`` on the PATH."""
    for candidate in (os.environ.get("LQ_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[playwright_sync.Browser]:
    path = chromium_path()
    if path is None:
        message = "Chromium is not installed: run `bash scripts/browser.sh` (apt package chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with playwright_sync.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: playwright_sync.Browser) -> Iterator[playwright_sync.Page]:
    context = browser.new_context(viewport={"width": 1360, "height": 860}, locale="en-US", timezone_id="UTC")
    opened = context.new_page()
    opened.set_default_timeout(20_000)
    try:
        yield opened
    finally:
        context.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def serve() -> Iterator[Serve]:
    servers: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(app: str, env: dict[str, str] | None = None, *, ready_path: str = "/") -> str:
        port = _free_port()
        log = Path(tempfile.mkstemp(prefix="lq-browser-", suffix=".log")[1])
        with log.open("wb") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)],
                cwd=HERE,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        servers.append((process, log))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"{app} exited with {process.returncode}:\n{log.read_text(errors='replace')}")
            try:
                if httpx.get(url + ready_path, timeout=1.0).status_code == 200:
                    return url
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{app} did not answer within 30 s:\n{log.read_text(errors='replace')}")
            time.sleep(0.1)

    yield start
    for process, log in servers:
        stop_group(process)
        log.unlink(missing_ok=True)


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """Stop a process started in a session of its own, and its children: SIGTERM, then SIGKILL after 15 s."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start a command (in the repository's root, with extra environment variables) in a session of its own; it is
    stopped after the test, which then fails if the command printed a traceback."""
    started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = Path(tempfile.mkstemp(prefix="lq-browser-", suffix=".log")[1])
        with log.open("wb") as output:
            process = subprocess.Popen(
                args,
                cwd=HERE.parents[1],
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append((process, log))
        return process

    yield start
    outputs = []
    for process, log in started:
        stop_group(process)
        outputs.append(log.read_text(errors="replace"))
        log.unlink(missing_ok=True)
    for output in outputs:
        assert "Traceback" not in output, output


@pytest.fixture
def screenshot() -> Callable[[playwright_sync.Page, str], None]:
    folder = os.environ.get("LQ_SCREENSHOTS")

    def save(page: playwright_sync.Page, name: str) -> None:
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)

    return save
