"""vqspeech prepare librispeech: the LibriSpeech folder or one subset, transcripts, SPEAKERS.TXT, dev/test
speakers held out, the same cache and manifest as VCTK."""

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vqspeech.cli import main
from vqspeech.data.corpus import load_corpus
from vqspeech.data.librispeech import prepare_librispeech
from vqspeech.data.prepare import SplitPolicy
from vqspeech.errors import UserError

# subset -> speaker -> chapter; 3 utterances a chapter, the last of 19/198 without a transcript line
LAYOUT = {"train-clean-100": {"19": "198", "26": "495"}, "dev-clean": {"84": "121123"}}
SPEAKERS_TXT = (";ID  |SEX| SUBSET           |MINUTES| NAME\n"
                "19   | F | train-clean-100  | 25.19 | Kara Shallenberg\n"
                "26   | M | train-clean-100  | 25.08 | Denny Sayers\n"
                "84   | F | dev-clean        |  8.02 | Christie Nowak\n")


def make_librispeech(base: Path) -> Path:
    """base/LibriSpeech/<subset>/<speaker>/<chapter>/*.flac + .trans.txt, and SPEAKERS.TXT."""
    root = base / "LibriSpeech"
    for subset, speakers in LAYOUT.items():
        for speaker, chapter in speakers.items():
            folder = root / subset / speaker / chapter
            folder.mkdir(parents=True)
            lines = []
            for n in range(3):
                utt = f"{speaker}-{chapter}-{n:04d}"
                t = np.arange(int(16000 * (0.3 + 0.1 * n))) / 16000
                sf.write(str(folder / f"{utt}.flac"), (0.4 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 16000)
                if not (speaker == "19" and n == 2):
                    lines.append(f"{utt} WORDS OF UTTERANCE {n} BY {speaker}\n")
            (folder / f"{speaker}-{chapter}.trans.txt").write_text("".join(lines))
    (root / "SPEAKERS.TXT").write_text(SPEAKERS_TXT)
    return root


def rows(manifest: Path) -> list[dict]:
    return [json.loads(line) for line in manifest.read_text().splitlines()]


def test_the_librispeech_folder_with_dev_speakers_held_out(tmp_path, caplog):
    root = make_librispeech(tmp_path)
    with caplog.at_level(logging.WARNING):
        result = prepare_librispeech(root, tmp_path / "out", policy=SplitPolicy(1, 1), workers=1, progress=False)
    assert result.name == "LibriSpeech (dev-clean, train-clean-100)"
    assert (result.speakers, result.utterances, result.made, result.corrupt, result.missing_text) == (3, 9, 9, 0, 1)
    assert result.heldout_speakers == ["84"] and result.splits == {"train": 2, "valid": 2, "test": 2, "heldout": 3}
    assert "1 utterance(s) of 1 speaker(s) have no transcript" in caplog.text
    table = {row["utterance"]: row for row in rows(result.manifest)}
    assert table["26-495-0001"] == {"path": "26/26-495-0001.wav", "speaker": "26", "utterance": "26-495-0001",
                                    "duration": pytest.approx(0.4, abs=0.03), "text": "WORDS OF UTTERANCE 1 BY 26",
                                    "gender": "M", "accent": None, "split": table["26-495-0001"]["split"]}
    assert table["19-198-0002"]["text"] is None and table["84-121123-0000"]["gender"] == "F"
    assert load_corpus(result.root, "manifest.jsonl").speakers == ["19", "26"]


def test_one_subset_as_root_and_a_rerun(tmp_path):
    subset = make_librispeech(tmp_path) / "train-clean-100"
    first = prepare_librispeech(subset, tmp_path / "out", policy=SplitPolicy(1, 0), workers=1, progress=False)
    assert (first.name, first.speakers, first.utterances, first.heldout_speakers) == \
        ("LibriSpeech (train-clean-100)", 2, 6, [])
    assert {row["gender"] for row in rows(first.manifest)} == {"F", "M"}  # SPEAKERS.TXT found beside the subset
    again = prepare_librispeech(subset, tmp_path / "out", policy=SplitPolicy(1, 0), workers=1, progress=False)
    assert (again.made, again.reused) == (0, 6) and again.manifest.read_text() == first.manifest.read_text()


def test_only_dev_speakers_are_not_all_held_out(tmp_path):
    dev = make_librispeech(tmp_path) / "dev-clean"
    result = prepare_librispeech(dev, tmp_path / "out", policy=SplitPolicy(1, 1), workers=1, progress=False)
    assert result.heldout_speakers == [] and result.splits["train"] == 1


def test_a_root_that_is_not_librispeech(tmp_path, capsys):
    (tmp_path / "x" / "p225").mkdir(parents=True)
    (tmp_path / "x" / "p225" / "p225_001.flac").write_bytes(b"")
    with pytest.raises(UserError, match=r"is not a LibriSpeech corpus: expected ROOT/\[SUBSET/\]SPEAKER/CHAPTER/"):
        prepare_librispeech(tmp_path / "x", tmp_path / "out", progress=False)
    assert main(["prepare", "librispeech", "--root", str(tmp_path / "nowhere"), "-q"]) == 2
    assert capsys.readouterr().err.startswith("error: LibriSpeech folder")


def test_cli_prepare_librispeech(tmp_path, capsys):
    root, out = make_librispeech(tmp_path), tmp_path / "out"
    assert main(["prepare", "librispeech", "--root", str(root), "--out", str(out), "--no-trim", "--valid", "0",
                 "--test", "1", "--workers", "1", "-q"]) == 0
    printed = capsys.readouterr().out
    assert "3 speakers (held out: 84), 9 utterances (9 made, 0 reused; 4 train, 2 test, 3 heldout)" in printed
    assert json.loads((out / "prepare.json").read_text())["trim_db"] is None
    # untrimmed: the files' own lengths, 0.3 + 0.4 + 0.5 s in each of 3 chapters
    assert sum(row["duration"] for row in rows(out / "manifest.jsonl")) == pytest.approx(3 * 1.2, abs=1e-3)


def make_one_utterance_readers(base: Path, n_speakers: int = 24, seconds: float = 10.0) -> Path:
    """An excerpt like ../shared/data/librispeech-excerpt: one utterance per reader, no transcripts,
    half of the readers F, half M."""
    root = base / "excerpt"
    lines = [";ID  |SEX| SUBSET           |MINUTES| NAME\n"]
    for s in range(n_speakers):
        speaker, chapter = str(100 + s), "7"
        folder = root / "train-clean-100" / speaker / chapter
        folder.mkdir(parents=True)
        t = np.arange(int(16000 * seconds)) / 16000
        sf.write(str(folder / f"{speaker}-{chapter}-0000.flac"),
                 (0.3 * np.sin(2 * np.pi * (120 + 7 * s) * t)).astype(np.float32), 16000)
        lines.append(f"{speaker} | {'FM'[s % 2]} | train-clean-100 | 25.0 | Reader {s}\n")
    (root / "SPEAKERS.TXT").write_text("".join(lines))
    return root


def test_one_utterance_per_reader_needs_no_extra_flags(tmp_path, caplog):
    root = make_one_utterance_readers(tmp_path)
    result = prepare_librispeech(root, tmp_path / "out", policy=SplitPolicy(valid_per_speaker=2, test_per_speaker=2,
                                                                            n_heldout_speakers=4),
                                 workers=1, progress=False)
    rows = [json.loads(line) for line in result.manifest.read_text().splitlines()]
    heldout = {r["speaker"] for r in rows if r["split"] == "heldout"}
    assert len(heldout) == 4 and sorted(r["gender"] for r in rows if r["split"] == "heldout") == ["F", "F", "M", "M"]
    assert all(r["split"] == "heldout" for r in rows if r["speaker"] in heldout)  # whole speakers
    train = [r for r in rows if r["split"] == "train"]
    assert {r["speaker"] for r in train} == {r["speaker"] for r in rows} - heldout  # every other reader trains
    for name in ("valid", "test"):
        cut = [r for r in rows if r["split"] == name]
        assert len(cut) == 10 and all(r["start"] is not None and r["duration"] == 3.0 for r in cut)
        for r in cut:  # the training row of that file ends where the cut begins: no audio in two splits
            (own,) = [t for t in train if t["path"] == r["path"]]
            assert own["end"] == r["start"] == pytest.approx(10.0 - 3.0, abs=0.05)
    assert {r["speaker"] for r in rows if r["split"] == "valid"}.isdisjoint(
        {r["speaker"] for r in rows if r["split"] == "test"})
    assert "single utterance" in result.summary().splitlines()[-1]  # one line says what was done

    corpus = load_corpus(result.root, "manifest.jsonl")
    assert len(corpus.speakers) == 20
    valid = corpus.split("valid")[0]
    from vqspeech.data.dataset import load_split

    (wav,) = load_split([valid], [valid.speaker], 16000, progress=False).waves
    assert len(wav) == pytest.approx(3.0 * 16000, abs=2)


def test_one_utterance_per_reader_holds_out_twenty_readers_by_itself(tmp_path):
    root = make_one_utterance_readers(tmp_path, n_speakers=44)
    result = prepare_librispeech(root, tmp_path / "out", workers=1, progress=False)  # the recipe defaults
    rows = [json.loads(line) for line in result.manifest.read_text().splitlines()]
    held = [r for r in rows if r["split"] == "heldout"]
    assert len(held) == 20 and sum(r["gender"] == "F" for r in held) == 10
    assert "chosen automatically" in result.summary().splitlines()[-1]
