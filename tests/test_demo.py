"""The flite demo corpus: sentence grammar, corpus layout, splits, resumption and errors."""

import json
import re
import shutil

import pytest
import soundfile as sf

from vqspeech.data.demo import make_sentences, prepare_demo
from vqspeech.errors import UserError

VOICES = ("kal16", "slt")
N_SENTENCES = 4

needs_flite = pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not installed")


def read_manifest(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """4 sentences x 2 voices, 1 valid and 1 test sentence, built once for the module."""
    if shutil.which("flite") is None:
        pytest.skip("flite is not installed")
    root = tmp_path_factory.mktemp("demo")
    return prepare_demo(root, n_sentences=N_SENTENCES, n_valid=1, n_test=1, voices=VOICES, seed=0,
                        workers=2, progress=False)


def test_sentences_are_distinct_well_formed_and_deterministic():
    sentences = make_sentences(300, seed=3)
    assert sentences == make_sentences(300, seed=3)
    assert len(set(sentences)) == 300
    for s in sentences:
        assert re.fullmatch(r"[a-z]+( [a-z]+)*\.", s), s
        assert 5 <= len(s.split()) <= 12, s


def test_different_seed_gives_different_sentences():
    assert make_sentences(20, seed=0) != make_sentences(20, seed=1)


def test_sentences_use_a_varied_vocabulary():
    words = {w for s in make_sentences(240) for w in s.rstrip(".").split()}
    assert len(words) >= 150


def test_more_sentences_than_the_grammar_holds_raise():
    with pytest.raises(ValueError):
        make_sentences(10**15)


def test_manifest_lists_every_voice_and_sentence_with_splits(corpus):
    rows = read_manifest(corpus.manifest)
    assert corpus.manifest == corpus.root / "manifest.jsonl"
    assert len(rows) == corpus.n_utterances == corpus.n_created == N_SENTENCES * len(VOICES)
    assert corpus.n_skipped == 0
    for row in rows:
        assert set(row) == {"path", "speaker", "utterance", "text", "split", "alignment"}
        assert row["path"] == f"{row['speaker']}/{row['utterance']}.wav"
        assert (corpus.root / row["path"]).is_file() and (corpus.root / row["alignment"]).is_file()
    split_of = {row["utterance"]: row["split"] for row in rows}
    assert split_of == {"s0001": "train", "s0002": "train", "s0003": "valid", "s0004": "test"}
    listing = (corpus.root / "sentences.txt").read_text().splitlines()
    assert listing == [f"s{i + 1:04d}\t{text}" for i, text in enumerate(make_sentences(N_SENTENCES, 0))]


def test_corpus_is_parallel_across_voices(corpus):
    rows = read_manifest(corpus.manifest)
    by_voice = {v: {r["utterance"]: (r["text"], r["split"]) for r in rows if r["speaker"] == v} for v in VOICES}
    assert by_voice["kal16"] == by_voice["slt"]
    assert len(by_voice["slt"]) == N_SENTENCES


def test_psdur_end_time_matches_wav_duration(corpus):
    total = 0.0
    for row in read_manifest(corpus.manifest):
        duration = sf.info(str(corpus.root / row["path"])).duration
        phones = (corpus.root / row["alignment"]).read_text().split()
        assert all(re.fullmatch(r"[a-z]+:\d+\.\d+", p) for p in phones), phones
        ends = [float(p.split(":")[1]) for p in phones]
        assert ends == sorted(ends)
        # The alignment covers the wav: speech ends inside it and the last phone is the final pause.
        # awb, rms and slt stop at that pause's end time; kal16, a diphone voice, stops half-way through it
        # (measured over 150 sentences: 0.11-0.13 s early, half the pause to within 13 ms).
        assert phones[-1].startswith("pau:") and ends[-2] < duration
        late = ends[-1] - duration
        if row["speaker"] == "kal16":
            assert -0.01 <= late - (ends[-1] - ends[-2]) / 2 <= 0.02, (row["path"], ends[-2:], duration)
        else:
            assert abs(late) < 0.02, (row["path"], ends[-1], duration)
        total += duration
    assert corpus.seconds == pytest.approx(total)


def test_rerun_skips_finished_utterances(corpus):
    wav = corpus.root / "slt" / "s0001.wav"
    mtime = wav.stat().st_mtime_ns
    again = prepare_demo(corpus.root, n_sentences=N_SENTENCES, n_valid=1, n_test=1, voices=VOICES, seed=0,
                         progress=False)
    assert again.n_created == 0
    assert again.n_skipped == again.n_utterances == corpus.n_utterances
    assert again.seconds == pytest.approx(corpus.seconds)
    assert wav.stat().st_mtime_ns == mtime


def test_rerun_resynthesises_only_missing_utterances(tmp_path):
    kw = dict(n_sentences=3, n_valid=1, n_test=1, voices=("kal16",), progress=False)
    prepare_demo(tmp_path, **kw)
    (tmp_path / "kal16" / "s0002.psdur").unlink()
    again = prepare_demo(tmp_path, **kw)
    assert (again.n_created, again.n_skipped) == (1, 2)
    assert (tmp_path / "kal16" / "s0002.psdur").is_file()


def test_folder_with_a_different_corpus_raises(corpus):
    before = (corpus.root / "sentences.txt").read_text()
    with pytest.raises(UserError, match="different demo corpus"):
        prepare_demo(corpus.root, n_sentences=N_SENTENCES, n_valid=1, n_test=1, voices=VOICES, seed=1,
                     progress=False)
    with pytest.raises(UserError, match="different demo corpus"):
        prepare_demo(corpus.root, n_sentences=N_SENTENCES + 1, n_valid=1, n_test=1, voices=VOICES, seed=0,
                     progress=False)
    assert (corpus.root / "sentences.txt").read_text() == before


def test_missing_flite_raises(tmp_path, monkeypatch):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(UserError, match="flite not found.*apt-get install flite"):
        prepare_demo(tmp_path / "demo", n_sentences=3, n_valid=1, n_test=1, progress=False)


@needs_flite
def test_unknown_voice_raises_naming_known_voices(tmp_path):
    with pytest.raises(UserError, match="nosuchvoice.*slt"):
        prepare_demo(tmp_path, n_sentences=3, n_valid=1, n_test=1, voices=("slt", "nosuchvoice"), progress=False)
    assert not list(tmp_path.rglob("*.wav"))


def test_failing_flite_call_raises_and_leaves_no_partial_files(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "flite"
    fake.write_text('#!/bin/sh\nif [ "$1" = "-lv" ]; then echo "Voices available: slt"; exit 0; fi\n'
                    'echo "synthesis exploded" >&2\nexit 3\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    out = tmp_path / "demo"
    with pytest.raises(UserError, match=r"voice slt, sentence s000\d: synthesis exploded"):
        prepare_demo(out, n_sentences=3, n_valid=1, n_test=1, voices=("slt",), workers=1, progress=False)
    assert [p.name for p in (out / "slt").iterdir()] == []
    assert not (out / "manifest.jsonl").exists()


def test_an_out_that_is_a_file_is_a_one_line_error(tmp_path):
    (tmp_path / "a-file").write_text("mine")
    with pytest.raises(UserError, match="is a file, not a folder; choose another --out"):
        prepare_demo(tmp_path / "a-file", n_sentences=4, n_valid=1, n_test=1, progress=False)
    assert (tmp_path / "a-file").read_text() == "mine"


def test_a_folder_vqspeech_did_not_make_is_never_written_over(tmp_path, capsys):
    from vqspeech.cli import main

    import numpy as np
    import soundfile as sf

    vctk = tmp_path / "VCTK" / "wav48" / "p225"
    vctk.mkdir(parents=True)
    for n in range(3):
        sf.write(str(vctk / f"p225_00{n}.wav"), 0.3 * np.sin(np.arange(24000) * (0.05 + 0.01 * n)), 48000)
    for command in (["prepare", "demo", "--sentences", "3", "--valid", "1", "--test", "1"],
                    ["prepare", "vctk", "--root", str(tmp_path / "VCTK"), "--valid", "0", "--test", "0"]):
        out = tmp_path / command[1]
        out.mkdir()
        (out / "manifest.jsonl").write_text("the user's own\n")
        assert main([*command, "--out", str(out), "-q"]) == 2
        assert (out / "manifest.jsonl").read_text() == "the user's own\n"
        assert sorted(p.name for p in out.iterdir()) == ["manifest.jsonl"]
    assert capsys.readouterr().err.count("holds files but no") == 2
