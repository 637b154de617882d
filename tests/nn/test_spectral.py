"""The one MFCC / log-mel implementation (torchaudio, nn/spectral.py) against the librosa values it replaced."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vqspeech.eval.probing import mfcc_frames
from vqspeech.nn.spectral import FrameFeatures, savgol_delta_kernels

SR, HOP = 16000, 64


def speechlike(seconds: float = 0.6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    voiced = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 20)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return (0.1 * voiced + 0.02 * rng.standard_normal(len(t))).astype(np.float32)[: len(t) // HOP * HOP]


def librosa_mfcc(wav: np.ndarray) -> np.ndarray:
    """The probe's former definition: librosa MFCCs + Δ + ΔΔ, frame j centred on (j + ½)·hop. [F, 39]"""
    import librosa

    n_frames, win = len(wav) // HOP, 400
    mfcc = librosa.feature.mfcc(y=wav[HOP // 2:], sr=SR, n_mfcc=13, n_mels=40, hop_length=HOP, win_length=win,
                                n_fft=512)[:, :n_frames]
    deltas = [librosa.feature.delta(mfcc, order=o, mode="nearest") for o in (1, 2)]
    return np.concatenate([mfcc, *deltas]).T


def test_mfcc_matches_librosa_away_from_the_edges():
    """Interior frames (whose window and delta span lie inside the signal) agree with librosa to 1e-3 of
    each coefficient's range; the first frames differ only because librosa dropped the first hop/2 samples."""
    wav = speechlike()
    ours, ref = mfcc_frames(wav, SR, HOP), librosa_mfcc(wav)
    assert ours.shape == ref.shape == (len(wav) // HOP, 39)
    inner = slice(16, -16)  # 512-sample window + 2 × 4-frame delta spans
    scale = np.abs(ref[inner]).max(axis=0)
    err = np.abs(ours[inner] - ref[inner]).max(axis=0) / scale
    assert err[:13].max() < 1e-3 and err[13:26].max() < 1e-3 and err[26:].max() < 1e-3, err


def test_savgol_kernels_are_librosas():
    from scipy.signal import savgol_coeffs

    kernels = savgol_delta_kernels(9).double().numpy()
    for order in (1, 2):  # savgol_coeffs(use="dot") gives the weights of x[t − 4 … t + 4]
        ref = savgol_coeffs(9, order, deriv=order, use="dot")
        np.testing.assert_allclose(kernels[order - 1], ref, atol=1e-6)


def test_frames_are_local_without_top_db():
    """With top_db=None (the encoder's setting) a frame depends only on nearby audio: appending audio
    far away leaves the early frames unchanged (crops and chunks see the same features)."""
    feats = FrameFeatures("logmel", SR, HOP)
    wav = torch.from_numpy(speechlike(1.0))[None]
    longer = torch.cat([wav, 3 * torch.from_numpy(speechlike(1.0, seed=1))[None]], dim=1)
    a, b = feats(wav), feats(longer)
    keep = wav.shape[1] // HOP - feats.receptive_field // HOP
    torch.testing.assert_close(a[..., :keep], b[..., :keep])
    assert a.shape == (1, 40, wav.shape[1] // HOP)


@pytest.mark.filterwarnings("ignore:At least one mel filterbank")
def test_frame_is_centred_on_its_hop():
    """A click at sample s shows up most in frame s // hop, whose samples it lies in."""
    feats = FrameFeatures("logmel", SR, HOP, window_seconds=0.004)  # a window of one hop
    for s in (1000, 1040, 2111):
        wav = torch.zeros(1, 64 * 50)
        wav[0, s] = 1.0
        energy = feats(wav)[0].mean(0)
        assert int(energy.argmax()) == s // HOP


def test_bad_kind():
    with pytest.raises(ValueError, match="mfcc, logmel"):
        FrameFeatures("cqt", SR, HOP)
