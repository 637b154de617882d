"""Training data: a split's audio loaded once at the model rate, and random crops drawn from it.

Crop i of a run depends only on (seed, i): the batch at step s is items s·B … (s+1)·B − 1, so a resumed
run sees exactly the batches an uninterrupted run would, whatever the number of loader workers. With W
training processes (torchrun), rank r's batch at step s is items (s·W + r)·B … (s·W + r + 1)·B − 1: the
ranks share no crop, and together they read the items W single-process steps would.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm import tqdm

from vqspeech.data.audio import AudioError, load_audio, normalize_loudness
from vqspeech.data.corpus import Utterance

log = logging.getLogger(__name__)


@dataclass
class LoadedSplit:
    """Audio of one split, mono at the model rate, with each utterance's speaker index.

    ``waves`` are float32 in [-1, 1], or 16-bit PCM (int16, full scale 32768) when loaded with ``pcm16``:
    half the memory for a training split, lossless for corpora stored as 16-bit at the model rate (as
    ``vqspeech prepare`` writes them). :func:`as_float` turns either into float32.
    """

    utterances: list[Utterance]
    waves: list[np.ndarray]                 # [T_i] each, float32 or int16
    speaker_ids: list[int]
    skipped: list[str] = field(default_factory=list)  # one line per file left out, saying why

    @property
    def samples(self) -> int:
        return sum(len(w) for w in self.waves)


PCM_SCALE = 32768.0


def as_float(wav: np.ndarray) -> np.ndarray:
    """float32 [T] in [-1, 1] from a float32 or int16 wave [T]."""
    return wav.astype(np.float32) / PCM_SCALE if wav.dtype == np.int16 else wav


def as_pcm16(wav: np.ndarray) -> np.ndarray:
    """int16 [...] (full scale 32768, rounded and clipped) from float audio [...] in [-1, 1]: the inverse of
    :func:`as_float`."""
    return np.clip(np.round(wav * PCM_SCALE), -PCM_SCALE, PCM_SCALE - 1).astype(np.int16)


def load_split(utterances: Sequence[Utterance], speakers: Sequence[str], sample_rate: int,
               progress: bool = True, desc: str = "load audio", pcm16: bool = False,
               loudness_lufs: float | None = None) -> LoadedSplit:
    """Read every utterance (its part of its file) whose speaker is in ``speakers``; unreadable files are
    skipped with a warning. With ``loudness_lufs`` each is scaled to that loudness (the model's input level);
    with ``pcm16`` the waves are kept as int16 (see :class:`LoadedSplit`)."""
    index = {name: i for i, name in enumerate(speakers)}
    kept, waves, ids, skipped = [], [], [], []
    for utt in tqdm(utterances, desc=desc, unit="file", disable=not progress, leave=False):
        if utt.speaker not in index:
            continue
        try:
            wav = normalize_loudness(utt.cut(load_audio(utt.path, sample_rate), sample_rate), sample_rate,
                                     loudness_lufs)
        except AudioError as exc:
            log.warning("%s; skipped", exc)
            skipped.append(str(exc))
            continue
        kept.append(utt)
        waves.append(as_pcm16(wav) if pcm16 else wav)
        ids.append(index[utt.speaker])
    return LoadedSplit(utterances=kept, waves=waves, speaker_ids=ids, skipped=skipped)


def cut(wav: np.ndarray, start: int, size: int) -> np.ndarray:
    """float32 [size]: wav[start:start + size] (float32 or int16), zero-padded at the end."""
    piece = wav[start:start + size]
    return np.ascontiguousarray(as_float(np.pad(piece, (0, size - len(piece)))))


class RandomCrops(Dataset):
    """Item i: a crop of ``crop`` samples at a position drawn uniformly over all audio, seeded by (seed, i).

    Utterances shorter than the crop are zero-padded on the right.
    Returns a dict: "wav" Tensor[1, crop] float32 (whether the split holds float or int16) and "speaker"
    LongTensor[]; with ``segments`` (each utterance's speaker vectors, :mod:`vqspeech.data.speaker_vectors`)
    also "speaker_vector" Tensor[V]: the unit-norm mean of every segment of the speaker that does not
    overlap the crop (the speaker's other utterances whole, and the rest of this one), so the vector is
    never computed from the audio it conditions. A crop with no such segment (a speaker whose one
    utterance is shorter than crop + segment) gets the mean of all the other speakers' segments.
    With ``reference_samples`` R instead (a learned speaker encoder), "speaker_audio" Tensor[1, R]: R samples
    of the speaker drawn (seeded like the crop) from anywhere that does not overlap the crop, in this
    utterance or another of the speaker's; zeros when there is no such place.
    With ``perturbation`` (:class:`CropPerturbation`), "encoder_wav" Tensor[1, crop]: the same samples of one
    of the utterance's voice-randomised variants, drawn at random, through a random EQ
    (:mod:`vqspeech.data.perturb`): what the encoder reads, while "wav" stays the decoder's target.
    With ``pitch`` (:class:`CropPitch`), "f0" Tensor[2, P] (log-F0 and voicing of the crop's P pitch frames,
    :func:`vqspeech.data.pitch.pool`) and "register" Tensor[2], the utterance's.
    """

    def __init__(self, split: LoadedSplit, crop: int, seed: int, segments: Sequence | None = None,
                 reference_samples: int | None = None, perturbation: CropPerturbation | None = None,
                 pitch: CropPitch | None = None):
        if not split.waves:
            raise ValueError("no audio to crop from")
        self.waves = split.waves
        self.speaker_ids = split.speaker_ids
        self.crop = crop
        self.seed = seed
        self.ends = np.cumsum([len(w) for w in self.waves])
        self.segments = segments
        self.reference_samples = reference_samples
        for extra, name in ((perturbation and perturbation.variants, "variants"), (pitch and pitch.tracks, "F0 tracks")):
            if extra is not None and len(extra) != len(self.waves):
                raise ValueError(f"{len(extra)} utterances' {name} for {len(self.waves)} utterances")
        self.perturbation, self.pitch = perturbation, pitch
        self.by_speaker: dict[int, list[int]] = {}
        for u, spk in enumerate(self.speaker_ids):
            self.by_speaker.setdefault(spk, []).append(u)
        if segments is not None:
            if len(segments) != len(self.waves):
                raise ValueError(f"{len(segments)} utterances' speaker vectors for {len(self.waves)} utterances")
            sums = [s.vectors.astype(np.float64).sum(axis=0) for s in segments]
            counts = [len(s.vectors) for s in segments]
            self.speaker_sum: dict[int, np.ndarray] = {}
            self.speaker_count: dict[int, int] = {}
            for spk, total, n in zip(self.speaker_ids, sums, counts):
                self.speaker_sum[spk] = self.speaker_sum.get(spk, 0.0) + total
                self.speaker_count[spk] = self.speaker_count.get(spk, 0) + n
            self.utterance_sum, self.utterance_count = sums, counts
            self.everyone_sum, self.everyone_count = np.sum(sums, axis=0), sum(counts)

    def __len__(self) -> int:
        return 2 ** 62

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, i])
        u = int(np.searchsorted(self.ends, rng.integers(self.ends[-1]), side="right"))
        wav = self.waves[u]
        if len(wav) >= self.crop:
            start = int(rng.integers(len(wav) - self.crop + 1))
        else:
            start = 0
        item = {"wav": torch.from_numpy(cut(wav, start, self.crop))[None], "speaker": torch.tensor(self.speaker_ids[u])}
        if self.reference_samples is not None:
            item["speaker_audio"] = torch.from_numpy(self.reference_audio(u, start, start + self.crop, rng))[None]
        elif self.segments is not None:
            item["speaker_vector"] = torch.from_numpy(self.reference_vector(u, start, start + self.crop))
        if self.perturbation is not None:
            item["encoder_wav"] = torch.from_numpy(self.perturbation.crop(u, start, self.crop, rng))[None]
        if self.pitch is not None:
            item.update(self.pitch.crop(u, start, self.crop))
        return item

    def reference_audio(self, u: int, start: int, end: int, rng: np.random.Generator) -> np.ndarray:
        """float32 [R]: R samples of utterance u's speaker that do not overlap the crop [start, end) of u."""
        size = self.reference_samples
        places = []  # (utterance, first start, last start)
        for v in self.by_speaker[self.speaker_ids[u]]:
            last = len(self.waves[v]) - size
            if v != u:
                places.append((v, 0, last))
            else:
                places += [(u, 0, start - size), (u, end, last)]
        places = [(v, lo, hi) for v, lo, hi in places if hi >= lo]
        if not places:
            return np.zeros(size, dtype=np.float32)
        weights = np.array([hi - lo + 1 for _, lo, hi in places], dtype=np.float64)
        v, lo, hi = places[int(rng.choice(len(places), p=weights / weights.sum()))]
        first = int(rng.integers(lo, hi + 1))
        return np.ascontiguousarray(as_float(self.waves[v][first:first + size]))

    def reference_vector(self, u: int, start: int, end: int) -> np.ndarray:
        """The speaker vector float32 [V] for the crop [start, end) of utterance u (see the class docstring)."""
        spk, own = self.speaker_ids[u], self.segments[u]
        apart = (own.bounds[:, 1] <= start) | (own.bounds[:, 0] >= end)
        total = self.speaker_sum[spk] - self.utterance_sum[u] + own.vectors[apart].astype(np.float64).sum(axis=0)
        count = self.speaker_count[spk] - self.utterance_count[u] + int(apart.sum())
        if not count:  # every segment of the speaker overlaps the crop: all the other speakers' voices
            total = self.everyone_sum - self.speaker_sum[spk]
            count = self.everyone_count - self.speaker_count[spk]
        mean = total / max(count, 1)
        return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)


@dataclass
class CropPerturbation:
    """The voice-randomised variants of every utterance (int16 [V, T_i] each, :mod:`vqspeech.data.perturb`) and
    the EQ applied on top, per crop."""

    variants: Sequence[np.ndarray]
    eq_gain_db: float
    sample_rate: int

    def crop(self, u: int, start: int, size: int, rng: np.random.Generator) -> np.ndarray:
        """float32 [size]: the crop [start, start + size) of a random variant of utterance u, through a random EQ."""
        from vqspeech.data.perturb import random_eq

        bank = self.variants[u]
        piece = cut(np.asarray(bank[int(rng.integers(len(bank)))]), start, size)
        return random_eq(piece, rng, self.eq_gain_db, self.sample_rate)


@dataclass
class CropPitch:
    """Every utterance's F0 track (float32 [N_i], :func:`vqspeech.data.pitch.track`) and register
    (Tensor[2]), pooled per crop to frames of ``hop`` samples."""

    tracks: Sequence[np.ndarray]
    registers: Sequence[torch.Tensor]
    hop: int
    sample_rate: int

    def crop(self, u: int, start: int, size: int) -> dict[str, torch.Tensor]:
        """{"f0": Tensor[2, ⌈size / hop⌉] (log-F0, voicing), "register": Tensor[2]} of the crop [start, start + size) of u."""
        from vqspeech.data.pitch import pool

        log_f0, voiced = pool(self.tracks[u], start, -(-size // self.hop), self.hop, self.sample_rate)
        return {"f0": torch.from_numpy(np.stack([log_f0, voiced.astype(np.float32)])), "register": self.registers[u]}


class StepItems(Sampler[int]):
    """Item indices for rank r of W from step start_step on: (s·W + r)·B … (s·W + r + 1)·B − 1 for
    s = start_step, start_step + 1, … (alone, W = 1: start_step·B, start_step·B + 1, …)."""

    def __init__(self, start_step: int, batch_size: int, rank: int = 0, world_size: int = 1):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside 0..{world_size - 1}")
        self.start_step, self.batch_size, self.rank, self.world_size = start_step, batch_size, rank, world_size

    def __iter__(self):
        step = self.start_step
        while True:
            first = (step * self.world_size + self.rank) * self.batch_size
            yield from range(first, first + self.batch_size)
            step += 1


def crop_loader(dataset: RandomCrops, batch_size: int, start_step: int, num_workers: int,
                pin_memory: bool, rank: int = 0, world_size: int = 1) -> DataLoader:
    """This rank's batches for steps start_step, start_step + 1, … (items: see the module docstring).

    batch_size is per rank: a step trains on world_size × batch_size crops in all.
    """
    sampler = StepItems(start_step, batch_size, rank, world_size)
    # the loader's own generator: starting its iterator must not draw from the global RNG, which a
    # resumed run has just restored
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      pin_memory=pin_memory, generator=torch.Generator().manual_seed(dataset.seed))
