"""Dilated causal 1-D convolution with a one-sample-at-a-time step for generation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CausalConv1d(nn.Conv1d):
    """A Conv1d padded on the left only, so output t sees inputs t − (k−1)·d … t.

    ``step`` computes one new output from a ring buffer of past inputs, which is how generation
    costs one step per layer per sample rather than a re-run over the receptive field.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1,
                 bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation, bias=bias)
        self.left_padding = (kernel_size - 1) * dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: Tensor[B, C_in, T] -> Tensor[B, C_out, T]."""
        return super().forward(F.pad(x, (self.left_padding, 0)))

    def init_buffer(self, batch: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """Zeros standing for the left padding: Tensor[B, C_in, (k−1)·d] (past inputs, oldest first)."""
        return torch.zeros(batch, self.in_channels, self.left_padding, device=device, dtype=dtype)

    def step(self, x: torch.Tensor, buffer: torch.Tensor, t: int) -> torch.Tensor:
        """One output sample.

        Args:
            x: Tensor[B, C_in], the input at time t.
            buffer: Tensor[B, C_in, (k−1)·d], a ring buffer of past inputs; slot ``t % len`` holds the
                input from (k−1)·d steps ago and is overwritten with x.
            t: the time index of x.
        Returns:
            Tensor[B, C_out].
        """
        kernel, dilation = self.kernel_size[0], self.dilation[0]
        size = self.left_padding
        if size == 0:
            taps = x[:, :, None]
        else:
            # tap j (0 = oldest) is the input from (k-1-j)*d steps ago
            idx = [(t - (kernel - 1 - j) * dilation) % size for j in range(kernel - 1)]
            taps = torch.cat([buffer[:, :, idx], x[:, :, None]], dim=2)  # [B, C_in, k]
            buffer[:, :, t % size] = x
        # weight [C_out, C_in, k] flattened the same way as taps [B, C_in, k]: one matmul
        return F.linear(taps.reshape(taps.shape[0], -1), self.weight.reshape(self.out_channels, -1),
                        self.bias)
