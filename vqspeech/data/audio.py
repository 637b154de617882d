"""Audio in and out, the one place for it: reading any file soundfile reads, downmixing, resampling to
the model rate, μ-law companding, loudness matching, and writing wavs whole (through :mod:`vqspeech.files`).

Training, conversion, reconstruction and evaluation all read audio through :func:`load_audio`, so a
waveform seen at training time and at conversion time went through exactly the same steps.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from vqspeech.errors import UserError
from vqspeech.files import atomic_target

MU_LAW_CHANNELS = 256
SILENCE_PEAK = 1e-4  # audio whose peak is below this holds nothing to encode (or to score against)


class AudioError(UserError):
    """A file that cannot be used as audio; the message names the file and the reason."""


def load_audio(path: str | os.PathLike, sample_rate: int) -> np.ndarray:
    """Read an audio file as mono float32 in [-1, 1] at ``sample_rate``.

    Any format and sample rate soundfile reads is accepted; several channels are averaged.

    Returns:
        wav: float32 array [T].
    Raises:
        AudioError: unreadable, empty, or non-finite audio (one line, naming the file).
    """
    path = Path(path)
    try:
        wav, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises several types for broken files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AudioError(f"{path}: cannot read audio ({reason})") from None
    if wav.shape[0] == 0:
        raise AudioError(f"{path}: the file holds no samples")
    if not np.isfinite(wav).all():
        raise AudioError(f"{path}: the audio holds NaN or infinite samples")
    wav = wav.mean(axis=1)
    if sr != sample_rate:
        wav = resample(wav, sr, sample_rate)
    return np.clip(wav, -1.0, 1.0).astype(np.float32, copy=False)


def resample(wav: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Band-limited resampling: soxr at its high quality (what librosa.resample does by default, without
    librosa's 1–2.5 s import). wav: [T] -> [T * target_sr / orig_sr]."""
    import soxr

    if orig_sr == target_sr:
        return np.asarray(wav, dtype=np.float32)
    out = soxr.resample(np.asarray(wav), orig_sr, target_sr, quality="HQ").astype(np.float32)
    length = int(np.ceil(len(wav) * target_sr / orig_sr))  # librosa's length: ⌈T · ratio⌉
    return out[:length] if len(out) >= length else np.pad(out, (0, length - len(out)))


def save_audio(path: str | os.PathLike, wav: np.ndarray | torch.Tensor, sample_rate: int,
               overwrite: bool = False) -> Path:
    """Write a 16-bit PCM wav, whole or not at all (temp file + rename).

    Args:
        wav: [T] float samples in [-1, 1].
        overwrite: replace an existing file; without it an existing file is an error.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise UserError(f"{path} already exists; pass --overwrite to replace it")
    if isinstance(wav, torch.Tensor):
        wav = wav.detach().cpu().float().numpy()
    wav = np.clip(np.asarray(wav, dtype=np.float32).reshape(-1), -1.0, 1.0)
    with atomic_target(path) as tmp:
        sf.write(tmp, wav, sample_rate, subtype="PCM_16", format="WAV")
    return path


BLOCK_SECONDS, BLOCK_STEP = 0.4, 0.25  # BS.1770's gating blocks: 400 ms, every 100 ms


def loudness(wav: np.ndarray, sample_rate: int) -> float | None:
    """Integrated loudness of wav [T] in LUFS (ITU-R BS.1770-4: K-weighting, 400 ms blocks every 100 ms,
    gated at −70 LUFS and 10 LU below the ungated mean); None when it is shorter than one block or gated to
    silence. pyloudnorm's meter, computed here in torch (its import of scipy.signal alone costs 1–2 s of a
    command's start-up); tests/data/test_audio.py holds the two to the same value."""
    if len(wav) < int(BLOCK_SECONDS * sample_rate):
        return None
    import torchaudio

    x = torch.from_numpy(np.asarray(wav, dtype=np.float64))
    for b, a in (_biquad("high_shelf", 4.0, 2 ** -0.5, 1500.0, sample_rate),
                 _biquad("high_pass", 0.0, 0.5, 38.0, sample_rate)):
        x = torchaudio.functional.lfilter(x, torch.tensor(a), torch.tensor(b), clamp=False)
    power = np.concatenate([[0.0], np.cumsum(x.numpy() ** 2)])
    blocks = np.arange(int(np.round((len(wav) / sample_rate - BLOCK_SECONDS) / (BLOCK_SECONDS * BLOCK_STEP))) + 1)
    lower = (BLOCK_SECONDS * (blocks * BLOCK_STEP) * sample_rate).astype(int)
    upper = np.minimum((BLOCK_SECONDS * (blocks * BLOCK_STEP + 1) * sample_rate).astype(int), len(wav))
    z = (power[upper] - power[lower]) / (BLOCK_SECONDS * sample_rate)  # mean square of each block
    with np.errstate(divide="ignore", invalid="ignore"):
        block_lufs = -0.691 + 10 * np.log10(z)
        gated = z[block_lufs >= -70.0]
        relative = -0.691 + 10 * np.log10(gated.mean()) - 10 if len(gated) else np.inf
        kept = z[(block_lufs > relative) & (block_lufs > -70.0)]
        value = -0.691 + 10 * np.log10(kept.mean()) if len(kept) else -np.inf
    return float(value) if np.isfinite(value) else None


def _biquad(kind: str, gain_db: float, q: float, fc: float, rate: int) -> tuple[list[float], list[float]]:
    """(b, a) of an RBJ-cookbook biquad, normalised by a0: BS.1770's high shelf and high-pass at ``rate``."""
    big_a, w0 = 10 ** (gain_db / 40), 2 * np.pi * fc / rate
    alpha, cos = np.sin(w0) / (2 * q), np.cos(w0)
    if kind == "high_shelf":
        root = 2 * np.sqrt(big_a) * alpha
        b = [big_a * ((big_a + 1) + (big_a - 1) * cos + root), -2 * big_a * ((big_a - 1) + (big_a + 1) * cos),
             big_a * ((big_a + 1) + (big_a - 1) * cos - root)]
        a = [(big_a + 1) - (big_a - 1) * cos + root, 2 * ((big_a - 1) - (big_a + 1) * cos),
             (big_a + 1) - (big_a - 1) * cos - root]
    else:  # high_pass
        b = [(1 + cos) / 2, -(1 + cos), (1 + cos) / 2]
        a = [1 + alpha, -2 * cos, 1 - alpha]
    return [v / a[0] for v in b], [v / a[0] for v in a]


def match_loudness(audio: np.ndarray, reference: np.ndarray, sample_rate: int) -> np.ndarray:
    """Scale audio [T] to the integrated loudness of reference [T] (:func:`loudness`; RMS when either is
    too short for the meter or gated to silence), peak-limited to 0.99."""
    target, current = loudness(reference, sample_rate), loudness(audio, sample_rate)
    if target is not None and current is not None:
        gain = 10 ** ((target - current) / 20)
    else:
        gain = np.sqrt((reference ** 2).mean() / max((audio ** 2).mean(), 1e-12))
    return _limit(audio * gain)


def normalize_loudness(wav: np.ndarray, sample_rate: int, lufs: float | None) -> np.ndarray:
    """wav [T] scaled to ``lufs`` integrated loudness (None: returned as it is), peak-limited to 0.99.

    Quiet recordings get few of the 256 levels of 8-bit μ-law; the model's input level
    (``model.loudness_lufs``) puts every utterance at one level before encoding. Audio too short for the
    meter is scaled to an RMS of ``lufs`` dBFS (near its loudness, for speech).
    """
    if lufs is None:
        return wav
    current = loudness(wav, sample_rate)
    if current is not None:
        gain = 10 ** ((lufs - current) / 20)
    else:
        rms = float(np.sqrt((wav.astype(np.float64) ** 2).mean()))
        gain = 10 ** (lufs / 20) / rms if rms > 0 else 1.0
    return _limit(wav * gain).astype(np.float32)


def _limit(wav: np.ndarray, peak: float = 0.99) -> np.ndarray:
    top = np.abs(wav).max() if wav.size else 0.0
    return wav * (peak / top) if top > peak else wav


def mu_law_compand(wav: torch.Tensor, channels: int = MU_LAW_CHANNELS) -> torch.Tensor:
    """Continuous μ-law companding, sign(x)·ln(1 + μ|x|)/ln(1 + μ). wav: float [...] in [-1, 1] -> same."""
    mu = channels - 1
    wav = wav.clamp(-1.0, 1.0)
    return torch.sign(wav) * torch.log1p(mu * wav.abs()) / np.log1p(mu)


def pre_emphasis(wav: torch.Tensor, coefficient: float) -> torch.Tensor:
    """y[t] = x[t] − α·x[t−1] along the last axis (x[−1] = 0): a first-order high-pass that flattens the speech
    spectrum before μ-law, so the 8-bit noise lies under the speech spectrum after :func:`de_emphasis`
    (as in LPCNet and FFTNet). wav: float [..., T] -> same."""
    if coefficient == 0:
        return wav
    return torch.cat([wav[..., :1], wav[..., 1:] - coefficient * wav[..., :-1]], dim=-1)


def de_emphasis(wav: torch.Tensor, coefficient: float) -> torch.Tensor:
    """The inverse of :func:`pre_emphasis`, the IIR x[t] = y[t] + α·x[t−1] (computed in float64 on the CPU,
    returned on wav's device and dtype). wav: float [..., T] -> same."""
    if coefficient == 0:
        return wav
    from scipy.signal import lfilter

    out = lfilter([1.0], [1.0, -coefficient], wav.detach().double().cpu().numpy(), axis=-1)
    return torch.from_numpy(out).to(device=wav.device, dtype=wav.dtype)


def mu_law_encode(wav: torch.Tensor, channels: int = MU_LAW_CHANNELS) -> torch.Tensor:
    """μ-law compand and quantise. wav: float [...] in [-1, 1] -> long [...] in [0, channels - 1]."""
    mu = channels - 1
    y = mu_law_compand(torch.nan_to_num(wav, nan=0.0), channels)  # NaN would cast to an arbitrary index
    return ((y + 1) / 2 * mu + 0.5).floor().clamp(0, mu).long()


MU_LAW_SILENCE = int(mu_law_encode(torch.zeros(())))  # the 8-bit μ-law level of 0.0: what a WaveNet starts from


def mu_law_decode(codes: torch.Tensor, channels: int = MU_LAW_CHANNELS) -> torch.Tensor:
    """Inverse of :func:`mu_law_encode`. codes: long [...] in [0, channels - 1] -> float [...] in [-1, 1]."""
    mu = channels - 1
    y = 2 * codes.float() / mu - 1
    return torch.sign(y) * torch.expm1(y.abs() * np.log1p(mu)) / mu
