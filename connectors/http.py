"""The daemon's HTTP server: ingest (``POST /v1/events``, ``/v1/labels``), health, and the web
face's rows (monitor/web.py), in one Starlette route table on uvicorn.

Each row says who may call it (monitor/core/web.py): ``open`` (``/livez``, ``/healthz``,
``/readyz``, ``/v1/status``), ``read`` (the pages, the JSON API, ``/metrics``) or ``write``
(ingest, silences). Authentication, origin checks and headers are middleware, so each rule lives
once:

- **write** takes ``Authorization: Bearer <token>`` with a write token wherever tokens are
  configured. Without tokens (loopback only, or ``auth: off``), a write must be a request no web
  page can send unasked: a JSON or NDJSON ``Content-Type`` (text/plain, forms and multipart are
  what a page sends without a preflight), no ``Origin`` but the daemon's own, no
  ``Sec-Fetch-Site: cross-site``/``same-site``.
- **read** takes a write or a read token, as ``Bearer`` or as the password of HTTP Basic (so a
  browser opened from a notification asks for it), wherever tokens are configured and
  ``reads: protected`` (the default).
- Served on loopback without tokens, only loopback host names are answered (``Host``), so a page
  of another site that re-binds its name to 127.0.0.1 reads nothing.
- Every answer carries ``Content-Security-Policy`` (scripts only with this response's nonce),
  ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``, ``Referrer-Policy: no-referrer``
  and ``Cache-Control: no-store``. HEAD is answered for every GET row, OPTIONS with ``Allow``.

Ingest bodies are one JSON document — an object (one item) or an array of items — or, with
``Content-Type: application/x-ndjson`` (or ``application/jsonl``), one JSON object per line. An
answer comes after the items are committed to the store: 200 when every item was stored (or was
already there), 400 with the reason of each rejected item (the good ones are stored all the same;
an empty body is a dead letter too), 413 when the body exceeds ``ingest.max_payload_bytes``, 408
when it does not arrive within ``body_timeout``, 503 when the daemon cannot commit in time or is
stopping. Every request gets a server-made ``request_id`` (its dead letters' positions:
``http:<id>#<index>``); a client's ``X-Request-Id`` is only echoed, as ``client_request_id``.

Connections are bounded: a connection that has not sent a whole request head within
``header_timeout`` (from its start, or from its last answer) is closed; at ``max_connections``
(and never above what the process's file-descriptor limit leaves) a new connection closes the
oldest idle one, or is refused with a 503 when none is idle. Each of these conditions is logged
once a minute with its count, never once per connection.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hmac
import json
import logging
import queue
import resource
import secrets
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Sequence

from pydantic_core import from_json, to_json
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from uvicorn.protocols.http.h11_impl import H11Protocol

from monitor.core.messages import Outcome, RawMessage
from monitor.core.text import printable
from monitor.core.web import JSON, Access, WebRequest, WebRoute

log = logging.getLogger("modalwatch.http")

_KINDS = {"/v1/events": "inference", "/v1/labels": "label"}
_NDJSON = ("application/x-ndjson", "application/jsonl", "application/ndjson", "application/json-lines")
# what a web page can send to another origin without asking first (a CORS "simple" request) —
# and what it sends when it sets no Content-Type at all
_SIMPLE_TYPES = ("", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data")
BACKLOG = 2048
WEB_MAX_BODY = 65536  # a silence is a few hundred bytes
FD_RESERVE = 128  # descriptors kept for the store, files, Kafka and the workers' pipes
LOG_EVERY_S = 60.0


@dataclass(frozen=True)
class HttpLimits:
    """How long and how many: ``header_timeout_s`` for a whole request head (from a connection's
    start or its last answer), ``body_timeout_s`` for a whole body, ``keep_alive_s`` an idle
    kept-alive connection, ``max_connections`` open at once."""

    max_connections: int = 1000
    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0
    keep_alive_s: float = 5.0


@dataclass(frozen=True)
class AccessPolicy:
    """Who may do what (``HttpSource``'s tokens and rules, checked for each request)."""

    write_tokens: tuple[bytes, ...] = ()
    read_tokens: tuple[bytes, ...] = ()
    protect_reads: bool = True
    hosts: tuple[str, ...] = ()  # the Host names answered; empty: any

    def refusal(self, access: Access, request: Request) -> Response | None:
        """Why ``request`` may not call a row of ``access`` (an answer), or None when it may."""
        if access == "open":
            return None
        kind, secret = _credentials(request.headers.get("authorization", ""))
        if access == "read":
            if not (self.protect_reads and (self.write_tokens or self.read_tokens)):
                return None
            if secret is not None and _any_equal(secret, self.write_tokens + self.read_tokens):
                return None
            return _unauthorised("a token is required to read (Bearer, or as the password of Basic)")
        if self.write_tokens:
            # Basic is what a browser re-sends by itself, to any page's form: never a write
            if kind == "bearer" and secret is not None and _any_equal(secret, self.write_tokens):
                return None
            return _unauthorised("a valid bearer token is required (Authorization: Bearer <token>)")
        return _cross_site(request)


def _credentials(authorization: str) -> tuple[str, bytes | None]:
    scheme, _, value = authorization.strip().partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if scheme == "bearer" and value:
        return "bearer", value.encode()
    if scheme == "basic" and value:
        try:
            _, _, password = base64.b64decode(value, validate=True).partition(b":")
        except ValueError:
            return "basic", None
        return "basic", password or None
    return scheme, None


def _any_equal(given: bytes, tokens: tuple[bytes, ...]) -> bool:
    hits = [hmac.compare_digest(given, t) for t in tokens]  # each compared in full
    return any(hits)


def _cross_site(request: Request) -> Response | None:
    """A write without tokens: refused when a web page could have sent it (issue 24's CSRF)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in _SIMPLE_TYPES:
        return _error(
            415,
            f"Content-Type {ctype or '(none)'} refused: without a token, a write must say "
            "Content-Type: application/json (or application/x-ndjson) — the kinds a web page cannot send "
            "to this port unasked",
        )
    origin = request.headers.get("origin")
    if origin is not None:
        own = f"{request.url.scheme}://{request.headers.get('host', '')}".lower()
        if origin.lower() != own:
            return _error(403, f"Origin {printable(origin)[:200]} is not this daemon's ({own}): refused")
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return _error(403, "a request from another site (Sec-Fetch-Site) cannot write here")
    return None


def _error(status: int, message: str, headers: dict | None = None) -> Response:
    return Response(json.dumps({"error": message}), status, headers=headers, media_type=JSON)


def _unauthorised(message: str) -> Response:
    headers = {"www-authenticate": 'Bearer realm="modalwatch", Basic realm="modalwatch", charset="UTF-8"'}
    return _error(401, message, headers)


class OncePerMinute(logging.Filter):
    """A logger's warnings at most once a minute per message, with the count of those left out:
    a client can open a million connections or send a million bad requests, not write a million
    log lines (uvicorn's own warnings, and the connection limits' below)."""

    def __init__(self) -> None:
        super().__init__()
        self._last: dict[str, float] = {}
        self._left_out: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = record.getMessage()
        now = time.monotonic()
        if now - self._last.get(key, -LOG_EVERY_S) < LOG_EVERY_S:
            self._left_out[key] = self._left_out.get(key, 0) + 1
            return False
        self._last[key] = now
        n = self._left_out.pop(key, 0)
        if n:
            record.msg = f"{record.msg} ({n} more such in the last minute)"
        return True


_ONCE_A_MINUTE = OncePerMinute()
_CONNECTIONS_LOG = logging.getLogger("modalwatch.http.connections")


# -- connections -------------------------------------------------------------------------------
class Gate:
    """The open connections of one server, oldest first, and how many may be: at the cap a new
    one closes the oldest idle one (or is refused when every one is busy); a connection without a
    whole request head in time is closed. What happened is logged once a minute per condition,
    with its count. Used on the server's event loop only."""

    def __init__(self, limits: HttpLimits) -> None:
        self.limits = limits
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        fd_room = soft - FD_RESERVE if soft != resource.RLIM_INFINITY else limits.max_connections
        self.cap = max(16, min(limits.max_connections, fd_room))
        self.open: dict[H11Protocol, None] = {}  # insertion order: oldest first
        self.pending = 0  # accepted, not yet made into a connection

    @staticmethod
    def note(message: str) -> None:
        _CONNECTIONS_LOG.warning("HTTP: %s", message)  # once a minute (OncePerMinute)

    def room(self) -> bool:
        """Whether one more connection may be accepted now: under the cap, or once the oldest
        idle connection is closed to make room."""
        if len(self.open) + self.pending < self.cap:
            return True
        idle = next((c for c in self.open if c.is_idle()), None)
        if idle is None:
            return False
        self.note(f"{self.cap} connections open (the cap): the oldest idle ones closed")
        self.open.pop(idle, None)
        idle.transport.close()
        return True


_REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b'content-length: 58\r\n\r\n{"error": "too many connections; retry in a few seconds"}\n'
)


class Acceptor:
    """Accepts connections from the listening socket only while ``gate`` has room (asyncio's own
    loop accepts until the process runs out of descriptors, and then logs each failed accept)."""

    PER_WAKEUP = 64

    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop, factory, gate: Gate) -> None:
        self.sock, self.loop, self.factory, self.gate = sock, loop, factory, gate
        self._reading = False
        self.stopped = False

    def start(self) -> None:
        self.sock.setblocking(False)
        self._resume()

    def stop(self) -> None:
        self.stopped = True
        self._pause()

    def _resume(self) -> None:
        if not self.stopped and not self._reading:
            self.loop.add_reader(self.sock.fileno(), self._ready)
            self._reading = True

    def _pause(self, for_s: float | None = None) -> None:
        if self._reading:
            self.loop.remove_reader(self.sock.fileno())
            self._reading = False
        if for_s is not None:
            self.loop.call_later(for_s, self._resume)

    def _ready(self) -> None:
        for _ in range(self.PER_WAKEUP):
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as e:  # out of descriptors or buffers: the backlog holds the rest
                self.gate.note(f"accepting a connection failed ({e.strerror}): paused 0.5 s")
                self._pause(0.5)
                return
            # room asked after the accept: an idle connection is closed only for one that came
            # (the one above the cap is covered by FD_RESERVE until the closed one's descriptor goes)
            if not self.gate.room():
                self.gate.note(f"{self.gate.cap} connections open, all busy: new ones refused with 503")
                try:
                    conn.send(_REFUSED)
                except OSError:
                    pass
                conn.close()
                continue
            conn.setblocking(False)
            self.gate.pending += 1
            task = self.loop.create_task(self.loop.connect_accepted_socket(self.factory, conn))
            task.add_done_callback(self._made)

    def _made(self, task: asyncio.Task) -> None:
        if task.cancelled() or task.exception() is not None:
            self.gate.pending -= 1  # connection_made never ran


def guarded_protocol(gate: Gate) -> type[H11Protocol]:
    """uvicorn's h11 protocol, counted by ``gate``, with a deadline for each request head."""

    class Guarded(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None
        _timed_cycle = None

        def connection_made(self, transport) -> None:
            gate.pending = max(0, gate.pending - 1)
            gate.open[self] = None
            super().connection_made(transport)
            self._arm()

        def connection_lost(self, exc) -> None:
            gate.open.pop(self, None)
            self._disarm()
            super().connection_lost(exc)

        def handle_events(self) -> None:
            super().handle_events()
            if self.cycle is not None and self.cycle is not self._timed_cycle:
                self._timed_cycle = self.cycle  # a whole head came: the handler's time now
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()  # the next request's head, on a kept-alive connection

        def is_idle(self) -> bool:
            return self.cycle is None or self.cycle.response_complete

        def _arm(self) -> None:
            self._disarm()
            self._head_timer = self.loop.call_later(gate.limits.header_timeout_s, self._head_late)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_late(self) -> None:
            self._head_timer = None
            if self.is_idle() and not self.transport.is_closing():
                gate.note(
                    f"a connection sent no whole request head in {gate.limits.header_timeout_s:g} s: closed",
                )
                self.transport.close()

    return Guarded


# -- middleware ----------------------------------------------------------------------------------
_HTML_CSP = (
    "default-src 'none'; script-src 'nonce-{}'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_EVERY_ANSWER = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]
_NOT_HTML = [(b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"), *_EVERY_ANSWER]


def page_nonce(scope) -> str:
    """The nonce of this answer's scripts (made when a handler first asks: an answer that runs
    no script needs none)."""
    state = scope.setdefault("state", {})
    if "nonce" not in state:
        state["nonce"] = secrets.token_urlsafe(16)
    return state["nonce"]


class SecurityHeaders:
    """The headers every answer carries; an HTML answer's policy runs only the scripts that
    carry its nonce (``page_nonce``), or none."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                html = any(k == b"content-type" and v.startswith(b"text/html") for k, v in headers)
                if html:
                    csp = _HTML_CSP.format(scope.get("state", {}).get("nonce", "none-given"))
                    headers += [(b"content-security-policy", csp.encode()), *_EVERY_ANSWER]
                else:
                    headers += _NOT_HTML
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Guard:
    """The route table's dispatch: host names, OPTIONS, 404 and 405, each row's access
    (``AccessPolicy``), then the row's endpoint — a request is matched once."""

    def __init__(self, routes: list[Route], access: AccessPolicy) -> None:
        self.routes, self.access = routes, access
        # rows without path parameters, by path: most requests are found here without a regex
        self.exact: dict[str, list[Route]] = {}
        for r in routes:
            if not r.param_convertors:
                self.exact.setdefault(r.path, []).append(r)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        answer, row = self._dispatch(scope, receive)
        if answer is not None:
            return await answer(scope, receive, send)
        started = False

        async def watched(message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await row.handle(scope, receive, watched)
        except Exception as exc:  # noqa: BLE001 - one request's failure is that request's 500
            log.error(
                "%s %s failed: %s: %s", scope["method"], scope["path"], type(exc).__name__, exc, exc_info=exc
            )
            if not started:
                await _error(500, "internal error; the daemon's log says why")(scope, receive, send)

    def _matched(self, scope) -> list[tuple[Route, Match, dict]]:
        rows = self.exact.get(scope["path"])
        if rows is not None:
            return [
                (r, Match.FULL if scope["method"] in (r.methods or ()) else Match.PARTIAL, {}) for r in rows
            ]
        return [(r, m, child) for r in self.routes for m, child in [r.matches(scope)] if m != Match.NONE]

    def _dispatch(self, scope, receive) -> tuple[Response | None, Route | None]:
        """(an answer, None) where the request goes no further; (None, its row) where it may."""
        request = Request(scope, receive)
        if self.access.hosts:
            host = _host_name(request.headers.get("host", ""))
            if host not in self.access.hosts:
                return _error(
                    421,
                    f"Host {printable(host)[:100]!r} is not served here (ingest.http.allowed_hosts); "
                    "served on loopback without tokens, only loopback names are answered",
                ), None
        matched = self._matched(scope)
        if not matched:
            return _error(404, f"no such path: {printable(scope['path'])[:300]}"), None
        allowed = ", ".join(sorted({m for r, _, _ in matched for m in r.methods or ()}))
        if scope["method"] == "OPTIONS":
            return Response(status_code=204, headers={"allow": f"{allowed}, OPTIONS"}), None
        full = next(((r, child) for r, m, child in matched if m == Match.FULL), None)
        if full is None:
            message = f"{scope['method']} {printable(scope['path'])[:300]}: not allowed here (use {allowed})"
            return _error(405, message, {"allow": allowed}), None
        row, child = full
        refusal = self.access.refusal(getattr(row, "access", "write"), request)
        if refusal is not None:
            return refusal, None
        scope.update(child)  # the path's parameters
        return None, row


def _host_name(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


# -- the server -----------------------------------------------------------------------------------
class _Row(Route):
    """A Starlette route that says who may call it."""

    def __init__(self, path: str, endpoint, methods: Sequence[str], access: Access, name: str = "") -> None:
        super().__init__(path, endpoint, methods=list(methods), name=name or None)
        self.access = access


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


class _BodyLate(Exception):
    pass


async def _read_body(request: Request, limit: int, timeout_s: float) -> bytes | None:
    """The body, read until it ends or passes ``limit`` bytes (the caller answers 413 then);
    None when the client went away; ``_BodyLate`` when it does not arrive within ``timeout_s``."""
    body = bytearray()
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                message = await request.receive()
                if message["type"] == "http.disconnect":
                    return None
                body += message.get("body", b"")
                if len(body) > limit or not message.get("more_body"):
                    return bytes(body)
    except TimeoutError:
        raise _BodyLate from None


class HttpSource:
    """A source (``poll``/``commit``) fed by ``POST /v1/events`` and ``/v1/labels``, and the server
    of the daemon's whole route table: health, ingest, and the ``routes`` a caller adds (the web
    face's pages and API)."""

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
        routes: Sequence[WebRoute] = (),
        read_tokens: Sequence[str] = (),
        protect_reads: bool = True,
        allowed_hosts: Sequence[str] = (),
        limits: HttpLimits = HttpLimits(),
    ):
        import uvicorn

        self.max_payload_bytes = max_payload_bytes
        self.status = status
        self.ready = ready  # the reasons the daemon cannot take traffic (none: ready)
        self.wait_s = wait_s
        self.limits = limits
        loopback = host in LOOPBACK_NAMES or host.startswith("127.")
        self.access = AccessPolicy(
            write_tokens=tuple(t.encode() for t in tokens),
            read_tokens=tuple(t.encode() for t in read_tokens),
            protect_reads=protect_reads,
            # without tokens on loopback: loopback names only (DNS re-binding)
            hosts=(
                tuple(LOOPBACK_NAMES) + (host,) + tuple(h.lower() for h in allowed_hosts)
                if loopback and not tokens and not read_tokens
                else ()
            ),
        )
        self._queue: queue.Queue[_Request] = queue.Queue()
        # the requests of each poll not yet committed, oldest first (the daemon commits polls in order)
        self._polls: deque[list[_Request]] = deque()
        self._closing = False
        self.routes = self._table(routes)
        # the headers' middleware around the table's dispatch (hosts, access, 404/405/OPTIONS)
        self.app = SecurityHeaders(Guard(self.routes, self.access))
        self.gate = Gate(limits)
        for name in ("uvicorn.error", _CONNECTIONS_LOG.name):
            if _ONCE_A_MINUTE not in logging.getLogger(name).filters:
                logging.getLogger(name).addFilter(_ONCE_A_MINUTE)
        # bound here, so that a port in use is an error at construction and port 0 is known at once
        self._sock = socket.create_server((host, port), backlog=BACKLOG)
        self.host, self.port = self._sock.getsockname()[:2]
        self._server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                interface="asgi3",
                proxy_headers=False,
                lifespan="off",
                http=guarded_protocol(self.gate),
                loop="asyncio",
                ws="none",
                log_level="warning",
                access_log=False,
                server_header=False,
                timeout_keep_alive=limits.keep_alive_s,
                backlog=BACKLOG,
                timeout_graceful_shutdown=2,
            )
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._acceptor: Acceptor | None = None
        self._thread = threading.Thread(target=self._serve, name="modalwatch-http", daemon=True)

    def _table(self, routes: Sequence[WebRoute]) -> list[Route]:
        """The route table: health, ingest, then the caller's rows."""
        table: list[Route] = [
            _Row("/livez", self._livez, ["GET"], "open"),
            _Row("/healthz", self._livez, ["GET"], "open"),
            _Row("/readyz", self._readyz, ["GET"], "open"),
            _Row("/v1/status", self._status, ["GET"], "open"),
            _Row("/v1/events", self._ingest, ["POST"], "write"),
            _Row("/v1/labels", self._ingest, ["POST"], "write"),
        ]
        for r in routes:
            table.append(_Row(r.path, self._web_endpoint(r), r.methods, r.access, r.name))
        return table

    # -- the daemon's side ---------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self._server.started:
            raise OSError(f"HTTP ingest on {self.host}:{self.port} did not start")
        a = self.access
        log.info(
            "HTTP on http://%s:%d: writes %s, reads %s; at most %d connections",
            self.host,
            self.port,
            "need a bearer token" if a.write_tokens else "need a JSON Content-Type and no foreign Origin",
            "need a token" if a.protect_reads and (a.write_tokens or a.read_tokens) else "are open",
            self.gate.cap,
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
        if self._loop is not None and self._thread.is_alive():
            try:  # no new connection while the open ones are finished
                self._loop.call_soon_threadsafe(self._stop_accepting)
            except RuntimeError:
                pass
        self._thread.join(5)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(2)
        self._sock.close()

    def _stop_accepting(self) -> None:
        if self._acceptor is not None:
            self._acceptor.stop()

    def _serve(self) -> None:
        async def main() -> None:
            self._loop = loop = asyncio.get_running_loop()
            serving = asyncio.create_task(self._server.serve(sockets=[]))  # our acceptor listens
            while not self._server.started and not serving.done():
                await asyncio.sleep(0.005)
            if self._server.started:
                server, config = self._server, self._server.config
                factory = functools.partial(
                    config.http_protocol_class,
                    config=config,
                    server_state=server.server_state,
                    app_state=server.lifespan.state,
                )
                self._acceptor = Acceptor(self._sock, loop, factory, self.gate)
                self._acceptor.start()
            try:
                await serving
            finally:
                self._stop_accepting()

        asyncio.run(main())

    # -- the server's side (its event loop) ----------------------------------------------------
    async def _livez(self, request: Request) -> Response:
        return _reply(request, 200, {"ok": True})

    async def _readyz(self, request: Request) -> Response:
        reasons = ([] if self.health() is None else [self.health()]) + (self.ready() if self.ready else [])
        return _reply(request, 503 if reasons else 200, {"ready": not reasons, "reasons": reasons})

    async def _status(self, request: Request) -> Response:
        if self.status is None:
            return _reply(request, 404, {"error": "no status in this process"})
        return _reply(request, 200, self.status())

    async def _ingest(self, request: Request) -> Response:
        kind = _KINDS[request.url.path]
        length = request.headers.get("content-length")
        if length is not None and not length.isdigit():
            return _reply(request, 400, {"error": "Content-Length is not a number"}, close=True)
        if length is not None and int(length) > self.max_payload_bytes:
            return await self._rejected_whole(request, kind, 413, self._too_large(int(length)))
        try:
            body = await _read_body(request, self.max_payload_bytes, self.limits.body_timeout_s)
        except _BodyLate:
            return self._body_late(request)
        if body is None:
            return Response(status_code=400)  # nobody reads it: the client went away
        if len(body) > self.max_payload_bytes:
            return await self._rejected_whole(request, kind, 413, self._too_large(len(body)))
        ctype = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        items = split_body(body, ctype in _NDJSON)
        if isinstance(items, str):  # nothing to store; the dead letter says it came
            return await self._rejected_whole(request, kind, 400, items, body)
        rid = _request_id(request)
        msgs = [RawMessage("http", f"http:{rid}#{i}", b, kind) for i, b in enumerate(items)]
        outcomes = await self._submit(msgs, rid)
        if outcomes is None:
            return self._not_committed(request)
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
        return _reply(request, 400 if rejected else 200, answer)

    def _too_large(self, size: int) -> str:
        return f"payload too large: {size} bytes > ingest.max_payload_bytes={self.max_payload_bytes}"

    async def _rejected_whole(
        self, request: Request, kind: str, status: int, reason: str, body: bytes | None = None
    ) -> Response:
        """A body that holds no item to store (too large, empty): one dead letter with the reason
        (and the bytes, where they are few), and an answer saying it."""
        rid = _request_id(request)
        letter = RawMessage("http", f"http:{rid}", body or None, kind, error=reason)
        outcomes = await self._submit([letter], rid)
        if outcomes is None:
            return self._not_committed(request)
        rejected = [{"index": 0, "position": letter.position, "reason": reason}] if outcomes else []
        return _reply(
            request, status, {"error": reason, "accepted": 0, "rejected": rejected}, close=status == 413
        )

    def _body_late(self, request: Request) -> Response:
        self.gate.note(
            f"a request body did not arrive within {self.limits.body_timeout_s:g} s: answered 408",
        )
        why = f"the body did not arrive within {self.limits.body_timeout_s:g} s (Content-Length too large?)"
        return _reply(request, 408, {"error": why}, close=True)

    def _not_committed(self, request: Request) -> Response:
        why = "shutting down" if self._closing else "the daemon did not commit in time"
        return _reply(request, 503, {"error": f"{why}; retry (events are idempotent by event_id)"})

    async def _submit(self, messages: list[RawMessage], rid: str) -> list[Outcome] | None:
        if self._closing:
            return None
        req = _Request(rid, messages, asyncio.get_running_loop())
        self._queue.put(req)
        try:
            return await asyncio.wait_for(asyncio.shield(req.answer), self.wait_s)
        except asyncio.TimeoutError:
            return None

    def _web_endpoint(self, row: WebRoute):
        """A row of the caller's, answered in a worker thread (a page may read the store for a
        while: the event loop goes on serving ingest meanwhile)."""

        async def endpoint(request: Request) -> Response:
            body = b""
            if request.method in ("POST", "PUT", "PATCH"):
                try:
                    read = await _read_body(request, WEB_MAX_BODY, self.limits.body_timeout_s)
                except _BodyLate:
                    return self._body_late(request)
                if read is None:
                    return Response(status_code=400)
                if len(read) > WEB_MAX_BODY:
                    return _error(413, "body too large (64 KiB at most)", {"connection": "close"})
                body = read
            req = WebRequest(
                method=request.method,
                path=request.url.path,
                params={k: str(v) for k, v in request.path_params.items()},
                query=dict(request.query_params),
                body=body,
                nonce=page_nonce(request.scope),
            )
            status, ctype, out = await asyncio.to_thread(row.handler, req)
            return Response(out, status, media_type=ctype)

        return endpoint


def _request_id(request: Request) -> str:
    state = request.scope.setdefault("state", {})
    return state.setdefault("request_id", uuid.uuid4().hex)


def _reply(request: Request, status: int, obj: dict, close: bool = False) -> Response:
    obj = {**obj, "request_id": _request_id(request)}
    client_rid = request.headers.get("x-request-id")
    if client_rid:
        obj["client_request_id"] = client_rid
    return Response(
        json.dumps(obj), status, headers={"connection": "close"} if close else None, media_type=JSON
    )
