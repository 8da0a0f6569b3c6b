"""Adding a receiver kind is one class and one registration line: its config validates under
``alerts.webhooks``, the notification pass writes its payloads to the outbox, and the daemon
delivers them through its sender — nothing else changes."""

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
