"""The parallel decoder end to end through the CLI on a tiny run: train, report, reconstruct, convert, the
learned prior, compress and decompress, and a .vqs file of the other decoder refused; plus the decoder
group's one-line errors."""

import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from tests.conftest import TINY_PRIOR
from vqspeech.cli import main


def one_line_error(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.fixture(scope="module")
def parallel_run(demo_recipe, tiny_corpus, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("parallel") / "run"
    assert main(["train", str(demo_recipe), "+debug=tiny", "decoder=parallel", "model.decoder.channels=16",
                 "model.decoder.blocks=2", "model.preemphasis=0", f"data.root={tiny_corpus}",
                 f"run_dir={run_dir}", "train.device=cpu", "train.audio_every=null", "-q"]) == 0
    return run_dir


def test_train_and_report_with_the_parallel_decoder(parallel_run, capsys):
    from vqspeech.checkpoint import load_checkpoint

    payload = load_checkpoint(parallel_run / "checkpoints" / "last.pt")
    decoder = payload["model_kwargs"]["model"]["decoder"]
    assert decoder["kind"] == "parallel" and decoder["channels"] == 16 and "residual_channels" not in decoder
    assert main(["report", "--run", str(parallel_run), "--samples", "1", "--seconds", "0.2", "-q"]) == 0
    markdown = (parallel_run / "report" / "report.md").read_text()
    assert "| test reconstruction loss (multi-resolution STFT + multi-scale mel loss, one pass) |" in markdown
    assert "one pass (no sampling)" in markdown
    # the shipped run's curve: this tiny run has read a few seconds of audio, before the curve begins
    assert "**reference curve (librispeech): this run has read 0.0 h of audio, outside the curve's" in markdown
    from vqspeech.compare import scalars
    from vqspeech.reference import audio_hours, shipped_curve

    series = scalars(parallel_run, "reference/")["reference/valid"]  # the curve, as its own TensorBoard series
    curve = shipped_curve()
    per_step = audio_hours(1, {"train": payload["config"]["train"], "data": payload["config"]["data"]})
    i = int(np.flatnonzero(~np.isnan(curve.valid))[0])  # the curve's first validation point
    assert series[int(round(curve.audio_hours[i] / per_step))] == pytest.approx(curve.valid[i], rel=1e-6)
    info = sf.info(str(parallel_run / "report" / "spk_a_u5_reconstructed.wav"))
    assert (info.samplerate, info.frames) == (16000, 3200)


def test_reconstruct_and_convert_are_deterministic_and_follow_the_speaker(parallel_run, tiny_corpus, tmp_path):
    source = tmp_path / "spk_b" / "take.wav"
    source.parent.mkdir()
    shutil.copy(tiny_corpus / "spk_b" / "u5.wav", source)
    out = tmp_path / "out"
    assert main(["reconstruct", str(source), "--run", str(parallel_run), "-o", str(out), "-q"]) == 0
    assert main(["convert", str(source), "--speaker", "spk_b", "--run", str(parallel_run), "-o", str(out / "b"),
                 "--seed", "3", "-q"]) == 0
    assert main(["convert", str(source), "--speaker", "spk_c", "--run", str(parallel_run), "-o", str(out / "c"),
                 "-q"]) == 0
    own = sf.read(str(out / "take_reconstructed.wav"))[0]
    same = sf.read(str(out / "b" / "take_to_spk_b.wav"))[0]
    other = sf.read(str(out / "c" / "take_to_spk_c.wav"))[0]
    assert len(own) == sf.info(str(source)).frames
    np.testing.assert_array_equal(own, same)  # no sampling: the seed changes nothing
    assert np.abs(own - other).max() > 0      # the speaker vector reaches the audio


def test_compress_decompress_with_the_parallel_decoder_and_the_other_decoder_is_refused(
        parallel_run, prior_run, tiny_corpus, tmp_path, capsys):
    from vqspeech.codec import decompress_codes, read_vqs
    from vqspeech.runs import load_prior, load_run

    assert main(["train-prior", "--run", str(parallel_run), "train.max_steps=3", *TINY_PRIOR, "-q"]) == 0
    wav = tiny_corpus / "spk_a" / "u5.wav"
    vqs = tmp_path / "a.vqs"
    assert main(["compress", "--run", str(parallel_run), str(wav), "--speaker", "spk_a", "-o", str(vqs), "-q"]) == 0
    header, _ = read_vqs(vqs)
    run = load_run(parallel_run)
    assert header.decoder == "parallel" and header.frames == len(run.model.encode_waveform(sf.read(
        str(wav), dtype="float32")[0]))
    _, codes = decompress_codes(run, load_prior(run), vqs)
    assert torch.equal(codes, run.model.encode_waveform(sf.read(str(wav), dtype="float32")[0]).cpu())
    out = tmp_path / "a.wav"
    assert main(["decompress", "--run", str(parallel_run), str(vqs), "-o", str(out), "-q"]) == 0
    assert sf.info(str(out)).frames == header.frames * run.model.hop_length
    capsys.readouterr()
    assert main(["decompress", "--run", str(prior_run), str(vqs), "-o", str(tmp_path / "b.wav"), "-q"]) == 2
    assert one_line_error(capsys.readouterr().err).endswith(
        "was made by a model with the parallel decoder and this run's decoder is wavenet; decompress it with the "
        "run that compressed it")


@pytest.mark.parametrize("override, message", [
    ("decoder=hifigan", "decoder"),
    ("model.decoder=parallel", "write decoder=parallel (wavenet or parallel) instead of model.decoder=parallel"),
    ("model.decoder.kind=vocos", "model.decoder.kind must be one of wavenet, parallel, got 'vocos'"),
])
def test_a_wrong_decoder_is_a_one_line_error_naming_the_choices(demo_recipe, tiny_corpus, tmp_path, capsys,
                                                                 override, message):
    assert main(["train", str(demo_recipe), "+debug=tiny", f"data.root={tiny_corpus}",
                 f"run_dir={tmp_path / 'run'}", override, "-q"]) == 2
    error = one_line_error(capsys.readouterr().err)
    assert message in error
    if override == "decoder=hifigan":
        assert "parallel" in error and "wavenet" in error
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_sampling_options_are_refused_for_the_parallel_decoder(parallel_run, tiny_corpus, tmp_path, capsys):
    wav = tiny_corpus / "spk_a" / "u5.wav"
    for option in (["--temperature", "0.8"], ["--greedy"]):
        assert main(["convert", str(wav), "--speaker", "spk_b", "--run", str(parallel_run), "-o",
                     str(tmp_path / "out"), *option, "-q"]) == 2
        assert one_line_error(capsys.readouterr().err).endswith(
            f"{option[0]}: this run's parallel decoder has no sampling (it decodes in one pass); leave the option out")
    assert not (tmp_path / "out").exists()
