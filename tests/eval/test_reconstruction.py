"""Reconstruction metrics and baselines: identity scores, alignment of different lengths, silence excluded
from PESQ with its reason, Codec2 round trips and its missing-tool message, μ-law resolution, and the
TensorBoard samples on a tiny untrained model."""

import shutil

import numpy as np
import pytest
import torch

from vqspeech.errors import UserError
from vqspeech.eval import baselines
from vqspeech.training.tensorboard import log_reconstructions
from vqspeech.eval.speech_metrics import Dnsmos, score

SR = 16000
needs_codec2 = pytest.mark.skipif(shutil.which("c2enc") is None, reason="codec2 (c2enc) is not installed")


def speech_like(seconds: float, seed: int = 0, sample_rate: int = SR) -> np.ndarray:
    """A voiced sound: harmonics of a gliding f0 under a syllable-rate envelope, plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    f0 = 140 * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    wav = sum(np.sin(k * phase) / k for k in range(1, 20))
    envelope = 0.2 + 0.8 * np.sin(2 * np.pi * 2.5 * t) ** 2
    return (0.2 * envelope * wav / np.abs(wav).max() + 0.003 * rng.standard_normal(len(t))).astype(np.float32)


def test_a_signal_against_itself_scores_perfectly():
    wav = speech_like(1.5)
    s = score(wav, wav, SR)
    assert s.pesq > 4.5
    assert s.stoi == pytest.approx(1.0, abs=1e-6) and s.estoi == pytest.approx(1.0, abs=1e-6)
    assert s.log_mel_l1 == 0.0 and s.mcd == pytest.approx(0.0, abs=1e-9)
    assert s.excluded == {}


def test_noise_lowers_every_intrusive_score():
    wav = speech_like(1.5)
    noisy = wav + 0.02 * np.random.default_rng(1).standard_normal(len(wav)).astype(np.float32)
    clean, degraded = score(wav, wav, SR), score(wav, noisy, SR)
    assert degraded.pesq < clean.pesq - 1 and degraded.stoi < clean.stoi
    assert degraded.log_mel_l1 > 0.1 and degraded.mcd > 0.1


def test_different_lengths_are_trimmed_to_the_common_length():
    wav = speech_like(1.5)
    longer = np.concatenate([wav, speech_like(0.3, seed=2)])
    assert score(wav, longer, SR).pesq > 4.5          # estimate longer than the reference
    shorter = score(wav, wav[: len(wav) - 1234], SR)  # and shorter
    assert shorter.pesq > 4.5 and shorter.mcd == pytest.approx(0.0, abs=1e-9)


def test_a_silent_reference_is_excluded_from_pesq_with_the_reason():
    s = score(np.zeros(SR, np.float32), speech_like(1.0), SR)
    assert s.pesq is None and s.excluded["pesq"] == "silent reference (peak < 0.0001)"
    assert s.stoi is None and "silent" in s.excluded["stoi"]
    assert s.log_mel_l1 is not None and s.mcd is not None


def test_too_short_for_pesq_and_stoi_is_excluded_not_a_crash():
    wav = speech_like(0.2)
    s = score(wav, wav, SR)
    assert s.pesq is None and "0.25 s" in s.excluded["pesq"]
    assert s.stoi is None and "30 frames" in s.excluded["stoi"]
    assert s.log_mel_l1 == 0.0


def test_pesq_resamples_other_model_rates():
    wav = speech_like(1.0, sample_rate=22050)
    assert score(wav, wav, 22050).pesq > 4.5


def test_mu_law_4_bit_errs_more_than_8_bit_and_labels_its_bitrate():
    wav = speech_like(0.5)
    eight, four = baselines.mu_law(wav, SR, 8), baselines.mu_law(wav, SR, 4)
    assert (eight.bitrate, four.bitrate) == (8 * SR, 4 * SR)
    assert len(eight.audio) == len(four.audio) == len(wav)
    assert np.abs(four.audio - wav).mean() > 4 * np.abs(eight.audio - wav).mean()


@needs_codec2
@pytest.mark.parametrize("mode", baselines.CODEC2_MODES)
def test_codec2_round_trip_is_at_the_model_rate_and_input_length_with_its_bitrate(mode):
    wav = speech_like(1.0, sample_rate=22050)[: 22050 - 77]  # not a whole number of codec frames
    coded = baselines.codec2(wav, 22050, mode)
    assert coded.audio.dtype == np.float32 and coded.audio.shape == wav.shape
    assert coded.bitrate == mode
    assert mode <= coded.measured_bitrate <= 1.08 * mode  # 1300 stores its 52-bit frames in 7 bytes
    assert np.abs(coded.audio).max() > 0.01
    assert 0 <= coded.delay <= 0.04 * 22050


def test_envelope_delay_finds_a_known_delay():
    wav = speech_like(1.0)
    delayed = np.concatenate([np.zeros(160, np.float32), wav])
    assert baselines.envelope_delay(wav, delayed, SR) == 160


def test_missing_c2enc_names_the_debian_package(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(UserError, match=r"c2enc not found: install the Debian package 'codec2' "
                                        r"\(apt-get install codec2\)"):
        baselines.codec2(speech_like(0.3), SR, 2400)


def test_dnsmos_runs_from_the_wheel_and_scores_speech_above_noise():
    dnsmos = Dnsmos()
    assert dnsmos.unavailable is None
    speech = dnsmos(speech_like(1.0), SR)
    noise = dnsmos(0.3 * np.random.default_rng(0).uniform(-1, 1, SR).astype(np.float32), SR)
    assert set(speech) == {"ovrl", "sig", "bak"} and all(1 <= v <= 5 for v in speech.values())
    assert speech["bak"] > noise["bak"]




class FakeWriter:
    def __init__(self):
        self.audio, self.images = {}, {}

    def add_audio(self, tag, snd, step, sample_rate):
        self.audio[tag] = (snd, step, sample_rate)

    def add_image(self, tag, image, step):
        self.images[tag] = (image, step)


def test_tensorboard_samples_are_short_and_leave_the_training_rng_and_mode_alone(tiny_model):
    model = tiny_model().train()
    writer = FakeWriter()
    rng = torch.get_rng_state()
    log_reconstructions(writer, model, [speech_like(2.0), speech_like(0.3, 1)], [0, 1], ["a_u1", "b_u2"], 7, SR,
                        seconds=0.1)
    assert torch.equal(rng, torch.get_rng_state()) and model.training
    assert set(writer.audio) == {f"reconstruction/{u}/{kind}" for u in ("a_u1", "b_u2")
                                 for kind in ("original", "reconstructed")}
    for snd, step, rate in writer.audio.values():
        assert snd.shape == (1, 1600) and step == 7 and rate == SR  # 0.1 s
        assert snd.abs().max() <= 1
    assert set(writer.images) == {f"reconstruction/{u}/{kind}_spectrogram" for u in ("a_u1", "b_u2")
                                  for kind in ("original", "reconstructed")}
    for image, step in writer.images.values():
        assert image.dtype == np.uint8 and image.shape[0] == 3 and step == 7


def test_training_writes_audio_and_spectrograms_every_audio_every_steps(tiny_config, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from vqspeech.training import train

    run_dir = tmp_path / "run"
    train(tiny_config("train.audio_every=2", run_dir=run_dir), progress=False)
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"audio": 0, "images": 0}).Reload()
    audio, images = events.Tags()["audio"], events.Tags()["images"]
    assert sorted(audio) == ["reconstruction/spk_a_u4/original", "reconstruction/spk_a_u4/reconstructed",
                             "reconstruction/spk_b_u4/original", "reconstruction/spk_b_u4/reconstructed"]
    assert sorted(images) == sorted(f"{tag}_spectrogram" for tag in audio)
    assert [e.step for e in events.Audio(audio[0])] == [2]


def test_a_summary_counts_what_each_metric_left_out():
    from vqspeech.eval.reconstruction import UtteranceScore, summarize
    from vqspeech.eval.speech_metrics import METRICS

    def row(utterance, **values):
        return UtteranceScore(speaker="a", utterance=utterance, seconds=1.0, system="vqspeech", bitrate=2000.0,
                              **{m: values.get(m, 1.0) for m in METRICS})

    rows = [row("u1", stoi=0.8), row("u2", stoi=None, pesq=None), row("u3", stoi=0.6, pesq=None)]
    s = summarize("vqspeech", rows)
    assert s.stoi == pytest.approx(0.7) and s.pesq == 1.0 and s.utterances == 3
    assert s.excluded == {"stoi": 1, "pesq": 2} and s.pesq_excluded == 2
