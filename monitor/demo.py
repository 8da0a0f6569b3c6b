"""``modalwatch demo``: a synthetic multimodal production stream with injected episodes, replayed
through the real pipeline on the embedded default (SQLite, JSONL), with a local webhook receiver.

Traffic: one model ("scene-tagger" v1) tagging images with audio and a caption; slices by
device (cam_a/b/c), locale and environment; half the events get a label 0-20 h later.
Most events carry producer-computed signals; one in ``MEDIA_EVERY`` of device=cam_b events sends
its picture and one in ``MEDIA_EVERY`` of environment=car events its sound as real media
(``file://`` URIs under ``<out>/media``, see monitor/demo_media.py), which modalwatch decodes and
measures itself. Episodes (written to ``episodes.json``), quiet before day 10:

* ``mic_change``: from day 10, environment=car audio is 10 dB quieter (a microphone swap);
* ``confidence_inflation``: from day 11, confidences creep towards 1 while accuracy stays;
* ``cam_b_darkening``: from day 14, device=cam_b images darken and blur, its error rate rises;
* ``captions_in_dutch``: from day 12, half of locale=en-US captions arrive in Dutch (a translation
  layer routed wrong). Their lengths, scripts and ASCII share are English captions' (the old text
  signals see nothing); their language, vocabulary and sentiment (VADER's lexicon is English) move.

One in ``MEDIA_EVERY`` of locale=en-US events sends its caption as raw text (inline), measured by
modalwatch: characters, language, sentiment and the words' hashed buckets.

The real media alone shows the two media episodes: the signals only they carry (e.g.
``image.underexposed_share``, ``audio.true_peak_dbtp``) drift too.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from alerts.receiver import WebhookReceiver
from alerts.receivers.webhook import WebhookConfig, WebhookSender
from connectors.jsonl import JsonlSource
from connectors.sqlite import SqliteStore
from monitor.config import load_config
from monitor.daemon import Daemon
from monitor.report import build_report, write_report
from monitor.review import export_review

log = logging.getLogger("modalwatch.demo")

START = datetime(2026, 3, 2, tzinfo=timezone.utc)
CLASSES = ["person", "vehicle", "animal", "sign"]
DEVICES = ["cam_a", "cam_b", "cam_c"]
LOCALES = ["en-US", "de-DE", "ja-JP"]
ENVS = ["indoor", "outdoor", "car"]

MEDIA_EVERY = 5
DUTCH_FROM_DAY = 12

EPISODES = [
    {
        "name": "mic_change",
        "start_day": 10,
        "description": "environment=car audio 10 dB quieter (microphone swap)",
        "expect": [
            {
                "alertname": "SignalDrift",
                "slice": "environment=car",
                "modality": "audio",
                "signal": "integrated_loudness_lufs",
            },
            {
                "alertname": "SignalDrift",
                "slice": "environment=car",
                "modality": "audio",
                "signal": "true_peak_dbtp",
            },
        ],
    },
    {
        "name": "confidence_inflation",
        "start_day": 11,
        "description": "confidence creeps towards 1 while accuracy stays the same",
        "expect": [{"alertname": "CalibrationDrift", "slice": "*"}],
    },
    {
        "name": "captions_in_dutch",
        "start_day": DUTCH_FROM_DAY,
        "description": "half of locale=en-US captions arrive in Dutch (a translation layer routed wrong)",
        "expect": [
            {"alertname": "CategoryDrift", "slice": "locale=en-US", "modality": "text", "signal": "language"},
            {
                "alertname": "VocabularyDrift",
                "slice": "locale=en-US",
                "modality": "text",
                "signal": "vocabulary",
            },
        ],
        # what the old text signals see of it: nothing
        "quiet": [
            {"alertname": "SignalDrift", "slice": "locale=en-US", "modality": "text", "signal": s}
            for s in ("characters", "tokens", "non_ascii_share", "scripts", "empty")
        ],
    },
    {
        "name": "cam_b_darkening",
        "start_day": 14,
        "description": "device=cam_b images darken, its error rate rises",
        "expect": [
            {
                "alertname": "SignalDrift",
                "slice": "device=cam_b",
                "modality": "image",
                "signal": "brightness",
            },
            {
                "alertname": "SignalDrift",
                "slice": "device=cam_b",
                "modality": "image",
                "signal": "underexposed_share",
            },
            {"alertname": "SliceErrorRateUp", "slice": "device=cam_b"},
        ],
    },
]


# a caption: who, doing what, where, and how the tagger's user found it (the sentiment mix)
CAPTIONS = {
    "en": (
        ["a man", "a woman", "two kids", "a big van", "a cyclist", "a dog", "an old bus", "a street sign"],
        ["walks past", "waits near", "stands outside", "turns left at", "stops beside", "drives by"],
        ["the station", "the garage", "the bakery", "the crossing", "the garden", "the market"],
        ["", "", "what a lovely clear picture", "great shot", "terrible blurry image", "awful, useless view"],
    ),
    # word for word as long: lengths, tokens and the ASCII share stay what they were
    "nl": (
        [
            "een man",
            "een vrouw",
            "twee kinderen",
            "een grote bestelbus",
            "een fietser",
            "een hond",
            "een oude bus",
            "een groot bord",
        ],
        ["loopt langs", "wacht bij", "staat voor", "slaat linksaf bij", "stopt naast", "rijdt langs"],
        ["het station", "de garage", "de bakkerij", "het kruispunt", "de tuin", "de markt"],
        [
            "",
            "",
            "wat een mooie heldere foto",
            "prachtig beeld",
            "vreselijk wazig beeld",
            "slecht, nutteloos zicht",
        ],
    ),
}


def caption(rng, lang: str) -> str:
    who, verb, where, tail = (parts[rng.integers(len(parts))] for parts in CAPTIONS[lang])
    text = f"{who} {verb} {where}"
    return f"{text}, {tail}" if tail else text


def generate(days: int, seed: int, events_per_day: int, media=None) -> tuple[list[dict], list[dict]]:
    """(lines sorted by event time — inferences and labels —, episodes with their start times).

    ``media``: a ``demo_media.MediaWriter``; without one every event carries producer signals."""
    rng = np.random.default_rng(seed)
    n = days * events_per_day
    t = np.sort(rng.uniform(0, days * 86400, n))
    day = t / 86400
    device = rng.choice(DEVICES, n)
    locale = rng.choice(LOCALES, n)
    env = rng.choice(ENVS, n)
    truth = rng.choice(CLASSES, n)
    conf = rng.beta(8, 2.2, n)
    p_correct = conf.copy()

    dark = np.where(device == "cam_b", np.clip((day - 14) / 3, 0, 1), 0.0)  # ramps over 3 days
    brightness = rng.normal(125, 14, n) - 55 * dark
    sharpness = rng.lognormal(5.5, 0.35, n) * (1 - 0.5 * dark)
    contrast = rng.normal(0.2, 0.03, n) * (1 - 0.3 * dark)
    p_correct = p_correct * (1 - 0.45 * dark)

    quieter = np.where((env == "car") & (day >= 10), 10.0, 0.0)
    loudness = rng.normal(-23, 1.8, n) - quieter
    snr = rng.normal(24, 4, n) - np.where(env == "car", 4.0, 0.0)
    chars = rng.poisson(48, n)

    inflate = np.clip((day - 11) / (days - 11 if days > 11 else 1), 0, 1) * 0.85
    shown_conf = np.round(conf + (1 - conf) * inflate, 6)
    correct = rng.uniform(0, 1, n) < p_correct
    pred = np.where(correct, truth, np.array([rng.choice([c for c in CLASSES if c != tr]) for tr in truth]))

    labelled = rng.uniform(0, 1, n) < 0.5
    label_delay = rng.uniform(0, 20 * 3600, n)
    lines = []
    for i in range(n):
        ts = START + timedelta(seconds=float(t[i]))
        eid = f"ev-{seed}-{i:07d}"
        inputs = {
            "image": {
                "signals": {
                    "brightness": round(float(brightness[i]), 3),
                    "sharpness": round(float(sharpness[i]), 3),
                    "rms_contrast": round(float(contrast[i]), 4),
                }
            },
            "audio": {
                "signals": {
                    "integrated_loudness_lufs": round(float(loudness[i]), 3),
                    "snr_db": round(float(snr[i]), 3),
                }
            },
            "text": {"signals": {"characters": int(chars[i])}},
        }
        if media is not None and i % MEDIA_EVERY == 0:
            if locale[i] == "en-US":
                dutch = day[i] >= DUTCH_FROM_DAY and rng.uniform() < 0.5
                text = caption(rng, "nl" if dutch else "en")
                inputs["text"] = {
                    "data_b64": base64.b64encode(text.encode()).decode(),
                    "media_type": "text/plain",
                }
            if device[i] == "cam_b":
                inputs["image"] = {"uri": media.image(float(dark[i])), "media_type": "image/jpeg"}
            if env[i] == "car":
                inputs["audio"] = {"uri": media.speech(float(quieter[i])), "media_type": "audio/flac"}
        lines.append(
            (
                ts,
                0,
                {
                    "type": "inference",
                    "event_id": eid,
                    "ts": ts.isoformat(),
                    "model": {"name": "scene-tagger", "version": "1.0.0"},
                    "slice": {"device": str(device[i]), "locale": str(locale[i]), "environment": str(env[i])},
                    "inputs": inputs,
                    "output": {"label": str(pred[i]), "confidence": float(shown_conf[i])},
                },
            )
        )
        if labelled[i]:
            lts = ts + timedelta(seconds=float(label_delay[i]))
            lines.append(
                (
                    lts,
                    1,
                    {
                        "type": "label",
                        "event_id": eid,
                        "label": str(truth[i]),
                        "source": "feedback",
                        "ts": lts.isoformat(),
                    },
                )
            )
    lines.sort(key=lambda x: (x[0], x[1]))
    episodes = [
        {**e, "starts_at": (START + timedelta(days=e["start_day"])).isoformat()}
        for e in EPISODES
        if e["start_day"] < days - 2
    ]
    return [obj for _, _, obj in lines], episodes


def run_demo(out: Path, days: int = 28, seed: int = 7, events_per_day: int = 2000) -> dict:
    if days < 14:
        raise ValueError("the demo needs --days 14 or more (7 reference days, then the episodes)")
    out.mkdir(parents=True, exist_ok=True)
    for name in ("modalwatch.db", "modalwatch.db-wal", "modalwatch.db-shm", "alerts.jsonl", "review.jsonl"):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / "report", ignore_errors=True)
    shutil.rmtree(out / "media", ignore_errors=True)
    from monitor.demo_media import MediaWriter

    lines, episodes = generate(days, seed, events_per_day, MediaWriter(out / "media", seed))
    stream = out / "stream.jsonl"
    with open(stream, "w", encoding="utf-8") as fh:
        for obj in lines:
            fh.write(json.dumps(obj, separators=(",", ":")) + "\n")
    (out / "episodes.json").write_text(json.dumps(episodes, indent=1), encoding="utf-8")

    secret = secrets.token_hex(16)
    cfg = load_config().model_copy(deep=True)
    cfg.store.path = str(out / "modalwatch.db")
    cfg.ingest.http.enabled = False
    cfg.evaluation.tick_s = 0.5
    cfg.media.allowed_roots = [str((out / "media").resolve())]
    store = SqliteStore(cfg.store.path)
    with WebhookReceiver(secret=secret, out_path=out / "alerts.jsonl") as receiver:
        # one receiver of each kind, all told every incident: the signed webhook ("demo") and what
        # Slack, Alertmanager and PagerDuty would get (at paths of the same local receiver)
        from alerts.receivers import receiver_for
        from monitor.config import RouteConfig, parse_config

        others = parse_config(
            json.dumps(
                {
                    "alerts": {
                        "webhooks": [
                            {"name": "slack", "kind": "slack", "url": receiver.url + "/slack"},
                            {
                                "name": "alertmanager",
                                "kind": "alertmanager",
                                "url": receiver.url + "/alertmanager",
                            },
                            {
                                "name": "pagerduty",
                                "kind": "pagerduty",
                                "url": receiver.url + "/pagerduty",
                                "routing_key": "demo-routing-key",
                            },
                        ]
                    }
                }
            )
        ).alerts.webhooks
        cfg.alerts.webhooks = [WebhookConfig(name="demo", url=receiver.url), *others]
        senders = {"demo": WebhookSender("demo", receiver.url, secret)}
        senders.update({w.name: receiver_for(w).sender() for w in others})
        # weeks replay in seconds: no wall-clock group_wait or group_interval; each vintage's
        # changes are one notification per incident, to every receiver
        cfg.alerts.route = RouteConfig(
            receiver="demo",
            group_wait=timedelta(0),
            group_interval=timedelta(0),
            routes=[RouteConfig(receiver=w.name, continue_=True) for w in cfg.alerts.webhooks],
        )
        source = JsonlSource([str(stream)], follow=False, max_payload_bytes=cfg.ingest.max_payload_bytes)
        daemon = Daemon(cfg, [source], store, senders, stop_when_idle=True)
        daemon.run()
        received = [r for r in receiver.received if r["path"] == "/hook"]  # the signed webhook's
    end = START + timedelta(days=days)
    now = datetime.now(timezone.utc)
    write_report(build_report(store, cfg, START, end, now), out, cfg.alerts.external_url)
    n_review = export_review(store, out / "review.jsonl", now)
    counts = store.ops.counts()
    store.close()
    firing = [a for r in received for a in r["payload"]["alerts"] if a["status"] == "firing"]
    return {
        "out": str(out),
        "days": days,
        "events": counts["events"],
        "labels": counts["labels"],
        "evaluations": counts["evaluations"],
        "notifications_received": len(received),
        "alerts_firing": sorted(
            {
                (
                    a["labels"]["alertname"]
                    + " "
                    + a["labels"]["slice"]
                    + (
                        " " + a["labels"].get("modality", "") + "." + a["labels"]["signal"]
                        if "signal" in a["labels"]
                        else ""
                    )
                )
                for a in firing
            }
        ),
        "episodes": [e["name"] for e in episodes],
        "review_items": n_review,
    }
