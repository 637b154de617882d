"""Spectral frames at the code frame rate, computed with torchaudio on the input's device (inside the graph).

The one implementation of MFCC and log-mel frames: the spectral encoder front end
(models/encoder.py, ``encoder.frontend``) and the MFCC k-means baseline of ``probe-phonemes``
(eval/probing.py) both call :class:`FrameFeatures`.

Frame j is centred on sample (j + ½) · hop, the centre of the samples j · hop … (j + 1) · hop − 1 that
latent frame j of the waveform encoder covers, so a waveform of T samples (a multiple of hop) gives exactly
T / hop frames. The window is zero-padded beyond the signal's ends.

The MFCC definition is librosa's (``librosa.feature.mfcc`` with Slaney mel filters, power spectrum,
``power_to_db`` and an orthonormal DCT-II), and the deltas are librosa's Savitzky–Golay ``delta`` (width 9,
``mode="nearest"``); tests/nn/test_spectral.py pins both against librosa.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

KINDS = ("mfcc", "logmel")
DELTA_WIDTH = 9


def savgol_delta_kernels(width: int = DELTA_WIDTH) -> Tensor:
    """Savitzky–Golay derivative filters of librosa's ``delta``: Tensor[2, width] for orders 1 and 2.

    Order 1 fits a line over the window (slope Σ n·x_n / Σ n²), order 2 a parabola (second derivative
    2 Σ (n² − m)·x_n / Σ (n² − m)², m the mean of n²), n = −(width // 2) … width // 2.
    """
    n = torch.arange(width, dtype=torch.float64) - width // 2
    first = n / (n ** 2).sum()
    centred = n ** 2 - (n ** 2).mean()
    second = 2 * centred / (centred ** 2).sum()
    return torch.stack([first, second]).float()


class FrameFeatures(nn.Module):
    """wav [B, T] -> features [B, n_features, T / hop].

    Args:
        kind: "mfcc" (n_mfcc cepstra of the dB mel spectrum) or "logmel" (the dB mel spectrum itself).
        sample_rate: Hz of the input.
        hop: samples per frame.
        n_mels: mel bands (40 for MFCCs, as HTK and Kaldi use).
        n_mfcc: cepstra kept (kind "mfcc" only).
        window_seconds: analysis window (25 ms); the FFT size is the next power of two.
        deltas: append Δ and ΔΔ (Savitzky–Golay, width 9), tripling n_features.
        top_db: floor the dB spectrum at its maximum over each utterance minus top_db (librosa's
            ``power_to_db(top_db=80)``); None floors at −100 dB only, so a frame does not depend on the
            rest of the utterance (what a model's front end needs: crops and chunks then agree).
    """

    def __init__(self, kind: str, sample_rate: int, hop: int, n_mels: int = 40, n_mfcc: int = 13,
                 window_seconds: float = 0.025, deltas: bool = False, top_db: float | None = None):
        super().__init__()
        import torchaudio

        if kind not in KINDS:
            raise ValueError(f"frontend kind must be one of {', '.join(KINDS)}, got {kind!r}")
        self.kind = kind
        self.hop = hop
        self.win_length = round(window_seconds * sample_rate)
        self.n_fft = 2 ** math.ceil(math.log2(self.win_length))
        self.top_db = top_db
        self.deltas = deltas
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate, n_fft=self.n_fft, win_length=self.win_length, hop_length=hop,
            f_min=0.0, f_max=sample_rate / 2, n_mels=n_mels, center=False, power=2.0, norm="slaney",
            mel_scale="slaney")
        if kind == "mfcc":
            dct = torchaudio.functional.create_dct(n_mfcc, n_mels, norm="ortho")  # [n_mels, n_mfcc]
            self.register_buffer("dct", dct.T.contiguous(), persistent=False)
        else:
            self.dct = None
        self.register_buffer("delta_kernels", savgol_delta_kernels()[:, None, :], persistent=False)
        static = n_mfcc if kind == "mfcc" else n_mels
        self.n_features = static * (3 if deltas else 1)

    @property
    def receptive_field(self) -> int:
        """Input samples one frame depends on: the FFT window, widened by the delta filters."""
        extra = 2 * (DELTA_WIDTH // 2) * 2 * self.hop if self.deltas else 0
        return self.n_fft + extra

    def forward(self, wav: Tensor) -> Tensor:
        """wav: Tensor[B, T], T a multiple of hop -> Tensor[B, n_features, T / hop] (float32)."""
        frames = wav.shape[-1] // self.hop
        side = (self.n_fft - self.hop) // 2
        x = F.pad(wav.float(), (side, self.n_fft - self.hop - side))
        with torch.autocast(device_type=wav.device.type, enabled=False):
            power = self.mel(x)[..., :frames]  # [B, n_mels, F]
            db = 10.0 * torch.log10(power.clamp(min=1e-10))
            if self.top_db is not None:
                db = torch.maximum(db, db.amax(dim=(-2, -1), keepdim=True) - self.top_db)
            feats = db if self.dct is None else torch.einsum("cm,bmf->bcf", self.dct, db)
            if self.deltas:
                feats = torch.cat([feats, *self._deltas(feats)], dim=1)
        return feats

    def _deltas(self, feats: Tensor) -> tuple[Tensor, Tensor]:
        """Δ and ΔΔ of feats [B, C, F] along frames, edges repeated (librosa's mode="nearest")."""
        batch, channels, frames = feats.shape
        half = DELTA_WIDTH // 2
        flat = F.pad(feats.reshape(batch * channels, 1, frames), (half, half), mode="replicate")
        both = F.conv1d(flat, self.delta_kernels)  # [B·C, 2, F]
        both = both.view(batch, channels, 2, frames)
        return both[:, :, 0], both[:, :, 1]
