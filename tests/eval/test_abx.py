import numpy as np
import pytest

from vqspeech.data.alignments import PhoneSet, Segment
from vqspeech.eval.abx import (_average, abx_error, abx_items, angular_dtw, item_frames, read_item_file,
                               write_item_file)

FRAME_RATE = 10.0  # frames per second: frame j is centred at (j + 0.5) / 10 s


def _utterance(phones: str, seconds_each: float = 0.3) -> list[Segment]:
    return [Segment(i * seconds_each, (i + 1) * seconds_each, p) for i, p in enumerate(phones.split())]


def test_dtw_is_zero_on_a_time_stretched_copy_and_symmetric():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 3))
    stretched = np.repeat(a, [1, 3, 2, 1], axis=0)
    b = rng.normal(size=(5, 3))
    d = angular_dtw([(a, stretched), (a, b), (b, a), (a, a)])
    assert d[0] == pytest.approx(0.0, abs=1e-6) and d[3] == pytest.approx(0.0, abs=1e-6)
    assert d[1] == pytest.approx(d[2]) and d[1] > 0.05


def test_dtw_of_orthogonal_frames_is_one_half_and_opposite_is_one():
    x, y = np.array([[1.0, 0.0]] * 3), np.array([[0.0, 2.0]] * 5)
    assert angular_dtw([(x, y), (x, -x)]) == pytest.approx([0.5, 1.0])


def test_items_are_the_non_silence_phones_with_both_neighbours_and_their_frames():
    items = abx_items([_utterance("pau a b pau c")], ["u1"], ["s1"], [15], FRAME_RATE, PhoneSet(inventory=None))
    assert [(it.previous, it.phone, it.next) for it in items] == [("sil", "a", "b"), ("a", "b", "sil")]
    # "a" spans 0.3-0.6 s: frame centres 0.35, 0.45, 0.55 -> frames 3, 4, 5
    assert (items[0].first_frame, items[0].end_frame) == (3, 6)
    assert (items[1].first_frame, items[1].end_frame) == (6, 9)


def test_item_file_format(tmp_path):
    items = abx_items([_utterance("pau a b pau")], ["u1"], ["s1"], [12], FRAME_RATE, PhoneSet(inventory=None))
    write_item_file(tmp_path / "abx.item", items)
    lines = (tmp_path / "abx.item").read_text().splitlines()
    assert lines[0] == "#file onset offset #phone prev-phone next-phone speaker"
    assert lines[1] == "u1 0.3000 0.6000 a sil b s1"


def _corpus(feature):
    """Two speakers each saying 'x a y' and 'x b y' twice (4 utterances each); feature(phone, speaker) -> [D]."""
    alignments, files, speakers, features = [], [], [], []
    for speaker in ("s1", "s2"):
        for k, middle in enumerate(["a", "b", "a", "b"]):
            segs = _utterance(f"x {middle} y")
            alignments.append(segs)
            files.append(f"{speaker}_{k}")
            speakers.append(speaker)
            features.append(np.stack([feature(s.phone, speaker) for s in segs for _ in range(3)]))
    items = abx_items(alignments, files, speakers, [9] * len(files), FRAME_RATE, PhoneSet(inventory=None))
    return items, features


def test_features_that_encode_the_phone_make_no_error():
    onehot = {"x": [1, 0, 0, 0], "a": [0, 1, 0, 0], "b": [0, 0, 1, 0], "y": [0, 0, 0, 1]}
    items, feats = _corpus(lambda phone, speaker: np.array(onehot[phone], float) + (0.1 if speaker == "s2" else 0))
    result = abx_error(items, feats)
    assert result.within_speaker == 0.0 and result.across_speaker == 0.0
    # per context (x, y): within 2 speakers × 2 ordered phone pairs, across 2 speaker pairs × 2
    assert (result.within_cells, result.across_cells) == (4, 4)


def test_features_that_encode_only_the_speaker_are_at_chance():
    items, feats = _corpus(lambda phone, speaker: np.array([1.0, 0.0]) if speaker == "s1" else np.array([0.0, 1.0]))
    result = abx_error(items, feats)
    assert result.within_speaker == 0.5 and result.across_speaker == 0.5


def test_features_that_swap_the_phones_make_every_triplet_an_error():
    # each utterance's middle phone gets the vector of the *other* phone in every second utterance
    onehot = {"x": [1, 0, 0, 0], "a": [0, 1, 0, 0], "b": [0, 0, 1, 0], "y": [0, 0, 0, 1]}
    items, feats = _corpus(lambda phone, speaker: np.array(onehot[phone], float))
    for u in (2, 3, 6, 7):  # second 'a' and second 'b' of each speaker carry the other phone's vector
        feats[u][3:6] = np.array(onehot["b" if u % 2 == 0 else "a"], float)
    result = abx_error(items, feats)
    # per cell, A/X from {a1, a2}: (a1,b1,a2) error, (a1,b2,a2) tie, (a2,b1,a1) tie, (a2,b2,a1) error -> 0.75
    assert result.within_speaker == pytest.approx(0.75)


def test_no_minimal_pairs_gives_none_not_an_error():
    items = abx_items([_utterance("x a y")], ["u"], ["s"], [9], FRAME_RATE, PhoneSet(inventory=None))
    result = abx_error(items, [np.ones((9, 2))])
    assert result.within_speaker is None and result.across_speaker is None and result.triplets == 0


def test_the_zerospeech_frame_range_leaves_out_the_last_frame_whose_centre_is_inside():
    # "a" spans 0.3-0.6 s at 10 frames/s: centres 0.35, 0.45, 0.55 inside; the reference scorer ends at
    # floor(0.6 · 10 − 0.5) = 5, so frame 5 is left out, and a one-frame phone has no frame left
    assert item_frames(0.3, 0.6, FRAME_RATE, 15) == (3, 6)
    assert item_frames(0.3, 0.6, FRAME_RATE, 15, zerospeech=True) == (3, 5)
    assert item_frames(0.3, 0.4, FRAME_RATE, 15, zerospeech=True) == (3, 3)
    items = abx_items([_utterance("pau a b pau", 0.1)], ["u1"], ["s1"], [4], FRAME_RATE, PhoneSet(inventory=None),
                      zerospeech=True)
    assert items == []  # one frame per phone: the reference scorer has nothing to compare


def test_the_across_speaker_mean_in_either_order_on_a_hand_case():
    cells = {("c1", "s1", "s2", "a", "b"): 0.0, ("c2", "s1", "s2", "a", "b"): 1.0, ("c1", "s1", "s3", "a", "b"): 1.0}
    # default: contexts first -> (s1, s2): 0.5, (s1, s3): 1.0 -> 0.75
    assert _average(cells) == pytest.approx(0.75)
    # the reference: (context, X speaker) together for A/B speaker s1 -> (0 + 1 + 1) / 3
    assert _average(cells, zerospeech=True) == pytest.approx(2 / 3)


def test_an_item_file_reads_back_as_the_items_it_was_written_from(tmp_path):
    segments = [_utterance("pau a b pau c pau"), _utterance("pau b a pau")]
    files, n_frames = ["u1", "u2"], [18, 12]
    for zerospeech in (False, True):
        items = abx_items(segments, files, ["s1", "s2"], n_frames, FRAME_RATE, PhoneSet(inventory=None), zerospeech)
        write_item_file(tmp_path / "abx.item", items)
        read = read_item_file(tmp_path / "abx.item", dict(zip(files, n_frames)), FRAME_RATE, zerospeech)
        assert [(it.utterance, it.phone, it.first_frame, it.end_frame) for it in read] == \
            [(it.utterance, it.phone, it.first_frame, it.end_frame) for it in items]
