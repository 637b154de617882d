"""Forced alignment (pocketsphinx) on flite speech made at test time: coverage, order, the dictionary's
pronunciation, boundary error against flite's own phone times, the TextGrid round trip, and `vqspeech align`
(skip existing, --overwrite, missing words, unreadable audio, a corpus without text)."""

import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vqspeech.cli import main
from vqspeech.data.alignments import PhoneSet, Segment, check_alignment, read_alignment, read_textgrid, write_textgrid
from vqspeech.data.audio import load_audio
from vqspeech.data.corpus import load_corpus
from vqspeech.data.forced_align import SAMPLE_RATE, Aligner, AlignmentFailed, align_corpus, normalise_transcript
from vqspeech.errors import UserError
from vqspeech.eval.boundaries import compare_boundaries

# Mean |error| of matched phone boundaries against flite's -psdur times: 11.5 ms over 40 demo utterances
# (tools/eval_align.py), 12.2 ms and 83 % within 20 ms on this fixture's six; the bounds leave room for other
# flite builds.
MAX_MEAN_ERROR = 0.025
MIN_WITHIN_20MS = 0.65


@pytest.fixture(scope="module")
def aligner():
    return Aligner()


@pytest.fixture(scope="module")
def aligned(flite_corpus, aligner):
    """(utterance, alignment) for every utterance of the flite corpus."""
    corpus = load_corpus(flite_corpus, "manifest.jsonl")
    return [(u, aligner.align(load_audio(u.path, SAMPLE_RATE), normalise_transcript(u.text)))
            for u in corpus.utterances]


def cmudict_pronunciations(words):
    """word -> every pronunciation the shipped CMU dictionary lists (lower-case phone tuples)."""
    from pocketsphinx import get_model_path

    wanted, found = set(words), {}
    for line in (Path(get_model_path()) / "en-us" / "cmudict-en-us.dict").read_text().splitlines():
        word, *phones = line.split()
        base = word.split("(")[0]
        if base in wanted:
            found.setdefault(base, []).append(tuple(p.lower() for p in phones))
    return found


def test_normalise_transcript():
    text = "Hello, World! It's 1,250 \u201cdogs\u201d & 2.5% twenty-one O\u2019Neil's caf\u00e9."
    assert normalise_transcript(text) == [
        "hello", "world", "it's", "one", "thousand", "two", "hundred", "fifty", "dogs", "and", "two", "point", "five",
        "percent", "twenty", "one", "o'neil's", "cafe"]
    assert normalise_transcript("'Quoted' -- 7 40 100 1000000") == [
        "quoted", "seven", "forty", "one", "hundred", "one", "million"]


def test_alignment_covers_the_audio_in_order_and_follows_the_dictionary(aligned):
    for u, alignment in aligned:
        assert alignment.duration == pytest.approx(sf.info(str(u.path)).duration)
        words = normalise_transcript(u.text)
        for tier in (alignment.words, alignment.phones):
            assert tier[0].start == 0 and tier[-1].end == pytest.approx(alignment.duration)
            for a, b in zip(tier, tier[1:]):
                assert a.start < a.end == pytest.approx(b.start)  # ordered, contiguous, no overlap
        assert [w.phone for w in alignment.words if w.phone] == words
        assert alignment.phones[0].phone == alignment.phones[-1].phone == "sil"  # flite pads with pauses
        spoken = tuple(p.phone for p in alignment.phones if p.phone != "sil")
        variants = cmudict_pronunciations(words)
        assert spoken in {sum(choice, ()) for choice in itertools.product(*(variants[w] for w in words))}
        assert not check_alignment(alignment.phones, alignment.duration, PhoneSet())


def test_an_alignment_does_not_depend_on_the_utterances_aligned_before(aligned):
    for u, expected in aligned:  # the fixture aligned them one after another with one decoder
        assert Aligner().align(load_audio(u.path, SAMPLE_RATE), normalise_transcript(u.text)) == expected


def test_boundaries_are_close_to_flites_own_phone_times(aligned):
    comparisons = [compare_boundaries(read_alignment(u.alignment), alignment.phones) for u, alignment in aligned]
    errors = np.abs(np.concatenate([c.errors for c in comparisons]))
    assert sum(len(c.errors) for c in comparisons) >= 0.9 * sum(c.n_reference for c in comparisons)
    assert errors.mean() < MAX_MEAN_ERROR
    assert (errors <= 0.020).mean() > MIN_WITHIN_20MS


def test_textgrid_round_trip(tmp_path, aligned):
    _, alignment = aligned[0]
    path = write_textgrid(tmp_path / "a.TextGrid", {"words": alignment.words, "phones": alignment.phones},
                          alignment.duration)
    for tier, segments in (("words", alignment.words), ("phones", alignment.phones)):
        assert read_textgrid(path, tier) == segments
    with pytest.raises(UserError, match="already exists"):
        write_textgrid(path, {"phones": alignment.phones}, alignment.duration)
    # gaps become empty intervals; quotes survive; nothing but the TextGrid is left in the folder
    odd = [Segment(0.1, 0.2, 'say "hi"'), Segment(0.3, 0.4, "x")]
    write_textgrid(path, {"phones": odd}, 0.5, overwrite=True)
    assert read_textgrid(path) == [Segment(0.0, 0.1, ""), *odd[:1], Segment(0.2, 0.3, ""), odd[1],
                                   Segment(0.4, 0.5, "")]
    assert [p.name for p in tmp_path.iterdir()] == ["a.TextGrid"]


def test_align_fails_cleanly_on_audio_too_short(aligner):
    with pytest.raises(AlignmentFailed):
        aligner.align(np.zeros(1600, dtype=np.float32), normalise_transcript("the old farmer carried a basket"))


def test_align_corpus_writes_textgrids_and_a_manifest_skips_existing_and_overwrites(flite_corpus, tmp_path):
    out = tmp_path / "out"
    first = align_corpus(flite_corpus, out=out, progress=False)
    assert (first.aligned, first.existing, first.no_text, first.failed, first.missing_words) == (6, 0, 0, {}, {})
    corpus = load_corpus(out, "manifest.aligned.jsonl")  # the manifest is a corpus rooted where it lies
    assert len(corpus.utterances) == 6 and not list(flite_corpus.rglob("*.TextGrid"))
    for u in corpus.utterances:
        assert u.alignment == out / u.speaker / f"{u.utterance}.TextGrid" and u.path.is_file()
        assert not check_alignment(read_alignment(u.alignment), sf.info(str(u.path)).duration, PhoneSet())
    stamp = corpus.utterances[0].alignment.stat().st_mtime_ns

    again = align_corpus(flite_corpus, out=out, progress=False)
    assert (again.aligned, again.existing) == (0, 6)
    assert corpus.utterances[0].alignment.stat().st_mtime_ns == stamp
    assert load_corpus(out, "manifest.aligned.jsonl").utterances == corpus.utterances

    grids = {u.alignment: u.alignment.read_text() for u in corpus.utterances}
    redo = align_corpus(flite_corpus, out=out, overwrite=True, workers=2, progress=False)
    assert (redo.aligned, redo.existing) == (6, 0)
    assert {path: path.read_text() for path in grids} == grids  # worker processes align exactly as one does
    with pytest.raises(UserError, match="would replace"):
        align_corpus(flite_corpus, manifest_out="manifest.jsonl", progress=False)


def test_cli_reports_missing_words_and_unreadable_audio_and_takes_extra_pronunciations(flite_corpus, tmp_path,
                                                                                        capsys):
    root = tmp_path / "corpus"
    shutil.copytree(flite_corpus, root)
    rows = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]
    rows[0]["text"] = "Zorblax, " + rows[0]["text"]
    rows[1]["text"] = None
    (root / rows[2]["path"]).write_bytes(b"not audio")
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    assert main(["align", "--data-root", str(root), "-q"]) == 2  # a file failed
    summary = capsys.readouterr().out
    assert "aligned 3," in summary and "1 without text" in summary and "1 failed" in summary
    assert "1 with words missing from the dictionary [zorblax (1x)]" in summary
    written = [json.loads(line) for line in (root / "manifest.aligned.jsonl").read_text().splitlines()]
    assert [r.get("alignment", "").endswith(".TextGrid") for r in written] == [False] * 3 + [True] * 3
    assert written[0]["alignment"] == rows[0]["alignment"]  # rows not aligned keep what they had
    assert (root / rows[3]["path"]).with_suffix(".TextGrid").is_file()  # beside the audio by default

    (tmp_path / "extra.dict").write_text("zorblax Z AO R B L AE K S\n")
    (root / rows[2]["path"]).unlink()
    rows.pop(2)
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["align", "--data-root", str(root), "--dict", str(tmp_path / "extra.dict"), "-q"]) == 0
    assert "aligned 1, already aligned 3" in capsys.readouterr().out
    words = read_textgrid((root / rows[0]["path"]).with_suffix(".TextGrid"), "words")
    assert "zorblax" in [w.phone for w in words]


def test_cli_one_line_error_on_a_corpus_without_text(tiny_corpus, capsys):
    assert main(["align", "--data-root", str(tiny_corpus), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "transcript" in err and "\n" not in err


def test_cli_one_line_error_on_a_folder_without_a_manifest(tmp_path, capsys):
    (tmp_path / "spk").mkdir()
    assert main(["align", "--data-root", str(tmp_path), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: no manifest {tmp_path / 'manifest.jsonl'}") and "--manifest" in err
    assert "data.manifest" not in err and "\n" not in err
