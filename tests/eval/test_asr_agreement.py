"""The ASR agreement proxy: exact edit distances, and pocketsphinx hears the same words in a copy."""

import numpy as np
import pytest

from vqspeech.eval.asr_agreement import agreement_error, edit_distance


@pytest.mark.parametrize("ref, hyp, distance", [
    ("", "", 0), ("a b c", "a b c", 0), ("a b c", "", 3), ("", "a b", 2), ("a b c", "a x c", 1),
    ("a b c", "a c", 1), ("a b", "a b c", 1), ("kitten sitting", "sitting kitten", 2)])
def test_edit_distance_exact_cases(ref, hyp, distance):
    assert edit_distance(ref.split(), hyp.split()) == distance
    assert edit_distance(hyp.split(), ref.split()) == distance  # symmetric


def test_agreement_error_is_edits_over_reference_words():
    assert agreement_error([["a", "b"], ["c", "d", "e", "f"]], [["a", "b"], ["c"]]) == pytest.approx(3 / 6)
    assert agreement_error([[]], [["a"]]) is None


def test_a_copy_agrees_with_itself(vctk_mini):
    import soundfile as sf

    from vqspeech.eval.asr_agreement import Recognizer

    wav, sr = sf.read(str(vctk_mini / "wav16" / "p225" / "p225_003.wav"), dtype="float32")
    recognizer = Recognizer()
    words = recognizer.words(wav)
    assert len(words) >= 3 and recognizer.words(wav.copy()) == words
    noise = np.random.default_rng(0).standard_normal(len(wav)).astype(np.float32) * 0.3
    assert agreement_error([words], [recognizer.words(noise)]) > 0.5
