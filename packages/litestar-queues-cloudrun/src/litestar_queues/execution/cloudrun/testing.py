"""``CloudRunEmulator``: a local, emulated stand-in for the Cloud Run Admin API v2, for tests and local runs.

It is **not** Google's service: it answers the REST calls this package (and the official ``google-cloud-run``
client, ``transport="rest"``) makes for jobs, executions and operations, and runs each execution's container as a
local subprocess (the real ``litestar-queues-cloudrun-worker``, with the environment Cloud Run would give it).
Behaviour that Google does not document (the exact error code of a failed operation, how a cancelled container
is stopped) is modelled on the documented parts: SIGTERM, then SIGKILL after a grace period.

Fault hooks: ``hold``/``release`` (no container starts in between), ``fail_next`` (429/5xx bursts),
``fail_after_run_next`` (an execution is created but the call answers 500), ``lose_next`` (a run is accepted but
its container never starts), ``start_delay``, ``signal`` (crash a container with SIGKILL, or send SIGTSTP and
SIGCONT), per-job ``timeout`` and ``max_retries``. ``requests`` logs every call for assertions.

Use it in an ``async`` test::

    async with CloudRunEmulator(project="demo", region="europe-west1") as emulator:
        emulator.add_job("worker", ["litestar-queues-cloudrun-worker", "app:app"])
        config = CloudRunExecutionConfig(project="demo", region="europe-west1", job="worker",
                                         api_endpoint=emulator.url, credentials=AnonymousCredentials())
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import string
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ("CloudRunEmulator", "EmulatedExecution", "EmulatedJob", "RecordedRequest")

_REASONS = {
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
_EXECUTION_TYPE = "type.googleapis.com/google.cloud.run.v2.Execution"


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class EmulatedJob:
    """A job: the command its container runs and the settings Cloud Run would take from its template."""

    name: str
    argv: list[str]
    env: dict[str, str]
    timeout: float = 600.0
    max_retries: int = 0
    cwd: str | None = None


@dataclass
class RecordedRequest:
    """One API call the emulator received (``body`` decoded from JSON) and the status it answered."""

    method: str
    path: str
    body: Any
    status: int
    headers: dict[str, str]


@dataclass
class EmulatedExecution:
    """An execution: its overrides, its container's attempts and their exit codes, and how it ended."""

    name: str
    job: EmulatedJob
    env: dict[str, str]
    timeout: float
    uid: str = field(default_factory=lambda: str(uuid.uuid4()))
    operation: str = field(default_factory=lambda: uuid.uuid4().hex)
    create_time: str = field(default_factory=_now)
    start_time: str | None = None
    completion_time: str | None = None
    state: str = "pending"
    """``pending`` (not started), ``running``, ``succeeded``, ``failed`` or ``cancelled``."""
    exit_codes: list[int] = field(default_factory=list)
    """The exit code of each attempt of its container, in order."""
    attempt: int = 0
    cancelling: bool = False
    timed_out: bool = False
    process: asyncio.subprocess.Process | None = None
    log: Path | None = None
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def output(self) -> str:
        """What its container printed (all attempts)."""
        return self.log.read_text(errors="replace") if self.log is not None and self.log.exists() else ""

    def resource(self) -> dict[str, Any]:
        """The Execution as the API returns it."""
        terminal = self.state in {"succeeded", "failed", "cancelled"}
        condition: dict[str, Any] = {
            "type": "Completed",
            "lastTransitionTime": self.completion_time or self.create_time,
        }
        if self.state == "succeeded":
            condition["state"] = "CONDITION_SUCCEEDED"
        elif self.state == "failed":
            condition.update(state="CONDITION_FAILED", executionReason="NON_ZERO_EXIT_CODE")
        elif self.state == "cancelled":
            condition.update(state="CONDITION_FAILED", executionReason="CANCELLED")
        else:
            condition["state"] = "CONDITION_PENDING" if self.state == "pending" else "CONDITION_RECONCILING"
            if self.cancelling:
                condition["executionReason"] = "CANCELLING"
        resource: dict[str, Any] = {
            "name": self.name,
            "uid": self.uid,
            "job": self.job.name.rsplit("/", 1)[-1],
            "createTime": self.create_time,
            "taskCount": 1,
            "parallelism": 1,
            "runningCount": int(self.state == "running"),
            "succeededCount": int(self.state == "succeeded"),
            "failedCount": int(self.state == "failed"),
            "cancelledCount": int(self.state == "cancelled"),
            "retriedCount": max(0, len(self.exit_codes) - 1),
            "reconciling": not terminal,
            "conditions": [condition],
            "template": {
                "containers": [{"env": [{"name": k, "value": v} for k, v in self.env.items()]}],
                "timeout": f"{self.timeout:g}s",
                "maxRetries": self.job.max_retries,
            },
        }
        if self.start_time:
            resource["startTime"] = self.start_time
        if self.completion_time:
            resource["completionTime"] = self.completion_time
        return resource


class CloudRunEmulator:
    """An emulated Cloud Run Admin API v2 on ``127.0.0.1`` (see the module docstring). An async context manager.

    Args:
        project: The project its resource names use.
        region: The region its resource names use.
        cancel_grace: Seconds between SIGTERM and SIGKILL when an execution is cancelled or times out.
    """

    def __init__(self, *, project: str = "emulated-project", region: str = "us-central1", cancel_grace: float = 0.5):
        self.project = project
        self.region = region
        self.cancel_grace = cancel_grace
        self.jobs: dict[str, EmulatedJob] = {}
        self.executions: dict[str, EmulatedExecution] = {}
        """Every execution by full name, in creation order."""
        self.requests: list[RecordedRequest] = []
        self.start_delay = 0.0
        """Seconds between accepting a run and starting its container."""
        self._starts = asyncio.Event()
        self._starts.set()
        self._failures: list[tuple[int, str]] = []
        self._fail_after_run = 0
        self._lost = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._connections: set[asyncio.StreamWriter] = set()
        self._logs = Path(tempfile.mkdtemp(prefix="lq-cloudrun-emulator-"))
        self.url = ""
        """``http://127.0.0.1:<port>``, once started: pass it as ``api_endpoint``."""

    # -- set-up ------------------------------------------------------------------------------------

    def add_job(
        self,
        job: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float = 600.0,
        max_retries: int = 0,
        cwd: str | None = None,
    ) -> str:
        """Deploy a job whose container runs ``argv`` (with this process's environment plus ``env``); return its name.

        ``timeout`` is the job's task timeout (an execution's ``overrides.timeout`` replaces it); ``max_retries`` is
        how often Cloud Run reruns a container that exited non-zero (deploy real jobs with 0).
        """
        name = f"projects/{self.project}/locations/{self.region}/jobs/{job}"
        self.jobs[name] = EmulatedJob(name, list(argv), dict(env or {}), timeout, max_retries, cwd)
        return name

    def fail_next(self, count: int, status: int = 503, *, only: str = "") -> None:
        """Answer the next ``count`` calls (whose path contains ``only``) with ``status`` and no effect."""
        self._failures += [(status, only)] * count

    def fail_after_run_next(self, count: int = 1) -> None:
        """The next ``count`` runs create and start their execution, then answer 500 (an ambiguous failure)."""
        self._fail_after_run += count

    def lose_next(self, count: int = 1) -> None:
        """The next ``count`` runs are accepted, but their containers never start."""
        self._lost += count

    def hold(self) -> None:
        """Accept runs but start no container until ``release`` (e.g. until a test subscribed to events)."""
        self._starts.clear()

    def release(self) -> None:
        """Start the containers held since ``hold``, and the next ones at once."""
        self._starts.set()

    def signal(self, execution: str, signum: int) -> None:
        """Send ``signum`` to the running container of ``execution`` (SIGKILL: a crash or an OOM kill)."""
        process = self.executions[execution].process
        if process is not None and process.returncode is None:
            os.killpg(process.pid, signum)

    async def wait_finished(self, execution: str, timeout: float = 30.0) -> EmulatedExecution:
        """Wait until ``execution`` ended (after its last attempt) and return it."""
        emulated = self.executions[execution]
        await asyncio.wait_for(emulated.finished.wait(), timeout)
        return emulated

    # -- lifecycle ---------------------------------------------------------------------------------

    async def __aenter__(self) -> CloudRunEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Listen on a free port of ``127.0.0.1``."""
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        """Stop listening, kill every container still running and reap it."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._connections):  # keep-alive clients would hold wait_closed (Python 3.12+)
            writer.close()
        for execution in self.executions.values():
            process = execution.process
            if process is not None and process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for execution in self.executions.values():
            if execution.process is not None:
                await execution.process.wait()
        if self._server is not None:
            await self._server.wait_closed()

    # -- HTTP --------------------------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        try:
            while True:
                request_line = await reader.readline()
                if not request_line.strip():
                    return
                method, target, _ = request_line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    key, _, value = line.decode("latin-1").partition(":")
                    headers[key.strip().lower()] = value.strip()
                length = int(headers.get("content-length") or 0)
                body = await reader.readexactly(length) if length else b""
                status, payload = await self._answer(method, target, body, headers)
                data = json.dumps(payload).encode()
                head = f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\nContent-Type: application/json\r\n"
                writer.write(f"{head}Content-Length: {len(data)}\r\n\r\n".encode() + data)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._connections.discard(writer)
            writer.close()

    async def _answer(self, method: str, target: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        url = urlsplit(target)
        path = url.path.removeprefix("/v2/")
        decoded = json.loads(body) if body else None
        status, payload = self._route(method, path, decoded, parse_qs(url.query))
        self.requests.append(RecordedRequest(method, path, decoded, status, headers))
        return status, payload

    def _route(self, method: str, path: str, body: Any, query: dict[str, list[str]]) -> tuple[int, Any]:
        for index, (status, only) in enumerate(self._failures):
            if only in path:
                del self._failures[index]
                return _error(status, f"emulated failure {status}")
        if method == "POST" and path.endswith(":run"):
            return self._run(path.removesuffix(":run"), body or {})
        if method == "POST" and path.endswith(":cancel"):
            return self._cancel(path.removesuffix(":cancel"))
        if method == "GET" and "/operations/" in path:
            return self._operation(path.rsplit("/", 1)[-1])
        if method == "GET" and path.endswith("/executions"):
            return self._list(path.removesuffix("/executions"), query)
        if method == "GET" and path in self.executions:
            return 200, self.executions[path].resource()
        if method == "GET" and path in self.jobs:
            job = self.jobs[path]
            template = {"taskCount": 1, "template": {"maxRetries": job.max_retries, "timeout": f"{job.timeout:g}s"}}
            return 200, {"name": path, "template": template}
        return _error(404, f"{path} not found")

    # -- the API -----------------------------------------------------------------------------------

    def _run(self, job_name: str, body: dict[str, Any]) -> tuple[int, Any]:
        job = self.jobs.get(job_name)
        if job is None:
            return _error(404, f"job {job_name} not found")
        overrides = body.get("overrides") or {}
        if overrides.get("taskCount", 1) != 1:
            return _error(400, "the emulator runs one task per execution")
        env = dict(job.env)
        argv = list(job.argv)
        for override in overrides.get("containerOverrides") or []:
            env.update({item["name"]: item.get("value", "") for item in override.get("env") or []})
            if override.get("clearArgs") or override.get("args"):
                argv = argv[:1] + list(override.get("args") or [])
        timeout = float(str(overrides.get("timeout") or f"{job.timeout}s").removesuffix("s"))
        suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
        execution = EmulatedExecution(
            f"{job_name}/executions/{job_name.rsplit('/', 1)[-1]}-{suffix}", job, env, timeout
        )
        execution.log = self._logs / f"{execution.name.rsplit('/', 1)[-1]}.log"
        if body.get("validateOnly"):
            return 200, self._operation_of(execution)
        self.executions[execution.name] = execution
        if self._lost:
            self._lost -= 1
        else:
            task = asyncio.get_running_loop().create_task(self._execute(execution, argv))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if self._fail_after_run:
            self._fail_after_run -= 1
            return _error(500, "emulated failure after the execution was created")
        return 200, self._operation_of(execution)

    def _cancel(self, name: str) -> tuple[int, Any]:
        execution = self.executions.get(name)
        if execution is None:
            return _error(404, f"execution {name} not found")
        if execution.completion_time is None:
            execution.cancelling = True
            process = execution.process
            if process is not None and process.returncode is None:
                task = asyncio.get_running_loop().create_task(self._stop_container(process))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            else:
                self._complete(execution, "cancelled")
        return 200, {**self._operation_of(execution), "done": True, "response": self._typed(execution)}

    def _operation(self, operation: str) -> tuple[int, Any]:
        for execution in self.executions.values():
            if execution.operation == operation:
                answer = self._operation_of(execution)
                if execution.completion_time is not None:
                    answer["done"] = True
                    if execution.state == "failed":
                        answer["error"] = {"code": 9, "message": f"execution {execution.name} failed"}
                    else:
                        answer["response"] = self._typed(execution)
                return 200, answer
        return _error(404, f"operation {operation} not found")

    def _list(self, job_name: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        if job_name not in self.jobs:
            return _error(404, f"job {job_name} not found")
        size = int((query.get("pageSize") or ["100"])[0])
        start = int((query.get("pageToken") or ["0"])[0])
        newest_first = [e for e in reversed(self.executions.values()) if e.job.name == job_name]
        page = newest_first[start : start + size]
        token = str(start + size) if start + size < len(newest_first) else ""
        return 200, {"executions": [execution.resource() for execution in page], "nextPageToken": token}

    def _operation_of(self, execution: EmulatedExecution) -> dict[str, Any]:
        name = f"projects/{self.project}/locations/{self.region}/operations/{execution.operation}"
        return {"name": name, "done": False, "metadata": self._typed(execution)}

    @staticmethod
    def _typed(execution: EmulatedExecution) -> dict[str, Any]:
        return {"@type": _EXECUTION_TYPE, **execution.resource()}

    # -- containers --------------------------------------------------------------------------------

    async def _execute(self, execution: EmulatedExecution, argv: list[str]) -> None:
        await self._starts.wait()
        if self.start_delay:
            await asyncio.sleep(self.start_delay)
        job = execution.job
        for attempt in range(job.max_retries + 1):
            if execution.cancelling:
                break
            execution.attempt = attempt
            code = await self._attempt(execution, argv, attempt)
            execution.exit_codes.append(code)
            if code == 0 or execution.cancelling:
                break
        if execution.cancelling:
            self._complete(execution, "cancelled")
        else:
            self._complete(execution, "succeeded" if execution.exit_codes[-1] == 0 else "failed")

    async def _attempt(self, execution: EmulatedExecution, argv: list[str], attempt: int) -> int:
        job_id = execution.job.name.rsplit("/", 1)[-1]
        env = {
            **os.environ,
            **execution.env,
            "CLOUD_RUN_JOB": job_id,
            "CLOUD_RUN_EXECUTION": execution.name.rsplit("/", 1)[-1],
            "CLOUD_RUN_TASK_INDEX": "0",
            "CLOUD_RUN_TASK_ATTEMPT": str(attempt),
            "CLOUD_RUN_TASK_COUNT": "1",
        }
        assert execution.log is not None
        with execution.log.open("ab") as log:
            process = await asyncio.create_subprocess_exec(
                *argv, env=env, cwd=execution.job.cwd, stdout=log, stderr=log, start_new_session=True
            )
        execution.process = process
        execution.state = "running"
        execution.start_time = execution.start_time or _now()
        try:
            return await asyncio.wait_for(asyncio.shield(process.wait()), execution.timeout)
        except asyncio.TimeoutError:
            execution.timed_out = True
            await self._stop_container(process)
            return await process.wait()

    async def _stop_container(self, process: asyncio.subprocess.Process) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(process.wait()), self.cancel_grace)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

    @staticmethod
    def _complete(execution: EmulatedExecution, state: str) -> None:
        if execution.completion_time is None:
            execution.state = state
            execution.completion_time = _now()
            execution.finished.set()


def _error(status: int, message: str) -> tuple[int, Any]:
    return status, {"error": {"code": status, "message": message, "status": _STATUS_NAMES.get(status, "UNAVAILABLE")}}
