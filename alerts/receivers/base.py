"""What a receiver kind is, the HTTP sender they share, and the registry that finds them.

A kind is one file: its ``Config`` (a pydantic model with ``kind: Literal[...]``), what it is sent
for one group notification (``outbox_entries``: one payload per group, or one per alert), and its
``sender()``. Registering is one line (``@register_receiver``); the config's ``alerts.webhooks``
entries, the notification pass and the daemon's senders find kinds here.
"""

from __future__ import annotations

import collections
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from typing import Callable, ClassVar

from pydantic import Field, SecretStr, field_validator, model_validator

from alerts.rules import subject
from monitor.core.errors import DeliveryError, RateLimited
from monitor.core.records import AlertRecord
from monitor.core.registry import Registry
from monitor.core.settings import Section
from monitor.core.text import printable


class ReceiverConfig(Section):
    """What every receiver has. URLs, secrets and routing keys come from the environment and are
    never logged (the URL of a Slack or PagerDuty receiver often is the credential)."""

    name: str = Field("default", pattern=r"^[A-Za-z0-9_.-]+$")
    kind: str
    url: SecretStr | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: SecretStr | None) -> SecretStr | None:
        """An http(s) URL with a host — checked here so that a typo never reaches a request (whose
        error would carry the URL, and the secret in its path, into a log)."""
        if v is not None:
            parts = urllib.parse.urlsplit(v.get_secret_value())
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(
                    "url must be an http:// or https:// URL with a host (the value is not shown: it"
                    " may hold a secret)"
                )
        return v

    timeout_s: float = Field(5.0, gt=0)
    max_per_minute: int = Field(60, ge=1)  # rate limit: beyond it, notifications wait in the outbox
    send_resolved: bool = True
    # false: configured but told nothing (a receiver whose URL or key is not set in this
    # deployment, e.g. enabled: ${MODALWATCH_SLACK_ENABLED:-false})
    enabled: bool = True


class UrlReceiverConfig(ReceiverConfig):
    """A receiver that needs its ``url`` given."""

    @model_validator(mode="after")
    def _url_given(self) -> "UrlReceiverConfig":
        if self.url is None:
            raise ValueError(f"receiver {self.name!r}: url is required for {self.kind}")
        return self


class HttpSender:
    """POSTs a JSON payload. The URL is held, never logged or put in an error message; every
    request carries ``Idempotency-Key`` (the same on each retry of one notification). Subclasses
    change the body or headers in ``encode`` (a signature, a routing key added at send time)."""

    def __init__(self, name: str, url: str, timeout_s: float = 5.0, max_per_minute: int = 60):
        self.name = name
        self._url = url
        self.timeout_s = timeout_s
        self.max_per_minute = max_per_minute
        self._sent: collections.deque[float] = collections.deque()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"  # the URL may hold a token

    def _admit(self) -> None:
        now = time.monotonic()
        while self._sent and now - self._sent[0] >= 60:
            self._sent.popleft()
        if len(self._sent) >= self.max_per_minute:
            raise RateLimited(self.name)
        self._sent.append(now)

    def encode(self, payload: dict) -> tuple[bytes, dict[str, str]]:
        return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode(), {}

    def send(self, payload: dict, delivery_id: str) -> None:
        self._admit()
        body, extra = self.encode(payload)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "modalwatch",
            "X-Modalwatch-Delivery": delivery_id,
            "Idempotency-Key": delivery_id,
            **extra,
        }
        try:
            req = urllib.request.Request(self._url, data=body, headers=headers, method="POST")
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                resp.read()
        except urllib.error.HTTPError as e:
            # 4xx is the receiver saying no to this request (408 timeout and 429 too many: later)
            permanent = 400 <= e.code < 500 and e.code not in (408, 425, 429)
            raise DeliveryError(f"{self.name}: HTTP {e.code}", permanent=permanent) from None
        except ValueError:  # never the URL in the message: it may hold the credential
            raise DeliveryError(f"{self.name}: the receiver's URL cannot be used", permanent=True) from None
        except (urllib.error.URLError, OSError) as e:
            raise DeliveryError(f"{self.name}: {getattr(e, 'reason', e)}") from None


class Receiver:
    """A receiver kind (see the module docstring); one instance per configured receiver."""

    kind: ClassVar[str]
    Config: ClassVar[type[ReceiverConfig]]

    def __init__(self, config: ReceiverConfig) -> None:
        self.config = config

    def payload(self, n, external_url: str) -> dict:
        raise NotImplementedError

    def outbox_entries(self, n, external_url: str) -> list[tuple[str, dict]]:
        """(dedup key, payload) of each outbox entry one group notification makes: by default one,
        keyed by the group."""
        return [(n.group_key, self.payload(n, external_url))]

    def sender(self) -> HttpSender:
        c = self.config
        return HttpSender(c.name, c.url.get_secret_value(), c.timeout_s, c.max_per_minute)


_KINDS: Registry[type[Receiver]] = Registry()


def register_receiver(cls: type[Receiver]) -> type[Receiver]:
    """Register a receiver kind (a class decorator)."""
    _KINDS.add(cls.kind, cls)
    return cls


def unregister_receiver(kind: str) -> None:
    _KINDS.remove(kind)


def on_kinds_change(listener: Callable[[], None]) -> None:
    _KINDS.on_change(listener)


def receiver_kinds() -> dict[str, type[Receiver]]:
    return _KINDS.items()


def receiver_for(config: ReceiverConfig) -> Receiver:
    """The receiver a config entry describes."""
    return _KINDS.items()[config.kind](config)


# -- what several kinds put in their payloads -----------------------------------------------------
def iso(dt: datetime | None) -> str:
    return "0001-01-01T00:00:00Z" if dt is None else dt.isoformat().replace("+00:00", "Z")


def alert_url(external_url: str, a: AlertRecord) -> str:
    """The alert's page on the daemon (``GET /alerts/<fingerprint>``; its JSON: ``/v1/alerts/…``)."""
    return f"{external_url.rstrip('/')}/alerts/{a.dedup_key}"


def incident_url(external_url: str, incident_id: str) -> str:
    """An incident's page on the daemon: its headline, its alerts and their evidence."""
    return f"{external_url.rstrip('/')}/incidents/{incident_id}"


def describe(a: AlertRecord) -> str:
    """One line naming an alert: rule, model, slice, and the signal where it has one."""
    lab = a.labels
    return f"{lab['alertname']} on {lab.get('model', '?')} [{lab.get('slice', '*')}]{subject(lab)}"


def _common(dicts: list[dict]) -> dict:
    """The key-value pairs every dict shares."""
    if not dicts:
        return {}
    return {k: v for k, v in sorted(dicts[0].items()) if all(d.get(k) == v for d in dicts[1:])}


def incident_of(n, a: AlertRecord):
    """The incident (alerts/incidents.Incident) an alert of notification ``n`` belongs to, if any."""
    return n.incidents.get(a.labels.get("incident", ""))


def incident_lines(n) -> list[tuple[str, str]]:
    """(headline, grouped because) of each incident a notification carries, oldest first."""
    unique = {i.key: i for i in n.incidents.values()}.values()  # two ids may share one grouping
    return [(i.headline, i.because) for i in sorted(unique, key=lambda i: (i.since, i.key))]


def _am_alert(a: AlertRecord, status: str, external_url: str, incident=None) -> dict:
    annotations = a.annotations
    if incident is not None:  # what on-call reads first: the cause, and why these alerts are one
        annotations = {**annotations, "incident": incident.headline, "grouped_because": incident.because}
    # Alertmanager's tooling pastes labels and annotations into templates of every format: no
    # value carries a newline or a terminal control into them (each is written visibly)
    return {
        "status": status,
        "labels": {k: printable(v) for k, v in a.labels.items()},
        "annotations": {k: printable(v) for k, v in annotations.items()},
        "startsAt": iso(a.starts_at),
        "endsAt": iso(a.ends_at if status == "resolved" else None),
        "generatorURL": alert_url(external_url, a),
        "fingerprint": a.dedup_key,
    }


def alertmanager_payload(n, receiver: str, external_url: str, send_resolved: bool = True) -> dict:
    """Alertmanager's webhook payload, version 4: what on-call tooling already consumes."""
    every = n.firing + (n.resolved if send_resolved else [])
    alerts = [
        _am_alert(a, "firing" if i < len(n.firing) else "resolved", external_url, incident_of(n, a))
        for i, a in enumerate(every)
    ]
    return {
        "version": "4",
        "groupKey": n.group_key,
        "truncatedAlerts": 0,
        "status": n.status,
        "receiver": receiver,
        "groupLabels": {k: printable(v) for k, v in n.group_labels.items()},
        "commonLabels": _common([a["labels"] for a in alerts]),
        "commonAnnotations": _common([a["annotations"] for a in alerts]),
        "externalURL": external_url,
        "alerts": alerts,
    }
