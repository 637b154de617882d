"""A speaker classifier on the encoder output behind gradient reversal (Ganin & Lempitsky 2015): it learns to
tell the speaker from z_e, and the encoder receives the opposite of its gradient, so the encoder learns to
make z_e useless to it. The speaker embedding is then the only place left for the voice."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class _ReverseGradient(torch.autograd.Function):
    """Identity forward; the gradient times −1 backward."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return -grad


def reverse_gradient(x: Tensor) -> Tensor:
    """x unchanged, with the gradient that flows back through it negated."""
    return _ReverseGradient.apply(x)


@dataclass
class AdversaryResult:
    """loss: cross-entropy of the speaker per latent frame, or per crop when pooled (nats, 0-dim); accuracy:
    the share of frames (crops) whose speaker it names correctly (0-dim, detached; chance is 1 / speakers)."""

    loss: Tensor
    accuracy: Tensor


class SpeakerAdversary(nn.Module):
    """z_e [B, D, F] -> speaker logits per frame [B, S, F]: two kernel-3 convolutions (it sees 5 frames, 20 ms
    at hop 64) and a 1×1 output. Its input passes through :func:`reverse_gradient`, so one backward pass
    trains the classifier to find the speaker and the encoder to hide it, by the same loss weight
    (train.loss_weights.speaker_adv).

    Pooled, it names the speaker of each crop from the mean of its frames' logits [B, S]. Weak evidence in
    every frame adds up over a crop, as it does in a histogram of an utterance's codes (the probe's speaker
    accuracy): a frame-level classifier near chance can leave that sum untouched, a pooled one sees it.

    Args:
        latent_dim: D.
        n_speakers: S.
        channels: hidden channels.
        pooled: classify crops (mean logits over frames) instead of frames.
    """

    def __init__(self, latent_dim: int, n_speakers: int, channels: int, pooled: bool = False):
        super().__init__()
        self.net = nn.Sequential(nn.Conv1d(latent_dim, channels, 3, padding=1), nn.ReLU(),
                                 nn.Conv1d(channels, channels, 3, padding=1), nn.ReLU(),
                                 nn.Conv1d(channels, n_speakers, 1))
        self.pooled = pooled

    def forward(self, z_e: Tensor, speaker_ids: Tensor) -> AdversaryResult:
        """z_e: Tensor[B, D, F]; speaker_ids: LongTensor[B]."""
        logits = self.net(reverse_gradient(z_e))  # [B, S, F]
        if self.pooled:
            logits = logits.mean(-1, keepdim=True)  # [B, S, 1]
        target = speaker_ids[:, None].expand(-1, logits.shape[-1])
        accuracy = (logits.detach().argmax(1) == target).float().mean()
        return AdversaryResult(loss=F.cross_entropy(logits.float(), target), accuracy=accuracy)
