"""Spans of processes under test: each records into an in-memory exporter and writes what it recorded, as JSON, into a
folder the test names; the test reads them all back and follows parents and links across processes."""

from __future__ import annotations

import atexit
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


def record_spans(folder: Path) -> InMemorySpanExporter:
    """Install a global tracer provider recording into memory; write the spans to ``folder/<pid>.json`` at exit (and
    whenever :func:`write_spans` is called)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    atexit.register(write_spans, exporter, folder)
    return exporter


def write_spans(exporter: InMemorySpanExporter, folder: Path) -> None:
    spans = [_as_dict(span) for span in exporter.get_finished_spans()]
    (folder / f"{os.getpid()}.json").write_text(json.dumps(spans))


def _as_dict(span: ReadableSpan) -> dict[str, Any]:
    assert span.context is not None
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": format(span.context.trace_id, "032x"),
        "span_id": format(span.context.span_id, "016x"),
        "parent_id": format(span.parent.span_id, "016x") if span.parent else None,
        "links": [format(link.context.span_id, "016x") for link in span.links],
        "attributes": dict(span.attributes or {}),
        "status": span.status.status_code.name,
        "events": [event.name for event in span.events],
        "pid": os.getpid(),
    }


@dataclass
class Spans:
    """Every span the processes of a test wrote."""

    spans: list[dict[str, Any]]

    @classmethod
    def read(cls, folder: Path) -> Spans:
        return cls([span for file in sorted(folder.glob("*.json")) for span in json.loads(file.read_text())])

    def named(self, name: str, task_name: str | None = None) -> list[dict[str, Any]]:
        """The spans called ``name`` (about the task ``task_name``), attempts in order."""
        found = [
            span
            for span in self.spans
            if span["name"] == name
            and (task_name is None or span["attributes"].get("litestar_queues.task.name") == task_name)
        ]
        return sorted(found, key=lambda span: span["attributes"].get("litestar_queues.task.attempt", 0))

    def by_id(self, span_id: str) -> dict[str, Any]:
        (span,) = [span for span in self.spans if span["span_id"] == span_id]
        return span
