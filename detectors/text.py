"""Text quality signals. Pure: a string in, a frozen dataclass out.

* ``characters``: Unicode code points; ``tokens``: whitespace-separated words;
* ``empty``: 1.0 when the text has no non-whitespace character;
* ``non_printable_share``: share of characters that are neither printable nor whitespace
  (control characters, unassigned code points, U+FFFD replacement characters from bad decoding);
* ``non_ascii_share``: share of characters above U+007F;
* ``scripts``: how many writing systems the letters come from (Latin, Cyrillic, Greek, Arabic,
  Hebrew, CJK, Hangul, Kana, Devanagari, Thai, other), a script-mix indicator;
* ``sentiment``: VADER's compound score in [−1, 1] (``vaderSentiment``, its lexicon shipped in
  the wheel; an English lexicon: other languages score near 0), NaN for an empty text;
* ``language``: the language Lingua identifies (``lingua-language-detector``, low-accuracy mode,
  its models shipped in the wheel: 0.35 s to load, +79 MiB, against langid's 1.4 s and +65 MiB;
  it identified all 70 sentences of tests/data/languages.json, langid 68, at 10× langid's
  speed), as a category: its ISO 639-3 code as a number (``language_code``), NaN when none can be
  told (digits, a word or two of no language); ``language_confidence`` Lingua's confidence in it.

Nothing of the text is kept but these numbers; the vocabulary's hashed buckets are in
``token_buckets`` (what they can and cannot reveal: see there).
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from dataclasses import dataclass

import numpy as np

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


# signals whose values are categories (coded as numbers): drift-tested as categories
CATEGORICAL = ("language",)


@dataclass(frozen=True)
class TextSignals:
    characters: int
    tokens: int
    empty: float
    non_printable_share: float
    non_ascii_share: float
    scripts: int
    sentiment: float
    language: float
    language_confidence: float


def language_code(iso639_3: str) -> float:
    """An ISO 639-3 code as the number it is stored as (base 26; stable whatever the identifier
    learns later).

    >>> language_code("eng"), language_name(language_code("eng"))
    (3048.0, 'eng')
    """
    a, b, c = (ord(ch) - 97 for ch in iso639_3.lower())
    return float(a * 676 + b * 26 + c)


def language_name(code: float) -> str:
    """The ISO 639-3 code of a stored ``language`` value."""
    n = int(code)
    return "".join(chr(97 + d) for d in (n // 676, n // 26 % 26, n % 26))


_analyzer = None
_detector = None


def sentiment(text: str) -> float:
    """VADER's compound score (NaN for an empty text)."""
    global _analyzer
    if not text.strip():
        return math.nan
    if _analyzer is None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        _analyzer = SentimentIntensityAnalyzer()
    return float(_analyzer.polarity_scores(text)["compound"])


def language(text: str) -> tuple[float, float]:
    """(language code, confidence) of a text; (NaN, NaN) when no language can be told."""
    global _detector
    if _detector is None:
        from lingua import LanguageDetectorBuilder

        _detector = (
            LanguageDetectorBuilder.from_all_languages()
            .with_low_accuracy_mode()
            .with_preloaded_language_models()
            .build()
        )
    values = _detector.compute_language_confidence_values(text) if text.strip() else []
    if not values or values[0].value <= 0:
        return math.nan, math.nan
    top = values[0]
    # rounded: Lingua sums its n-gram probabilities in an order that varies between processes, so
    # the last bits differ (a worker process and the daemon's would store different numbers)
    return language_code(top.language.iso_code_639_3.name), round(float(top.value), 6)


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
    lang, confidence = language(text)
    return TextSignals(
        characters=n,
        tokens=len(text.split()),
        empty=float(not text.strip()),
        non_printable_share=bad / n if n else 0.0,
        non_ascii_share=wide / n if n else 0.0,
        scripts=len(scripts),
        sentiment=sentiment(text),
        language=lang,
        language_confidence=confidence,
    )


TOKEN_BUCKETS = 1 << 20  # far more than a vocabulary's words: two words share a bucket rarely
MAX_TOKENS = 512  # per text; a longer one's first 512 tokens
_WORD = re.compile(r"\w+")


def token_buckets(
    text: str, key: bytes, buckets: int = TOKEN_BUCKETS, max_tokens: int = MAX_TOKENS
) -> np.ndarray:
    """Each word of ``text`` (lower-cased runs of letters and digits; a CJK run without spaces is
    one word) as its bucket: a keyed BLAKE2b hash of the word, modulo ``buckets``, in order.

    What the buckets reveal: how often each bucket occurs, and so which texts share words; to
    anyone holding ``key``, also which candidate words occurred (by hashing them), never their
    order beyond the event's own (one event's list is kept, not the text). Without the key a
    bucket is a pseudonym. What they cannot reveal: a word nobody thought to try, the text's
    wording, or anything of a bucket shared by two words (about V / 2²⁰ of them).

    >>> b = token_buckets("The cat saw the other cat", b"k")
    >>> len(b), len(set(b.tolist())), bool(b[0] == b[3]), bool(b[1] == b[5])
    (6, 4, True, True)
    """
    words = _WORD.findall(text.lower())[:max_tokens]
    out = np.empty(len(words), dtype=np.uint32)
    for i, w in enumerate(words):
        digest = hashlib.blake2b(w.encode(), key=key, digest_size=8).digest()
        out[i] = int.from_bytes(digest, "little") % buckets
    return out
