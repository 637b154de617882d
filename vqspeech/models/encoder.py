"""The strided convolutional encoder on raw waveforms (paper §4.3: 6 layers, kernel 4, stride 2)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from vqspeech.data.audio import mu_law_compand


class ConvEncoder(nn.Module):
    """wav [B, 1, T] -> z_e [B, D, T / hop], hop = stride ** n_layers.

    The waveform is μ-law companded first (a fixed pointwise map that lifts quiet speech above the
    network's biases).
    Each layer is a strided Conv1d (padding (kernel − stride) / 2, so T halves exactly) and a ReLU;
    optional residual layers at frame rate (kernel 3) widen the context each latent sees by one frame
    either side per layer; a final 1×1 convolution maps to the latent dimension D.
    Outside training, inputs longer than ``chunk_frames`` latent frames are encoded in chunks that overlap
    by the receptive field, so the result equals one pass and memory stays bounded for hour-long inputs.

    Args:
        channels: hidden channels of the strided layers.
        latent_dim: D.
        n_layers, kernel_size, stride: the strided stack.
        context_layers: residual kernel-3 layers after it (0, the paper's encoder: a latent sees
            1 + (kernel − 1)·(stride^n − 1)/(stride − 1) samples, 190 = 12 ms for the paper's shape).
    """

    def __init__(self, channels: int = 256, latent_dim: int = 64, n_layers: int = 6, kernel_size: int = 4,
                 stride: int = 2, context_layers: int = 0):
        super().__init__()
        if (kernel_size - stride) % 2:
            raise ValueError(f"kernel_size - stride must be even to keep T / stride exact, got "
                             f"kernel_size={kernel_size}, stride={stride}")
        self.stride = stride
        self.n_layers = n_layers
        self.latent_dim = latent_dim
        layers: list[nn.Module] = []
        in_ch = 1
        for _ in range(n_layers):
            layers += [nn.Conv1d(in_ch, channels, kernel_size, stride, padding=(kernel_size - stride) // 2),
                       nn.ReLU()]
            in_ch = channels
        layers += [_Residual(nn.Sequential(nn.Conv1d(channels, channels, 3, padding=1), nn.ReLU()))
                   for _ in range(context_layers)]
        layers.append(nn.Conv1d(channels, latent_dim, 1))
        self.net = nn.Sequential(*layers)
        self.context_layers = context_layers
        self.chunk_frames = 4096  # 4096 · hop samples per pass in eval mode (16 s at hop 64 and 16 kHz)

    @property
    def hop_length(self) -> int:
        """Waveform samples per latent frame; the only place this number is computed."""
        return self.stride ** self.n_layers

    @property
    def receptive_field(self) -> int:
        """Input samples one latent frame depends on."""
        kernel = self.net[0].kernel_size[0]
        strided = 1 + (kernel - 1) * sum(self.stride ** i for i in range(self.n_layers))
        return strided + 2 * self.context_layers * self.hop_length

    def forward(self, wav: Tensor) -> Tensor:
        """wav: Tensor[B, 1, T] with T a multiple of hop_length -> Tensor[B, D, T / hop_length]."""
        hop = self.hop_length
        if wav.shape[-1] % hop:
            raise ValueError(f"waveform length {wav.shape[-1]} is not a multiple of hop_length {hop}")
        frames = wav.shape[-1] // hop
        if self.training or frames <= self.chunk_frames:
            return self.net(mu_law_compand(wav))
        context = math.ceil(self.receptive_field / hop) + 1  # frames of real audio either side of a chunk
        pieces = []
        for start in range(0, frames, self.chunk_frames):
            end = min(frames, start + self.chunk_frames)
            first, last = max(0, start - context), min(frames, end + context)
            z = self.net(mu_law_compand(wav[..., first * hop: last * hop]))
            pieces.append(z[..., start - first: end - first])
        return torch.cat(pieces, dim=-1)


class _Residual(nn.Module):
    """x + f(x)."""

    def __init__(self, f: nn.Module):
        super().__init__()
        self.f = f

    def forward(self, x: Tensor) -> Tensor:
        return x + self.f(x)
