"""Text quality signals. Pure: a string in, a frozen dataclass out.

* ``characters``: Unicode code points; ``tokens``: whitespace-separated words;
* ``empty``: 1.0 when the text has no non-whitespace character;
* ``non_printable_share``: share of characters that are neither printable nor whitespace
  (control characters, unassigned code points, U+FFFD replacement characters from bad decoding);
* ``non_ascii_share``: share of characters above U+007F;
* ``scripts``: how many writing systems the letters come from (Latin, Cyrillic, Greek, Arabic,
  Hebrew, CJK, Hangul, Kana, Devanagari, Thai, other), a script-mix indicator.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

_SCRIPT_PREFIXES = (
    ("LATIN", "latin"),
    ("CYRILLIC", "cyrillic"),
    ("GREEK", "greek"),
    ("ARABIC", "arabic"),
    ("HEBREW", "hebrew"),
    ("CJK", "cjk"),
    ("HANGUL", "hangul"),
    ("HIRAGANA", "kana"),
    ("KATAKANA", "kana"),
    ("DEVANAGARI", "devanagari"),
    ("THAI", "thai"),
)


@dataclass(frozen=True)
class TextSignals:
    characters: int
    tokens: int
    empty: float
    non_printable_share: float
    non_ascii_share: float
    scripts: int


def _script(ch: str) -> str:
    name = unicodedata.name(ch, "")
    for prefix, script in _SCRIPT_PREFIXES:
        if name.startswith(prefix):
            return script
    return "other"


def text_signals(text: str) -> TextSignals:
    """Every text signal of one string.

    >>> s = text_signals("Grüße aus München")
    >>> s.characters, s.tokens, round(s.non_ascii_share, 3), s.scripts
    (17, 3, 0.176, 1)
    """
    n = len(text)
    bad = sum(1 for c in text if c == "\ufffd" or not (c.isprintable() or c.isspace()))
    wide = sum(1 for c in text if ord(c) > 0x7F)
    scripts = {_script(c) for c in text if c.isalpha()}
    return TextSignals(
        characters=n,
        tokens=len(text.split()),
        empty=float(not text.strip()),
        non_printable_share=bad / n if n else 0.0,
        non_ascii_share=wide / n if n else 0.0,
        scripts=len(scripts),
    )
