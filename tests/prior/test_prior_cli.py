"""The prior's commands end to end on a tiny trained run: extract-codes, train-prior (and its resume),
evaluate-prior, sample, compress and decompress, with their one-line errors."""

import re
from pathlib import Path

import pytest
import soundfile as sf
import torch

from vqspeech.cli import main
from vqspeech.codes import load_codes



def test_codes_are_extracted_once_per_checkpoint(prior_run, capsys):
    folders = list((prior_run / "codes").iterdir())
    assert len(folders) == 1 and {p.name for p in folders[0].iterdir()} == {"train.pt", "valid.pt", "test.pt"}
    train = load_codes(folders[0], "train")
    assert train.codes and all(c.dtype == torch.long and c.ndim == 1 for c in train.codes)
    assert len(train.codes) == len(train.speaker_ids) == len(train.utterances)
    before = (folders[0] / "train.pt").stat().st_mtime_ns
    assert main(["extract-codes", "--run", str(prior_run), "-q"]) == 0
    assert (folders[0] / "train.pt").stat().st_mtime_ns == before  # kept, not re-encoded


def test_train_prior_resumes_and_reports(prior_run, tiny_prior, capsys):
    last = prior_run / "prior" / "checkpoints" / "last.pt"
    assert torch.load(last, weights_only=True)["step"] == 3
    assert main(["train-prior", "--run", str(prior_run), "train.max_steps=5", *tiny_prior, "-q"]) == 0
    assert "to step 5 (from 3)" in capsys.readouterr().out
    assert main(["evaluate-prior", "--run", str(prior_run), "-q"]) == 0
    out = capsys.readouterr().out
    assert "prior cross-entropy" in out and "speaker gap" in out and "merged repeats" in out
    assert main(["report", "--run", str(prior_run), "--samples", "0", "-q"]) == 0
    assert "### Prior on the test codes" in capsys.readouterr().out


def test_compress_decompress_round_trip_on_real_codes(prior_run, tiny_corpus, tmp_path, capsys):
    from vqspeech.codec import compress_file, decompress_codes
    from vqspeech.runs import load_prior, load_run

    wav = sorted(tiny_corpus.glob("spk_a/*.wav"))[-1]
    assert main(["compress", "--run", str(prior_run), str(wav), "-o", str(tmp_path / "a.vqs"), "-q"]) == 0
    printed = capsys.readouterr().out
    size, rate = re.search(r"(\d+) bytes, (\d+) bit/s", printed).groups()
    assert int(size) == (tmp_path / "a.vqs").stat().st_size  # the file's real size and rate, not a nominal one
    assert int(rate) == round(8 * int(size) / sf.info(str(wav)).duration)
    run = load_run(prior_run)
    prior = load_prior(run)
    done = compress_file(run, prior, wav, tmp_path / "b.vqs", "spk_a")
    header, codes = decompress_codes(run, prior, tmp_path / "b.vqs")
    assert torch.equal(codes, done.codes) and header.speaker == 0  # bit-exact on the encoder's own codes
    assert main(["decompress", "--run", str(prior_run), str(tmp_path / "a.vqs"), "-o", str(tmp_path / "a.wav"),
                 "--seed", "0", "-q"]) == 0
    decoded = sf.info(str(tmp_path / "a.wav"))
    assert decoded.frames == header.frames * run.model.hop_length and decoded.samplerate == run.sample_rate
    assert main(["decompress", "--run", str(prior_run), str(tmp_path / "a.vqs"), "-o", str(tmp_path / "a.wav"),
                 "-q"]) == 2  # no silent overwrite
    assert "already exists" in capsys.readouterr().err


def test_sample_writes_wavs_and_statistics(prior_run, tiny_corpus, tmp_path, capsys):
    out = tmp_path / "samples"
    assert main(["sample", "--run", str(prior_run), "--speaker", "spk_b", "--seconds", "0.05", "-n", "2",
                 "--temperature", "1", "0", "-o", str(out), "--no-dnsmos", "-q"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["sample_T0_0.wav", "sample_T0_1.wav", "sample_T0_codes.pt",
                                                     "sample_T1_0.wav",
                                                     "sample_T1_1.wav", "sample_T1_codes.pt", "samples.html",
                                                     "samples.md", "spectrograms"]
    page = (out / "samples.html").read_text()
    assert [f'src="sample_T{t}_{i}.wav"' in page for t in (0, 1) for i in (0, 1)] == [True] * 4
    assert page.count("<audio") == 4
    greedy, sampled = torch.load(out / "sample_T0_codes.pt"), torch.load(out / "sample_T1_codes.pt")
    assert greedy.shape == sampled.shape and greedy.shape[0] == 2
    assert torch.equal(greedy[0], greedy[1])  # temperature 0 is the argmax: both samples are one sequence
    assert not torch.equal(sampled[0], sampled[1])  # temperature 1 draws
    assert "| 1 |" in (out / "samples.md").read_text() and "| 0 |" in (out / "samples.md").read_text()
    prompt = sorted(tiny_corpus.glob("spk_b/*.wav"))[0]
    assert main(["sample", "--run", str(prior_run), "--speaker", "spk_b", "--seconds", "0.1", "-n", "1",
                 "--prompt", str(prompt), "--prompt-seconds", "0.05", "-o", str(out), "--no-dnsmos", "-q"]) == 0
    assert (out / "prompt_T1_0.wav").is_file() and (out / "prompts.md").is_file()


@pytest.mark.parametrize("argv, message", [
    (["sample", "--seconds", "1"], "--speaker NAME"),
    (["sample", "--speaker", "nobody"], "unknown speaker 'nobody'"),
    (["sample", "--speaker", "spk_a", "--seconds", "0"], "must be positive"),
    (["compress", "--speaker", "nobody", "x.wav"], "unknown speaker"),
    (["decompress", "README.md"], "not a .vqs file"),
])
def test_bad_prior_commands_are_one_line_errors(prior_run, argv, message, capsys):
    code = main([argv[0], "--run", str(prior_run), *argv[1:], "-q"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


def test_bad_input_to_compress_names_the_file(prior_run, tmp_path, capsys):
    bad = tmp_path / "text.wav"
    bad.write_text("not audio")
    assert main(["compress", "--run", str(prior_run), str(bad), "-o", str(tmp_path / "out"), "-q"]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(bad) in errors[0] and "Traceback" not in err
    assert not (tmp_path / "out" / "text.vqs").exists()


def test_train_prior_without_a_run_is_a_one_line_error(tmp_path, capsys):
    assert main(["train-prior", "--run", str(tmp_path / "nowhere"), "-q"]) == 2
    assert "holds no checkpoint" in capsys.readouterr().err


def test_decompress_speaks_a_speakerless_file_in_a_reference_voice(reference_run, tiny_prior, tiny_corpus, tmp_path,
                                                                   capsys):
    """A reference model's file compressed without a speaker has no voice in it: decompress takes one from
    --reference (the shipped model's way), and without it says so in one line."""
    import soundfile as sf

    assert main(["train-prior", "--run", str(reference_run), "train.max_steps=2", *tiny_prior, "-q"]) == 0
    source = tmp_path / "in.wav"
    sf.write(source, sf.read(tiny_corpus / "spk_a" / "u5.wav")[0], 16000)
    assert main(["compress", "--run", str(reference_run), str(source), "-o", str(tmp_path / "a.vqs"), "-q"]) == 0
    capsys.readouterr()
    assert main(["decompress", "--run", str(reference_run), str(tmp_path / "a.vqs"), "-o", str(tmp_path / "a.wav"),
                 "-q"]) == 2
    assert "compressed without a speaker; name the voice with --speaker NAME or --reference WAV" in capsys.readouterr().err
    import numpy as np

    reference = tmp_path / "spk_b.wav"  # 1 s at least: three of the tiny corpus's utterances
    sf.write(reference, np.concatenate([sf.read(tiny_corpus / "spk_b" / f"u{i}.wav")[0] for i in range(3)]), 16000)
    assert main(["decompress", "--run", str(reference_run), str(tmp_path / "a.vqs"), "-o", str(tmp_path / "a.wav"),
                 "--reference", str(reference), "-q"]) == 0
    assert sf.info(str(tmp_path / "a.wav")).frames >= sf.info(str(source)).frames
    assert main(["decompress", "--run", str(reference_run), str(tmp_path / "a.vqs"), "-o", str(tmp_path / "b.wav"),
                 "--reference", str(source), "--speaker", "spk_a", "-q"]) == 2
    assert "give one voice" in capsys.readouterr().err
