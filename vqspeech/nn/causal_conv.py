"""Dilated causal 1-D convolution with a one-sample-at-a-time step for generation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CausalConv1d(nn.Conv1d):
    """A Conv1d padded on the left only, so output t sees inputs t − (k−1)·d … t.

    Generation steps it one sample at a time from a ring buffer of past inputs
    (models/generation.py, which fuses it with the rest of the block).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1,
                 bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation, bias=bias)
        self.left_padding = (kernel_size - 1) * dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: Tensor[B, C_in, T] -> Tensor[B, C_out, T]."""
        return super().forward(F.pad(x, (self.left_padding, 0)))
