"""Contrastive predictive coding on the encoder output (van den Oord et al. 2018; bshall's VQ-CPC applies it
to speech codes): a causal context network summarises z_e up to frame t, and for each k = 1 … steps a linear
map of that summary must pick z_e at t + k out of frames drawn from elsewhere in the batch (InfoNCE).
Features that predict the next tens of milliseconds are slowly varying ones: phones more than pitch periods
or noise, which is why it is a lever for phonetic codes."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class CPCResult:
    """loss: InfoNCE cross-entropy (nats, 0-dim), averaged over steps and frames; accuracy: the share of
    predictions that score the true future frame above every negative (0-dim, detached)."""

    loss: Tensor
    accuracy: Tensor


class ContrastivePredictor(nn.Module):
    """z_e [B, D, F] -> InfoNCE over ``steps`` future frames.

    Args:
        latent_dim: D.
        steps: frames predicted ahead (K); the crops must hold more than K frames.
        channels: width of the context network (a one-layer GRU, causal by construction).
        negatives: frames drawn uniformly from the whole batch as negatives, per prediction.
    """

    def __init__(self, latent_dim: int, steps: int, channels: int = 128, negatives: int = 16):
        super().__init__()
        if steps < 1 or negatives < 1:
            raise ValueError(f"CPC needs steps ≥ 1 and negatives ≥ 1, got steps={steps}, negatives={negatives}")
        self.steps, self.negatives = steps, negatives
        self.context = nn.GRU(latent_dim, channels, batch_first=True)
        self.predictors = nn.Linear(channels, latent_dim * steps)

    def forward(self, z_e: Tensor, generator: torch.Generator | None = None) -> CPCResult:
        """z_e: Tensor[B, D, F] with F > steps."""
        batch, dim, frames = z_e.shape
        if frames <= self.steps:
            raise ValueError(f"CPC predicts {self.steps} frames ahead but a crop holds only {frames} frames; "
                             f"use longer train.crop_samples or fewer model.cpc_steps")
        z = z_e.float().transpose(1, 2)  # [B, F, D]
        context, _ = self.context(z)  # [B, F, C]
        span = frames - self.steps  # frames t that have every future t + 1 … t + K
        predictions = self.predictors(context[:, :span]).view(batch, span, self.steps, dim)  # [B, T', K, D]
        future = torch.stack([z[:, k + 1: k + 1 + span] for k in range(self.steps)], dim=2)  # [B, T', K, D]
        pool = z.reshape(batch * frames, dim)
        drawn = torch.randint(0, batch * frames, (batch, span, self.steps, self.negatives),
                              device=z.device, generator=generator)
        negatives = pool[drawn]  # [B, T', K, N, D]
        candidates = torch.cat([future[..., None, :], negatives], dim=3)  # the true future is candidate 0
        scores = (predictions[..., None, :] * candidates).sum(-1)  # [B, T', K, 1 + N]
        flat = scores.reshape(-1, 1 + self.negatives)
        target = torch.zeros(flat.shape[0], dtype=torch.long, device=z.device)
        accuracy = (flat.detach().argmax(-1) == 0).float().mean()
        return CPCResult(loss=F.cross_entropy(flat, target), accuracy=accuracy)
