"""WebhookReceiver: a small local webhook endpoint that checks signatures and keeps what it got.

Used by the demo (it writes ``alerts.jsonl``) and by tests; it can refuse the first N deliveries
to exercise the sender's retries.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from alerts.receivers.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify


class WebhookReceiver:
    def __init__(
        self,
        secret: str | None = None,
        refuse_first: int = 0,
        refuse_status: int = 503,
        out_path: Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        self._secret = secret.encode() if secret else None
        self.refuse_first = refuse_first
        self.refuse_status = refuse_status
        self.out_path = out_path
        self.attempts = 0
        self.received: list[dict] = []  # accepted deliveries: payload, delivery id, signature_valid
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://{host}:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="webhook-receiver", daemon=True
        )

    def __enter__(self) -> "WebhookReceiver":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        recv = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, fmt, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with recv._lock:
                    recv.attempts += 1
                    refuse = recv.attempts <= recv.refuse_first
                    if not refuse:
                        entry = {
                            "path": self.path,
                            "delivery": self.headers.get("X-Modalwatch-Delivery"),
                            "signature_valid": recv._secret is not None
                            and verify(
                                recv._secret,
                                body,
                                self.headers.get(TIMESTAMP_HEADER),
                                self.headers.get(SIGNATURE_HEADER),
                            ),
                            "payload": json.loads(body),
                        }
                        recv.received.append(entry)
                        if recv.out_path is not None:
                            with open(recv.out_path, "a", encoding="utf-8") as fh:
                                fh.write(json.dumps(entry, sort_keys=True) + "\n")
                self.send_response(recv.refuse_status if refuse else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        return Handler
