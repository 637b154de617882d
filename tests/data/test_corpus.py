"""Corpora: manifests (JSONL, CSV), folder scans with a stable hash split, and the errors a user can hit."""

import json
from pathlib import Path

import pytest

from vqspeech.data.corpus import SPLITS, load_corpus
from vqspeech.errors import UserError


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def touch_wavs(root: Path, names: list[str]) -> None:
    """Empty files are enough: loading a corpus lists files, it does not read audio."""
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")


def splits_of(corpus) -> dict[Path, str]:
    return {u.path: u.split for u in corpus.utterances}


def test_jsonl_manifest_is_read_with_every_column(tmp_path):
    write_jsonl(tmp_path / "m.jsonl", [
        {"path": "a/1.wav", "speaker": "a", "utterance": "one", "split": "valid", "text": "hello",
         "alignment": "a/1.psdur"},
        {"path": "b/2.flac", "speaker": "b", "split": "train"},
        {"path": "/elsewhere/3.wav", "speaker": "b", "split": "test"},
    ])
    corpus = load_corpus(tmp_path, "m.jsonl")
    first, second, third = corpus.utterances
    assert corpus.root == tmp_path
    assert (first.path, first.speaker, first.utterance, first.split) == (tmp_path / "a/1.wav", "a", "one", "valid")
    assert (first.text, first.alignment) == ("hello", tmp_path / "a/1.psdur")
    assert (second.path, second.utterance, second.text, second.alignment) == (tmp_path / "b/2.flac", "2", None, None)
    assert third.path == Path("/elsewhere/3.wav")
    assert [u.path for u in corpus.split("test")] == [Path("/elsewhere/3.wav")]


def test_csv_manifest_is_read(tmp_path):
    (tmp_path / "m.csv").write_text("path,speaker,split,text\n"
                                    "x/1.wav,x,train,first one\n"
                                    "y/2.wav,y,test,\n")
    corpus = load_corpus(tmp_path, "m.csv")
    assert [(u.path, u.speaker, u.utterance, u.split, u.text) for u in corpus.utterances] == [
        (tmp_path / "x/1.wav", "x", "1", "train", "first one"),
        (tmp_path / "y/2.wav", "y", "2", "test", None),
    ]


def test_the_tiny_corpus_manifest(tiny_corpus):
    corpus = load_corpus(tiny_corpus, "manifest.jsonl")
    assert len(corpus.utterances) == 18
    assert [len(corpus.split(s)) for s in SPLITS] == [12, 3, 3]
    assert all(u.path.is_file() for u in corpus.utterances)


def test_manifest_rows_without_split_get_the_hash_split_of_a_folder_scan(tmp_path):
    names = [f"s/{i:03d}.wav" for i in range(60)]
    touch_wavs(tmp_path, names)
    write_jsonl(tmp_path / "m.jsonl", [{"path": n, "speaker": "s"} for n in names])
    kw = dict(valid_fraction=0.2, test_fraction=0.2)
    assert splits_of(load_corpus(tmp_path, "m.jsonl", **kw)) == splits_of(load_corpus(tmp_path, None, **kw))


def test_folder_scan_finds_speakers_and_nested_audio_only(tmp_path):
    touch_wavs(tmp_path, ["b/1.wav", "b/deeper/2.FLAC", "a/3.wav", "a/notes.txt", "top_level.wav",
                          "a/.partial.wav.part"])
    corpus = load_corpus(tmp_path, None, valid_fraction=0.0, test_fraction=0.0)
    assert sorted((u.speaker, u.path.relative_to(tmp_path).as_posix()) for u in corpus.utterances) == [
        ("a", "a/3.wav"), ("b", "b/1.wav"), ("b", "b/deeper/2.FLAC")]
    assert corpus.speakers == ["a", "b"]


def test_folder_hash_split_is_stable_and_independent_of_other_files(tmp_path):
    names = [f"spk{i % 3}/utt{i:03d}.wav" for i in range(120)]
    touch_wavs(tmp_path, names)
    kw = dict(valid_fraction=0.15, test_fraction=0.15)
    before = splits_of(load_corpus(tmp_path, None, **kw))
    assert before == splits_of(load_corpus(tmp_path, None, **kw))
    assert set(before.values()) == set(SPLITS), "120 files should land in every split"
    assert 60 <= list(before.values()).count("train") <= 110

    touch_wavs(tmp_path, [f"spk{i % 5}/new{i:03d}.wav" for i in range(80)])  # the corpus grows
    after = splits_of(load_corpus(tmp_path, None, **kw))
    assert len(after) == 200
    assert {path: after[path] for path in before} == before


def test_missing_root_raises(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_corpus(tmp_path / "nowhere")


def test_missing_manifest_raises(tmp_path):
    with pytest.raises(UserError, match="manifest.*not found"):
        load_corpus(tmp_path, "manifest.jsonl")


def test_empty_folder_raises_no_audio(tmp_path):
    (tmp_path / "speaker").mkdir()
    (tmp_path / "speaker" / "readme.txt").write_text("no audio here")
    with pytest.raises(UserError, match="no audio"):
        load_corpus(tmp_path)


def test_empty_manifest_raises_no_audio(tmp_path):
    (tmp_path / "m.jsonl").write_text("\n")
    with pytest.raises(UserError, match="no audio"):
        load_corpus(tmp_path, "m.jsonl")


@pytest.mark.parametrize("name, text", [
    ("m.jsonl", '{"path": "a/1.wav", "speaker": "a"}\n{"path": "a/2.wav"}\n'),
    ("m.csv", "path,split\na/1.wav,train\n"),
    # a null speaker or an empty CSV cell is no speaker
    pytest.param("m.jsonl", '{"path": "a/1.wav", "speaker": "a"}\n{"path": "a/2.wav", "speaker": null}\n'),
    pytest.param("m.csv", "path,speaker\na/1.wav,a\na/2.wav,\n"),
], ids=["jsonl-key-absent", "csv-column-absent", "jsonl-null", "csv-empty-cell"])
def test_manifest_row_without_speaker_raises(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    with pytest.raises(UserError, match="speaker"):
        load_corpus(tmp_path, name)


@pytest.mark.parametrize("name, text", [
    ("m.jsonl", '{"path": "a/1.wav", "speaker": "a", "split": "train"}\n'
                '{"path": "a/2.wav", "speaker": "a", "split": "validation"}\n'),
    ("m.csv", "path,speaker,split\na/1.wav,a,train\na/2.wav,a,Test\n"),
])
def test_bad_split_value_raises_naming_it(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    with pytest.raises(UserError, match=r"row 2 has split '(validation|Test)'"):
        load_corpus(tmp_path, name)


def test_invalid_json_raises(tmp_path):
    (tmp_path / "m.jsonl").write_text('{"path": "a/1.wav", "speaker": "a"\n')
    with pytest.raises(UserError, match="not valid JSON"):
        load_corpus(tmp_path, "m.jsonl")


def test_a_corpus_without_training_utterances_is_read_and_only_its_speaker_table_is_refused(tmp_path):
    write_jsonl(tmp_path / "m.jsonl", [{"path": "a/1.wav", "speaker": "a", "split": "test"}])
    corpus = load_corpus(tmp_path, "m.jsonl")  # probing or scoring a held-out corpus reads it
    assert [u.split for u in corpus.utterances] == ["test"] and corpus.manifest == tmp_path / "m.jsonl"
    with pytest.raises(UserError, match="m.jsonl has no training utterances"):
        corpus.speakers  # what training builds its speaker table from


def test_folder_scan_pairs_each_file_with_the_alignment_beside_it(tmp_path):
    touch_wavs(tmp_path, ["a/1.wav", "a/1.TextGrid", "a/2.flac", "a/2.lab", "b/sub/3.wav", "b/sub/3.phn",
                          "b/4.wav", "b/4.txt", "b/5.wav", "b/5.TEXTGRID"])
    corpus = load_corpus(tmp_path)
    found = {u.path.relative_to(tmp_path).as_posix(): u.alignment and u.alignment.relative_to(tmp_path).as_posix()
             for u in corpus.utterances}
    assert found == {"a/1.wav": "a/1.TextGrid", "a/2.flac": "a/2.lab", "b/sub/3.wav": "b/sub/3.phn",
                     "b/4.wav": None, "b/5.wav": "b/5.TEXTGRID"}
    assert corpus.manifest is None and corpus.description == f"{tmp_path} (folder scan)"


def test_folder_scan_reads_timit_layout_speakers_and_splits(tmp_path):
    touch_wavs(tmp_path, ["TRAIN/DR1/FCJF0/SA1.WAV", "TRAIN/DR1/FCJF0/SA1.PHN", "TRAIN/DR1/FCJF0/SA1.WAV.wav",
                          "TRAIN/DR2/MKLW0/SX131.WAV", "TEST/DR1/FAKS0/SA1.WAV", "TEST/DR1/FAKS0/SA1.PHN"])
    corpus = load_corpus(tmp_path)  # SA1.WAV.wav, a RIFF copy of SA1.WAV, is the same utterance: kept once
    assert sorted((u.speaker, u.utterance, u.split, u.alignment is not None) for u in corpus.utterances) == [
        ("FAKS0", "SA1", "test", True), ("FCJF0", "SA1", "train", True), ("MKLW0", "SX131", "train", False)]
    assert corpus.speakers == ["FCJF0", "MKLW0"]


def test_speakers_are_the_sorted_training_speakers(tmp_path):
    write_jsonl(tmp_path / "m.jsonl", [
        {"path": "1.wav", "speaker": "zoe", "split": "train"},
        {"path": "2.wav", "speaker": "adam", "split": "train"},
        {"path": "3.wav", "speaker": "mia", "split": "train"},
        {"path": "4.wav", "speaker": "zoe", "split": "valid"},
        {"path": "5.wav", "speaker": "held_out_only", "split": "test"},
        {"path": "6.wav", "speaker": "also_held_out", "split": "valid"},
    ])
    assert load_corpus(tmp_path, "m.jsonl").speakers == ["adam", "mia", "zoe"]


def test_folder_scan_of_vctk_mini(vctk_mini):
    corpus = load_corpus(vctk_mini / "wav16")
    assert len(corpus.utterances) == 40
    assert sorted({u.speaker for u in corpus.utterances}) == ["p225", "p226", "p227", "p228"]
    assert corpus.speakers == ["p225", "p226", "p227", "p228"]
    assert all(u.utterance.startswith(u.speaker + "_") for u in corpus.utterances)
