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
