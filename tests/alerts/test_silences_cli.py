"""`modalwatch silence add|list|expire` and `modalwatch alerts list` on a real store: a silence
mutes the notifications of the alerts it matches until it is expired; history stays queryable."""

import json
import subprocess

from alerts.receiver import WebhookReceiver
from connectors.sqlite import SqliteStore
from monitor.config import parse_config
from monitor.daemon import Daemon
from monitor.wiring import build_senders
from tests.alerts.test_webhook import EVALUATION, _load
from tests.conftest import ROOT, modalwatch_cmd


def _cli(cfg_path, *args):
    out = subprocess.run(
        modalwatch_cmd() + [*args, "--config", str(cfg_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out


def test_silence_mutes_matching_alerts_until_expired_and_alerts_list_shows_history(tmp_path):
    with WebhookReceiver() as recv:
        text = f"""
store: {{path: {tmp_path / "mw.db"}}}
{EVALUATION}alerts:
  webhooks: [{{name: oncall, kind: alertmanager, url: "{recv.url}"}}]
  route: {{receiver: oncall, group_wait: 0s, group_interval: 0s, group_by: [alertname, slice]}}
  rules: [{{name: BrightnessDrift, metric: psi, signal: image.brightness, threshold: 0.25}}]
"""
        cfg_path = tmp_path / "c.yaml"
        cfg_path.write_text(text)
        cfg = parse_config(text)
        store = SqliteStore(tmp_path / "mw.db")
        store.migrate()

        out = _cli(
            cfg_path,
            "silence",
            "add",
            "-m",
            "slice=~device=.*",
            "-m",
            "alertname=BrightnessDrift",
            "--duration",
            "2h",
            "--comment",
            "camera maintenance",
            "--author",
            "ana",
        )
        assert out.returncode == 0, out.stderr
        assert "silence 1:" in out.stdout
        assert (
            _cli(cfg_path, "silence", "add", "-m", "nolabelvalue", "-d", "1h", "--comment", "x").returncode
            == 2
        )

        _load(store, cfg, shifted_day=3, days=5)  # day 3 drifts in every slice, day 4 is back to normal
        store.db.conn.execute(
            "DELETE FROM events WHERE ts >= ?", (store.dialect.ts(_day(4)),)
        )  # so it stays firing
        d = Daemon(cfg, [], store, build_senders(cfg))
        d.tick()
        d.drain_outbox(timeout_s=10)
        told = {a["labels"]["slice"] for r in recv.received for a in r["payload"]["alerts"]}
        assert told and not any(s.startswith("device=") for s in told)  # muted, the rest told

        listed = [json.loads(x) for x in _cli(cfg_path, "silence", "list", "--json").stdout.splitlines()]
        assert [(x["id"], x["state"], x["created_by"], x["comment"]) for x in listed] == [
            (1, "active", "ana", "camera maintenance")
        ]
        assert listed[0]["matchers"] == {"slice": "~device=.*", "alertname": "BrightnessDrift"}
        assert _cli(cfg_path, "silence", "expire", "1").returncode == 0
        assert _cli(cfg_path, "silence", "expire", "1").returncode == 1  # not in force any more
        assert _cli(cfg_path, "silence", "list").stdout == ""
        assert "expired" in _cli(cfg_path, "silence", "list", "--all").stdout

        d.tick()  # the silence is over: the device slices are told now
        d.drain_outbox(timeout_s=10)
        told = {a["labels"]["slice"] for r in recv.received for a in r["payload"]["alerts"]}
        assert any(s.startswith("device=") for s in told)
        store.close()

    alerts = [json.loads(x) for x in _cli(cfg_path, "alerts", "list", "--json").stdout.splitlines()]
    assert alerts and {a["state"] for a in alerts} == {"firing"}
    assert all(a["labels"]["alertname"] == "BrightnessDrift" and len(a["fingerprint"]) == 24 for a in alerts)
    assert _cli(cfg_path, "alerts", "list", "--state", "resolved").stdout == ""


def _day(n):
    from datetime import timedelta

    from tests.helpers import T0

    return T0 + timedelta(days=n)
