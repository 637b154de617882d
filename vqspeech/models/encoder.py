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
    """wav [B, 1, T] -> z_e [B, D, T / hop], hop = the product of the strides (stride ** n_layers by default).

    frontend "waveform" (the paper's): the waveform is μ-law companded (a fixed pointwise map that lifts
    quiet speech above the network's biases), then each layer is a strided Conv1d (padding
    (kernel − stride) / 2, so T divides exactly by the stride) and a ReLU. With per-layer ``strides``, layer i
    has kernel strides[i] + (kernel_size − stride): every layer overlaps its neighbours as the paper's
    kernel 4, stride 2 does.
    frontend "mfcc" or "logmel": spectral frames at the same hop (13 MFCCs + Δ + ΔΔ, or 40 log-mel bands;
    25 ms windows, computed by torchaudio on the model's device, :class:`~vqspeech.nn.spectral.FrameFeatures`),
    then n_layers kernel-3 Conv1d + ReLU layers at frame rate. Chorowski et al. (2019) found MFCC input gave
    more phonetic codes than the raw waveform.
    Either way, optional residual layers at frame rate (kernel 3) widen the context each latent sees by one
    frame either side per layer, and a final 1×1 convolution maps to the latent dimension D. With
    ``instance_norm``, each latent channel is then normalised over the utterance's frames (per crop in
    training) with a learned scale and shift: a per-utterance offset or scale, much of what marks a voice
    (Chou et al. 2019), cannot reach the codes.
    Outside training, inputs longer than ``chunk_frames`` latent frames are encoded in chunks that overlap
    by the receptive field, so the result equals one pass and memory stays bounded for hour-long inputs.

    Args:
        channels: hidden channels of the strided layers.
        latent_dim: D.
        n_layers, kernel_size, stride: the strided stack.
        strides: per-layer strides instead of n_layers × stride (hop 160 = [5, 2, 2, 2, 2, 2]: 100 Hz at 16 kHz).
        hop: the hop the config means to get; refused unless the strides make it (the error names strides
            that would), so a recipe states its frame rate and cannot silently get another.
        instance_norm: per-utterance normalisation of z_e (above).
        context_layers: residual kernel-3 layers after it (0, the paper's encoder: a latent sees
            1 + (kernel − 1)·(stride^n − 1)/(stride − 1) samples, 190 = 12 ms for the paper's shape).
        frontend: "waveform", "mfcc" or "logmel".
        sample_rate: Hz of the input; needed by the spectral front ends only.
    """

    def __init__(self, channels: int = 256, latent_dim: int = 64, n_layers: int = 6, kernel_size: int = 4,
                 stride: int = 2, strides: list[int] | None = None, hop: int | None = None,
                 context_layers: int = 0, frontend: str = "waveform", sample_rate: int | None = None,
                 instance_norm: bool = False):
        super().__init__()
        if (kernel_size - stride) % 2:
            raise ValueError(f"kernel_size - stride must be even to keep T / stride exact, got "
                             f"kernel_size={kernel_size}, stride={stride}")
        strides = list(strides) if strides is not None else [stride] * n_layers
        if not strides or any(s < 1 for s in strides):
            raise ValueError(f"model.encoder.strides must be a non-empty list of strides ≥ 1, got {strides}")
        if hop is not None and hop != math.prod(strides):
            raise ValueError(hop_refusal(hop, strides))
        if frontend not in FRONTENDS:
            raise ValueError(f"encoder.frontend must be one of {', '.join(FRONTENDS)}, got {frontend!r}")
        if frontend != "waveform" and not sample_rate:
            raise ValueError(f"encoder.frontend={frontend} needs encoder.sample_rate (the data's, in Hz)")
        self.strides = strides
        self.kernels = [s + kernel_size - stride for s in strides]
        self.n_layers = len(strides)
        self.latent_dim = latent_dim
        layers: list[nn.Module] = []
        if frontend == "waveform":
            self.features = None
            in_ch = 1
            for s, k in zip(self.strides, self.kernels):
                layers += [nn.Conv1d(in_ch, channels, k, s, padding=(k - s) // 2), nn.ReLU()]
                in_ch = channels
        else:
            self.features = FrameFeatures(frontend, sample_rate, self.hop_length, deltas=frontend == "mfcc")
            in_ch = self.features.n_features
            self.input_norm = nn.BatchNorm1d(in_ch, affine=False)  # dB and cepstra span very different scales
            for _ in range(self.n_layers):
                layers += [nn.Conv1d(in_ch, channels, 3, padding=1), nn.ReLU()]
                in_ch = channels
        layers += [_Residual(nn.Sequential(nn.Conv1d(channels, channels, 3, padding=1), nn.ReLU()))
                   for _ in range(context_layers)]
        layers.append(nn.Conv1d(channels, latent_dim, 1))
        self.net = nn.Sequential(*layers)
        self.norm = nn.InstanceNorm1d(latent_dim, affine=True) if instance_norm else None
        self.context_layers = context_layers
        self.chunk_frames = 4096  # 4096 · hop samples per pass in eval mode (16 s at hop 64 and 16 kHz)

    @property
    def hop_length(self) -> int:
        """Waveform samples per latent frame; the only place this number is computed."""
        return math.prod(self.strides)

    @property
    def receptive_field(self) -> int:
        """Input samples one latent frame depends on."""
        if self.features is not None:
            framewise = self.features.receptive_field + 2 * self.n_layers * self.hop_length
            return framewise + 2 * self.context_layers * self.hop_length
        strided = 1 + sum((k - 1) * math.prod(self.strides[:i]) for i, k in enumerate(self.kernels))
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
            z = self._encode(wav)
            return self.norm(z) if self.norm is not None else z
        context = math.ceil(self.receptive_field / hop) + 1  # frames of real audio either side of a chunk
        pieces = []
        for start in range(0, frames, self.chunk_frames):
            end = min(frames, start + self.chunk_frames)
            first, last = max(0, start - context), min(frames, end + context)
            z = self._encode(wav[..., first * hop: last * hop])
            pieces.append(z[..., start - first: end - first])
        z = torch.cat(pieces, dim=-1)
        return self.norm(z) if self.norm is not None else z  # over the whole input, as in one pass


def hop_refusal(hop: int, strides: list[int]) -> str:
    """Why ``hop`` is refused for ``strides``, and strides that would make it: its prime factors, largest first
    (mostly 2, as in the paper's encoder)."""
    made = f"{' × '.join(map(str, strides))} = {math.prod(strides)}"
    factors, rest = [], hop
    for p in (5, 3, 2):
        while rest % p == 0 and rest > 1:
            factors.append(p)
            rest //= p
    if rest != 1 or not factors:
        return (f"model.encoder.hop={hop} cannot be made by strides of 2, 3 and 5 (the strides make {made}); "
                f"choose a hop whose prime factors are 2, 3 and 5 (64, 128, 160, 320, 640)")
    return (f"model.encoder.hop={hop} is not what the encoder's strides make ({made}); "
            f"set model.encoder.strides=[{','.join(map(str, factors))}] to get {hop}")


class _Residual(nn.Module):
    """x + f(x)."""

    def __init__(self, f: nn.Module):
        super().__init__()
        self.f = f

    def forward(self, x: Tensor) -> Tensor:
        return x + self.f(x)
