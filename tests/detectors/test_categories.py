"""A category signal's drift test (text.language): the two-sample chi-square of homogeneity."""

from detectors.drift import chi_square_two_sample


def test_one_stray_sentence_in_a_new_language_is_no_drift_but_a_new_half_is():
    reference = [700, 300, 0]  # English, German, Dutch
    assert not chi_square_two_sample(reference, [349, 150, 1]).drift
    moved = chi_square_two_sample(reference, [175, 75, 250])
    assert moved.drift and moved.p_value < 1e-12 and 0.5 < moved.effect <= 1.0
    # Cramér's V stays in [0, 1] however rare the category was in the reference
    assert chi_square_two_sample([10_000, 1], [0, 500]).effect <= 1.0


def test_too_few_is_insufficient_and_a_lone_category_is_no_drift():
    assert chi_square_two_sample([20, 5], [3, 1], min_n=30).status == "insufficient_data"
    same = chi_square_two_sample([100, 0], [50, 0])
    assert (same.drift, same.effect, same.p_value) == (False, 0.0, 1.0)
