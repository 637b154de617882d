"""The gated residual block of WaveNet (van den Oord et al. 2016)."""

from __future__ import annotations

import math

import torch
from torch import nn

from vqspeech.nn.causal_conv import CausalConv1d


class GatedResidualBlock(nn.Module):
    """x -> dilated causal conv -> + conditioning -> tanh(a)·σ(b) -> 1×1 conv -> (residual, skip).

    The conditioning (local codes and global speaker, already projected for this block by the decoder)
    is added to the gate pre-activation. The residual and skip 1×1 convolutions are one fused conv.

    Args:
        channels: C, residual channels.
        skip_channels: S.
        kernel_size, dilation: of the causal convolution.
    """

    def __init__(self, channels: int, skip_channels: int, kernel_size: int, dilation: int):
        super().__init__()
        self.channels = channels
        self.skip_channels = skip_channels
        self.conv = CausalConv1d(channels, 2 * channels, kernel_size, dilation)
        self.out = nn.Conv1d(channels, channels + skip_channels, 1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, hop: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced pass over a whole sequence.

        Args:
            x: Tensor[B, C, T], T = F·hop.
            cond: Tensor[B, 2C, F], this block's conditioning; frame f covers samples f·hop … (f+1)·hop − 1
                (broadcast over them, not materialised). At hop 1 it is already at sample rate (F = T).
            hop: samples per conditioning frame.
        Returns:
            (residual output Tensor[B, C, T], skip Tensor[B, S, T]).
        """
        batch, _, length = x.shape
        h = self.conv(x)
        h = (h.view(batch, 2 * self.channels, -1, hop) + cond[..., None]).view(batch, 2 * self.channels, length)
        return self._gate_and_project(x, h)

    def _gate_and_project(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = h.chunk(2, dim=1)
        out = self.out(torch.tanh(a) * torch.sigmoid(b))
        res, skip = out.split([self.channels, self.skip_channels], dim=1)
        return (x + res) * math.sqrt(0.5), skip
