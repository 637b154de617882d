"""The decoder's reconstruction score of a VQ-VAE over a split (WaveNet: teacher-forced cross-entropy in
nats per sample; parallel: its spectral loss): the one score that validation (training) and the report
share."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch
from torch import Tensor
from tqdm import tqdm

from vqspeech.data.dataset import LoadedSplit, as_float
from vqspeech.models.vqvae import VQVAE


@dataclass
class TeacherForcedLoss:
    """Sums over the scored utterances (so that parts scored apart, e.g. by several processes, add up).

    Attributes:
        total: the decoder's score (its ``score_name``) summed over samples, each utterance's weighted by
            its length.
        samples: how many samples were scored (each utterance cut to a multiple of the hop).
        code_counts: LongTensor[K], how often each code was chosen (a discrete bottleneck; else None).
    """

    total: float
    samples: int
    code_counts: Tensor | None

    @property
    def per_sample(self) -> float | None:
        """The mean score per sample, or None when nothing was scored."""
        return self.total / self.samples if self.samples else None


@torch.no_grad()
def teacher_forced_loss(model: VQVAE, split: LoadedSplit, indices: Iterable[int] | None = None,
                        autocast: Callable[[], AbstractContextManager] = nullcontext,
                        progress: bool = False) -> TeacherForcedLoss:
    """Score whole utterances of ``split`` (those at ``indices``; all by default) with their own speaker
    (the WaveNet teacher-forced): waves [T_i] cut to a multiple of the hop, one at a time, in eval mode, each forward
    pass inside ``autocast()``. The model is left in eval mode."""
    model.eval()
    hop, device = model.hop_length, model.device
    discrete = model.bottleneck.discrete
    counts = torch.zeros(model.bottleneck.codebook_size, dtype=torch.long, device=device) if discrete else None
    total, samples = 0.0, 0
    chosen = list(range(len(split.waves)) if indices is None else indices)
    for i in tqdm(chosen, desc="score", disable=not progress, leave=False):
        wav = as_float(split.waves[i])
        usable = len(wav) // hop * hop
        if usable == 0:
            continue
        x = torch.from_numpy(wav[:usable]).to(device)[None, None]
        pitch = model.pitch_input(wav[:usable]) if model.pitch is not None else None
        with autocast():
            out = model(x, torch.tensor([split.speaker_ids[i]], device=device), pitch=pitch)
        total += out.reconstruction.item() * usable
        samples += usable
        if counts is not None:
            counts += torch.bincount(out.vq.codes.flatten(), minlength=len(counts))
    return TeacherForcedLoss(total=total, samples=samples, code_counts=counts)
