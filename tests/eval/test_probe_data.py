"""Probing another corpus than the model was trained on: the corpus chosen (manifest, folder scan, TIMIT's
layout in NIST SPHERE), the splits probed, resampled audio kept aligned, and the bad-input messages."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vqspeech.cli import main
from vqspeech.data.alignments import PhoneSet, Segment, write_textgrid
from vqspeech.data.corpus import load_corpus
from vqspeech.errors import UserError
from vqspeech.eval.probe_data import load_items, probe_corpus

# a TIMIT-like utterance: 61-symbol phones, closures, h# at both ends; 400 samples (25 ms) per phone at 16 kHz
TIMIT_PHONES = ["h#", "s", "ix", "pcl", "p", "ax", "m", "iy", "h#"]
TIMIT_SPEAKERS = {"TRAIN/DR1/FCJF0": 0, "TRAIN/DR2/MKLW0": 1, "TEST/DR1/FAKS0": 2, "TEST/DR3/MDAB0": 3}
PHONE_SAMPLES = 400


def tone_utterance(phones: list[str], speaker: int, utterance: int, rate: int, per_phone: float) -> np.ndarray:
    """Noise for silence and fricatives, a tone per other phone (pitched by speaker): float [len(phones)·n]."""
    rng = np.random.default_rng([speaker, utterance])
    n = int(round(per_phone * rate))
    t = np.arange(n) / rate
    return np.concatenate([0.05 * rng.standard_normal(n) if p in ("h#", "s", "p", "sil") else
                           0.4 * np.sin(2 * np.pi * (150 + 90 * k + 15 * speaker) * t)
                           for k, p in enumerate(phones)]).astype(np.float32)


def write_sphere(path: Path, wav: np.ndarray, rate: int = 16000) -> None:
    """A NIST SPHERE file as TIMIT ships it: a 1024-byte ASCII header, then little-endian 16-bit PCM."""
    pcm = np.round(np.clip(wav, -1, 1) * 32767).astype("<i2")
    fields = ["database_id -s5 TIMIT", "database_version -s3 1.0", f"utterance_id -s{len(path.stem)} {path.stem}",
              "channel_count -i 1", f"sample_count -i {len(pcm)}", f"sample_rate -i {rate}",
              f"sample_min -i {pcm.min()}", f"sample_max -i {pcm.max()}", "sample_n_bytes -i 2",
              "sample_byte_format -s2 01", "sample_sig_bits -i 16", "end_head"]
    header = ("NIST_1A\n   1024\n" + "\n".join(fields) + "\n").encode("ascii")
    path.write_bytes(header.ljust(1024, b" ") + pcm.tobytes())


def timit_fixture(root: Path) -> None:
    """ROOT/{TRAIN,TEST}/DRx/SPEAKER/{SA1,SA2,SX10}.WAV (SPHERE) + .PHN (16 kHz sample indices), 4 speakers."""
    for folder, s in TIMIT_SPEAKERS.items():
        (root / folder).mkdir(parents=True)
        for u, name in enumerate(("SA1", "SA2", "SX10")):
            phones = TIMIT_PHONES if u != 2 else TIMIT_PHONES[::-1]
            write_sphere(root / folder / f"{name}.WAV", tone_utterance(phones, s, u, 16000, PHONE_SAMPLES / 16000))
            (root / folder / f"{name}.PHN").write_text("".join(
                f"{k * PHONE_SAMPLES} {(k + 1) * PHONE_SAMPLES} {p}\n" for k, p in enumerate(phones)))


def test_sphere_fixture_reads_as_timit_audio(tmp_path):
    write_sphere(tmp_path / "SA1.WAV", np.full(1600, 0.25, dtype=np.float32))
    info = sf.info(str(tmp_path / "SA1.WAV"))
    assert (info.format, info.samplerate, info.frames) == ("NIST", 16000, 1600)
    assert np.allclose(sf.read(str(tmp_path / "SA1.WAV"))[0], 0.25, atol=1e-4)


def test_probe_phonemes_on_a_timit_layout_folder_of_sphere_files(trained_run, tmp_path, capsys):
    timit_fixture(tmp_path / "timit")
    out = tmp_path / "probe"
    base = ["probe-phonemes", "--run", str(trained_run), "--data-root", str(tmp_path / "timit"), "-q"]
    assert main([*base, "--fold-timit", "--out", str(out)]) == 0  # no manifest there: a folder scan
    report = json.loads((out / "probe.json").read_text())
    assert report["corpus"] == f"{tmp_path / 'timit'} (folder scan)" and report["splits"] is None
    assert report["trained_on"].endswith("manifest.jsonl") and report["trained_on"] != report["corpus"]
    assert report["speakers"] == ["FAKS0", "FCJF0", "MDAB0", "MKLW0"] and report["n_utterances"] == 12
    assert report["phones"] == ["ah", "ih", "iy", "m", "p", "s", "sil"]  # ix -> ih, ax -> ah, pcl and h# -> sil
    hop = round(16000 / report["frame_rate"])  # every frame inside a phone: the .PHN read at 16 kHz
    assert report["n_labelled_frames"] == report["n_frames"] == 12 * (len(TIMIT_PHONES) * PHONE_SAMPLES // hop)
    assert report["resampled_from"] == [] and not report["skipped"]
    header = capsys.readouterr().out
    assert f"Probed corpus: {tmp_path / 'timit'} (folder scan)" in header and "Model trained on: " in header

    assert main([*base, "--split", "test", "--out", str(tmp_path / "test-only")]) == 0  # TIMIT's TEST folder
    report = json.loads((tmp_path / "test-only" / "probe.json").read_text())
    assert report["speakers"] == ["FAKS0", "MDAB0"] and report["splits"] == ["test"]
    assert {"ix", "pcl", "ax"} <= set(report["phones"])  # unfolded: the 61 symbols as written


def test_the_run_s_own_corpus_probes_its_held_out_splits_another_corpus_every_utterance(tmp_path):
    (tmp_path / "trained" / "a").mkdir(parents=True)
    (tmp_path / "trained" / "manifest.jsonl").write_text('{"path": "a/1.wav", "speaker": "a", "split": "test"}\n')
    (tmp_path / "trained" / "other.jsonl").write_text('{"path": "a/1.wav", "speaker": "a", "split": "test"}\n')
    (tmp_path / "trained" / "a" / "1.wav").write_bytes(b"")
    data = {"root": str(tmp_path / "trained"), "manifest": "manifest.jsonl", "valid_fraction": 0.05,
            "test_fraction": 0.05}
    own = probe_corpus(data)
    assert own.splits == ["test", "valid"] and own.corpus.manifest == tmp_path / "trained" / "manifest.jsonl"
    assert own.trained_on == str(tmp_path / "trained" / "manifest.jsonl")
    assert probe_corpus(data, manifest="other.jsonl").splits is None
    scanned = probe_corpus(data, scan=True)
    assert scanned.splits is None and scanned.corpus.manifest is None
    assert probe_corpus(data, scan=True, splits=["valid"]).splits == ["valid"]
    (tmp_path / "elsewhere" / "b").mkdir(parents=True)
    (tmp_path / "elsewhere" / "b" / "2.flac").write_bytes(b"")
    other = probe_corpus(data, tmp_path / "elsewhere")  # no manifest.jsonl there: scanned
    assert other.splits is None and [u.speaker for u in other.corpus.utterances] == ["b"]
    folder_run = {**data, "manifest": None}
    assert probe_corpus(folder_run).splits == ["test", "valid"]  # the very folder a data=folder run scanned
    assert probe_corpus(folder_run).trained_on == f"{tmp_path / 'trained'} (folder scan)"
    with pytest.raises(UserError, match="missing.jsonl not found"):
        probe_corpus(data, manifest="missing.jsonl")


@pytest.mark.parametrize("rate", [8000, 22050])
def test_audio_at_another_rate_is_resampled_and_keeps_its_phones_on_the_same_frames(tmp_path, rate):
    """The same utterances at 16 kHz and at ``rate``, with .PHN in samples of each file's own rate and TextGrids
    in seconds: every code frame gets the same label."""
    phones = ["sil", "s", "ah", "m", "iy", "sil"]
    for root, r in ((tmp_path / "native", 16000), (tmp_path / "other", rate)):
        for u in range(3):
            (root / "spk").mkdir(parents=True, exist_ok=True)
            sf.write(str(root / "spk" / f"u{u}.wav"), tone_utterance(phones, 0, u, r, 0.04), r)
            if u == 0:  # 0.04 s per phone in the file's own samples
                (root / "spk" / "u0.PHN").write_text("".join(
                    f"{round(k * 0.04 * r)} {round((k + 1) * 0.04 * r)} {p}\n" for k, p in enumerate(phones)))
            else:
                write_textgrid(root / "spk" / f"u{u}.TextGrid",
                               {"phones": [Segment(k * 0.04, (k + 1) * 0.04, p) for k, p in enumerate(phones)]}, 0.24)
    native, _ = load_items(load_corpus(tmp_path / "native"), None, 16000, 8, PhoneSet(), progress=False)
    other, skipped = load_items(load_corpus(tmp_path / "other"), None, 16000, 8, PhoneSet(), progress=False)
    assert not skipped and [it.source_rate for it in other] == [rate] * 3
    assert [it.labels for it in other] == [it.labels for it in native]
    assert [len(it.wav) for it in other] == [len(it.wav) for it in native] == [3840] * 3


def test_a_folder_with_audio_and_no_alignments_names_the_extensions_looked_for(trained_run, tmp_path, capsys):
    (tmp_path / "bare" / "spk").mkdir(parents=True)
    sf.write(str(tmp_path / "bare" / "spk" / "x.wav"), np.zeros(1600, dtype=np.float32), 16000)
    code = main(["probe-phonemes", "--run", str(trained_run), "--data-root", str(tmp_path / "bare"), "-q",
                 "--out", str(tmp_path / "probe")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 2 and err[0].startswith("using ")  # the checkpoint line, then the error
    assert err[1].startswith("error: no alignment beside any of the 1 audio files")
    assert "x.TextGrid, x.PHN, x.lab" in err[1]
    with pytest.raises(UserError, match="no audio of split heldout under .*leave out --split"):
        load_items(load_corpus(tmp_path / "bare"), ["heldout"], 16000, 8, PhoneSet(), progress=False)


def test_an_alignment_of_mostly_unknown_symbols_is_named_with_the_phone_set_hint(tmp_path):
    (tmp_path / "ipa" / "spk").mkdir(parents=True)
    phones = ["sil", "ʃ", "ɐ", "ɲ", "iː", "sil"]
    sf.write(str(tmp_path / "ipa" / "spk" / "x.wav"), tone_utterance(phones, 0, 0, 16000, 0.05), 16000)
    write_textgrid(tmp_path / "ipa" / "spk" / "x.TextGrid",
                   {"phones": [Segment(k * 0.05, (k + 1) * 0.05, p) for k, p in enumerate(phones)]}, 0.3)
    corpus = load_corpus(tmp_path / "ipa")
    with pytest.raises(UserError, match=r"x\.TextGrid: mostly unknown symbols \(4 of 6 segments") as caught:
        load_items(corpus, None, 16000, 8, PhoneSet(), progress=False)
    assert "--any-symbol" in str(caught.value) and "--fold-timit" in str(caught.value)
    items, _ = load_items(corpus, None, 16000, 8, PhoneSet(inventory=None), progress=False)
    assert {"ʃ", "ɐ", "ɲ", "iː"} <= set(items[0].labels)
