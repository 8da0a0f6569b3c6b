"""``schema``, ``check-config``, ``signals``, ``demo``: the contract, a config, files, a replay."""

from __future__ import annotations

import json
from pathlib import Path


def cmd_schema(args, cfg) -> int:
    from monitor.core.events import json_schemas

    print(json.dumps(json_schemas(), indent=2))
    return 0


def cmd_check_config(args, cfg) -> int:
    print(
        f"{args.file}: ok (store {cfg.store.kind}, {len(cfg.alerts.rules)} rules, "
        f"{len(cfg.alerts.webhooks)} webhooks)"
    )
    return 0


def cmd_signals(args, cfg) -> int:
    from monitor.media import describe_file

    failed = 0
    for f in args.files:
        out = describe_file(Path(f))
        failed += "error" in out
        print(json.dumps(out, sort_keys=True))
    return 1 if failed else 0


class MissingExtra(RuntimeError):
    """An optional part is not installed; the message names the extra that brings it."""


def cmd_demo(args, cfg) -> int:
    try:
        import skimage.data  # noqa: F401 - the demo's photographs are scikit-image's sample images
    except ImportError:
        raise MissingExtra("modalwatch demo needs the demo extra: pip install 'modalwatch[demo]'") from None
    from monitor.demo import run_demo

    summary = run_demo(Path(args.out), days=args.days, seed=args.seed, events_per_day=args.events_per_day)
    print(json.dumps(summary, indent=1))
    print(f"\nreport: {Path(args.out).resolve() / 'report.html'}")
    return 0


def add_commands(add) -> None:
    add("schema", cmd_schema, "print the JSON Schema of the events")
    sp = add("check-config", cmd_check_config, "validate a config file")
    sp.add_argument("file")
    sp = add(
        "signals", cmd_signals, "print the quality signals of image, audio or text files (one JSON line each)"
    )
    sp.add_argument("files", nargs="+")
    sp = add("demo", cmd_demo, "replay a synthetic multimodal stream through the real pipeline")
    sp.add_argument("--out", default="demo-out")
    sp.add_argument("--days", type=int, default=28)
    sp.add_argument("--seed", type=int, default=7)
    sp.add_argument("--events-per-day", type=int, default=2000)
