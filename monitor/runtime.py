"""What a modalwatch process sets up about itself, once, at start-up, visibly — never as a side
effect of importing a module or constructing an object: library loggers' levels, the GC, BLAS
threads, the devices the config names, and the imports an evaluation would otherwise pay for in
its first window. ``Daemon.startup`` and each pipeline worker call ``start_process``."""

from __future__ import annotations

import ctypes
import functools
import gc
import logging
import sys
import time
from datetime import datetime, timezone

from monitor.core.text import printable, printable_lines

log = logging.getLogger("modalwatch.runtime")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class _QuietSkips(logging.Filter):
    """apscheduler warns each time a run is skipped because the previous one is still going: with
    a catch-up of many vintages that is every tick, and expected (max_instances=1 by design)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in record.getMessage()


_QUIET = _QuietSkips()


class _NoNetworkTracebacks(logging.Filter):
    """kafka-python logs a lost broker connection with its traceback (``Error receiving network
    data``): on-call reads "Connection reset by peer", an expected outage, as a crash. The
    record keeps its message and the error's text, without the stack."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, OSError):
            record.msg = f"{record.getMessage()}: {type(exc).__name__}: {exc}"
            record.args, record.exc_info, record.exc_text = None, None, None
        return True


_NETWORK = _NoNetworkTracebacks()


class EscapingFormatter(logging.Formatter):
    """One record, one line: a message's newlines, terminal escapes and other controls are
    written as visible escapes (monitor/core/text.py), whoever's string they came in — a model
    name, a slice value, a path a client asked for. A traceback keeps its lines; the controls
    within them are escaped all the same."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = printable(record.message)
        return super().formatMessage(record)

    def formatException(self, ei) -> str:
        return printable_lines(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return printable_lines(stack_info)


def configure_logging(level: str, fmt: str) -> None:
    """``log_level`` for modalwatch's own loggers; the libraries' never below INFO: their DEBUG
    records carry what must not reach a log (kafka-python's, the fetched bytes — media, SASL
    exchanges; Pillow's, the chunks of each image). The handler it adds writes records with
    ``EscapingFormatter``."""
    root = logging.getLogger()
    before = list(root.handlers)
    logging.basicConfig(level=max(logging.INFO, logging.getLevelName(level)), format=fmt, stream=sys.stderr)
    for handler in root.handlers:
        if handler not in before:
            handler.setFormatter(EscapingFormatter(fmt))
    logging.getLogger("modalwatch").setLevel(level)
    for name in ("kafka.net.transport", "kafka.net.connection", "kafka.conn"):
        lib = logging.getLogger(name)
        if _NETWORK not in lib.filters:
            lib.addFilter(_NETWORK)


def quiet_library_logs() -> None:
    """apscheduler: no line per run (failures still log), no warning per skipped overlapping run."""
    sched = logging.getLogger("apscheduler.scheduler")
    if _QUIET not in sched.filters:
        sched.addFilter(_QUIET)
    logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)


def tune_gc(batch_size: int = 1000) -> None:
    """Fewer cyclic-GC passes. A batch is tens of objects per event, alive until the batch is
    stored: with CPython's default gen-0 threshold (700) each pass re-scanned them, and decoding
    was 2-3x slower (bench/ingest.py). The threshold leaves room for a few batches (capped:
    exceptions' traceback cycles must still be collected). The objects of start-up (modules,
    config) are frozen out of collection."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(min(1_000_000, max(100_000, 100 * batch_size)), 20, 100)


def release_memory() -> None:
    """Give freed memory back to the operating system: the cyclic collector first (``tune_gc``'s
    thresholds let a large batch's cycles live on), then glibc's ``malloc_trim``, which returns
    the free pages of every arena (glibc keeps them otherwise, and a process that once held a
    burst of large messages would keep that size for ever). Elsewhere only the collector runs."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim():
    try:
        return getattr(ctypes.CDLL("libc.so.6"), "malloc_trim", None)
    except OSError:  # not glibc
        return None


class MemoryRelease:
    """Calls ``release_memory`` when the process is idle after ``every_bytes`` of messages have
    passed through it since the last call, at most once per ``every_s``: a burst of hostile or
    large input leaves no resident memory behind, and steady traffic pays for it seldom (a call
    costs milliseconds: what start-up made is frozen out of the collector)."""

    def __init__(self, every_bytes: int = 8 << 20, every_s: float = 5.0) -> None:
        self.every_bytes, self.every_s = every_bytes, every_s
        self.passed = 0
        self._at = 0.0

    def note(self, messages) -> None:
        self.passed += sum(len(m.payload) for m in messages if m.payload)

    def idle(self) -> None:
        if self.passed >= self.every_bytes and time.monotonic() - self._at >= self.every_s:
            self.passed, self._at = 0, time.monotonic()
            release_memory()


def limit_blas_threads() -> None:
    """One BLAS thread: the parallelism is the media threads and the pipeline workers, and the
    BLAS products here are small (true peak); BLAS threads on top oversubscribe the cores."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


def check_devices(config) -> None:
    """A CUDA device the config names must exist: refused at start, naming the key."""
    device = config.media.torch_device
    if device is not None and device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            from monitor.config import ConfigError

            raise ConfigError(f"media.torch_device: {device!r}, but torch sees no CUDA device")


def preload() -> None:
    """Import what evaluations import lazily (scikit-learn for the calibrator's isotonic fit: about
    a second), for a daemon to pay once at start rather than inside its first evaluation; commands
    that only read the schedule (``modalwatch status``) do not pay it."""
    import sklearn.isotonic  # noqa: F401


def start_process(config, evaluates: bool) -> None:
    """A daemon's (``evaluates``) or a pipeline worker's set-up, in this order: devices checked,
    imports paid (before the GC freezes what start-up made), GC tuned, BLAS held to one thread."""
    check_devices(config)
    quiet_library_logs()
    if evaluates:
        preload()
    tune_gc(config.store.batch_size)
    limit_blas_threads()
    log.debug("process set up: gc threshold %s, one BLAS thread", gc.get_threshold())
