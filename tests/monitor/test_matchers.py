"""Label matchers run on RE2 (issue 24): the pattern that froze the daemon under Python's
backtracking engine is answered at once, what RE2 cannot run in linear time is refused where a
matcher is made, and a value that starts with ``~`` can still be matched as itself."""

import subprocess
import time

import pytest

from monitor.config import ConfigError, parse_config
from monitor.core.matchers import check_matchers, check_silence, literal, matches
from tests.conftest import ROOT, modalwatch_cmd


def test_a_catastrophic_pattern_for_backtracking_costs_linear_time():
    labels = {"slice": "device=" + "a" * 200_000}
    started = time.process_time()
    assert not matches({"slice": "~(.+.+)+Z"}, labels)
    assert matches({"slice": "~(.+.+)+"}, labels)
    # Python's re would take longer than the age of the universe; RE2 well under a second
    assert time.process_time() - started < 1.0


@pytest.mark.parametrize(
    "pattern, why",
    [
        (r"(a)\1", "invalid escape sequence"),
        ("(?=a)a", "invalid perl operator"),
        ("(", r"missing \)"),
        ("a" * 1001, "longer than 1000 characters"),
        ("(.{100}){50}", "invalid repetition size"),
    ],
)
def test_what_re2_cannot_run_in_linear_time_is_refused_naming_the_label(pattern, why):
    with pytest.raises(ValueError, match=f"matchers.slice: bad regex: .*{why}"):
        check_matchers({"slice": "~" + pattern})
    # and a stored one (written before RE2) matches nothing rather than stall or crash
    assert not matches({"slice": "~" + pattern}, {"slice": "a"})


def test_a_literal_that_looks_like_a_regex_matches_only_itself():
    assert matches({"slice": literal("~.*")}, {"slice": "~.*"})
    assert not matches({"slice": literal("~.*")}, {"slice": "anything"})
    assert literal("device=cam_b") == "device=cam_b"


def test_silences_are_bounded():
    check_silence({"alertname": "X"}, parse_config("").evaluation.intervals[0])
    from datetime import timedelta

    for d, why in ((timedelta(0), "positive"), (timedelta(days=366), "at most 365d")):
        with pytest.raises(ValueError, match=why):
            check_silence({"alertname": "X"}, d)
    with pytest.raises(ValueError, match="at least one"):
        check_silence({}, timedelta(hours=1))


def test_routes_and_inhibitions_with_unsafe_regexes_are_config_errors():
    with pytest.raises(ConfigError, match=r"alerts\.route.*matchers\.slice: bad regex"):
        parse_config("alerts: {route: {receiver: a, routes: [{receiver: a, matchers: {slice: '~(a)\\1'}}]}}")
    with pytest.raises(ConfigError, match=r"target\.slice: bad regex"):
        parse_config("alerts: {inhibit: [{source: {alertname: A}, target: {slice: '~(?<=x)y'}}]}")


def test_the_cli_refuses_an_unsafe_silence_with_the_reason(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"store: {{kind: sqlite, path: {tmp_path / 's.db'}}}\n")
    out = subprocess.run(
        modalwatch_cmd()
        + ["silence", "add", "-m", r"slice=~(a)\1", "--duration", "1h", "--comment", "x", "-c", str(cfg)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and "bad regex" in out.stderr and "Traceback" not in out.stderr
    out = subprocess.run(
        modalwatch_cmd()
        + ["silence", "add", "-m", "slice=x", "--duration", "400d", "--comment", "x", "-c", str(cfg)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and "at most 365d" in out.stderr
