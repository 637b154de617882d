"""The encoder: strided convolutions on the raw waveform (paper §4.3: 6 layers, kernel 4, stride 2), or
convolutions at frame rate on MFCC / log-mel frames (``frontend``), with the same hop either way."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from vqspeech.data.audio import mu_law_compand
from vqspeech.nn.spectral import KINDS, FrameFeatures

FRONTENDS = ("waveform", *KINDS)


class ConvEncoder(nn.Module):
    """wav [B, 1, T] -> z_e [B, D, T / hop], hop = stride ** n_layers.

    frontend "waveform" (the paper's): the waveform is μ-law companded (a fixed pointwise map that lifts
    quiet speech above the network's biases), then each layer is a strided Conv1d (padding
    (kernel − stride) / 2, so T halves exactly) and a ReLU.
    frontend "mfcc" or "logmel": spectral frames at the same hop (13 MFCCs + Δ + ΔΔ, or 40 log-mel bands;
    25 ms windows, computed by torchaudio on the model's device, :class:`~vqspeech.nn.spectral.FrameFeatures`),
    then n_layers kernel-3 Conv1d + ReLU layers at frame rate. Chorowski et al. (2019) found MFCC input gave
    more phonetic codes than the raw waveform.
    Either way, optional residual layers at frame rate (kernel 3) widen the context each latent sees by one
    frame either side per layer, and a final 1×1 convolution maps to the latent dimension D.
    Outside training, inputs longer than ``chunk_frames`` latent frames are encoded in chunks that overlap
    by the receptive field, so the result equals one pass and memory stays bounded for hour-long inputs.

    Args:
        channels: hidden channels of the strided layers.
        latent_dim: D.
        n_layers, kernel_size, stride: the strided stack.
        context_layers: residual kernel-3 layers after it (0, the paper's encoder: a latent sees
            1 + (kernel − 1)·(stride^n − 1)/(stride − 1) samples, 190 = 12 ms for the paper's shape).
        frontend: "waveform", "mfcc" or "logmel".
        sample_rate: Hz of the input; needed by the spectral front ends only.
    """

    def __init__(self, channels: int = 256, latent_dim: int = 64, n_layers: int = 6, kernel_size: int = 4,
                 stride: int = 2, context_layers: int = 0, frontend: str = "waveform",
                 sample_rate: int | None = None):
        super().__init__()
        if (kernel_size - stride) % 2:
            raise ValueError(f"kernel_size - stride must be even to keep T / stride exact, got "
                             f"kernel_size={kernel_size}, stride={stride}")
        if frontend not in FRONTENDS:
            raise ValueError(f"encoder.frontend must be one of {', '.join(FRONTENDS)}, got {frontend!r}")
        if frontend != "waveform" and not sample_rate:
            raise ValueError(f"encoder.frontend={frontend} needs encoder.sample_rate (the data's, in Hz)")
        self.stride = stride
        self.n_layers = n_layers
        self.latent_dim = latent_dim
        layers: list[nn.Module] = []
        if frontend == "waveform":
            self.features = None
            in_ch = 1
            for _ in range(n_layers):
                layers += [nn.Conv1d(in_ch, channels, kernel_size, stride, padding=(kernel_size - stride) // 2),
                           nn.ReLU()]
                in_ch = channels
        else:
            self.features = FrameFeatures(frontend, sample_rate, self.hop_length, deltas=frontend == "mfcc")
            in_ch = self.features.n_features
            self.input_norm = nn.BatchNorm1d(in_ch, affine=False)  # dB and cepstra span very different scales
            for _ in range(n_layers):
                layers += [nn.Conv1d(in_ch, channels, 3, padding=1), nn.ReLU()]
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
        if self.features is not None:
            framewise = self.features.receptive_field + 2 * self.n_layers * self.hop_length
            return framewise + 2 * self.context_layers * self.hop_length
        kernel = self.net[0].kernel_size[0]
        strided = 1 + (kernel - 1) * sum(self.stride ** i for i in range(self.n_layers))
        return strided + 2 * self.context_layers * self.hop_length

    def _encode(self, wav: Tensor) -> Tensor:
        """One pass: wav Tensor[B, 1, T] -> Tensor[B, D, T / hop]."""
        if self.features is None:
            return self.net(mu_law_compand(wav))
        return self.net(self.input_norm(self.features(wav[:, 0])))

    def forward(self, wav: Tensor) -> Tensor:
        """wav: Tensor[B, 1, T] with T a multiple of hop_length -> Tensor[B, D, T / hop_length]."""
        hop = self.hop_length
        if wav.shape[-1] % hop:
            raise ValueError(f"waveform length {wav.shape[-1]} is not a multiple of hop_length {hop}")
        frames = wav.shape[-1] // hop
        if self.training or frames <= self.chunk_frames:
            return self._encode(wav)
        context = math.ceil(self.receptive_field / hop) + 1  # frames of real audio either side of a chunk
        pieces = []
        for start in range(0, frames, self.chunk_frames):
            end = min(frames, start + self.chunk_frames)
            first, last = max(0, start - context), min(frames, end + context)
            z = self._encode(wav[..., first * hop: last * hop])
            pieces.append(z[..., start - first: end - first])
        return torch.cat(pieces, dim=-1)


class _Residual(nn.Module):
    """x + f(x)."""

    def __init__(self, f: nn.Module):
        super().__init__()
        self.f = f

    def forward(self, x: Tensor) -> Tensor:
        return x + self.f(x)
