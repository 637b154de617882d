"""Spectral features, one definition shared by every evaluation: log-mel spectrograms."""

from __future__ import annotations

import numpy as np


def log_mel(wav: np.ndarray, sample_rate: int, n_mels: int = 80, n_fft: int = 1024, hop_length: int = 256
            ) -> np.ndarray:
    """Natural-log mel power spectrogram. wav: [T] -> [n_mels, frames], floored at 1e-5."""
    import librosa

    mel = librosa.feature.melspectrogram(y=wav.astype(np.float32), sr=sample_rate, n_fft=n_fft,
                                         hop_length=hop_length, n_mels=n_mels, fmin=0.0,
                                         fmax=sample_rate / 2)
    return np.log(np.maximum(mel, 1e-5))


def log_mel_l1(reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> float:
    """Mean |log-mel(ref) − log-mel(est)| over the common length. Both [T]."""
    n = min(len(reference), len(estimate))
    if n == 0:
        raise ValueError("empty audio")
    return float(np.abs(log_mel(reference[:n], sample_rate) - log_mel(estimate[:n], sample_rate)).mean())
