"""``run``, ``ingest``, ``migrate``: the daemon, a one-off ingest, the schema."""

from __future__ import annotations

import logging
import os

from monitor.cli.common import opened_store


def cmd_run(args, cfg) -> int:
    from monitor.daemon import Daemon
    from monitor.wiring import build_senders, build_sources

    with opened_store(cfg, wait=True) as store:
        daemon: Daemon | None = None
        sources = build_sources(
            cfg,
            should_stop=lambda: daemon is not None and daemon.should_exit,
            status=lambda: dict(daemon.stats) if daemon else {},
            ready=lambda: daemon.readiness() if daemon else ["starting"],
            web=lambda: daemon.web if daemon else None,
        )
        daemon = Daemon(cfg, sources, store, build_senders(cfg))
        daemon.install_signal_handlers()
        daemon.run()
    if daemon.evaluation_left:
        # the evaluation thread would hold the interpreter's exit until it finished: its work is
        # one transaction, rolled back with the connection, and claimed again after a restart
        logging.shutdown()
        os._exit(0)
    return 0


def cmd_ingest(args, cfg) -> int:
    from connectors.jsonl import JsonlSource
    from monitor.daemon import Daemon

    with opened_store(cfg) as store:
        src = JsonlSource(args.paths, follow=False, max_payload_bytes=cfg.ingest.max_payload_bytes)
        daemon = Daemon(cfg, [src], store, {}, stop_when_idle=True, evaluate=False)
        daemon.install_signal_handlers()
        daemon.run()
    st = daemon.stats
    partial = f" ({st['partial']} without a modality whose media failed)" if st["partial"] else ""
    print(
        f"read {st['messages']}: stored {st['stored']}{partial}, already stored {st['duplicate']}, "
        f"dead letters {st['dead_letter']}"
    )
    return 0


def cmd_migrate(args, cfg) -> int:
    with opened_store(cfg, migrate=False) as store:
        applied = store.migrate()
        print(
            f"{store.describe()}: applied {len(applied)}"
            f" migration(s){': ' + ', '.join(applied) if applied else ''}"
        )
    return 0


def add_commands(add) -> None:
    add("run", cmd_run, "run the daemon")
    sp = add("ingest", cmd_ingest, "ingest JSONL files, directories or - (stdin) once")
    sp.add_argument("paths", nargs="+")
    add("migrate", cmd_migrate, "apply the database migrations")
