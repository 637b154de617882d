"""Training data: a split's audio loaded once at the model rate, and random crops drawn from it.

Crop i of a run depends only on (seed, i): the batch at step s is items s·B … (s+1)·B − 1, so a resumed
run sees exactly the batches an uninterrupted run would, whatever the number of loader workers.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from vqspeech.data.audio import AudioError, load_audio
from vqspeech.data.corpus import Utterance

log = logging.getLogger(__name__)


@dataclass
class LoadedSplit:
    """Audio of one split, mono float32 at the model rate, with each utterance's speaker index."""

    utterances: list[Utterance]
    waves: list[np.ndarray]                 # [T_i] each
    speaker_ids: list[int]
    skipped: list[str] = field(default_factory=list)  # one line per file left out, saying why

    @property
    def samples(self) -> int:
        return sum(len(w) for w in self.waves)


def load_split(utterances: Sequence[Utterance], speakers: Sequence[str], sample_rate: int,
               progress: bool = True, desc: str = "load audio") -> LoadedSplit:
    """Read every utterance whose speaker is in ``speakers``; unreadable files are skipped with a warning."""
    index = {name: i for i, name in enumerate(speakers)}
    kept, waves, ids, skipped = [], [], [], []
    for utt in tqdm(utterances, desc=desc, unit="file", disable=not progress, leave=False):
        if utt.speaker not in index:
            continue
        try:
            wav = load_audio(utt.path, sample_rate)
        except AudioError as exc:
            log.warning("%s; skipped", exc)
            skipped.append(str(exc))
            continue
        kept.append(utt)
        waves.append(wav)
        ids.append(index[utt.speaker])
    return LoadedSplit(utterances=kept, waves=waves, speaker_ids=ids, skipped=skipped)


class RandomCrops(Dataset):
    """Item i: a crop of ``crop`` samples at a position drawn uniformly over all audio, seeded by (seed, i).

    Utterances shorter than the crop are zero-padded on the right.
    Returns (wav Tensor[1, crop], speaker_id LongTensor[]).
    """

    def __init__(self, split: LoadedSplit, crop: int, seed: int):
        if not split.waves:
            raise ValueError("no audio to crop from")
        self.waves = split.waves
        self.speaker_ids = split.speaker_ids
        self.crop = crop
        self.seed = seed
        self.ends = np.cumsum([len(w) for w in self.waves])

    def __len__(self) -> int:
        return 2 ** 62

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, i])
        u = int(np.searchsorted(self.ends, rng.integers(self.ends[-1]), side="right"))
        wav = self.waves[u]
        if len(wav) >= self.crop:
            start = int(rng.integers(len(wav) - self.crop + 1))
            piece = wav[start:start + self.crop]
        else:
            piece = np.pad(wav, (0, self.crop - len(wav)))
        return torch.from_numpy(np.ascontiguousarray(piece))[None], torch.tensor(self.speaker_ids[u])


def crop_loader(dataset: RandomCrops, batch_size: int, start_step: int, num_workers: int,
                pin_memory: bool) -> DataLoader:
    """Batches for steps start_step, start_step + 1, … (items in order: see the module docstring)."""
    sampler = range(start_step * batch_size, 2 ** 62)
    # the loader's own generator: starting its iterator must not draw from the global RNG, which a
    # resumed run has just restored
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      pin_memory=pin_memory, generator=torch.Generator().manual_seed(dataset.seed))
