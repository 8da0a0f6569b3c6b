"""What the daemon's HTTP server (connectors/http.py) and the parts it serves share: a route is a
row — its path, its methods, who may call it, what answers it — and the server keeps them all in
one table, with authentication, origin checks and headers applied to every row alike."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal

Access = Literal["open", "read", "write"]
# open: anyone (health); read: the read tokens or the write tokens where tokens are configured;
# write: a write token, or, on loopback without tokens, a request no web page can send

Answer = tuple[int, str, bytes]  # status, content type, body
HTML = "text/html; charset=utf-8"
JSON = "application/json"


@dataclass(frozen=True)
class WebRequest:
    """One request as a route's handler sees it: already authorised, its body read and bounded."""

    method: str
    path: str
    params: dict[str, str]  # the path's parameters (``/alerts/{fingerprint}``)
    query: dict[str, str]  # the last value of each query parameter
    body: bytes = b""
    nonce: str = ""  # the Content-Security-Policy nonce this response's scripts must carry


@dataclass(frozen=True)
class WebRoute:
    """A row of the route table. ``path`` in Starlette's syntax; GET rows answer HEAD too."""

    path: str
    methods: tuple[str, ...]
    access: Access
    handler: Callable[[WebRequest], Answer] = field(compare=False)
    name: str = ""
