"""Phone alignments: each reader on a small handwritten file, the phone-set mapping, one label per frame,
and the faults that make a file unusable."""

import pytest

from vqspeech.data.alignments import (AlignmentError, PhoneSet, Segment, check_alignment, frame_labels,
                                      read_alignment, read_htk_lab, read_psdur, read_textgrid, read_timit_phn)

EXPECTED = [Segment(0.0, 0.25, "sil"), Segment(0.25, 0.4, "dh"), Segment(0.4, 0.5, "AH0"), Segment(0.5, 0.8, "")]

TEXTGRID_LONG = '''File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0
xmax = 0.8
tiers? <exists>
size = 2
item []:
    item [1]:
        class = "IntervalTier"
        name = "words"
        xmin = 0
        xmax = 0.8
        intervals: size = 2
        intervals [1]:
            xmin = 0
            xmax = 0.25
            text = ""
        intervals [2]:
            xmin = 0.25
            xmax = 0.8
            text = "say ""the"""
    item [2]:
        class = "IntervalTier"
        name = "phones"
        xmin = 0
        xmax = 0.8
        intervals: size = 4
        intervals [1]:
            xmin = 0
            xmax = 0.25
            text = "sil"
        intervals [2]:
            xmin = 0.25
            xmax = 0.4
            text = "dh"
        intervals [3]:
            xmin = 0.4
            xmax = 0.5
            text = "AH0"
        intervals [4]:
            xmin = 0.5
            xmax = 0.8
            text = ""
'''

TEXTGRID_SHORT = '''File type = "ooTextFile"
Object class = "TextGrid"

0
0.8
<exists>
2
"TextTier"
"events"
0
0.8
1
0.3
"click"
"IntervalTier"
"Phones"
0
0.8
4
0
0.25
"sil"
0.25
0.4
"dh"
0.4
0.5
"AH0"
0.5
0.8
""
'''


def test_read_psdur_phone_end_times(tmp_path):
    path = tmp_path / "a.psdur"
    path.write_text("pau:0.184 dh:0.236 ax:0.270\n")
    assert read_psdur(path) == [Segment(0.0, 0.184, "pau"), Segment(0.184, 0.236, "dh"), Segment(0.236, 0.27, "ax")]
    path.write_text("pau:0.184 dh\n")
    with pytest.raises(AlignmentError, match="a.psdur"):
        read_psdur(path)


def test_read_textgrid_long_and_short_formats(tmp_path):
    long, short = tmp_path / "long.TextGrid", tmp_path / "short.TextGrid"
    long.write_text(TEXTGRID_LONG)
    short.write_text(TEXTGRID_SHORT)
    assert read_textgrid(long) == EXPECTED
    assert read_textgrid(short) == EXPECTED  # tier name matched case-insensitively; the point tier skipped
    assert read_textgrid(long, tier="words") == [Segment(0.0, 0.25, ""), Segment(0.25, 0.8, 'say "the"')]
    with pytest.raises(AlignmentError, match="no interval tier named 'syllables'.*words, phones"):
        read_textgrid(long, tier="syllables")
    utf16 = tmp_path / "utf16.TextGrid"
    utf16.write_bytes(TEXTGRID_LONG.encode("utf-16"))  # Praat's own encoding for non-ASCII grids
    assert read_textgrid(utf16) == EXPECTED
    short.write_text(TEXTGRID_SHORT[:TEXTGRID_SHORT.index('"dh"')])
    with pytest.raises(AlignmentError, match="ends early"):
        read_textgrid(short)


def test_read_timit_phn_sample_offsets(tmp_path):
    path = tmp_path / "SA1.PHN"
    path.write_text("0 4000 h#\n4000 6400 sh\n6400 8000 iy\n")
    assert read_timit_phn(path) == [Segment(0.0, 0.25, "h#"), Segment(0.25, 0.4, "sh"), Segment(0.4, 0.5, "iy")]
    assert read_timit_phn(path, sample_rate=8000)[1] == Segment(0.5, 0.8, "sh")


def test_read_htk_lab_100ns_units(tmp_path):
    path = tmp_path / "a.lab"
    path.write_text("0 2500000 sil\n2500000 4000000 dh -12.5\n.\n")
    assert read_htk_lab(path) == [Segment(0.0, 0.25, "sil"), Segment(0.25, 0.4, "dh")]
    path.write_text("sil\n")
    with pytest.raises(AlignmentError, match="start end label"):
        read_htk_lab(path)


def test_read_alignment_dispatches_by_suffix(tmp_path):
    (tmp_path / "a.psdur").write_text("sil:0.25 dh:0.4")
    (tmp_path / "a.TextGrid").write_text(TEXTGRID_LONG)
    (tmp_path / "a.phn").write_text("0 4000 sil\n4000 6400 dh\n")
    (tmp_path / "a.lab").write_text("0 2500000 sil\n2500000 4000000 dh\n")
    for name in ("a.psdur", "a.phn", "a.lab"):
        assert read_alignment(tmp_path / name) == EXPECTED[:2]
    assert read_alignment(tmp_path / "a.TextGrid") == EXPECTED
    with pytest.raises(AlignmentError, match="unknown alignment format '.ctm'"):
        read_alignment(tmp_path / "a.ctm")
    with pytest.raises(AlignmentError, match="missing.TextGrid: cannot read"):
        read_alignment(tmp_path / "missing.TextGrid")


def test_phone_set_stress_silence_and_case():
    phones = PhoneSet()
    assert [phones.map(s) for s in ("AH0", "ER1", "iy2", "DH", "ah")] == ["ah", "er", "iy", "dh", "ah"]
    assert {phones.map(s) for s in ("pau", "SIL", "sp", "h#", "epi", "")} == {"sil"}
    assert PhoneSet(lowercase=False, silence_label="<s>").map("AH1") == "AH"
    assert PhoneSet(lowercase=False, silence_label="<s>").map("SIL") == "<s>"
    assert PhoneSet(strip_stress=False).map("AH1") == "ah1"
    assert "AH1" in phones and "pau" in phones and "xx" not in phones
    assert "xx" in PhoneSet(inventory=None)


TIMIT_61 = ("aa ae ah ao aw ax ax-h axr ay b bcl ch d dcl dh dx eh el em en eng epi er ey f g gcl h# hh hv ih ix "
            "iy jh k kcl l m n ng nx ow oy p pau pcl q r s sh t tcl th uh uw ux v w y z zh").split()


def test_timit_folding_61_to_39():
    folded = PhoneSet(fold_timit=True)
    assert len(TIMIT_61) == 61 and all(s in PhoneSet() for s in TIMIT_61)  # known without folding too
    mapped = {s: folded.map(s) for s in TIMIT_61}
    assert len({m for m in mapped.values() if m is not None}) == 39
    assert mapped["q"] is None
    assert [mapped[s] for s in ("ao", "ix", "ax-h", "axr", "zh", "ux", "nx", "eng", "hv", "el")] == \
        ["aa", "ih", "ah", "er", "sh", "uw", "n", "ng", "hh", "l"]
    assert {mapped[s] for s in ("pcl", "tcl", "kcl", "bcl", "dcl", "gcl", "h#", "pau", "epi")} == {"sil"}
    assert mapped["iy"] == "iy" and "q" in folded  # a deleted symbol is known, not a fault


def test_frame_labels_take_the_phone_at_each_frame_centre():
    segments = [Segment(0.0, 0.1, "a"), Segment(0.1, 0.25, "b"), Segment(0.3, 0.4, "c")]  # a gap at 0.25-0.3
    # 20 frames/s: centres 0.025, 0.075, ..., 0.425
    assert frame_labels(segments, 9, 20.0) == ["a", "a", "b", "b", "b", None, "c", "c", None]
    # a centre on a boundary belongs to the segment that starts there
    assert frame_labels([Segment(0.0, 0.05, "a"), Segment(0.05, 0.2, "b")], 2, 10.0) == ["b", "b"]
    mapped = frame_labels([Segment(0.0, 0.1, "AH1"), Segment(0.1, 0.2, "q"), Segment(0.2, 0.3, "pau")], 3, 10.0,
                          PhoneSet(fold_timit=True))
    assert mapped == ["ah", None, "sil"]
    assert frame_labels([], 2, 10.0) == [None, None]


def test_check_alignment_finds_each_fault():
    good = [Segment(0.0, 0.2, "pau"), Segment(0.2, 0.5, "ah"), Segment(0.5, 1.1, "pau")]
    assert check_alignment(good, 1.0, PhoneSet()) == []  # 0.1 s past the audio: flite's last pause, tolerated
    assert check_alignment(good, 0.9, PhoneSet()) == ["ends at 1.100 s, past the audio (0.900 s)"]
    overlap = [Segment(0.0, 0.3, "pau"), Segment(0.2, 0.5, "ah")]
    assert [p.split(":")[0] for p in check_alignment(overlap, 1.0)] == ["segment 2 ('ah') overlaps the previous one"]
    negative = [Segment(0.0, 0.3, "pau"), Segment(0.3, 0.1, "ah"), Segment(-0.1, 0.0, "x")]
    assert len([p for p in check_alignment(negative, 1.0) if "negative" in p]) == 2
    unknown = [Segment(0.0, 0.1, "ah"), Segment(0.1, 0.2, "xx"), Segment(0.2, 0.3, "xx")]
    assert check_alignment(unknown, 1.0, PhoneSet()) == ["unknown phone symbol 'xx' (2×)"]
    assert check_alignment(unknown, 1.0) == []  # no inventory given: any symbol goes
    assert check_alignment([], 1.0) == ["no phone segments"]
