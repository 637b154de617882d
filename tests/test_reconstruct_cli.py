"""`vqspeech reconstruct` and `vqspeech evaluate-reconstruction` end to end on a tiny trained run."""

import csv
import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from vqspeech.cli import main

needs_codec2 = pytest.mark.skipif(shutil.which("c2enc") is None, reason="codec2 (c2enc) is not installed")


def one_line_error(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_reconstruct_infers_the_speaker_from_the_folder_and_never_overwrites(trained_run, tiny_corpus, tmp_path,
                                                                            capsys):
    source = tmp_path / "in" / "spk_b" / "take1.wav"
    source.parent.mkdir(parents=True)
    shutil.copy(tiny_corpus / "spk_b" / "u5.wav", source)
    out = tmp_path / "out"
    args = ["reconstruct", str(source), "--run", str(trained_run), "-o", str(out), "--seed", "0", "-q"]
    assert main(args) == 0
    written = out / "take1_reconstructed.wav"
    assert f"-> {written}" in capsys.readouterr().out
    info = sf.info(str(written))
    assert (info.samplerate, info.channels, info.frames) == (16000, 1, sf.info(str(source)).frames)
    assert sorted(p.name for p in out.iterdir()) == ["take1_reconstructed.wav"]

    before = written.read_bytes()
    assert main(args) == 2
    assert "already exists; pass --overwrite" in one_line_error(capsys.readouterr().err)
    assert written.read_bytes() == before

    # the folder's speaker is the one used: naming it gives the same output (same seed), another voice does not
    explicit = tmp_path / "explicit.wav"
    assert main([*args[:-1], "--speaker", "spk_b", "-o", str(explicit), "-q"]) == 0
    assert sf.read(str(explicit))[0].tolist() == sf.read(str(written))[0].tolist()
    assert main([*args, "--overwrite", "--speaker", "spk_a"]) == 0
    assert sf.read(str(written))[0].tolist() != sf.read(str(explicit))[0].tolist()


def test_reconstruct_asks_for_a_speaker_when_the_folder_is_not_one(trained_run, tiny_corpus, tmp_path, capsys):
    source = tmp_path / "misc" / "take.wav"
    source.parent.mkdir()
    shutil.copy(tiny_corpus / "spk_a" / "u5.wav", source)
    assert main(["reconstruct", str(source), "--run", str(trained_run), "-o", str(tmp_path / "out"), "-q"]) == 2
    error = one_line_error(capsys.readouterr().err)
    assert "pass --speaker NAME, one of: spk_a, spk_b, spk_c" in error and "'misc'" in error
    assert not (tmp_path / "out").exists()

    assert main(["reconstruct", str(source), "--run", str(trained_run), "-o", str(tmp_path / "out"),
                 "--speaker", "spk_a", "--seed", "0", "-q"]) == 0
    assert (tmp_path / "out" / "take_reconstructed.wav").is_file()
    assert main(["reconstruct", str(source), "--run", str(trained_run), "--speaker", "nobody", "-q"]) == 2
    assert one_line_error(capsys.readouterr().err) == \
        "error: unknown speaker 'nobody'; this model knows: spk_a, spk_b, spk_c"


@needs_codec2
def test_evaluate_reconstruction_writes_csv_markdown_json_and_spectrograms(trained_run, tiny_corpus, tmp_path,
                                                                          capsys, monkeypatch):
    from vqspeech.eval.speech_metrics import Dnsmos

    monkeypatch.setattr(Dnsmos, "__call__", lambda self, wav, sr: {"ovrl": 3.0, "sig": 3.5, "bak": 4.0})
    corpus = tmp_path / "corpus"  # the training corpus with spk_a's test utterance silenced
    shutil.copytree(tiny_corpus, corpus)
    sf.write(str(corpus / "spk_a" / "u5.wav"), np.zeros(8000, np.float32), 16000)
    out = tmp_path / "eval"
    assert main(["evaluate-reconstruction", "--run", str(trained_run), "--data-root", str(corpus), "--out",
                 str(out), "--limit", "2", "--seconds", "0.3", "-q"]) == 0
    printed = capsys.readouterr().out

    systems = ["vqspeech (sampling)", "vqspeech (argmax)", "Codec2 1300", "Codec2 2400", "Codec2 3200",
               "μ-law 8-bit", "μ-law 4-bit", "original"]
    with open(out / "per_utterance.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["speaker", "utterance", "seconds", "system", "bitrate", "pesq", "stoi", "estoi",
                             "log_mel_l1", "mcd", "dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "excluded"]
    assert [(r["speaker"], r["system"]) for r in rows] == [(s, x) for s in ("spk_a", "spk_b") for x in systems]
    silent = [r for r in rows if r["speaker"] == "spk_a" and r["system"] != "original"]
    assert all(r["pesq"] == "" and "pesq: silent reference (peak < 0.0001)" in r["excluded"] for r in silent)
    spoken = {r["system"]: r for r in rows if r["speaker"] == "spk_b"}
    assert float(spoken["μ-law 8-bit"]["pesq"]) > float(spoken["μ-law 4-bit"]["pesq"])
    assert float(spoken["μ-law 8-bit"]["bitrate"]) == 8 * 16000 and float(spoken["Codec2 2400"]["bitrate"]) == 2400
    assert float(spoken["vqspeech (argmax)"]["bitrate"]) == 16000 / 64 * 4  # tiny: hop 64, 16 codes
    assert all(float(r["seconds"]) == pytest.approx(0.3) and r["dnsmos_ovrl"] == "3.0" for r in rows)

    markdown = (out / "reconstruction.md").read_text()
    assert markdown in printed
    assert "| system | bitrate (bit/s) | PESQ-WB | STOI | ESTOI | log-mel L1 | MCD (dB) | DNSMOS OVRL |" in markdown
    assert all(f"| {s} |" in markdown for s in systems)
    assert "- pesq: silent reference (peak < 0.0001) — 7 outputs of 1 utterance: spk_a/u5" in markdown
    assert "Evaluation wall time" in markdown and "code perplexity" in markdown

    report = json.loads((out / "reconstruction.json").read_text())
    assert report["utterances"] == 2 and report["codebook_size"] == 16 and report["bitrate"] == 1000
    assert 1 <= report["used_codes"] <= 16 and report["entropy_bitrate"] <= report["bitrate"]
    assert report["wall_seconds"] > 0 and len(report["rows"]) == 16
    assert sorted(p.name for p in out.glob("*.png")) == ["spectrogram_spk_a_u5.png", "spectrogram_spk_b_u5.png"]


def test_evaluate_reconstruction_without_codec2_names_the_package(trained_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name, *args, **kwargs: None)
    assert main(["evaluate-reconstruction", "--run", str(trained_run), "--out", str(tmp_path / "eval"), "-q"]) == 2
    assert one_line_error(capsys.readouterr().err) == \
        "error: c2enc not found: install the Debian package 'codec2' (apt-get install codec2)"
    assert not (tmp_path / "eval").exists()
