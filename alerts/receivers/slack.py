"""``slack``: an incoming-webhook message with Block Kit blocks and a link to the report."""

from __future__ import annotations

from typing import Literal

from alerts.receivers.base import Receiver, UrlReceiverConfig, describe, incident_lines, register_receiver


class SlackConfig(UrlReceiverConfig):
    kind: Literal["slack"]


def slack_payload(n, external_url: str, send_resolved: bool = True) -> dict:
    report = f"{external_url.rstrip('/')}/report"
    icon = ":rotating_light:" if n.status == "firing" else ":white_check_mark:"
    counts = f"{len(n.firing)} firing" + (
        f", {len(n.resolved)} resolved" if n.resolved and send_resolved else ""
    )
    incidents = incident_lines(n)
    # one incident (the default route's groups): its headline is the title, the alerts its detail
    title = f"{icon} {n.status.upper()}: " + (incidents[0][0] if len(incidents) == 1 else counts)
    group = ", ".join(f"{k}={v}" for k, v in n.group_labels.items())
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150], "emoji": True}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"{counts}; group: `{group}`"}]},
    ]
    for headline, because in incidents[:5]:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"*{headline}*\n_grouped because {because}_"[:3000]},
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
                    "text": (
                        f"*{'FIRING' if status == 'firing' else 'resolved'}* {describe(a)}\n"
                        f"{ann.get('summary', '')}\nvalue {ann.get('value', '?')}, window"
                        f" {ann.get('window_start', '?')}"
                        f" – {ann.get('window_end', '?')}"
                    )[:3000],
                },
            }
        )
    if len(shown) > 20:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"… and {len(shown) - 20} more"}]}
        )
    blocks.append(
        {
            "type": "actions",
            "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "Open the report"}, "url": report}
            ],
        }
    )
    return {"text": title, "blocks": blocks}


@register_receiver
class Slack(Receiver):
    kind = "slack"
    Config = SlackConfig

    def payload(self, n, external_url: str) -> dict:
        return slack_payload(n, external_url, self.config.send_resolved)
