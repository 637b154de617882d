"""The teacher-forced reconstruction loss of a VQ-VAE over a split: the one score that validation
(training), the report and latent usage (eval) share."""

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
        nats: the decoder's cross-entropy summed over samples (nats).
        samples: how many samples were scored (each utterance cut to a multiple of the hop).
        code_counts: LongTensor[K], how often each code was chosen (a discrete bottleneck; else None).
    """

    nats: float
    samples: int
    code_counts: Tensor | None

    @property
    def nats_per_sample(self) -> float | None:
        """The mean cross-entropy per sample, or None when nothing was scored."""
        return self.nats / self.samples if self.samples else None


@torch.no_grad()
def teacher_forced_loss(model: VQVAE, split: LoadedSplit, indices: Iterable[int] | None = None,
                        autocast: Callable[[], AbstractContextManager] = nullcontext,
                        progress: bool = False) -> TeacherForcedLoss:
    """Score whole utterances of ``split`` (those at ``indices``; all by default) with their own speaker,
    teacher-forced: waves [T_i] cut to a multiple of the hop, one at a time, in eval mode, each forward
    pass inside ``autocast()``. The model is left in eval mode."""
    model.eval()
    hop, device = model.hop_length, model.device
    discrete = model.bottleneck.discrete
    counts = torch.zeros(model.bottleneck.codebook_size, dtype=torch.long, device=device) if discrete else None
    nats, samples = 0.0, 0
    chosen = list(range(len(split.waves)) if indices is None else indices)
    for i in tqdm(chosen, desc="score", disable=not progress, leave=False):
        wav = as_float(split.waves[i])
        usable = len(wav) // hop * hop
        if usable == 0:
            continue
        x = torch.from_numpy(wav[:usable]).to(device)[None, None]
        with autocast():
            out = model(x, torch.tensor([split.speaker_ids[i]], device=device))
        nats += out.losses["reconstruction"].item() * usable
        samples += usable
        if counts is not None:
            counts += torch.bincount(out.vq.codes.flatten(), minlength=len(counts))
    return TeacherForcedLoss(nats=nats, samples=samples, code_counts=counts)
