"""Adding a receiver kind is one class and one registration line: its config validates under
``alerts.webhooks``, the notification pass writes its payloads to the outbox, and the daemon
delivers them through its sender — nothing else changes."""

from datetime import timedelta
from typing import Literal

import pytest

from alerts.receiver import WebhookReceiver
from alerts.receivers import Receiver, ReceiverConfig, receiver_kinds, register_receiver, unregister_receiver
from alerts.receivers.base import describe
from connectors.sqlite import SqliteStore
from monitor.config import ConfigError, parse_config
from monitor.daemon import Daemon
from monitor.wiring import build_senders
from tests.alerts.test_webhook import EVALUATION, _load


class ChatConfig(ReceiverConfig):
    kind: Literal["chat"]
    channel: str = "#ml-oncall"


class Chat(Receiver):
    """One short line per alert, for a chat tool's incoming webhook."""

    kind = "chat"
    Config = ChatConfig

    def payload(self, n, external_url):
        return {
            "channel": self.config.channel,
            "lines": [f"{n.status}: {describe(a)}" for a in n.firing + n.resolved],
        }


@pytest.fixture
def chat_kind():
    register_receiver(Chat)
    yield Chat
    unregister_receiver("chat")


def test_a_kind_registered_here_is_configured_routed_and_delivered(tmp_path, chat_kind):
    with WebhookReceiver() as recv:
        cfg = parse_config(f"""
{EVALUATION}
alerts:
  webhooks: [{{name: team, kind: chat, url: "{recv.url}", channel: "#vision"}}]
  route: {{receiver: team, group_wait: 0s, group_interval: 0s}}
  rules: [{{name: BrightnessDrift, metric: psi, slice: "*", signal: image.brightness, threshold: 0.25}}]
""")
        assert type(cfg.alerts.webhooks[0]) is ChatConfig and cfg.alerts.webhooks[0].channel == "#vision"
        store = SqliteStore(tmp_path / "mw.db")
        store.migrate()
        _load(store, cfg, shifted_day=3, days=5)
        d = Daemon(cfg, [], store, build_senders(cfg))
        d.tick()
        d.drain_outbox(timeout_s=10)
        store.close()
    (got,) = [r["payload"] for r in recv.received]
    assert got["channel"] == "#vision" and got["lines"] == [
        "firing: BrightnessDrift on m [*] image.brightness"
    ]


def test_an_unknown_kind_names_the_known_ones():
    assert set(receiver_kinds()) == {"webhook", "alertmanager", "slack", "pagerduty"}
    with pytest.raises(
        ConfigError,
        match=r"alerts\.webhooks\[0\] \(line 3\): kind must be one of alertmanager, "
        r"pagerduty, slack, webhook",
    ):
        parse_config("alerts:\n  webhooks:\n    - {name: x, kind: chat, url: http://x}\n")
    with pytest.raises(ConfigError, match=r"alerts\.webhooks\[0\]\.channel"):  # a key of another kind
        parse_config("alerts:\n  webhooks:\n    - {name: x, kind: slack, url: http://x, channel: c}\n")


def test_a_receiver_url_that_is_not_http_is_refused_without_showing_it():
    with pytest.raises(ConfigError, match=r"alerts\.webhooks\[0\]\.url.*http:// or https:// URL") as e:
        parse_config(
            "alerts:\n  webhooks:\n    - {name: x, kind: slack, url: hooks.example.com/T0/B0/SEKRIT}\n"
        )
    assert "SEKRIT" not in str(e.value)


def test_a_receiver_that_says_no_for_good_is_not_retried_for_ever(tmp_path):
    """HTTP 404 (a wrong or revoked URL): the notification is set aside as dead with the reason,
    once; 503 would be retried."""
    from alerts.outbox import deliver_due
    from tests.helpers import NOW

    with WebhookReceiver(refuse_first=1000, refuse_status=404) as recv:
        cfg = parse_config(f'alerts:\n  webhooks: [{{name: gone, kind: alertmanager, url: "{recv.url}"}}]\n')
        store = SqliteStore(tmp_path / "mw.db")
        store.migrate()
        store.alerts.add_outbox("k", "gone", {"n": 1}, NOW)
        senders = build_senders(cfg)
        assert deliver_due(store.alerts, senders, NOW, 0.01, 0.01) == (0, 1)  # none delivered, one dead
        assert deliver_due(store.alerts, senders, NOW + timedelta(hours=1), 0.01, 0.01) == (0, 0)
        ((status, attempts, error),) = store.db.all("SELECT status, attempts, last_error FROM outbox")
        store_counts = store.ops.counts()
        store.close()
    assert (status, attempts, error) == ("dead", 1, "gone: HTTP 404") and recv.attempts == 1
    assert store_counts["outbox"] == {"dead": 1}  # what `modalwatch status` shows


def test_a_disabled_receiver_is_told_nothing(tmp_path):
    with WebhookReceiver() as recv:
        cfg = parse_config(f"""
{EVALUATION}
alerts:
  webhooks:
    - {{name: team, kind: alertmanager, url: "{recv.url}"}}
    - {{name: pager, kind: pagerduty, routing_key: unset, enabled: false}}
  route: {{group_wait: 0s, group_interval: 0s, routes: [{{receiver: team, continue: true}},
                                                      {{receiver: pager, continue: true}}]}}
  rules: [{{name: BrightnessDrift, metric: psi, slice: "*", signal: image.brightness, threshold: 0.25}}]
""")
        assert set(build_senders(cfg)) == {"team"}
        store = SqliteStore(tmp_path / "mw.db")
        store.migrate()
        _load(store, cfg, shifted_day=3, days=5)
        d = Daemon(cfg, [], store, build_senders(cfg))
        d.tick()
        d.drain_outbox(timeout_s=10)
        receivers = {r[0] for r in store.db.all("SELECT receiver FROM outbox")}
        store.close()
    assert receivers == {"team"} and len(recv.received) == 1
