"""vqspeech prepare vctk: both layouts, transcripts, speaker tables, trimming, sentence splits, held-out
speakers, re-runs that reuse the cache, the gaps of the real corpus, and the real excerpt."""

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vqspeech.cli import main
from vqspeech.data.corpus import load_corpus
from vqspeech.data.prepare import SplitPolicy, assign_splits, Source, trim_silence
from vqspeech.data.vctk import prepare_vctk, read_speaker_info
from vqspeech.errors import UserError

SR = 48000
SENTENCES = ["Please call Stella.", "Ask her to bring these things with her from the store.",
             "Six spoons of fresh snow peas, five thick slabs of blue cheese.", "We also need a small plastic snake.",
             "When the sunlight strikes raindrops in the air, they act as a prism.", "The rainbow is a division of white light."]
# p225, p226: all six sentences; p227: six, the last one corrupt; p315: no transcripts (as in the real corpus)
SPEAKERS = {"p225": ("23", "F", "English", "Southern  England"), "p226": ("22", "M", "English", "Surrey"),
            "p227": ("38", "M", "English", "Cumbria"), "p315": ("18", "M", "American", "Connecticut  (Text missing)")}
COLUMNS = {"path", "speaker", "utterance", "duration", "text", "gender", "accent", "split"}


def tone(seconds: float, lead: float = 0.0, tail: float = 0.0, freq: float = 220.0) -> np.ndarray:
    """A tone with ``lead`` s of silence before and ``tail`` s after, at 48 kHz."""
    t = np.arange(int(seconds * SR)) / SR
    body = 0.5 * np.sin(2 * np.pi * freq * t)
    return np.concatenate([np.zeros(int(lead * SR)), body, np.zeros(int(tail * SR))]).astype(np.float32)


def make_vctk(root: Path, version: str = "0.92", mic2_missing: tuple[str, ...] = ("p226_006",)) -> Path:
    """A tiny VCTK tree (see SPEAKERS); every utterance 0.2-0.3 s of tone after 0.1 s of silence."""
    for s, speaker in enumerate(SPEAKERS):
        for n in range(1, len(SENTENCES) + 1):
            utt = f"{speaker}_{n:03d}"
            wav = tone(0.2 + 0.02 * n, lead=0.1, freq=150.0 + 40 * s)
            if version == "0.92":
                for mic in ("mic1", "mic2"):
                    if not (mic == "mic2" and utt in mic2_missing):
                        write(root / "wav48_silence_trimmed" / speaker / f"{utt}_{mic}.flac", wav)
            else:
                write(root / "wav48" / speaker / f"{utt}.wav", wav)
            if speaker != "p315":
                (root / "txt" / speaker).mkdir(parents=True, exist_ok=True)
                (root / "txt" / speaker / f"{utt}.txt").write_text(SENTENCES[n - 1] + "\n")
    corrupt = (root / "wav48_silence_trimmed/p227/p227_006_mic1.flac" if version == "0.92"
               else root / "wav48/p227/p227_006.wav")
    corrupt.write_bytes(b"not audio at all" * 10)
    header = "ID  AGE  GENDER  ACCENTS  REGION" + (" COMMENTS \n" if version == "0.92" else "\n")
    ids = {spk: spk if version == "0.92" else spk[1:] for spk in SPEAKERS}
    (root / "speaker-info.txt").write_text(header + "".join(f"{ids[spk]}  {'  '.join(fields)}\n"
                                                            for spk, fields in SPEAKERS.items()))
    return root


def write(path: Path, wav: np.ndarray, sr: int = SR) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wav, sr)


def rows(result) -> list[dict]:
    return [json.loads(line) for line in result.manifest.read_text().splitlines()]


def prepare(root, out, **kw):
    kw = {"policy": SplitPolicy(valid_per_speaker=1, test_per_speaker=1), "workers": 1, "progress": False, **kw}
    return prepare_vctk(root, out, **kw)


@pytest.mark.parametrize("version", ["0.92", "0.80"])
def test_both_layouts_give_the_same_manifest(tmp_path, version, caplog):
    root = make_vctk(tmp_path / "vctk", version)
    with caplog.at_level(logging.WARNING):
        result = prepare(root, tmp_path / "out")
    assert result.name == ("VCTK 0.92 (mic1)" if version == "0.92" else "VCTK 0.80")
    assert (result.speakers, result.utterances, result.made, result.reused) == (4, 23, 23, 0)
    assert (result.corrupt, result.missing_text) == (1, 6)
    assert "p227_006" in caplog.text and "1 corrupt" in caplog.text  # the corrupt file is named
    assert "6 utterance(s) of 1 speaker(s) have no transcript" in caplog.text and "p315 (6)" in caplog.text

    table = rows(result)
    assert all(set(row) == COLUMNS for row in table)
    first = next(row for row in table if row["utterance"] == "p225_001")
    assert first == {"path": "p225/p225_001.wav", "speaker": "p225", "utterance": "p225_001",
                     "duration": first["duration"], "text": "Please call Stella.", "gender": "F",
                     "accent": "English", "split": first["split"]}
    assert {row["text"] for row in table if row["speaker"] == "p315"} == {None}
    assert [row["gender"] for row in table if row["utterance"].endswith("_001")] == ["F", "M", "M", "M"]
    info = sf.info(str(result.root / first["path"]))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    assert first["duration"] == pytest.approx(info.frames / 16000, abs=1e-3)
    assert result.seconds == pytest.approx(sum(row["duration"] for row in table), abs=0.05)

    corpus = load_corpus(result.root, "manifest.jsonl")  # the training reader takes the extra columns
    assert corpus.speakers == ["p225", "p226", "p227", "p315"]
    assert len(corpus.utterances) == 23 and all(u.path.is_file() for u in corpus.utterances)


def test_trimming_cuts_the_known_silence_and_resampling_keeps_the_length(tmp_path):
    root = tmp_path / "vctk"
    write(root / "wav48" / "p225" / "p225_001.wav", tone(1.0, lead=0.5, tail=0.2))
    write(root / "wav48" / "p225" / "p225_002.wav", tone(0.5))
    trimmed = prepare(root, tmp_path / "trimmed", trim_db=30.0, policy=SplitPolicy(0, 0))
    whole = prepare(root, tmp_path / "whole", trim_db=None, policy=SplitPolicy(0, 0))
    seconds = {(r["utterance"], out): r["duration"] for out, res in [("trim", trimmed), ("whole", whole)]
               for r in rows(res)}
    assert seconds["p225_001", "whole"] == pytest.approx(1.7, abs=1e-3)
    # the whole tone is kept, and of the 0.7 s of silence at most one 25 ms frame at either end
    assert 1.0 <= seconds["p225_001", "trim"] <= 1.05
    assert seconds["p225_002", "trim"] == pytest.approx(0.5, abs=1e-3)  # nothing to trim


def test_trim_silence_keeps_loud_frames_and_empties_silence():
    sr = 16000
    wav = np.concatenate([np.zeros(sr), 0.5 * np.ones(sr // 2), 1e-4 * np.ones(sr)]).astype(np.float32)
    kept = trim_silence(wav, sr, top_db=30)
    assert np.count_nonzero(kept == 0.5) == sr // 2  # all of the sound
    assert len(kept) - sr // 2 <= 2 * 0.025 * sr  # and at most a frame of silence at either end
    ends_loud = trim_silence(wav[: sr + 100], sr, top_db=30)  # sound in the last, partial frame is kept
    assert np.count_nonzero(ends_loud == 0.5) == 100 and len(ends_loud) <= 100 + 0.025 * sr
    assert 1.5 * sr <= len(trim_silence(wav, sr, top_db=120)) <= 1.525 * sr  # at 120 dB the faint tail is sound
    assert trim_silence(np.zeros(sr, np.float32), sr, 30).size == 0


def test_the_same_sentence_lands_in_the_same_split_for_every_speaker(tmp_path):
    result = prepare(make_vctk(tmp_path / "vctk"), tmp_path / "out", policy=SplitPolicy(2, 1))
    table = rows(result)
    by_number: dict[str, set] = {}
    for row in table:
        if row["speaker"] != "p315":
            by_number.setdefault(row["utterance"][-3:], set()).add(row["split"])
    assert all(len(splits) == 1 for splits in by_number.values()), by_number
    for speaker in ("p225", "p226", "p227"):
        splits = [row["split"] for row in table if row["speaker"] == speaker]
        assert (splits.count("valid"), splits.count("test")) == (2, 1)
    # p315 has no text: its sentences are keyed by number, and it still gets its held-out utterances
    assert sorted(row["split"] for row in table if row["speaker"] == "p315").count("train") == 3
    assert result.splits == {"train": 11, "valid": 8, "test": 4}


def test_sentences_are_held_out_by_text_even_when_the_numbers_differ():
    texts = ["one two three", "four five six", "seven eight", "nine ten"]
    sources = [Source(Path(f"{spk}/{i}.wav"), spk, f"{spk}_{(i + shift) % 4:03d}", text=texts[i])
               for spk, shift in [("a", 0), ("b", 1), ("c", 2)] for i in range(4)]
    splits, heldout = assign_splits(sources, SplitPolicy(1, 1))
    by_text = {}
    for s in sources:
        by_text.setdefault(s.text, set()).add(splits[s.utterance])
    assert all(len(v) == 1 for v in by_text.values()) and heldout == []
    assert sorted(v.pop() for v in by_text.values()) == ["test", "train", "train", "valid"]


def test_heldout_speakers_leave_the_speaker_table(tmp_path):
    root = make_vctk(tmp_path / "vctk")
    result = prepare(root, tmp_path / "out", policy=SplitPolicy(1, 1, heldout_speakers=("p226",),
                                                                 n_heldout_speakers=1))
    assert len(result.heldout_speakers) == 2 and "p226" in result.heldout_speakers
    table = rows(result)
    assert {row["split"] for row in table if row["speaker"] in result.heldout_speakers} == {"heldout"}
    corpus = load_corpus(result.root, "manifest.jsonl")
    assert not set(corpus.speakers) & set(result.heldout_speakers) and len(corpus.speakers) == 2
    assert len(corpus.split("heldout")) == result.splits["heldout"] > 0
    with pytest.raises(UserError, match="not in the corpus: p999"):
        prepare(root, tmp_path / "out", policy=SplitPolicy(heldout_speakers=("p999",)))
    with pytest.raises(UserError, match="leaves none to train on"):
        prepare(root, tmp_path / "out", policy=SplitPolicy(n_heldout_speakers=4))


def test_a_rerun_reuses_every_cached_file(tmp_path):
    root, out = make_vctk(tmp_path / "vctk"), tmp_path / "out"
    first = prepare(root, out)
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")}
    again = prepare(root, out, policy=SplitPolicy(2, 2))  # a new split policy needs no new audio
    assert (again.made, again.reused, again.utterances, again.corrupt) == (0, 23, 23, 1)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")} == mtimes
    assert again.seconds == pytest.approx(first.seconds, abs=1e-3)
    assert again.splits["valid"] > first.splits["valid"]
    with pytest.raises(UserError, match=r"other settings \(sample_rate 16000 -> 22050"):
        prepare(root, out, sample_rate=22050)
    with pytest.raises(UserError, match="trim_db"):
        prepare(root, out, trim_db=None)
    with pytest.raises(UserError, match=r"sample rate \(0\) .* must be positive"):
        prepare(root, tmp_path / "elsewhere", sample_rate=0)


def test_a_damaged_cache_file_is_made_again_and_a_damaged_out_folder_is_a_one_line_error(tmp_path):
    root, out = make_vctk(tmp_path / "vctk"), tmp_path / "out"
    first = prepare(root, out)
    (out / "p225" / "p225_001.wav").write_bytes(b"junk")
    again = prepare(root, out)
    assert (again.made, again.reused, again.seconds) == (1, first.utterances - 1, pytest.approx(first.seconds))
    assert sf.info(str(out / "p225" / "p225_001.wav")).frames > 0
    (out / "prepare.json").write_text("{broken")
    with pytest.raises(UserError, match="prepare.json is damaged .*; choose another --out, or delete"):
        prepare(root, out)
    (tmp_path / "a-file").write_text("mine")
    with pytest.raises(UserError, match="is a file, not a folder; choose another --out"):
        prepare(root, tmp_path / "a-file")
    assert (tmp_path / "a-file").read_text() == "mine"


def test_mic2_reads_the_other_files_and_counts_the_missing_ones(tmp_path, caplog):
    root = make_vctk(tmp_path / "vctk", mic2_missing=("p226_005", "p226_006", "p225_002"))
    with caplog.at_level(logging.WARNING):
        result = prepare(root, tmp_path / "out", mic="mic2")
    assert result.name == "VCTK 0.92 (mic2)"
    assert (result.utterances, result.corrupt) == (21, 0)  # 24 - 3 missing; the corrupt file is mic1's
    assert "3 transcript(s) of 2 speaker(s) have no mic2 audio" in caplog.text
    assert "p225 (1) p226 (2)" in caplog.text
    with pytest.raises(UserError, match="one microphone"):
        prepare(make_vctk(tmp_path / "old", "0.80"), tmp_path / "out80", mic="mic2")


def test_speaker_info_of_both_versions(tmp_path):
    path = tmp_path / "speaker-info.txt"
    path.write_text("ID  AGE  GENDER  ACCENTS  REGION COMMENTS \n"
                    "p225  23  F    English    Southern  England\n"
                    "p280  25  F    France     (mic2 files unavailable)\n"
                    "s5  22  F  British  Southern  England\n"
                    "362  29  F    American\n")
    info = read_speaker_info(path)
    assert {k: (v.gender, v.accent) for k, v in info.items()} == {
        "p225": ("F", "English"), "p280": ("F", "France"), "s5": ("F", "British"), "p362": ("F", "American")}


def test_a_root_that_is_not_vctk_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "notvctk" / "speaker1").mkdir(parents=True)
    write(tmp_path / "notvctk" / "speaker1" / "a.wav", tone(0.1))
    assert main(["prepare", "vctk", "--root", str(tmp_path / "notvctk"), "--out", str(tmp_path / "out"), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "is not a VCTK corpus" in err[0]
    assert "ROOT/wav48_silence_trimmed/pXXX/" in err[0] and "ROOT/wav48/pXXX/" in err[0]
    assert main(["prepare", "vctk", "-q"]) == 2
    assert "--root PATH" in capsys.readouterr().err
    assert main(["prepare", "vctk", "--root", str(tmp_path / "notvctk"), "--test", "-1", "-q"]) == 2
    assert capsys.readouterr().err.strip() == \
        "error: held-out counts must not be negative: --valid 3, --test -1, --n-heldout-speakers 0"


def test_cli_prints_the_counts_and_runs_parallel_workers(tmp_path, capsys):
    root, out = make_vctk(tmp_path / "vctk"), tmp_path / "out"
    args = ["prepare", "vctk", "--root", str(root), "--out", str(out), "--workers", "2", "--valid", "1",
            "--test", "1", "--heldout-speakers", "p315", "-q"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "4 speakers (held out: p315), 23 utterances (23 made, 0 reused; 11 train, 3 valid, 3 test, 6 heldout)" \
        in printed
    assert "1 skipped as corrupt, 6 without text" in printed and f"manifest {out / 'manifest.jsonl'}" in printed
    assert main(args) == 0
    assert "(0 made, 23 reused;" in capsys.readouterr().out


def test_the_real_excerpt(vctk_mini, tmp_path):
    result = prepare_vctk(vctk_mini, tmp_path / "out", policy=SplitPolicy(2, 2), workers=1, progress=False)
    assert result.name == "VCTK 0.80 (wav16)"
    assert (result.speakers, result.utterances, result.corrupt, result.missing_text) == (4, 40, 0, 40)
    table = rows(result)
    for row in table:
        source = sf.info(str(vctk_mini / "wav16" / row["speaker"] / f"{row['utterance']}.wav"))
        assert 0.5 * source.duration < row["duration"] <= source.duration  # trimmed, not emptied
    held = {}
    for row in table:
        held.setdefault(row["utterance"][-3:], set()).add(row["split"])
    assert all(len(s) == 1 for s in held.values())
    assert load_corpus(result.root, "manifest.jsonl").speakers == ["p225", "p226", "p227", "p228"]


def test_holding_out_every_sentence_is_a_one_line_error(tmp_path):
    root = make_vctk(tmp_path / "vctk")
    with pytest.raises(UserError, match="no utterance is left for training"):
        prepare(root, tmp_path / "out", policy=SplitPolicy(valid_per_speaker=50, test_per_speaker=50))
