"""Scoring phone boundaries against a reference spelled in another phone set."""

import numpy as np

from vqspeech.data.alignments import Segment
from vqspeech.eval.boundaries import compare_boundaries


def test_compare_boundaries_matches_phones_across_lexicons():
    ref = [Segment(0.0, 0.2, "pau"), Segment(0.2, 0.3, "dh"), Segment(0.3, 0.4, "ax"), Segment(0.4, 0.6, "k"),
           Segment(0.6, 0.8, "ae"), Segment(0.8, 0.9, "t"), Segment(0.9, 1.2, "pau")]
    # "ax" is flite's "ah"; "ae" -> "eh" a substitution; "hh" an insertion; two silences merge
    hyp = [Segment(0.0, 0.21, "SIL"), Segment(0.21, 0.3, "DH"), Segment(0.3, 0.42, "AH0"), Segment(0.42, 0.6, "K"),
           Segment(0.6, 0.7, "EH"), Segment(0.7, 0.75, "HH"), Segment(0.75, 0.9, "T"), Segment(0.9, 1.0, "SIL"),
           Segment(1.0, 1.2, "SIL")]
    c = compare_boundaries(ref, hyp)
    assert c.n_reference == 6
    # sil|dh dh|ah ah|k k|ae(eh) match; ae|t is split by the inserted hh; t|sil matches. ae pairs with eh,
    # not with hh (as few edits either way), because eh lies closer to it in time
    np.testing.assert_allclose(c.errors, [0.01, 0.0, 0.02, 0.0, 0.0], atol=1e-9)
    assert c.n_substituted == 1


def test_identical_alignments_match_every_boundary_with_no_error():
    phones = [Segment(0.0, 0.1, "sil"), Segment(0.1, 0.25, "ah"), Segment(0.25, 0.4, "b"), Segment(0.4, 0.5, "sil")]
    c = compare_boundaries(phones, phones)
    assert (c.n_reference, c.n_substituted) == (3, 0)
    np.testing.assert_array_equal(c.errors, np.zeros(3))
    # a phone the hypothesis lacks costs the two boundaries beside it
    c = compare_boundaries(phones, [phones[0], Segment(0.1, 0.4, "ah"), phones[3]])
    np.testing.assert_allclose(c.errors, [0.0])
