"""HttpSource: ``POST /v1/events`` and ``POST /v1/labels`` (a JSON array, one object, or NDJSON).

A request is answered after its events are committed to the store: 200 when every item was
stored (or was already there), 400 with the reason of each rejected item (the good ones are
stored all the same), 413 when the body exceeds ``ingest.max_payload_bytes``. ``GET /healthz``
answers 200, ``GET /v1/status`` the daemon's counters since it started (the HTTP threads never
touch the store; ``modalwatch status`` reads the store's totals).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from monitor.core.messages import Outcome, RawMessage

log = logging.getLogger("modalwatch.http")

_KINDS = {"/v1/events": "inference", "/v1/labels": "label"}


@dataclass
class _Request:
    request_id: str
    messages: list[RawMessage]
    done: threading.Event = field(default_factory=threading.Event)
    outcomes: list[Outcome] = field(default_factory=list)
    answered: threading.Event = field(default_factory=threading.Event)  # the reply is written


def split_body(body: bytes) -> list[bytes] | None:
    """Items of a body: a JSON array's elements, one JSON object, or NDJSON lines. None if none parse."""
    text = body.strip()
    if text.startswith(b"["):
        try:
            items = json.loads(text)
        except (ValueError, UnicodeDecodeError):
            return None
        return [json.dumps(i, allow_nan=True).encode() for i in items]
    return [line for line in text.split(b"\n") if line.strip()]


class HttpSource:
    name = "http"

    def __init__(
        self,
        host: str,
        port: int,
        max_payload_bytes: int,
        status: Callable[[], dict] | None = None,
        wait_s: float = 30.0,
    ):
        self.max_payload_bytes = max_payload_bytes
        self.status = status
        self.wait_s = wait_s
        self._queue: queue.Queue[_Request] = queue.Queue()
        self._inflight: dict[str, _Request] = {}
        # the requests of each poll not yet committed, oldest first (the daemon commits polls in order)
        self._polls: deque[list[str]] = deque()
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="modalwatch-http", daemon=True
        )
        self.exhausted = False
        self._closing = False

    def start(self) -> None:
        self._thread.start()
        log.info("HTTP ingest on http://%s:%d", *self._server.server_address[:2])

    def poll(self, max_records: int, timeout_s: float = 0.0) -> list[RawMessage]:
        out: list[RawMessage] = []
        try:
            req = self._queue.get(timeout=timeout_s) if timeout_s > 0 else self._queue.get_nowait()
        except queue.Empty:
            return out
        ids = []
        while True:
            self._inflight[req.request_id] = req
            ids.append(req.request_id)
            out.extend(req.messages)
            if len(out) >= max_records:
                break
            try:
                req = self._queue.get_nowait()
            except queue.Empty:
                break
        self._polls.append(ids)
        return out

    def commit(self, outcomes: list[Outcome]) -> None:
        """Answer the requests of the oldest uncommitted poll: ``outcomes`` are its messages'."""
        if not self._polls:
            return
        by_pos = {o.position: o for o in outcomes}
        for rid in self._polls.popleft():
            req = self._inflight.pop(rid)
            req.outcomes = [by_pos[m.position] for m in req.messages if m.position in by_pos]
            req.done.set()

    def close(self) -> None:
        """Stop serving; requests not yet committed are answered 503 so that clients retry."""
        self._closing = True
        self._server.shutdown()
        self._server.server_close()
        pending = list(self._inflight.values())
        while not self._queue.empty():
            pending.append(self._queue.get_nowait())
        for req in pending:
            req.done.set()
        deadline = time.monotonic() + 2.0  # the replies are written before the process goes
        for req in pending:
            req.answered.wait(max(0.0, deadline - time.monotonic()))

    def _submit(self, messages: list[RawMessage], request_id: str) -> _Request | None:
        req = _Request(request_id, messages)
        self._queue.put(req)
        return req if req.done.wait(self.wait_s) else None

    def _handler(self):
        source = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "modalwatch"

            def log_message(self, fmt, *args):  # bodies are never logged; paths at debug only
                log.debug("%s %s", self.address_string(), fmt % args)

            def _reply(self, code: int, obj: dict) -> None:
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path == "/healthz":
                    return self._reply(200, {"ok": True})
                if self.path == "/v1/status" and source.status is not None:
                    return self._reply(200, source.status())
                self._reply(404, {"error": f"no such path: {self.path}"})

            def do_POST(self):
                kind = _KINDS.get(self.path.split("?", 1)[0])
                if kind is None:
                    return self._reply(
                        404, {"error": f"no such path: {self.path}; use /v1/events or /v1/labels"}
                    )
                rid = self.headers.get("X-Request-Id") or uuid.uuid4().hex
                try:
                    length = int(self.headers.get("Content-Length", ""))
                except ValueError:
                    return self._reply(411, {"error": "Content-Length is required", "request_id": rid})
                if length > source.max_payload_bytes:
                    reason = (
                        f"payload too large: {length} bytes > ingest.max_payload_bytes="
                        f"{source.max_payload_bytes}"
                    )
                    self.close_connection = True
                    req = source._submit([RawMessage("http", f"http:{rid}", None, kind, error=reason)], rid)
                    self._reply(
                        413,
                        {
                            "error": reason,
                            "request_id": rid,
                            "accepted": 0,
                            "rejected": [{"index": 0, "reason": reason}] if req else [],
                        },
                    )
                    if req is not None:
                        req.answered.set()
                    return
                body = self.rfile.read(length)
                items = split_body(body)
                if items is None:
                    msgs = [RawMessage("http", f"http:{rid}", body, kind)]
                else:
                    msgs = [RawMessage("http", f"http:{rid}#{i}", b, kind) for i, b in enumerate(items)]
                if not msgs:
                    return self._reply(400, {"error": "empty body", "request_id": rid})
                req = source._submit(msgs, rid)
                try:
                    self._answer(req, rid)
                finally:
                    if req is not None:
                        req.answered.set()

            def _answer(self, req: _Request | None, rid: str) -> None:
                if req is None or not req.outcomes:
                    why = "shutting down" if source._closing else "the daemon did not commit in time"
                    return self._reply(
                        503, {"error": f"{why}; retry (events are idempotent by event_id)", "request_id": rid}
                    )
                rejected = [
                    {"index": i, "position": o.position, "reason": o.reason}
                    for i, o in enumerate(req.outcomes)
                    if o.status == "dead_letter"
                ]
                accepted = sum(o.status != "dead_letter" for o in req.outcomes)
                body = {"request_id": rid, "accepted": accepted, "rejected": rejected}
                partial = [
                    {"index": i, "position": o.position, "reason": o.reason}
                    for i, o in enumerate(req.outcomes)
                    if o.status != "dead_letter" and o.reason
                ]
                if partial:  # stored without a modality whose media failed (media.keep_partial_events)
                    body["partial"] = partial
                self._reply(400 if rejected else 200, body)

        return Handler
