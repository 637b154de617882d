"""Spectral features, one definition shared by every evaluation: log-mel spectrograms and the mel cepstra
behind mel-cepstral distortion (MCD)."""

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


MCD_ORDER = 24


def mel_cepstrum(wav: np.ndarray, sample_rate: int, order: int = MCD_ORDER) -> np.ndarray:
    """Mel-cepstral coefficients c1..c_order of every frame. wav: [T] -> [frames, order].

    The one pinned definition: the cepstrum of the log-*amplitude* mel spectrum of :func:`log_mel`
    (80 bands, n_fft 1024, hop 256, floored at 1e-5), c_n = (1/M) Σ_m ln|X_m| cos(π n (m + ½) / M) for
    n = 1 … order (c0, the frame's level, is dropped). This scaling makes c_n the coefficients of
    ln|X| = c0 + 2 Σ c_n cos(·), as in the usual MCD; it is not SPTK's all-pass mel-cepstrum.
    """
    import librosa

    n_mels = 80
    log_amplitude = 0.5 * log_mel(wav, sample_rate, n_mels=n_mels)
    ortho = librosa.feature.mfcc(S=log_amplitude, n_mfcc=order + 1, dct_type=2, norm="ortho")
    return (ortho / np.sqrt(2 * n_mels))[1:].T


def mel_cepstral_distortion(reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> float:
    """Mel-cepstral distortion in dB between two renderings of the same content, of any lengths. Both [T].

    MCD = mean over the frame pairs (i, j) of the DTW path of (10 / ln 10) · sqrt(2 · Σ_d (c_d − c'_d)²),
    with cepstra of order 24, c0 excluded (:func:`mel_cepstrum`), aligned by ``librosa.sequence.dtw`` on
    the Euclidean distance between cepstra. Silence is not removed. The scale is that of the usual MCD,
    but the analysis is not SPTK's: compare values with each other (converted vs the source-to-target
    baseline) before comparing them with figures published by other toolkits.
    """
    import librosa

    if len(reference) == 0 or len(estimate) == 0:
        raise ValueError("empty audio")
    ref, est = mel_cepstrum(reference, sample_rate), mel_cepstrum(estimate, sample_rate)
    _, path = librosa.sequence.dtw(X=ref.T, Y=est.T, metric="euclidean")
    distances = np.linalg.norm(ref[path[:, 0]] - est[path[:, 1]], axis=1)
    return float(10 / np.log(10) * np.sqrt(2) * distances.mean())
