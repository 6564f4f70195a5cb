"""A small asynchronous client of the Cloud Run Admin API v2 (REST/JSON) on httpx, authorised by google-auth.

It speaks only the calls an execution target needs: run a job with overrides, read, cancel and list executions.
Credentials come from Application Default Credentials unless given; their token is refreshed in a thread (the
metadata server or a token endpoint is a blocking call in google-auth) and sent as ``Authorization: Bearer``.
Every call is retried on 429, 5xx and transport errors with exponential backoff and jitter.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from typing import Any, TypeVar

import google.auth
import google.auth.credentials
import google.auth.exceptions
import google.auth.transport
import httpx
import msgspec

from litestar_queues.errors import QueueError
from litestar_queues.execution.cloudrun.resources import Execution, ExecutionList, Operation, Overrides, RunJobRequest

__all__ = ("SCOPE", "CloudRunApiError", "CloudRunClient", "CloudRunNotFoundError")

logger = logging.getLogger("litestar_queues.cloudrun")

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
_RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_MAX_BACKOFF = 10.0
_T = TypeVar("_T")
_encode = msgspec.json.Encoder().encode


class CloudRunApiError(QueueError):
    """A Cloud Run Admin API call failed; ``retryable`` tells whether trying again may help."""

    def __init__(self, message: str, *, status: int = 0, retryable: bool = False) -> None:
        super().__init__(message)
        self.status = status
        """The HTTP status (0 when no response came back)."""
        self.retryable = retryable


class CloudRunNotFoundError(CloudRunApiError):
    """The job or execution does not exist (HTTP 404)."""


class _AuthResponse(google.auth.transport.Response):
    def __init__(self, response: httpx.Response) -> None:
        self._response = response

    @property
    def status(self) -> int:
        return self._response.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    @property
    def data(self) -> bytes:
        return self._response.content


class _AuthRequest(google.auth.transport.Request):
    """google-auth's transport interface on a synchronous httpx client (used in a thread to refresh tokens)."""

    def __init__(self, http: httpx.Client) -> None:
        self._http = http

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> _AuthResponse:
        try:
            response = self._http.request(method, url, content=body, headers=headers, timeout=timeout or 120.0)
        except httpx.HTTPError as exc:
            raise google.auth.exceptions.TransportError(exc) from exc  # type: ignore[no-untyped-call]
        return _AuthResponse(response)


class CloudRunClient:
    """Calls the Cloud Run Admin API v2. Use as an async context manager, or call ``aclose``.

    Args:
        endpoint: The API's base URL (``https://run.googleapis.com``; ``http://127.0.0.1:PORT`` for an emulator).
        credentials: google-auth credentials; ``None`` loads Application Default Credentials on first use.
        timeout: Seconds each HTTP request may take.
        retries: Extra tries of a call that failed with 429, 5xx or a transport error.
        backoff: Base of the exponential backoff between tries, in seconds.
    """

    def __init__(
        self,
        *,
        endpoint: str = "https://run.googleapis.com",
        credentials: google.auth.credentials.Credentials | None = None,
        timeout: float = 30.0,
        retries: int = 4,
        backoff: float = 0.5,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self._credentials = credentials
        self._retries = retries
        self._backoff = backoff
        self._http = httpx.AsyncClient(timeout=timeout, headers={"Content-Type": "application/json"})
        self._auth_http: httpx.Client | None = None
        self._auth_lock = asyncio.Lock()

    async def __aenter__(self) -> CloudRunClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._http.aclose()
        if self._auth_http is not None:
            self._auth_http.close()

    # -- the calls ---------------------------------------------------------------------------------

    async def run_job(self, job: str, overrides: Overrides) -> Execution:
        """Start an execution of ``job`` (a full resource name) and return it, without waiting for it to run.

        Every successful call creates a new execution: the API has no idempotency key.

        Raises:
            CloudRunApiError: the call failed (after retries, when retryable); ``CloudRunNotFoundError`` for an
                unknown job.
        """
        body = _encode(RunJobRequest(overrides=overrides))
        operation = await self._call("POST", f"{job}:run", Operation, body=body)
        if operation.metadata is None or not operation.metadata.name:
            raise CloudRunApiError(f"running {job} returned an operation without its execution: {operation!r}")
        return operation.metadata

    async def get_execution(self, name: str) -> Execution:
        """Read the execution ``name``.

        Raises:
            CloudRunNotFoundError: it does not exist (deleted).
            CloudRunApiError: the call failed.
        """
        return await self._call("GET", name, Execution)

    async def cancel_execution(self, name: str) -> None:
        """Ask Cloud Run to cancel the execution ``name`` (it stops its containers; returns at once).

        Raises:
            CloudRunApiError: the call failed; ``CloudRunNotFoundError`` when it does not exist.
        """
        await self._call("POST", f"{name}:cancel", Operation, body=b"{}")

    async def list_executions(self, job: str, *, page_token: str = "", page_size: int = 100) -> ExecutionList:
        """One page of the executions of ``job``.

        Raises:
            CloudRunApiError: the call failed.
        """
        params = {"pageSize": str(page_size), **({"pageToken": page_token} if page_token else {})}
        return await self._call("GET", f"{job}/executions", ExecutionList, params=params)

    # -- plumbing ----------------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        kind: type[_T],
        *,
        body: bytes | None = None,
        params: dict[str, str] | None = None,
    ) -> _T:
        url = f"{self.endpoint}/v2/{path}"
        tries = 0
        while True:
            try:
                return await self._request(method, url, kind, body, params)
            except CloudRunApiError as exc:
                if not exc.retryable or tries >= self._retries:
                    raise
                pause = min(_MAX_BACKOFF, self._backoff * 2**tries) * (0.5 + random.random() / 2)
                tries += 1
                logger.warning("Cloud Run %s %s failed (%s); try %d in %.2fs", method, path, exc, tries + 1, pause)
                await asyncio.sleep(pause)

    async def _request(
        self, method: str, url: str, kind: type[_T], body: bytes | None, params: dict[str, str] | None
    ) -> _T:
        headers: dict[str, str] = {}
        await self._authorize(headers)
        try:
            response = await self._http.request(method, url, content=body, params=params, headers=headers)
        except httpx.TransportError as exc:
            raise CloudRunApiError(f"{method} {url}: {type(exc).__name__}: {exc}", retryable=True) from exc
        if response.status_code >= 400:
            raise _api_error(method, url, response)
        try:
            return msgspec.json.decode(response.content, type=kind)
        except msgspec.DecodeError as exc:
            raise CloudRunApiError(f"{method} {url}: unexpected response: {exc}") from exc

    async def _authorize(self, headers: dict[str, str]) -> None:
        async with self._auth_lock:
            try:
                credentials = self._credentials
                if credentials is None:
                    loaded, _ = await asyncio.to_thread(google.auth.default, scopes=[SCOPE])
                    credentials = self._credentials = loaded
                if not credentials.valid:
                    if self._auth_http is None:
                        self._auth_http = httpx.Client()
                    await asyncio.to_thread(credentials.refresh, _AuthRequest(self._auth_http))
            except google.auth.exceptions.DefaultCredentialsError as exc:
                raise CloudRunApiError(
                    f"no Application Default Credentials for the Cloud Run API: {exc} (on Google Cloud, give the "
                    "worker's service account the role run.jobsExecutorWithOverrides; elsewhere, set "
                    "GOOGLE_APPLICATION_CREDENTIALS or pass credentials=...)"
                ) from exc
            except google.auth.exceptions.GoogleAuthError as exc:
                retryable = isinstance(exc, google.auth.exceptions.TransportError) or bool(
                    getattr(exc, "retryable", False)
                )
                raise CloudRunApiError(f"refreshing Cloud Run credentials failed: {exc}", retryable=retryable) from exc
            credentials.apply(headers)  # type: ignore[no-untyped-call]


def _api_error(method: str, url: str, response: httpx.Response) -> CloudRunApiError:
    status = response.status_code
    try:
        detail = msgspec.json.decode(response.content).get("error", {})
        message = f"{detail.get('status', status)}: {detail.get('message', '')}"
    except (msgspec.DecodeError, AttributeError):
        message = f"HTTP {status}: {response.text[:200]}"
    text = f"{method} {url}: {message}"
    if status == 404:
        return CloudRunNotFoundError(text, status=status)
    return CloudRunApiError(text, status=status, retryable=status in _RETRYABLE_STATUSES)
