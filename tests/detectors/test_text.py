import json
import math
from pathlib import Path

import pytest

from detectors.text import text_signals


def test_counts_and_shares():
    s = text_signals("Hello wörld  \n")
    assert (s.characters, s.tokens, s.empty, s.scripts) == (14, 2, 0.0, 1)
    assert s.non_ascii_share == pytest.approx(1 / 14) and s.non_printable_share == 0.0


def test_empty_broken_and_mixed_scripts():
    assert text_signals("   \t").empty == 1.0 and text_signals("").characters == 0
    broken = text_signals("ok\x00\x07\ufffd")
    assert broken.non_printable_share == pytest.approx(3 / 5)
    assert text_signals("Привет hello 你好 こんにちは").scripts == 4  # cyrillic, latin, cjk, kana


SAMPLE = [
    "The service was great and the staff were lovely!",
    "This is the worst delivery I have ever had. Terrible.",
    "The parcel arrived on Tuesday.",
    "Not bad at all, but the screen is a bit too dim :(",
    "I absolutely LOVE it!!! 😍",
    "meh",
    "",
]


def test_sentiment_is_vaders_own_compound_score():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from detectors.text import sentiment

    vader = SentimentIntensityAnalyzer()
    for text in SAMPLE[:-1]:
        assert sentiment(text) == vader.polarity_scores(text)["compound"]
    assert math.isnan(sentiment(SAMPLE[-1]))  # an empty text has no sentiment, not a neutral one
    assert sentiment(SAMPLE[0]) > 0.5 and sentiment(SAMPLE[1]) < -0.5


def test_language_identification_on_fourteen_languages():
    """70 sentences in 14 languages (tests/data/languages.json, written for this test): Lingua's
    low-accuracy mode names every one (the README reports the figure)."""
    from detectors.text import language, language_name

    data = json.loads((Path(__file__).parents[1] / "data" / "languages.json").read_text())
    iso3 = dict(
        en="eng", de="deu", fr="fra", es="spa", it="ita", pt="por", nl="nld",
        sv="swe", pl="pol", ru="rus", tr="tur", ja="jpn", zh="zho", ar="ara",
    )  # fmt: skip
    told = [(lang, language_name(language(s)[0])) for lang, sentences in data.items() for s in sentences]
    right = sum(iso3[lang] == got for lang, got in told)
    assert len(data) >= 10 and len(told) == 70
    assert right / len(told) >= 0.97, [t for t in told if iso3[t[0]] != t[1]]
    assert all(math.isnan(v) for v in language("12345 678"))  # no language in digits


def test_oov_rate_is_exact_on_a_constructed_case():
    """The reference's words, then a window of 200 words of which 30 the reference never had:
    the OOV rate is exactly 30 / 200 (no two words share a bucket here)."""
    import numpy as np

    from detectors.text import token_buckets

    key = b"test-key"
    known = [f"word{i}" for i in range(100)]
    reference = np.concatenate([token_buckets(" ".join(known), key)])
    window_text = " ".join(known[: 170 // 2] * 2) + " " + " ".join(f"novel{i}" for i in range(30))
    window = token_buckets(window_text, key)
    assert window.size == 200
    assert len(set(reference.tolist()) | set(window.tolist())) == 130  # no collision
    assert (~np.isin(window, reference)).sum() / window.size == 30 / 200
    # the buckets depend on the key: without it, a word cannot be looked up
    assert not np.array_equal(token_buckets("hello world", b"one"), token_buckets("hello world", b"two"))
