"""Producer strings on their way to a log line or a terminal.

A model name, a slice value or a reason may hold a newline (a forged log record on the next
line), a terminal escape sequence (a cleared screen, a recoloured line, a rewritten title bar) or
a bidirectional override (text that reads differently from what it is). ``printable`` writes each
such character as a visible escape, so one record stays one line and shows what was sent.
"""

from __future__ import annotations

import re

# C0 controls but tab, DEL, C1 controls (NEL among them), the Unicode line and paragraph
# separators, the bidirectional embeddings, overrides and isolates
_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r"}


def _escape(m: re.Match) -> str:
    c = m.group()
    return _NAMED.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")


def printable_lines(text: str) -> str:
    """``printable`` for text of several lines: its newlines kept, every other control escaped."""
    return "\n".join(printable(line) for line in text.split("\n"))


def printable(text: str) -> str:
    """``text`` with every character that could start a line or steer a terminal escaped.

    >>> printable("m1\\nERROR forged \\x1b[2J")
    'm1\\\\nERROR forged \\\\x1b[2J'
    """
    return _UNSAFE.sub(_escape, text) if _UNSAFE.search(text) else text
