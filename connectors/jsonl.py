"""JsonlSource: newline-delimited JSON from files, a directory of ``*.jsonl`` files, or stdin."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import BinaryIO

from monitor.core.messages import DEAD_LETTER_PAYLOAD_MAX, Outcome, RawMessage

log = logging.getLogger("modalwatch.jsonl")


class JsonlSource:
    """Reads lines in file order; position is ``file:line``. With ``follow`` it tails the files
    (and picks up new files in a directory); without, it is ``exhausted`` at the end."""

    name = "jsonl"

    def __init__(self, paths: list[str], follow: bool = False, max_payload_bytes: int = 1_048_576):
        self.paths = list(paths)
        self.follow = follow
        self.max_payload_bytes = max_payload_bytes
        self._open: dict[str, tuple[BinaryIO, int]] = {}
        self._done: set[str] = set()
        self._missing: set[str] = set()
        self.exhausted = False

    def _files(self) -> list[str]:
        out = []
        for p in self.paths:
            if p == "-":
                out.append("-")
                continue
            path = Path(p)
            if path.is_dir():
                out.extend(str(f) for f in sorted(path.glob("*.jsonl")))
            elif path.exists():
                out.append(str(path))
            elif self.follow:
                if p not in self._missing:  # a tailed path may appear later; say so once
                    log.warning("JSONL path %s does not exist (yet); watching for it", p)
                    self._missing.add(p)
            else:
                raise FileNotFoundError(f"no such file or directory: {p}")
        return out

    def poll(self, max_records: int, timeout_s: float = 0.0) -> list[RawMessage]:
        out: list[RawMessage] = []
        for f in self._files():
            if f in self._done:
                continue
            if f not in self._open:
                self._open[f] = (sys.stdin.buffer if f == "-" else open(f, "rb"), 0)
            fh, lineno = self._open[f]
            where = "stdin" if f == "-" else f
            # Lines over the limit are still read whole up to the dead-letter cap, so that a
            # dead letter keeps them for a replay after the limit is raised; longer ones are dropped.
            cap = max(self.max_payload_bytes, DEAD_LETTER_PAYLOAD_MAX)
            while len(out) < max_records:
                pos = fh.tell() if f != "-" else None
                line = fh.readline(cap + 2)
                if not line:
                    if not self.follow or f == "-":
                        self._done.add(f)
                    break
                if not line.endswith(b"\n") and self.follow and f != "-" and len(line) <= cap:
                    fh.seek(pos)  # a line still being written: read it whole next time
                    break
                lineno += 1
                error = None
                if len(line.rstrip(b"\r\n")) > cap:
                    error = (
                        f"payload too large: line exceeds ingest.max_payload_bytes={self.max_payload_bytes}"
                    )
                    while line and not line.endswith(b"\n"):
                        line = fh.readline(1 << 20)
                    line = None
                elif not line.strip():
                    continue
                out.append(
                    RawMessage(
                        self.name, f"{where}:{lineno}", line.rstrip(b"\r\n") if line else None, error=error
                    )
                )
            self._open[f] = (fh, lineno)
            if len(out) >= max_records:
                break
        self.exhausted = not self.follow and all(f in self._done for f in self._files())
        return out

    def commit(self, outcomes: list[Outcome]) -> None:
        pass  # re-reading a file is harmless: writes are idempotent by event_id and dead-letter position

    def close(self) -> None:
        for f, (fh, _) in self._open.items():
            if f != "-":
                fh.close()
        self._open.clear()
