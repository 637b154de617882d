"""Audio I/O and μ-law: companding error bounds, what load_audio accepts and refuses, atomic save (wav and text)."""

import math

import numpy as np
import pytest
import soundfile as sf
import torch

from vqspeech.data.audio import AudioError, load_audio, mu_law_decode, mu_law_encode, save_audio
from vqspeech.files import write_atomic
from vqspeech.errors import UserError

SR = 16000


def sine(freq: float, sr: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


# ---- μ-law --------------------------------------------------------------------------------------


def test_mu_law_round_trip_error_is_within_the_local_quantisation_step():
    x = torch.linspace(-1, 1, 200001)
    err = (mu_law_decode(mu_law_encode(x)) - x).abs()
    assert err.max() < 0.07
    assert err[x.abs() <= 0.1].max() < 0.02
    # finer: half a code step in the companded domain (1/255) times dx/dy = ln(256)(1 + 255|x|)/255
    local_step = math.log(256) * (1 + 255 * (x.abs() + 0.03).clamp(max=1)) / 255 / 255
    assert (err <= local_step + 1e-6).all()


def test_mu_law_silence_endpoints_and_range():
    assert mu_law_encode(torch.tensor(0.0)).item() == 128
    assert mu_law_encode(torch.tensor([-1.0, 1.0])).tolist() == [0, 255]
    assert mu_law_encode(torch.tensor([-5.0, 5.0])).tolist() == [0, 255]  # clamped
    decoded = mu_law_decode(torch.arange(256))
    assert decoded.abs().max() <= 1.0
    assert torch.equal(mu_law_encode(decoded), torch.arange(256))  # decode then encode is the identity


def test_mu_law_is_monotonic():
    x = torch.linspace(-1, 1, 200001)  # finer than the narrowest code (≈1.4e-4 wide, around 0)
    codes = mu_law_encode(x)
    assert (codes.diff() >= 0).all()
    assert codes.unique().numel() == 256
    assert (mu_law_decode(torch.arange(256)).diff() > 0).all()


# ---- load_audio ---------------------------------------------------------------------------------


def test_stereo_is_downmixed_to_the_mean(tmp_path):
    left, right = sine(300, SR, 0.1, 0.6), sine(500, SR, 0.1, 0.3)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), SR, subtype="FLOAT")
    wav = load_audio(path, SR)
    assert wav.dtype == np.float32 and wav.ndim == 1
    np.testing.assert_allclose(wav, (left + right) / 2, atol=1e-7)


def test_8khz_file_is_resampled_to_16khz_and_keeps_its_pitch(tmp_path):
    path = tmp_path / "narrow.wav"
    tone = sine(440, 8000, 0.5)
    sf.write(path, tone, 8000, subtype="PCM_16")
    wav = load_audio(path, SR)
    assert abs(len(wav) - 2 * len(tone)) <= 1
    spectrum = np.abs(np.fft.rfft(wav * np.hanning(len(wav))))
    peak_hz = np.fft.rfftfreq(len(wav), 1 / SR)[spectrum.argmax()]
    assert abs(peak_hz - 440) <= SR / len(wav)
    assert 0.4 < np.abs(wav[1000:-1000]).max() < 0.6  # the level survives too


@pytest.mark.parametrize("subtype, tol", [("PCM_24", 2 ** -22), ("FLOAT", 0.0), ("PCM_16", 2 ** -14)])
def test_wav_subtypes_load_as_float_in_range(tmp_path, subtype, tol):
    path = tmp_path / f"{subtype}.wav"
    tone = sine(200, SR, 0.05, 0.9)
    sf.write(path, tone, SR, subtype=subtype)
    wav = load_audio(path, SR)
    assert wav.dtype == np.float32
    np.testing.assert_allclose(wav, tone, atol=tol, rtol=0)


def test_out_of_range_float_samples_are_clipped(tmp_path):
    path = tmp_path / "loud.wav"
    sf.write(path, np.array([0.0, 1.5, -2.0, 0.25], dtype=np.float32), SR, subtype="FLOAT")
    assert load_audio(path, SR).tolist() == [0.0, 1.0, -1.0, 0.25]


def test_empty_wav_is_an_audio_error_naming_the_file(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), SR)
    with pytest.raises(AudioError, match="empty.wav"):
        load_audio(path, SR)


def test_nan_samples_are_an_audio_error(tmp_path):
    path = tmp_path / "nan.wav"
    data = sine(200, SR, 0.01)
    data[5] = np.nan
    sf.write(path, data, SR, subtype="FLOAT")
    with pytest.raises(AudioError, match="nan.wav"):
        load_audio(path, SR)


def test_text_file_named_wav_is_an_audio_error(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n")
    with pytest.raises(AudioError, match="notes.wav") as excinfo:
        load_audio(path, SR)
    assert isinstance(excinfo.value, UserError)  # so the CLI prints one line
    assert "\n" not in str(excinfo.value)


def test_missing_file_is_an_audio_error(tmp_path):
    with pytest.raises(AudioError, match="missing.wav"):
        load_audio(tmp_path / "missing.wav", SR)


# ---- save_audio ---------------------------------------------------------------------------------


def test_save_round_trips_and_refuses_to_overwrite(tmp_path):
    path = tmp_path / "out" / "a.wav"
    first = sine(300, SR, 0.05)
    assert save_audio(path, torch.from_numpy(first), SR) == path
    np.testing.assert_allclose(load_audio(path, SR), first, atol=2 ** -15)

    second = sine(700, SR, 0.05)
    with pytest.raises(UserError, match="a.wav"):
        save_audio(path, second, SR)
    np.testing.assert_allclose(load_audio(path, SR), first, atol=2 ** -15)  # untouched
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.wav"]  # no temp files left

    save_audio(path, second, SR, overwrite=True)
    np.testing.assert_allclose(load_audio(path, SR), second, atol=2 ** -15)
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.wav"]
    assert sf.info(str(path)).subtype == "PCM_16"


def test_a_failed_write_leaves_neither_the_target_nor_a_temp_file(tmp_path, monkeypatch):
    def broken_write(file, data, samplerate, **kwargs):
        with open(file, "wb") as f:
            f.write(b"RIFF partial")
        raise OSError("disk full")

    monkeypatch.setattr(sf, "write", broken_write)
    with pytest.raises(OSError, match="disk full"):
        save_audio(tmp_path / "b.wav", sine(300, SR, 0.01), SR)
    assert list(tmp_path.iterdir()) == []


def test_write_atomic_replaces_the_file_whole_with_the_usual_mode(tmp_path):
    import os

    mask = os.umask(0o022)
    try:
        path = write_atomic(tmp_path / "sub" / "manifest.jsonl", "first\n")
        assert path.read_text() == "first\n"
        write_atomic(path, b"second\n")
        assert path.read_text() == "second\n"
        assert path.stat().st_mode & 0o777 == 0o644  # readable by others, like the wavs beside it
        assert sorted(p.name for p in path.parent.iterdir()) == ["manifest.jsonl"]  # no temp file left
    finally:
        os.umask(mask)


def test_normalize_loudness_reaches_the_target_and_never_clips():
    from vqspeech.data.audio import loudness, normalize_loudness

    rng = np.random.default_rng(0)
    t = np.arange(3 * 16000) / 16000
    quiet = (0.02 * np.sin(2 * np.pi * 200 * t) * (1 + np.sin(2 * np.pi * 2 * t))
             + 0.002 * rng.standard_normal(t.shape)).astype(np.float32)
    louder = normalize_loudness(quiet, 16000, -20.0)
    assert loudness(louder, 16000) == pytest.approx(-20.0, abs=0.2)
    assert np.abs(louder).max() <= 0.99 + 1e-6
    np.testing.assert_allclose(louder / quiet, louder[0] / quiet[0], rtol=1e-4)  # a gain, nothing else
    spiky = quiet.copy()
    spiky[100] = 0.5  # limiting wins over the target
    assert np.abs(normalize_loudness(spiky, 16000, -5.0)).max() == pytest.approx(0.99, abs=1e-6)
    assert normalize_loudness(quiet, 16000, None) is quiet
    short = quiet[:3000]  # under the meter's 0.4 s: scaled by RMS
    assert np.sqrt(np.mean(normalize_loudness(short, 16000, -20.0) ** 2)) == pytest.approx(0.1, rel=0.01)


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 48000])
def test_loudness_is_pyloudnorms_bs1770_meter(rate):
    """vqspeech computes BS.1770 itself (no scipy.signal at start-up); pyloudnorm's meter is the oracle."""
    import pyloudnorm

    from vqspeech.data.audio import loudness

    rng = np.random.default_rng(rate)
    t = np.arange(3 * rate) / rate
    speechy = (0.2 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 1.5 * t) > 0)
               + 0.01 * rng.standard_normal(len(t))).astype(np.float32)  # bursts and near-silence: both gates act
    for wav in (speechy, 0.5 * speechy, speechy[: int(0.45 * rate)]):
        expected = pyloudnorm.Meter(rate).integrated_loudness(wav.astype(np.float64))
        assert loudness(wav, rate) == pytest.approx(expected, abs=1e-9)
    assert loudness(np.zeros(rate, np.float32), rate) is None  # gated to silence
    assert loudness(speechy[: int(0.39 * rate)], rate) is None  # shorter than one 400 ms block


def test_resample_is_librosas_soxr_hq_with_its_length():
    import librosa

    from vqspeech.data.audio import resample

    wav = np.random.default_rng(0).standard_normal(44100).astype(np.float32) * 0.1
    for orig, target in ((44100, 16000), (16000, 22050), (8000, 16000)):
        expected = librosa.resample(wav[:orig], orig_sr=orig, target_sr=target)
        np.testing.assert_array_equal(resample(wav[:orig], orig, target), expected.astype(np.float32))
