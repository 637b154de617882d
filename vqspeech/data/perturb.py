"""Information perturbation: voice-randomised copies of the training audio, for the encoder to read.

The content encoder sees a crop whose voice was changed at random, while the decoder must rebuild the
original crop from the codes and the original speaker's vector (NANSY, Choi et al. 2021; ContentVec, Qian
et al. 2022). What the perturbation changes (formants, pitch register and range, the spectral tilt) then
cannot help the decoder through the codes, so the codes stop carrying it.

Two parts, with ContentVec's ranges:
  * **The bank** (costly, built once): per training utterance, ``variants`` resyntheses through the WORLD
    vocoder (pyworld, MIT-licensed; Praat's "Change gender" through parselmouth is GPL-3.0, which an MIT
    package cannot ship). Each variant warps the spectral envelope along frequency by a formant ratio
    U(1, 1.4), moves the median F0 by a ratio U(1, 2) and scales the log-F0 range around it by U(1, 1.5),
    each ratio inverted with probability 0.5. Time is untouched, so a variant's samples align with the
    original's. Cached in ``<corpus root>/perturbation/<bank id>/``, one file per utterance named by its
    file's path, size and modification time: a changed file gets new variants, the others are reused, and a
    build that was stopped resumes where it was.
  * **The EQ** (cheap, per crop, seeded like the crop): a low shelf at 60 Hz, 8 peaks log-spaced between and
    a high shelf at 7,600 Hz, each ±12 dB at random (:func:`random_eq`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vqspeech.files import atomic_target

log = logging.getLogger(__name__)

CACHE_FOLDER = "perturbation"
F0_FLOOR, F0_CEIL = 50.0, 800.0  # wider than the pitch stream's tracker: the analysis must not lose high voices


@dataclass(frozen=True)
class PerturbConfig:
    """``model.perturb``: variants 0 is off. Ratios are maxima: each draw is U(1, max), inverted w.p. 0.5."""

    variants: int = 0
    formant: float = 1.4
    pitch_median: float = 2.0
    pitch_range: float = 1.5
    eq_gain_db: float = 12.0   # 0: no EQ
    seed: int = 0

    def __post_init__(self):
        if self.variants < 0:
            raise ValueError(f"model.perturb.variants must be 0 (off) or the number of variants per utterance, "
                             f"got {self.variants}")
        for name in ("formant", "pitch_median", "pitch_range"):
            if getattr(self, name) < 1.0:
                raise ValueError(f"model.perturb.{name} is a largest ratio and must be at least 1, "
                                 f"got {getattr(self, name)}")
        if self.eq_gain_db < 0:
            raise ValueError(f"model.perturb.eq_gain_db must be ≥ 0, got {self.eq_gain_db}")

    @classmethod
    def from_config(cls, spec) -> PerturbConfig:
        """From ``model.perturb`` (a mapping, or None/absent: off)."""
        if not spec:
            return cls()
        unknown = set(spec) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"model.perturb has no option {', '.join(sorted(unknown))}; it takes "
                             f"{', '.join(cls.__dataclass_fields__)}")
        return cls(**dict(spec))

    @property
    def enabled(self) -> bool:
        return self.variants > 0

    def bank_id(self, sample_rate: int, loudness_lufs: float | None) -> str:
        """Names the bank's folder: everything its contents depend on."""
        from vqspeech.data.pitch import pyworld

        level = "asis" if loudness_lufs is None else f"{loudness_lufs:g}lufs"
        return (f"world{getattr(pyworld(), '__version__', '')}-v{self.variants}-f{self.formant:g}-"
                f"pm{self.pitch_median:g}-pr{self.pitch_range:g}-seed{self.seed}-{sample_rate}hz-{level}")


def _ratio(rng: np.random.Generator, largest: float) -> float:
    r = float(rng.uniform(1.0, largest))
    return 1.0 / r if rng.random() < 0.5 else r


def warp_envelope(envelope: np.ndarray, ratio: float) -> np.ndarray:
    """envelope float64 [N, K] (a spectral envelope per frame over K bins up to Nyquist) -> the same with its
    frequency axis scaled by ratio: out(f) = envelope(f / ratio), so formants move up by ``ratio``; bins past
    the top take the top bin's value."""
    bins = envelope.shape[1]
    source = np.minimum(np.arange(bins) / ratio, bins - 1)
    low = np.floor(source).astype(np.int64)
    high = np.minimum(low + 1, bins - 1)
    frac = source - low
    return envelope[:, low] * (1.0 - frac) + envelope[:, high] * frac


def shift_pitch(f0: np.ndarray, median_ratio: float, range_ratio: float) -> np.ndarray:
    """f0 float64 [N] in Hz (0 where unvoiced) -> the voiced frames' log-F0 moved by log(median_ratio) and
    scaled by range_ratio around their median; unvoiced frames stay 0."""
    voiced = f0 > 0
    if not voiced.any():
        return f0.copy()
    log_median = np.log(np.median(f0[voiced]))
    out = np.zeros_like(f0)
    out[voiced] = np.exp(log_median + np.log(median_ratio) + range_ratio * (np.log(f0[voiced]) - log_median))
    return out


def world_variants(wav: np.ndarray, sample_rate: int, config: PerturbConfig, rng: np.random.Generator) -> np.ndarray:
    """wav float32 [T] -> config.variants voice-randomised resyntheses int16 [V, T] at the input's RMS level.

    The WORLD analysis (DIO + StoneMask F0, CheapTrick envelope, D4C aperiodicity) runs once; each variant
    draws its own formant, median and range ratios from ``rng``."""
    from vqspeech.data.dataset import as_pcm16
    from vqspeech.data.pitch import PERIOD_MS
    from vqspeech.data.pitch import pyworld as world

    pyworld = world()
    x = wav.astype(np.float64)
    out = np.zeros((config.variants, len(x)), dtype=np.int16)
    rms = float(np.sqrt(np.mean(x ** 2))) if len(x) else 0.0
    if len(x) < sample_rate * PERIOD_MS / 1000 * 4 or rms == 0.0:  # too short or silent to analyse
        out[:] = as_pcm16(x)
        return out
    f0, times = pyworld.dio(x, sample_rate, f0_floor=F0_FLOOR, f0_ceil=F0_CEIL, frame_period=PERIOD_MS)
    f0 = pyworld.stonemask(x, f0, times, sample_rate)
    envelope = pyworld.cheaptrick(x, f0, times, sample_rate)
    aperiodicity = pyworld.d4c(x, f0, times, sample_rate)
    for v in range(config.variants):
        formant, median, spread = (_ratio(rng, config.formant), _ratio(rng, config.pitch_median),
                                   _ratio(rng, config.pitch_range))
        y = pyworld.synthesize(np.ascontiguousarray(shift_pitch(f0, median, spread)),
                               np.ascontiguousarray(warp_envelope(envelope, formant)), aperiodicity, sample_rate,
                               PERIOD_MS)[:len(x)]
        y = np.pad(y, (0, len(x) - len(y)))
        level = float(np.sqrt(np.mean(y ** 2)))
        y = y * (rms / level) if level > 0 else y
        out[v] = as_pcm16(y)
    return out


def _entry_name(file: str | os.PathLike, part: str) -> str:
    stat = os.stat(file)
    key = f"{Path(file).resolve()}{part}|{stat.st_size}|{stat.st_mtime_ns}"
    return hashlib.sha1(key.encode()).hexdigest()[:20] + ".npy"


def _build_one(job: tuple[str, np.ndarray, int, PerturbConfig, int]) -> str:
    target, wav, sample_rate, config, index_seed = job
    from vqspeech.data.dataset import as_float

    variants = world_variants(as_float(wav), sample_rate, config, np.random.default_rng([config.seed, index_seed]))
    with atomic_target(target) as tmp, open(tmp, "wb") as f:
        np.save(f, variants)
    return target


@dataclass
class Bank:
    """The variants of each training utterance: int16 [V, T_i] per utterance (memory-mapped), and what
    building it cost: ``built`` utterances this time, in ``seconds``, ``bytes`` on disk in all."""

    variants: list[np.ndarray]
    folder: Path
    built: int
    seconds: float
    bytes: int


def cached_bank(config: PerturbConfig, keys: Sequence[tuple[str | os.PathLike, str]], waves: Sequence[np.ndarray],
                sample_rate: int, loudness_lufs: float | None, cache_root: Path, progress: bool = False,
                workers: int | None = None) -> Bank:
    """Each wave's variants, built where missing (in ``workers`` processes, default one per CPU core) and
    reused where current (see the module docstring).

    Args:
        keys: per wave, the file it was read from and the part of it taken ("" for the whole file).
        waves: float32 or int16 [T_i], at ``sample_rate`` and at the model's input level.
    """
    from tqdm import tqdm

    folder = cache_root / CACHE_FOLDER / config.bank_id(sample_rate, loudness_lufs)
    targets = [folder / _entry_name(file, part) for file, part in keys]
    missing = [i for i, t in enumerate(targets) if not t.is_file()]
    started = time.monotonic()
    if missing:
        folder.mkdir(parents=True, exist_ok=True)
        jobs = [(str(targets[i]), waves[i], sample_rate, config, int.from_bytes(targets[i].stem[:8].encode(), "big"))
                for i in missing]
        workers = workers or min(len(jobs), os.cpu_count() or 1)
        bar = tqdm(total=len(jobs), desc="perturbation bank", unit="file", disable=not progress, leave=False)
        if workers > 1:
            import multiprocessing

            with multiprocessing.get_context("spawn").Pool(workers) as pool:
                for _ in pool.imap_unordered(_build_one, jobs, chunksize=1):
                    bar.update()
        else:
            for job in jobs:
                _build_one(job)
                bar.update()
        bar.close()
    seconds = time.monotonic() - started
    variants = [np.load(t, mmap_mode="r") for t in targets]
    for wav, v, target in zip(waves, variants, targets):
        if v.shape != (config.variants, len(wav)):
            raise ValueError(f"{target} holds variants of shape {v.shape}, not ({config.variants}, {len(wav)}); "
                             f"delete it to rebuild")
    size = sum(t.stat().st_size for t in targets)
    if missing:
        log.info("perturbation bank: %d utterances built in %.1f s, %d reused; %.1f MB in %s", len(missing), seconds,
                 len(targets) - len(missing), size / 1e6, folder)
    return Bank(variants=variants, folder=folder, built=len(missing), seconds=seconds, bytes=size)


def _biquad(kind: str, freq: float, gain_db: float, q: float, sample_rate: int) -> np.ndarray:
    """One second-order section [6] (b0 b1 b2 1 a1 a2) from the Audio EQ Cookbook (R. Bristow-Johnson)."""
    a = 10.0 ** (gain_db / 40.0)
    w = 2.0 * np.pi * freq / sample_rate
    cos, alpha = np.cos(w), np.sin(w) / (2.0 * q)
    if kind == "peak":
        b = [1 + alpha * a, -2 * cos, 1 - alpha * a]
        den = [1 + alpha / a, -2 * cos, 1 - alpha / a]
    else:
        root = 2.0 * np.sqrt(a) * alpha
        sign = 1.0 if kind == "low" else -1.0  # the high shelf is the low shelf with cos's sign flipped
        b = [a * ((a + 1) - sign * (a - 1) * cos + root), sign * 2 * a * ((a - 1) - sign * (a + 1) * cos),
             a * ((a + 1) - sign * (a - 1) * cos - root)]
        den = [(a + 1) + sign * (a - 1) * cos + root, -sign * 2 * ((a - 1) + sign * (a + 1) * cos),
               (a + 1) + sign * (a - 1) * cos - root]
    return np.array([*(np.array(b) / den[0]), 1.0, den[1] / den[0], den[2] / den[0]])


def eq_sections(rng: np.random.Generator, gain_db: float, sample_rate: int) -> np.ndarray:
    """The 10 sections [10, 6] of one random EQ: a low shelf at 60 Hz, 8 peaks log-spaced strictly between
    60 and 7,600 Hz (Q ~ U(2, 5)), a high shelf at 7,600 Hz (both shelves Q = 1/√2), gains U(−g, g) dB.
    Frequencies above 0.45 × the sample rate are held there."""
    centres = np.geomspace(60.0, 7600.0, 10)
    gains = rng.uniform(-gain_db, gain_db, size=10)
    qs = rng.uniform(2.0, 5.0, size=10)
    top = 0.45 * sample_rate
    kinds = ["low"] + ["peak"] * 8 + ["high"]
    return np.stack([_biquad(k, min(f, top), g, (np.sqrt(0.5) if k != "peak" else q), sample_rate)
                     for k, f, g, q in zip(kinds, centres, gains, qs)])


def random_eq(wav: np.ndarray, rng: np.random.Generator, gain_db: float, sample_rate: int) -> np.ndarray:
    """wav float32 [T] through one random EQ (:func:`eq_sections`), float32 [T] clipped to [-1, 1]."""
    from scipy.signal import sosfilt

    if gain_db == 0:
        return wav
    return np.clip(sosfilt(eq_sections(rng, gain_db, sample_rate), wav), -1.0, 1.0).astype(np.float32)
