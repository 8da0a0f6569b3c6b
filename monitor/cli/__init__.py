"""``modalwatch`` command line: one module per command group, each adding its commands. Only this
package exits; every command closes its store however it ends."""

from __future__ import annotations

import argparse
import os
import sys

from monitor.cli import alerts, daemon, dlq, evaluation, review, tools
from monitor.cli.common import TerminalSafe
from monitor.config import LOG_FORMAT, ConfigError, load_config
from monitor.runtime import configure_logging

# the order of `modalwatch --help`
GROUPS = (daemon, evaluation, dlq, alerts, review, tools)


def build_parser() -> argparse.ArgumentParser:
    # --config is accepted before or after any (sub)command.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        "-c",
        default=argparse.SUPPRESS,
        help="YAML config (default: the embedded default, config/default.yaml)",
    )
    p = argparse.ArgumentParser(
        prog="modalwatch", description="Monitor a deployed multimodal model.", parents=[common]
    )
    sub = p.add_subparsers(dest="cmd", required=True)

    def add(name, fn, help_, parent=sub):
        sp = parent.add_parser(name, help=help_, parents=[common])
        if fn is not None:
            sp.set_defaults(fn=fn)
        return sp

    for group in GROUPS:
        group.add_commands(add)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    path = getattr(args, "config", None)
    if args.cmd == "check-config":
        path = args.file
    try:
        cfg = load_config(path)
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    configure_logging(cfg.log_level, LOG_FORMAT)
    if sys.stdout.isatty():
        sys.stdout = TerminalSafe(sys.stdout)
    try:
        return args.fn(args, cfg)
    except tools.MissingExtra as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # the reader went away (`modalwatch alerts list | head`): nothing to say, as cat says nothing
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as e:  # noqa: BLE001 - only the expected kinds are turned into a message
        if isinstance(e, (ValueError, OSError)) or type(e).__module__.split(".")[0] in (
            "psycopg",
            "kafka",
            "sqlite3",
        ):
            print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
            return 1
        raise
