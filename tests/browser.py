"""Headless Chromium (Debian's ``chromium``, installed by ``make system-deps``) for the tests of
what people see: a page loaded with every request it makes going through a recording proxy, its
DOM after the scripts ran, its console, and a screenshot."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


# Chromium's own services (its component updater and account sign-in), which it asks whatever
# the page is and whatever the flags below say: not the page's requests.
BROWSER_OWN = re.compile(
    r"^(CONNECT |https?://)([a-z0-9-]+\.)*(google\.com|googleapis\.com|gvt1\.com)(:\d+)?(/|$)"
)


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "chromium is not installed: `make system-deps` installs Debian's chromium"
    return path


class RecordingProxy:
    """An HTTP proxy that records every request; it forwards plain GETs to ``allow`` (the daemon
    under test) and refuses everything else (other hosts, CONNECT tunnels)."""

    def __init__(self, allow: str | None = None) -> None:
        self.requests: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                proxy.requests.append(self.path)
                if allow and self.path.startswith(allow):
                    with urllib.request.urlopen(self.path, timeout=60) as r:
                        body = r.read()
                        self.send_response(r.status)
                        for k in ("Content-Type", "Content-Security-Policy"):
                            if r.headers.get(k):
                                self.send_header(k, r.headers[k])
                else:
                    body = b"refused by the test's proxy"
                    self.send_response(502)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_HEAD = do_GET

            def do_CONNECT(self):
                proxy.requests.append("CONNECT " + self.path)
                self.send_response(502)
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.address = f"127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class Loaded:
    dom: str
    console: list[str]  # every console message and uncaught error
    requests: list[str]  # what the page asked the network for
    screenshot: Path


def load(url: str, shot: Path, allow: str | None = None, height: int = 3000) -> Loaded:
    """Load ``url`` twice (the DOM after its scripts, then a screenshot), through the proxy."""
    proxy = RecordingProxy(allow)
    common = [
        chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-extensions", "--disable-default-apps", "--metrics-recording-only", "--no-pings",
        "--disable-domain-reliability", "--disable-client-side-phishing-detection", "--disable-breakpad",
        "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,MediaRouter,Translate,"
        "AutofillServerCommunication,CertificateTransparencyComponentUpdater,SigninInterceptBubble",
        "--allow-pre-commit-input", "--password-store=basic", "--use-mock-keychain",
        f"--proxy-server=http://{proxy.address}", "--proxy-bypass-list=<-loopback>",
        "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000", f"--window-size=1400,{height}",
    ]  # fmt: skip
    try:
        dump = subprocess.run(common + ["--dump-dom", url], capture_output=True, text=True, timeout=120)
        assert dump.returncode == 0, dump.stderr[-2000:]
        page_requests = [r for r in proxy.requests if not BROWSER_OWN.match(r)]
        snap = subprocess.run(
            common + [f"--screenshot={shot}", url], capture_output=True, text=True, timeout=120
        )
        assert snap.returncode == 0 and shot.exists(), snap.stderr[-2000:]
    finally:
        proxy.close()
    console = [line for line in dump.stderr.splitlines() if ":CONSOLE" in line]
    return Loaded(dump.stdout, console, page_requests, shot)
