"""HttpSource: ``POST /v1/events`` and ``POST /v1/labels``, served by uvicorn beside the daemon.

A request's body is one JSON document — an object (one item) or an array of items — or, with
``Content-Type: application/x-ndjson`` (or ``application/jsonl``), one JSON object per line. It is
answered after its items are committed to the store: 200 when every item was stored (or was
already there), 400 with the reason of each rejected item (the good ones are stored all the
same), 413 when the body exceeds ``ingest.max_payload_bytes``, 401 without a valid bearer token
where tokens are required, 503 when the daemon cannot commit in time or is stopping. Every
request gets a server-made ``request_id`` (its dead letters' positions: ``http:<id>#<index>``);
a client's ``X-Request-Id`` is only echoed, as ``client_request_id``.

``GET /livez`` answers 200 while the process serves (``/healthz`` too); ``GET /readyz`` 200 when
the daemon can take traffic, else 503 with the reasons (a source down or its Kafka group not
joined, the store unreachable); ``GET /v1/status`` the daemon's counters since it started. The
HTTP thread never touches the store: the pages, the JSON API and ``/metrics`` (``web``: the
daemon's web face, monitor/web.py) are answered in worker threads, on a connection of their own;
``POST /v1/silences``, which writes, takes the same bearer tokens as ingest. uvicorn (h11) gives
keep-alive with an idle timeout, a deep listen backlog and no thread per connection.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import queue
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Sequence

from pydantic_core import from_json, to_json

from monitor.core.messages import Outcome, RawMessage

log = logging.getLogger("modalwatch.http")

_KINDS = {"/v1/events": "inference", "/v1/labels": "label"}
_NDJSON = ("application/x-ndjson", "application/jsonl", "application/ndjson", "application/json-lines")
BACKLOG = 2048
KEEP_ALIVE_S = 5  # an idle connection is closed after this
WEB_MAX_BODY = 65536  # a silence is a few hundred bytes


@dataclass
class _Request:
    request_id: str
    messages: list[RawMessage]
    loop: asyncio.AbstractEventLoop
    answer: asyncio.Future = field(init=False)

    def __post_init__(self) -> None:
        self.answer = self.loop.create_future()

    def settle(self, outcomes: list[Outcome] | None) -> None:
        """From any thread: the outcomes of its messages (None: not committed, answer 503)."""

        def set_() -> None:
            if not self.answer.done():
                self.answer.set_result(outcomes)

        try:
            self.loop.call_soon_threadsafe(set_)
        except RuntimeError:  # the server's loop is already closed: nobody waits any more
            pass


def split_body(body: bytes, ndjson: bool) -> list[bytes] | str:
    """The items of a body (each as JSON bytes), or why there are none: one JSON document (an
    object, or an array of items), or NDJSON lines. pydantic-core's parser bounds depth and
    number size, so no body makes it fail other than with a reason."""
    if ndjson:
        return [line for line in body.split(b"\n") if line.strip()] or "empty body"
    if not body.strip():
        return "empty body"
    try:
        doc = from_json(body)
    except ValueError:
        return [body]  # one malformed document: its dead letter says why, with its bytes
    if isinstance(doc, list):
        return [to_json(item) for item in doc] or "empty array"
    return [body]


class HttpSource:
    name = "http"
    exhausted = False

    def __init__(
        self,
        host: str,
        port: int,
        max_payload_bytes: int,
        status: Callable[[], dict] | None = None,
        wait_s: float = 30.0,
        tokens: Sequence[str] = (),
        ready: Callable[[], list[str]] | None = None,
        web: Callable[[str, str, str, bytes], tuple[int, str, bytes]] | None = None,
        web_serves: Callable[[str], bool] = lambda path: False,
    ):
        import uvicorn

        self.web = web  # (method, path, query, body) -> (status, content type, body)
        self.web_serves = web_serves
        self.max_payload_bytes = max_payload_bytes
        self.status = status
        self.ready = ready  # the reasons the daemon cannot take traffic (none: ready)
        self.wait_s = wait_s
        self._tokens = [t.encode() for t in tokens]
        self._queue: queue.Queue[_Request] = queue.Queue()
        # the requests of each poll not yet committed, oldest first (the daemon commits polls in order)
        self._polls: deque[list[_Request]] = deque()
        self._closing = False
        # bound here, so that a port in use is an error at construction and port 0 is known at once
        self._sock = socket.create_server((host, port), backlog=BACKLOG)
        self.host, self.port = self._sock.getsockname()[:2]
        self._server = uvicorn.Server(
            uvicorn.Config(
                self._app,
                interface="asgi3",
                proxy_headers=False,
                lifespan="off",
                http="h11",
                loop="asyncio",
                ws="none",
                log_level="warning",
                access_log=False,
                server_header=False,
                timeout_keep_alive=KEEP_ALIVE_S,
                backlog=BACKLOG,
                timeout_graceful_shutdown=2,
            )
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._serve, name="modalwatch-http", daemon=True)

    # -- the daemon's side ---------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self._server.started:
            raise OSError(f"HTTP ingest on {self.host}:{self.port} did not start")
        log.info(
            "HTTP ingest on http://%s:%d%s",
            self.host,
            self.port,
            " (bearer tokens required)" if self._tokens else "",
        )

    def health(self) -> str | None:
        return None if self._server.started and not self._closing else "HTTP ingest is not serving"

    def poll(self, max_records: int, timeout_s: float = 0.0) -> list[RawMessage]:
        out: list[RawMessage] = []
        try:
            req = self._queue.get(timeout=timeout_s) if timeout_s > 0 else self._queue.get_nowait()
        except queue.Empty:
            return out
        reqs = []
        while True:
            reqs.append(req)
            out.extend(req.messages)
            if len(out) >= max_records:
                break
            try:
                req = self._queue.get_nowait()
            except queue.Empty:
                break
        self._polls.append(reqs)
        return out

    def commit(self, outcomes: list[Outcome]) -> None:
        """Answer the requests of the oldest uncommitted poll: ``outcomes`` are its messages'."""
        if not self._polls:
            return
        by_pos = {o.position: o for o in outcomes}
        for req in self._polls.popleft():
            req.settle([by_pos[m.position] for m in req.messages if m.position in by_pos])

    def close(self) -> None:
        """Stop serving; requests not yet committed are answered 503 so that clients retry."""
        self._closing = True
        pending = [r for poll in self._polls for r in poll]
        while not self._queue.empty():
            pending.append(self._queue.get_nowait())
        for req in pending:
            req.settle(None)
        self._server.should_exit = True
        self._thread.join(5)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(2)
        self._sock.close()

    def _serve(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            await self._server.serve(sockets=[self._sock])

        asyncio.run(main())

    # -- the server's side (its event loop) ----------------------------------------------------
    async def _app(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        rid = uuid.uuid4().hex
        reply = _replier(send, rid, headers.get("x-request-id"))
        if method == "GET":
            if path in ("/livez", "/healthz"):
                return await reply(200, {"ok": True})
            if path == "/readyz":
                reasons = ([] if self.health() is None else [self.health()]) + (
                    self.ready() if self.ready else []
                )
                return await reply(503 if reasons else 200, {"ready": not reasons, "reasons": reasons})
            if path == "/v1/status" and self.status is not None:
                return await reply(200, self.status())
            if self.web is not None and self.web_serves(path):
                query = scope.get("query_string", b"").decode("latin-1")
                return await _send(send, *await asyncio.to_thread(self.web, "GET", path, query, b""))
            return await reply(404, {"error": f"no such path: {path}"})
        kind = _KINDS.get(path)
        if method == "POST" and kind is None and self.web is not None and self.web_serves(path):
            return await self._web_post(path, headers, receive, send, reply)
        if method != "POST" or kind is None:
            code = 405 if path in _KINDS or path in ("/livez", "/readyz", "/healthz", "/v1/status") else 404
            return await reply(code, {"error": f"{method} {path}: use POST /v1/events or /v1/labels"})
        if self._tokens and not self._authorised(headers.get("authorization", "")):
            return await _unauthorised(reply)
        length = headers.get("content-length")
        if length is not None and (not length.isdigit()):
            return await reply(400, {"error": "Content-Length is not a number"})
        if length is not None and int(length) > self.max_payload_bytes:
            return await self._too_large(reply, rid, kind, int(length))
        body = await _read_body(receive, self.max_payload_bytes)
        if body is None:
            return
        if len(body) > self.max_payload_bytes:
            return await self._too_large(reply, rid, kind, len(body))
        ctype = headers.get("content-type", "application/json").split(";")[0].strip().lower()
        items = split_body(bytes(body), ctype in _NDJSON)
        if isinstance(items, str):
            return await reply(400, {"error": items})
        msgs = [RawMessage("http", f"http:{rid}#{i}", b, kind) for i, b in enumerate(items)]
        outcomes = await self._submit(msgs, rid)
        if outcomes is None:
            why = "shutting down" if self._closing else "the daemon did not commit in time"
            return await reply(503, {"error": f"{why}; retry (events are idempotent by event_id)"})
        rejected = [
            {"index": i, "position": o.position, "reason": o.reason}
            for i, o in enumerate(outcomes)
            if o.status == "dead_letter"
        ]
        answer = {"accepted": sum(o.status != "dead_letter" for o in outcomes), "rejected": rejected}
        partial = [
            {"index": i, "position": o.position, "reason": o.reason}
            for i, o in enumerate(outcomes)
            if o.status != "dead_letter" and o.reason
        ]
        if partial:  # stored without a modality whose media failed (media.keep_partial_events)
            answer["partial"] = partial
        await reply(400 if rejected else 200, answer)

    async def _web_post(self, path: str, headers: dict, receive, send, reply) -> None:
        """A writing request of the web face (a silence): behind the ingest tokens, body bounded."""
        if self._tokens and not self._authorised(headers.get("authorization", "")):
            return await _unauthorised(reply)
        body = await _read_body(receive, WEB_MAX_BODY)
        if body is None:
            return
        if len(body) > WEB_MAX_BODY:
            return await reply(413, {"error": "body too large (64 KiB at most)"}, close=True)
        await _send(send, *await asyncio.to_thread(self.web, "POST", path, "", body))

    def _authorised(self, authorization: str) -> bool:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        given = token.strip().encode()
        return any(hmac.compare_digest(given, t) for t in self._tokens)  # each compared in full

    async def _too_large(self, reply, rid: str, kind: str, size: int) -> None:
        reason = f"payload too large: {size} bytes > ingest.max_payload_bytes={self.max_payload_bytes}"
        outcomes = await self._submit([RawMessage("http", f"http:{rid}", None, kind, error=reason)], rid)
        await reply(
            413,
            {
                "error": reason,
                "accepted": 0,
                "rejected": [{"index": 0, "reason": reason}] if outcomes else [],
            },
            close=True,
        )

    async def _submit(self, messages: list[RawMessage], rid: str) -> list[Outcome] | None:
        if self._closing:
            return None
        req = _Request(rid, messages, asyncio.get_running_loop())
        self._queue.put(req)
        try:
            return await asyncio.wait_for(asyncio.shield(req.answer), self.wait_s)
        except asyncio.TimeoutError:
            return None


async def _read_body(receive, limit: int) -> bytes | None:
    """The request's body, read until it ends or passes ``limit`` bytes (the caller answers 413
    then); None when the client went away."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if len(body) > limit or not message.get("more_body"):
            return bytes(body)


async def _unauthorised(reply) -> None:
    await reply(
        401,
        {"error": "a valid bearer token is required (Authorization: Bearer <token>)"},
        extra=[(b"www-authenticate", b'Bearer realm="modalwatch"')],
    )


async def _send(send, code: int, ctype: str, body: bytes) -> None:
    headers = [(b"content-type", ctype.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _replier(send, rid: str, client_rid: str | None):
    async def reply(code: int, obj: dict, extra: list | None = None, close: bool = False) -> None:
        obj = {**obj, "request_id": rid}
        if client_rid:
            obj["client_request_id"] = client_rid
        body = json.dumps(obj).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *(extra or []),
            *([(b"connection", b"close")] if close else []),
        ]
        await send({"type": "http.response.start", "status": code, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return reply
