"""Reference codecs for the reconstruction report: Codec2 at low bitrates and plain μ-law PCM.

Each baseline takes a waveform at the model rate and returns it coded and decoded, at the model rate and
of the input's length, with the bitrate it spent:

* **Codec2** (the Debian package ``codec2``'s ``c2enc``/``c2dec``): the input is resampled to 8 kHz,
  written as headerless 16-bit raw, encoded at a mode (1300, 2400, 3200 bit/s …), decoded, read back
  and resampled to the model rate. Codec2 delays its output (about 18 ms) and, being parametric, does
  not keep the waveform's phase: the delay is estimated from the energy envelopes of input and output
  (1 ms resolution, at most 40 ms) and the output advanced by it, so that frame-based metrics (STOI,
  log-mel) compare the same instants. The bitstream's size gives the measured rate, slightly above the
  nominal one at 1300 bit/s, whose 52-bit frames are stored in 7 bytes.
* **μ-law**: quantisation to 2^bits μ-law levels and back (:mod:`vqspeech.data.audio`), bits · sr bit/s.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vqspeech.data.audio import mu_law_decode, mu_law_encode, resample
from vqspeech.errors import UserError

CODEC2_RATE = 8000
CODEC2_MODES = (1300, 2400, 3200)
MAX_DELAY_SECONDS = 0.04
FRAME_SAMPLES = 320  # 40 ms at 8 kHz: a whole number of frames in every mode


@dataclass
class Coded:
    """A baseline's output. audio: float32 [T] at the model rate, T the input's length."""

    audio: np.ndarray
    bitrate: float           # nominal bit/s
    measured_bitrate: float  # bitstream size ÷ duration coded (the input, padded to whole frames)
    delay: int = 0           # samples the output was advanced by


def codec2_tools() -> tuple[str, str]:
    """Paths of c2enc and c2dec; UserError naming the Debian package when either is missing."""
    found = []
    for tool in ("c2enc", "c2dec"):
        path = shutil.which(tool)
        if path is None:
            raise UserError(f"{tool} not found: install the Debian package 'codec2' (apt-get install codec2)")
        found.append(path)
    return found[0], found[1]


def codec2(wav: np.ndarray, sample_rate: int, mode: int) -> Coded:
    """Code wav [T] (at ``sample_rate``) with Codec2 at ``mode`` bit/s and decode it."""
    c2enc, c2dec = codec2_tools()
    narrow = resample(wav, sample_rate, CODEC2_RATE) if sample_rate != CODEC2_RATE else wav
    # whole 40 ms frames (c2enc drops a partial one), with room for the delay: the end of the input is coded
    padding = -(len(narrow) + int(MAX_DELAY_SECONDS * CODEC2_RATE)) % FRAME_SAMPLES
    narrow = np.pad(narrow, (0, int(MAX_DELAY_SECONDS * CODEC2_RATE) + padding))
    pcm = (np.clip(narrow, -1.0, 1.0) * 32767).round().astype("<i2")
    with tempfile.TemporaryDirectory(prefix="vqspeech-codec2-") as tmp:
        raw_in, bits, raw_out = Path(tmp, "in.raw"), Path(tmp, "out.bit"), Path(tmp, "out.raw")
        pcm.tofile(raw_in)
        _run([c2enc, str(mode), str(raw_in), str(bits)])
        _run([c2dec, str(mode), str(bits), str(raw_out)])
        n_bytes = bits.stat().st_size
        decoded = np.fromfile(raw_out, dtype="<i2").astype(np.float32) / 32768
    audio = resample(decoded, CODEC2_RATE, sample_rate) if sample_rate != CODEC2_RATE else decoded
    delay = envelope_delay(wav, audio, sample_rate)
    return Coded(audio=_fit(audio[delay:], len(wav)), bitrate=float(mode),
                 measured_bitrate=8 * n_bytes / (len(pcm) / CODEC2_RATE), delay=delay)


def envelope_delay(reference: np.ndarray, delayed: np.ndarray, sample_rate: int,
                   max_seconds: float = MAX_DELAY_SECONDS) -> int:
    """Samples by which delayed [T'] lags reference [T]: the lag (a multiple of 1 ms, ≤ max_seconds) that
    best correlates their log-energy envelopes (16 ms windows). 0 for input too short to tell."""
    step, window = max(1, sample_rate // 1000), max(1, sample_rate // 62)
    max_lag = int(max_seconds * sample_rate) // step

    def envelope(x: np.ndarray) -> np.ndarray:
        energy = np.convolve(x.astype(np.float64) ** 2, np.ones(window) / window, "same")[::step]
        return np.log(np.maximum(energy, 1e-6 * energy.max() + 1e-12))  # 60 dB below the peak at most

    ref, out = envelope(reference), envelope(delayed)
    span = min(len(ref), len(out) - max_lag)
    if span < 4 * max_lag:
        return 0
    ref = ref[:span] - ref[:span].mean()

    def correlation(lag: int) -> float:
        piece = out[lag:lag + span] - out[lag:lag + span].mean()
        return float(np.dot(ref, piece) / max(np.linalg.norm(ref) * np.linalg.norm(piece), 1e-12))

    return int(np.argmax([correlation(lag) for lag in range(max_lag + 1)])) * step


def mu_law(wav: np.ndarray, sample_rate: int, bits: int) -> Coded:
    """Quantise wav [T] to 2^bits μ-law levels (μ = 2^bits − 1) and back."""
    channels = 2 ** bits
    coded = mu_law_decode(mu_law_encode(torch.from_numpy(np.ascontiguousarray(wav)), channels), channels)
    rate = float(bits * sample_rate)
    return Coded(audio=coded.numpy().astype(np.float32), bitrate=rate, measured_bitrate=rate)


def _run(command: list[str]) -> None:
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        reason = (proc.stderr or proc.stdout).strip().splitlines()
        raise RuntimeError(f"{' '.join(command)} failed (exit {proc.returncode}): "
                           f"{reason[-1] if reason else 'no message'}")


def _fit(audio: np.ndarray, length: int) -> np.ndarray:
    """Trim or zero-pad [T'] to [length]: Codec2 codes whole frames, resampling may round."""
    return np.pad(audio[:length], (0, max(0, length - len(audio)))).astype(np.float32)
