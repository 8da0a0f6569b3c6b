"""The "Silence it" lines of an alert page are pasted into a shell by the on-call engineer: label
values are a producer's strings, so each line must stay inert in bash whatever they hold, and
must silence exactly the alert it was shown for (issue 24)."""

import json
import subprocess
from datetime import datetime, timezone

import pytest

from alerts.routing import matches
from monitor.config import parse_config
from monitor.core.records import AlertRecord
from monitor.report import silence_hint

HOSTILE = [
    "x'$(touch PWNED)'",
    "`touch PWNED`",
    '"; touch PWNED; echo "',
    "$(touch PWNED)",
    "a\nb; touch PWNED",
    "~.*",  # reads as a regex matching everything unless the hint escapes it
    "it's \\ 'quoted' $HOME ${IFS} ; & | > PWNED",
]

# stand-ins for the commands the lines call: they print their arguments, one JSON list
FAKES = """
modalwatch() { python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "$@"; }
curl() { python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "$@"; }
"""


def _alert(value: str) -> AlertRecord:
    labels = {"alertname": "SignalDrift", "model": "m'1", "slice": f"device={value}", "signal": "x"}
    at = datetime(2026, 1, 5, tzinfo=timezone.utc)
    return AlertRecord("fp", "SignalDrift", labels, {}, "firing", at, None, 1.0)


@pytest.mark.parametrize("value", HOSTILE)
def test_each_line_is_inert_in_bash_and_silences_exactly_its_alert(tmp_path, value):
    a = _alert(value)
    hint = silence_hint(parse_config(""), a)
    for line in (hint["cli"], hint["api"]):
        out = subprocess.run(
            ["bash", "-c", FAKES + line],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin", "MODALWATCH_TOKEN": "t0ken"},
            check=True,
        )
        assert list(tmp_path.iterdir()) == [], f"{line!r} ran something: {list(tmp_path.iterdir())}"
        argv = json.loads(out.stdout)
        if line is hint["cli"]:
            pairs = [argv[i + 1] for i, x in enumerate(argv) if x == "-m"]
            matchers = dict(p.split("=", 1) for p in pairs)
        else:
            assert "Authorization: Bearer t0ken" in argv  # the reader's token variable expands
            matchers = json.loads(argv[argv.index("--data") + 1])["matchers"]
        assert matchers == hint["matchers"]
        assert matches(matchers, a.labels)
        assert not matches(matchers, {**a.labels, "slice": "device=other"})
