"""`modalwatch demo`: every injected episode raises its alert; nothing fires before the first one."""

import json
import re
import subprocess
import sys


from tests.conftest import ROOT, modalwatch_cmd


def sent(out, path: str = "/hook") -> list[dict]:
    """What the demo's local receiver got at ``path``: the signed webhook's (``/hook``), or what
    Slack (``/hook/slack``), Alertmanager or PagerDuty would have."""
    got = [json.loads(line) for line in (out / "alerts.jsonl").read_text().splitlines()]
    return [g for g in got if g["path"] == path]


def _firing(out):
    got = sent(out)
    assert got and all(g["signature_valid"] for g in got)
    return [a for g in got for a in g["payload"]["alerts"] if a["status"] == "firing"]


def test_each_injected_episode_raises_its_alert(demo_out):
    episodes = json.loads((demo_out / "episodes.json").read_text())
    assert [e["name"] for e in episodes] == [
        "mic_change",
        "confidence_inflation",
        "captions_in_dutch",
        "cam_b_darkening",
    ]
    firing = _firing(demo_out)
    for ep in episodes:
        for want in ep["expect"]:
            hits = [
                a
                for a in firing
                if all(a["labels"].get(k) == v for k, v in want.items())
                and a["startsAt"] >= ep["starts_at"].replace("+00:00", "Z")[:10]
            ]
            assert hits, f"episode {ep['name']}: no alert matching {want}"
        # and what should not see it does not (the old text signals of the Dutch captions)
        for quiet in ep.get("quiet", []):
            assert not [a for a in firing if all(a["labels"].get(k) == v for k, v in quiet.items())], quiet


def test_no_alert_before_the_first_episode(demo_out):
    episodes = json.loads((demo_out / "episodes.json").read_text())
    first = min(e["starts_at"] for e in episodes).replace("+00:00", "Z")
    early = [a["labels"] for a in _firing(demo_out) if a["startsAt"] < first]
    assert early == []


def test_demo_leaves_report_and_review_queue(demo_out):
    html = (demo_out / "report.html").read_text()
    assert "Plotly.newPlot" in html and "SliceErrorRateUp" in html
    # nothing is fetched: no element loads from anywhere (links to the daemon's pages are links)
    assert not re.search(r"<(script|img|link|iframe)[^>]+(src|href)=\"?https?:", html)
    report = json.loads((demo_out / "report.json").read_text())
    assert len(report["intervals"]) == 20 and report["alerts"]
    day0 = report["intervals"][0]
    assert {r["slice"] for r in day0["error_rate"]} >= {"*", "device=cam_b", "environment=car"}
    review = [json.loads(x) for x in (demo_out / "review.jsonl").read_text().splitlines()]
    assert review and {r["reason"].split(":")[0] for r in review} >= {"low_confidence", "alert_slice"}
    assert len({r["event_id"] for r in review}) == len(review)


def test_without_the_demo_extra_the_demo_names_the_extra_to_install(tmp_path):
    """`pip install modalwatch` has no scikit-image (the demo's photographs): one line says which
    extra brings it, no traceback, and nothing is written."""
    hide = (
        "import sys; sys.modules['skimage'] = None; from monitor.cli import main; "
        f"sys.exit(main(['demo', '--out', {str(tmp_path / 'out')!r}]))"
    )
    proc = subprocess.run([sys.executable, "-c", hide], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "error: modalwatch demo needs the demo extra: pip install 'modalwatch[demo]'"
    ]
    assert not (tmp_path / "out").exists()


def test_each_injected_episode_is_one_incident(demo_out):
    """The demo's four causes raise dozens of alerts; grouped by cause they are four incidents,
    each at the episode's own place."""
    cfg = demo_out / "incidents.yaml"
    cfg.write_text(f"store: {{path: {demo_out / 'modalwatch.db'}}}\n")
    proc = subprocess.run(
        modalwatch_cmd() + ["alerts", "list", "--incidents", "--json", "--config", str(cfg)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    incidents = [json.loads(line) for line in proc.stdout.splitlines()]
    places = {i["place"]: i for i in incidents}
    assert len(incidents) == 4 and set(places) == {"environment=car", "device=cam_b", "locale=en-US", "*"}
    assert places["environment=car"]["families"] == ["audio"]  # the microphone swap
    assert places["device=cam_b"]["families"] == ["image", "error rate"]  # darker, and wrong more often
    assert places["*"]["families"] == ["calibration"]  # confidence inflation, everywhere
    assert places["locale=en-US"]["families"] == ["text"]  # the captions in Dutch
    assert sum(len(i["alerts"]) for i in incidents) > 3
    # and so does the plain alert list, before its alerts
    plain = subprocess.run(
        modalwatch_cmd() + ["alerts", "list", "--config", str(cfg)], cwd=ROOT, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    head = plain.stdout.splitlines()
    assert head[0] == "4 incident(s) firing (--incidents lists their alerts):"
    assert {line.strip().split(":")[0] for line in head[1:5]} == set(places) - {"*"} | {"all traffic"}
    # the report leads with the same incidents
    report = json.loads((demo_out / "report.json").read_text())
    assert {i["place"] for i in report["incidents"]} == set(places)
    # each says how big and how sure by its own change, not by the trend (Aging) that follows it
    leads = {i["place"]: i["lead"]["alert"]["rule"] for i in report["incidents"]}
    assert "Aging" not in leads.values(), leads
    html = (demo_out / "report.html").read_text()
    assert html.index('<h2 id="incidents">') < html.index('<h2 id="performance">')
    assert "environment=car: audio integrated_loudness_lufs" in html
    # and so do the notifications: each incident one group, its alerts folded in as it grows
    told = {
        p["groupLabels"]["incident"]: p["commonAnnotations"]["incident"]
        for p in (g["payload"] for g in sent(demo_out))
    }
    assert len(told) == 4
    assert sorted(h.split(":")[0] for h in told.values()) == [
        "all traffic",
        "device=cam_b",
        "environment=car",
        "locale=en-US",
    ]


def test_the_language_alert_shows_which_language_came(demo_out):
    from connectors.sqlite import SqliteStore
    from monitor.config import load_config
    from monitor.report import alert_page

    store = SqliteStore(demo_out / "modalwatch.db")
    try:
        fp = next(
            a.dedup_key
            for a in store.alerts.list()
            if a.rule == "CategoryDrift" and a.labels["slice"] == "locale=en-US"
        )
        d = alert_page(store, load_config(), fp)["distribution"]
    finally:
        store.close()
    shares = dict(zip(d["bins"], zip(d["reference_share"], d["window_share"])))
    assert shares["eng"][0] > 0.8 and shares["nld"][0] < 0.01  # the reference: English captions
    assert 0.35 < shares["nld"][1] < 0.65  # the window: about half in Dutch
