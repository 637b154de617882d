"""Intelligibility without transcripts: does an offline recogniser hear the same words in the output as in
the input?

pocketsphinx (its wheel ships an English acoustic model, dictionary and language model, so this runs
offline) decodes both; the *agreement error* is the word error rate of the output's decode against the
input's, summed over utterances (edits ÷ words of the input decodes). It is a proxy: the recogniser's own
errors on the input are not counted against the output, and a system that keeps exactly what pocketsphinx
mishears scores well. It is meant for comparisons on the same files (a model beside Codec2 2400), not as a
WER to quote.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SAMPLE_RATE = 16000  # the rate of pocketsphinx's en-us model


def edit_distance(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Levenshtein distance between two token sequences (substitutions, insertions, deletions all cost 1)."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        current = [i]
        for j, hyp in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp)))
        previous = current
    return previous[-1]


def agreement_error(references: Sequence[Sequence[str]], hypotheses: Sequence[Sequence[str]]) -> float | None:
    """Σ edit distance ÷ Σ reference words over pairs (None when the references hold no word)."""
    words = sum(len(r) for r in references)
    if words == 0:
        return None
    return sum(edit_distance(r, h) for r, h in zip(references, hypotheses, strict=True)) / words


class Recognizer:
    """pocketsphinx's default US English word decoder; ``words(wav)`` for float [T] in [-1, 1] at 16 kHz."""

    def __init__(self):
        from pocketsphinx import Decoder

        self.decoder = Decoder(loglevel="FATAL")

    def words(self, wav: np.ndarray) -> list[str]:
        pcm = (np.clip(np.asarray(wav, dtype=np.float32), -1.0, 1.0) * 32767).astype("<i2").tobytes()
        self.decoder.reinit_feat()  # else the previous utterance's cepstral mean leaks into this one
        self.decoder.start_utt()
        self.decoder.process_raw(pcm, no_search=False, full_utt=True)
        self.decoder.end_utt()
        hyp = self.decoder.hyp()
        return [w for w in (hyp.hypstr.split() if hyp is not None else []) if not w.startswith(("<", "["))]
