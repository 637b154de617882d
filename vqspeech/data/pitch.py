"""F0 of speech: tracked once per file, cached with the corpus, pooled to any frame rate, and summarised as
a pitch register (the mean and spread of log-F0).

The tracker is WORLD's DIO refined by StoneMask (pyworld, MIT), at 5-ms frames: frame i is at i × 5 ms, F0 in
Hz, 0 where unvoiced. Tracking an hour of audio takes about 20 s on one core; tracks are cached in
``<corpus root>/pitch/<tracker id>.pt`` like the speaker vectors (:mod:`vqspeech.data.file_cache`).

The pitch stream (:mod:`vqspeech.models.pitch`) codes each utterance's log-F0 relative to its register, so the
register is the only part of the pitch that says whose voice it is: conversion swaps it for the target's.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

PERIOD_MS = 5.0
F0_FLOOR, F0_CEIL = 50.0, 600.0
MIN_VOICED_SECONDS = 0.25  # a register needs this much voiced speech
CACHE_FOLDER = "pitch"
TRACKER_ID = f"dio-stonemask-{PERIOD_MS:g}ms-{F0_FLOOR:g}-{F0_CEIL:g}hz"


@dataclass(frozen=True)
class Register:
    """The pitch register of a voice: mean and standard deviation of log-F0 (natural log of Hz) over voiced frames."""

    mean: float
    std: float

    def as_tensor(self) -> torch.Tensor:
        """Tensor[2]: (mean, std)."""
        return torch.tensor([self.mean, self.std], dtype=torch.float32)

    @property
    def hz(self) -> float:
        """The register's geometric-mean F0 in Hz."""
        return float(np.exp(self.mean))


def pyworld():
    """The pyworld module (its import warns that pkg_resources is deprecated; nothing to act on here)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        import pyworld as module
    return module


def track(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """wav float32 [T] -> F0 float32 [N] in Hz at PERIOD_MS frames (0 unvoiced), N = ⌊T / period⌋ + 1."""
    world = pyworld()

    x = np.ascontiguousarray(wav, dtype=np.float64)
    if len(x) < 2:
        return np.zeros(1, dtype=np.float32)
    f0, times = world.dio(x, sample_rate, f0_floor=F0_FLOOR, f0_ceil=F0_CEIL, frame_period=PERIOD_MS)
    return world.stonemask(x, f0, times, sample_rate).astype(np.float32)


def register(f0: np.ndarray, min_voiced_frames: int = 1) -> Register | None:
    """The register of F0 frames f0 [N] (Hz, 0 unvoiced); None with fewer than ``min_voiced_frames`` voiced.
    The spread is at least 0.01 (a flat voice still has a scale to code against)."""
    voiced = np.log(f0[f0 > 0].astype(np.float64))
    if len(voiced) < max(min_voiced_frames, 1):
        return None
    return Register(mean=float(voiced.mean()), std=max(float(voiced.std()), 0.01))


def min_voiced_frames() -> int:
    return int(round(MIN_VOICED_SECONDS * 1000 / PERIOD_MS))


def reference_register(waves: Sequence[np.ndarray], sample_rate: int) -> Register:
    """The register of reference recordings float32 [T_i] together.

    Raises:
        ValueError: less than MIN_VOICED_SECONDS of voiced speech in them (one line saying so).
    """
    f0 = np.concatenate([track(w, sample_rate) for w in waves])
    found = register(f0, min_voiced_frames())
    if found is None:
        voiced = float((f0 > 0).sum()) * PERIOD_MS / 1000
        raise ValueError(f"the reference has {voiced:.2f} s of voiced speech, too little to measure its pitch; "
                         f"give at least {MIN_VOICED_SECONDS:g} s of voiced speech (a longer recording)")
    return found


def pool(f0: np.ndarray, start: int, frames: int, hop: int, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """F0 frames f0 [N] pooled to ``frames`` frames of ``hop`` samples from sample ``start``: frame j takes the
    5-ms frames whose times fall in [start + j·hop, start + (j + 1)·hop).

    Returns:
        (log_f0 float32 [frames], voiced bool [frames]): a frame is voiced when at least half of its 5-ms
        frames are; its log-F0 is their voiced frames' mean (0 where unvoiced). Past the track's end, unvoiced.
    """
    period = sample_rate * PERIOD_MS / 1000
    edges = np.ceil((start + hop * np.arange(frames + 1)) / period).astype(np.int64).clip(0, len(f0))
    is_voiced = f0 > 0
    logs = np.where(is_voiced, np.log(np.where(is_voiced, f0, 1.0)), 0.0)
    count = np.concatenate([[0], np.cumsum(is_voiced)])
    total = np.concatenate([[0.0], np.cumsum(logs)])
    n_voiced = count[edges[1:]] - count[edges[:-1]]
    width = edges[1:] - edges[:-1]
    voiced = (n_voiced > 0) & (2 * n_voiced >= np.maximum(width, 1))
    log_f0 = np.where(voiced, (total[edges[1:]] - total[edges[:-1]]) / np.maximum(n_voiced, 1), 0.0)
    return log_f0.astype(np.float32), voiced


def cached_tracks(keys: Sequence[tuple[str | os.PathLike, str]], waves: Sequence[np.ndarray], sample_rate: int,
                  corpus_root: Path, progress: bool = False) -> list[np.ndarray]:
    """F0 float32 [N_i] of each wave (float32 or int16 [T_i] at ``sample_rate``), from the corpus's cache
    ``<corpus root>/pitch/<TRACKER_ID>-<rate>hz.pt`` where current."""
    from vqspeech.data.dataset import as_float
    from vqspeech.data.file_cache import cached_per_file

    def compute(wav: np.ndarray) -> dict[str, torch.Tensor]:
        return {"f0": torch.from_numpy(track(as_float(wav), sample_rate))}

    path = corpus_root / CACHE_FOLDER / f"{TRACKER_ID}-{sample_rate}hz.pt"
    return [e["f0"].numpy() for e in cached_per_file(path, keys, waves, compute, "F0 tracks", progress)]
