"""The Cloud Run entry point continues the trace stored with the record: its attempt's span is a child of the creation
context on the first attempt, and a retry in another container links to it."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.cloudrun.conftest import Harness
from tests.spans import Spans

from litestar_queues import TaskStatus
from litestar_queues.instrumentation import TRACE_CONTEXT_KEY

pytestmark = pytest.mark.anyio

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"


async def test_the_entry_point_continues_the_stored_trace(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LQ_E2E_SPANS", str(tmp_path))  # read by the containers the emulator starts
    stored = {TRACE_CONTEXT_KEY: {"traceparent": f"00-{TRACE_ID}-{SPAN_ID}-01"}}
    ok = await harness.enqueue("ok", metadata=stored)
    flaky = await harness.enqueue("fail", metadata=stored, retries=1, retry_backoff=0)
    assert (await harness.final(ok)).status is TaskStatus.COMPLETED
    assert (await harness.final(flaky)).status is TaskStatus.FAILED
    await harness.all_finished()
    spans = Spans.read(tmp_path)
    assert len({span["pid"] for span in spans.spans}) == 3  # one container per attempt
    (done,) = [span for span in spans.named("process cloudrun-e2e") if span["attributes"]["messaging.message.id"] == ok]
    assert (done["trace_id"], done["parent_id"]) == (TRACE_ID, SPAN_ID)
    assert done["attributes"]["messaging.client.id"].startswith("projects/demo/locations/europe-west1/jobs/worker/")
    assert done["events"] == ["claim", "finish"] and done["status"] == "UNSET"
    first, retry = [
        span for span in spans.named("process cloudrun-e2e") if span["attributes"]["messaging.message.id"] == flaky
    ]
    assert (first["trace_id"], first["parent_id"], first["status"]) == (TRACE_ID, SPAN_ID, "ERROR")
    assert retry["parent_id"] is None and retry["trace_id"] != TRACE_ID and retry["links"] == [SPAN_ID]
    assert retry["attributes"]["litestar_queues.task.status"] == "failed"
