"""Phone-boundary accuracy of an alignment against reference phone times of the same utterance, e.g.
forced alignment (:mod:`vqspeech.data.forced_align`) against flite's own times (tools/eval_align.py).

The two may spell phones differently (two lexicons, two symbol sets): both go through one
:class:`~vqspeech.data.alignments.PhoneSet` and a table of equivalents, and are paired by edit distance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vqspeech.data.alignments import PhoneSet, Segment

FLITE_EQUIVALENTS = {"ax": "ah"}  # flite's schwa; CMUdict writes it AH0


@dataclass(frozen=True)
class BoundaryComparison:
    errors: np.ndarray  # float [M] seconds, hypothesis - reference, one per matched boundary
    n_reference: int  # boundaries between neighbouring reference phones
    n_substituted: int  # matched boundaries beside a phone the two sequences name differently


def compare_boundaries(reference: Sequence[Segment], hypothesis: Sequence[Segment],
                       phone_set: PhoneSet | None = None,
                       equivalents: dict[str, str] = FLITE_EQUIVALENTS) -> BoundaryComparison:
    """Errors of the hypothesis's phone boundaries against the reference's.

    Both sequences are mapped through ``phone_set`` (then ``equivalents``; neighbouring silences merge)
    and matched by edit distance (substitution, insertion and deletion cost 1 each; among equally short
    edits the one whose paired phones lie closest in time). A boundary is the end of phone i (= start of
    i + 1); a reference boundary is matched when phones i and i + 1 are paired with neighbouring hypothesis
    phones j and j + 1, identical or substituted; its error is the difference of the two end times.
    """
    phone_set = phone_set or PhoneSet()
    ref, hyp = _mapped(reference, phone_set, equivalents), _mapped(hypothesis, phone_set, equivalents)
    n, m = len(ref), len(hyp)
    # edits, then (a tie-break far below one edit) how far paired phones lie apart in time
    cost = np.zeros((n + 1, m + 1))
    cost[:, 0], cost[0, :] = np.arange(n + 1), np.arange(m + 1)
    move = np.zeros((n + 1, m + 1), dtype=int)  # 0 pair, 1 reference phone left out, 2 hypothesis phone
    move[1:, 0], move[0, 1:] = 1, 2
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            r, h = ref[i - 1], hyp[j - 1]
            apart = abs(r.start - h.start) + abs(r.end - h.end)
            options = (cost[i - 1, j - 1] + (r.phone != h.phone) + 1e-6 * apart, cost[i - 1, j] + 1, cost[i, j - 1] + 1)
            move[i, j] = int(np.argmin(options))
            cost[i, j] = options[move[i, j]]
    pairs, i, j = [], n, m
    while i > 0 or j > 0:
        if move[i, j] == 0:
            pairs.append((i - 1, j - 1))
        i, j = (i - 1, j - 1) if move[i, j] == 0 else (i - 1, j) if move[i, j] == 1 else (i, j - 1)
    pairs.reverse()
    errors, substituted = [], 0
    for (i, j), (k, l) in zip(pairs, pairs[1:]):
        if k == i + 1 and l == j + 1:
            errors.append(hyp[j].end - ref[i].end)
            substituted += any(ref[a].phone != hyp[b].phone for a, b in ((i, j), (k, l)))
    return BoundaryComparison(np.array(errors, dtype=float), max(n - 1, 0), substituted)


def _mapped(segments: Sequence[Segment], phone_set: PhoneSet, equivalents: dict[str, str]) -> list[Segment]:
    out: list[Segment] = []
    for seg in sorted(segments, key=lambda s: s.start):
        phone = phone_set.map(seg.phone)
        if phone is None:
            continue
        phone = equivalents.get(phone, phone)
        if out and phone == phone_set.silence_label and out[-1].phone == phone:
            out[-1] = Segment(out[-1].start, seg.end, phone)
        else:
            out.append(Segment(seg.start, seg.end, phone))
    return out
