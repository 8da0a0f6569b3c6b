"""Label matchers, as silences, routes and inhibition rules spell them: ``label: value`` is
equality, ``label: "~regex"`` a full match of the regex.

A regex runs on RE2 (google-re2): its cost is linear in the label's length, whatever the pattern,
so no silence can stall the daemon the way ``(.+.+)+Z`` stalls a backtracking engine. What RE2
cannot run in linear time (backreferences, lookaround) it refuses to compile: such a matcher is
refused where it is made (the API, the CLI, the config) and, if one is already stored, it matches
nothing. Patterns are bounded in length and in the memory RE2 may give their program.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import lru_cache
from typing import Mapping

import re2

log = logging.getLogger("modalwatch.matchers")

MAX_PATTERN_CHARS = 1000
MAX_SILENCE = timedelta(days=365)  # a longer mute is a rule to change, not a silence
_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 writes parse errors to stderr itself; the caller says them once
_OPTIONS.max_mem = 1 << 20  # a pattern whose program needs more than 1 MiB is refused


@lru_cache(maxsize=4096)
def _compiled(pattern: str):
    """The compiled pattern, or the reason it is refused (a str)."""
    if len(pattern) > MAX_PATTERN_CHARS:
        return f"longer than {MAX_PATTERN_CHARS} characters"
    try:
        return re2.compile(pattern, options=_OPTIONS)
    except re2.error as e:
        why = e.args[0].decode("utf-8", "replace") if e.args and isinstance(e.args[0], bytes) else str(e)
        return f"{why} (RE2 runs regexes in linear time: no backreferences or lookaround, repeats up to 1000)"


def regex_error(pattern: str) -> str | None:
    """Why ``pattern`` cannot be a matcher's regex, or None when it can."""
    c = _compiled(pattern)
    return c if isinstance(c, str) else None


def check_matchers(matchers: Mapping[str, str], where: str = "matchers") -> None:
    """Raise ValueError naming the first matcher that cannot be used (``where.label: why``)."""
    for label, want in matchers.items():
        if not isinstance(want, str):
            raise ValueError(f"{where}.{label}: a string (a value, or ~regex)")
        if want.startswith("~"):
            why = regex_error(want[1:])
            if why:
                raise ValueError(f"{where}.{label}: bad regex: {why}")


def check_silence(matchers: Mapping[str, str], duration: timedelta) -> None:
    """Raise ValueError naming what makes a silence unusable: no matchers, a bad one, a duration
    that is not positive or longer than ``MAX_SILENCE``."""
    if not matchers:
        raise ValueError('matchers: at least one, e.g. {"alertname": "SignalDrift"}')
    check_matchers(matchers)
    if duration <= timedelta(0):
        raise ValueError("duration: must be positive, e.g. 4h")
    if duration > MAX_SILENCE:
        raise ValueError(f"duration: at most {MAX_SILENCE.days}d (change the rule for a longer mute)")


def literal(value: str) -> str:
    """The matcher that holds exactly for ``value``: the value itself, or an escaped regex where
    the value starts with ``~`` (which would otherwise read as a regex)."""
    return "~" + re2.escape(value) if value.startswith("~") else value


def matches(matchers: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """Every matcher holds for ``labels`` (a missing label is the empty string)."""
    for k, want in matchers.items():
        have = labels.get(k, "")
        if want.startswith("~"):
            c = _compiled(want[1:])
            if isinstance(c, str):
                _refused_once(want[1:], c)
                return False
            if c.fullmatch(have) is None:
                return False
        elif have != want:
            return False
    return True


@lru_cache(maxsize=256)
def _refused_once(pattern: str, why: str) -> None:
    log.warning("a stored matcher's regex %r matches nothing: %s", pattern[:200], why)
