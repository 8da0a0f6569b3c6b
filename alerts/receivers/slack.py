"""``slack``: an incoming-webhook message with Block Kit blocks and a link to the report."""

from __future__ import annotations

import re
from typing import Literal

from alerts.receivers.base import (
    Receiver,
    UrlReceiverConfig,
    alert_url,
    describe,
    incident_lines,
    incident_url,
    register_receiver,
)
from monitor.core.text import printable, printable_lines


class SlackConfig(UrlReceiverConfig):
    kind: Literal["slack"]


def mrkdwn(text: str, limit: int = 3000) -> str:
    """``text`` as Slack mrkdwn shows it literally: ``&``, ``<`` and ``>`` escaped (so a label's
    ``<!channel>`` pings nobody and ``<https://…|Open>`` is no link), other controls written visibly,
    at most ``limit`` characters without cutting an escape in half. Slack's own ``*``/``_``
    emphasis of the message's frame is kept; a backtick in a value is shown as ʼ so that it cannot
    close the code span around the group."""
    # a newline only breaks a line in a section
    out = printable_lines(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if len(out) > limit:
        out = re.sub(r"&[a-z]*$", "", out[: limit - 1]) + "…"
    return out


def slack_payload(n, external_url: str, send_resolved: bool = True) -> dict:
    report = f"{external_url.rstrip('/')}/report"
    icon = ":rotating_light:" if n.status == "firing" else ":white_check_mark:"
    counts = f"{len(n.firing)} firing" + (
        f", {len(n.resolved)} resolved" if n.resolved and send_resolved else ""
    )
    incidents = incident_lines(n)
    # one incident (the default route's groups): its headline is the title, the alerts its detail
    title = f"{icon} {n.status.upper()}: " + (incidents[0][0] if len(incidents) == 1 else counts)
    group = ", ".join(f"{k}={v}" for k, v in n.group_labels.items()).replace("`", "ʼ")
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": printable(title)[:150], "emoji": True}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn(f"{counts}; group: `{group}`")}]},
    ]
    for headline, because in incidents[:5]:
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"*{mrkdwn(headline, 1400)}*\n_grouped because {mrkdwn(because, 1400)}_",
                },
            }
        )
    shown = [(a, "firing") for a in n.firing] + (
        [(a, "resolved") for a in n.resolved] if send_resolved else []
    )
    for a, status in shown[:20]:  # Slack allows 50 blocks; the rest are counted below
        ann = a.annotations
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"*{'FIRING' if status == 'firing' else 'resolved'}* "
                    + mrkdwn(
                        f"{describe(a)}\n"
                        f"{ann.get('summary', '')}\nvalue {ann.get('value', '?')}, window"
                        f" {ann.get('window_start', '?')}"
                        f" – {ann.get('window_end', '?')}",
                        2900,
                    ),
                },
            }
        )
    if len(shown) > 20:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"… and {len(shown) - 20} more"}]}
        )
    buttons = []
    ids = sorted({a.labels["incident"] for a in n.firing + n.resolved if a.labels.get("incident")})
    if len(ids) == 1:  # the page that shows the evidence of what this message is about
        buttons.append(
            {
                "type": "button",
                "text": {"type": "plain_text", "text": "Open the incident"},
                "url": incident_url(external_url, ids[0]),
                "style": "primary",
            }
        )
    elif shown:
        buttons.append(
            {
                "type": "button",
                "text": {"type": "plain_text", "text": "Open the first alert"},
                "url": alert_url(external_url, shown[0][0]),
            }
        )
    buttons.append(
        {"type": "button", "text": {"type": "plain_text", "text": "Open the report"}, "url": report}
    )
    blocks.append({"type": "actions", "elements": buttons})
    return {"text": mrkdwn(title), "blocks": blocks}


@register_receiver
class Slack(Receiver):
    kind = "slack"
    Config = SlackConfig

    def payload(self, n, external_url: str) -> dict:
        return slack_payload(n, external_url, self.config.send_resolved)
