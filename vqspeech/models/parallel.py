"""The parallel decoder: the network runs at the codes' frame rate and an inverse STFT makes the samples.

latents [B, D, F] -> Conv1d (kernel 7) -> N ConvNeXt blocks (Liu et al. 2022, as Vocos' backbone) whose
depthwise convolutions are dilated WaveNet-style (1, 2, 4, … by default: the blocks see far at no cost), each
normalised with the speaker as FiLM (scale and shift of the LayerNorm from the speaker vector, zero at
initialisation) -> LayerNorm -> a linear head per frame: log-magnitude and phase of an STFT column
(Vocos' ISTFTHead, Siuzdak 2023) -> inverse STFT with hop = the codes' hop -> audio [B, 1, F · hop].

It is trained on spectral losses (nn/spectral_loss.py: multi-resolution STFT and multi-scale log-mel), has
no sampling, and decodes an utterance in one pass. A long utterance is decoded in chunks of
``chunk_frames`` frames, each computed with :attr:`ParallelDecoder.context_frames` frames of its neighbours
either side and cut back to its own samples. That context covers everything a sample can depend on (the
blocks' reach plus the STFT window), so a chunked decode equals the one-pass decode up to float rounding
(tests/models/test_parallel.py).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from vqspeech.models.decoder import Decoder, DecoderLoss
from vqspeech.nn.spectral_loss import MultiResolutionSTFTLoss, MultiScaleMelLoss

MAX_MAGNITUDE = 100.0  # the head's magnitudes are clipped here (exp of a log-magnitude can overflow early on)


class FiLMConvNeXtBlock(nn.Module):
    """x -> depthwise dilated conv -> LayerNorm, scaled (1 + a) and shifted by b, (a, b) = W·speaker ->
    pointwise expand (GELU) -> pointwise back -> × layer scale -> + x.

    Args: channels: C; speaker_dim: E; kernel_size: odd; dilation; expansion: the hidden width is expansion · C.
    """

    def __init__(self, channels: int, speaker_dim: int, kernel_size: int, dilation: int, expansion: int,
                 layer_scale: float):
        super().__init__()
        self.dwconv = nn.Conv1d(channels, channels, kernel_size, dilation=dilation,
                                padding=(kernel_size - 1) // 2 * dilation, groups=channels)
        self.norm = nn.LayerNorm(channels, elementwise_affine=False)
        self.film = nn.Linear(speaker_dim, 2 * channels)
        self.expand = nn.Linear(channels, expansion * channels)
        self.project = nn.Linear(expansion * channels, channels)
        self.gamma = nn.Parameter(torch.full((channels,), layer_scale))

    def forward(self, x: Tensor, speaker: Tensor) -> Tensor:
        """x: Tensor[B, C, F], speaker: Tensor[B, E] -> Tensor[B, C, F]."""
        h = self.dwconv(x).transpose(1, 2)  # [B, F, C]
        scale, shift = self.film(speaker)[:, None].chunk(2, dim=-1)
        h = self.norm(h) * (1 + scale) + shift
        h = self.project(F.gelu(self.expand(h))) * self.gamma
        return x + h.transpose(1, 2)


class ParallelDecoder(Decoder):
    """Args:
        latent_dim: D of the quantised latents.   speaker_dim: E.   hop_length: samples per frame.
        sample_rate: Hz (the mel loss's filters).
        channels: C, the blocks' width.   blocks: how many ConvNeXt blocks.
        block_kernel: kernel of the depthwise convolutions (odd).
        dilations: the blocks' dilations, cycled over the blocks (1, 2, 4 -> 1, 2, 4, 1, 2, 4, …).
        expansion: the blocks' hidden width, in multiples of C.
        n_fft: FFT size of the inverse STFT (its hop is the codes' hop); None: max(512, 4 · hop).
        stft_resolutions: (n_fft, hop) pairs of the multi-resolution STFT loss.
        mel_scales: (window, mel bands) pairs of the multi-scale mel loss.
        chunk_frames: generation decodes utterances longer than this in chunks of this many frames.
    """

    kind = "parallel"
    score_name = "multi-resolution STFT + multi-scale mel loss, one pass"
    stochastic = False
    score_in_nats = False

    def __init__(self, latent_dim: int, speaker_dim: int, hop_length: int, sample_rate: int = 16000,
                 channels: int = 256, blocks: int = 8, block_kernel: int = 7, dilations: tuple[int, ...] = (1, 2, 4),
                 expansion: int = 3, n_fft: int | None = None,
                 stft_resolutions: tuple[tuple[int, int], ...] = ((256, 64), (512, 128), (1024, 256), (2048, 512)),
                 mel_scales: tuple[tuple[int, int], ...] = ((256, 32), (512, 64), (1024, 128)),
                 chunk_frames: int = 1000):
        super().__init__()
        if block_kernel % 2 == 0:
            raise ValueError(f"model.decoder.block_kernel must be odd, got {block_kernel}")
        if blocks < 1 or not dilations or min(dilations) < 1:
            raise ValueError(f"model.decoder needs at least one block and dilations of 1 or more, got "
                             f"blocks={blocks}, dilations={list(dilations)}")
        if chunk_frames < 1:
            raise ValueError(f"model.decoder.chunk_frames must be at least 1, got {chunk_frames}")
        self.hop_length = hop_length
        self.n_fft = int(n_fft) if n_fft is not None else max(512, 4 * hop_length)
        if self.n_fft < 4 * hop_length:
            raise ValueError(f"model.decoder.n_fft={self.n_fft} must be at least 4 × the hop ({hop_length}): with "
                             f"fewer overlapping windows the inverse STFT divides the last samples by a near-zero "
                             f"window sum")
        self.channels = channels
        self.block_kernel = block_kernel
        self.dilation_cycle = [int(d) for d in dilations]
        self.dilations = [self.dilation_cycle[i % len(dilations)] for i in range(blocks)]
        self.chunk_frames = chunk_frames
        self.embed = nn.Conv1d(latent_dim, channels, block_kernel, padding=(block_kernel - 1) // 2)
        self.blocks = nn.ModuleList(FiLMConvNeXtBlock(channels, speaker_dim, block_kernel, d, expansion, 1.0 / blocks)
                                    for d in self.dilations)
        self.norm = nn.LayerNorm(channels)
        self.bins = self.n_fft // 2 + 1
        self.head = nn.Linear(channels, 2 * self.bins)
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)
        self.stft_loss = MultiResolutionSTFTLoss([tuple(r) for r in stft_resolutions])
        self.mel_loss = MultiScaleMelLoss(sample_rate, [tuple(s) for s in mel_scales])
        self.apply(_init_weights)
        for block in self.blocks:  # FiLM starts as the identity: every voice decodes alike until it learns
            nn.init.zeros_(block.film.weight)
            nn.init.zeros_(block.film.bias)

    @property
    def reach_frames(self) -> int:
        """Code frames either side of a frame that its STFT column can depend on."""
        half = (self.block_kernel - 1) // 2
        return half + half * sum(self.dilations)

    @property
    def context_frames(self) -> int:
        """Frames of a chunk's neighbours decoded with it so that its samples equal the one-pass decode's:
        the blocks' reach, plus the STFT columns whose windows overlap the chunk's edge samples."""
        return self.reach_frames + math.ceil(self.n_fft / 2 / self.hop_length) + 1

    def forward(self, latents: Tensor, speaker: Tensor) -> Tensor:
        """latents: Tensor[B, D, F], speaker: Tensor[B, E] -> audio Tensor[B, 1, F · hop] (float32)."""
        return self.inverse_stft(self.columns(latents, speaker), latents.shape[-1])

    def columns(self, latents: Tensor, speaker: Tensor) -> Tensor:
        """The frame-rate network: latents Tensor[B, D, F], speaker Tensor[B, E] -> Tensor[B, F, 2 · bins],
        per frame the log-magnitudes then the phases of one STFT column."""
        x = self.embed(latents)
        use_checkpoints = self.activation_checkpointing is not None and torch.is_grad_enabled()
        for block in self.blocks:
            x = checkpoint(block, x, speaker, use_reentrant=False) if use_checkpoints else block(x, speaker)
        with torch.autocast(device_type=x.device.type, enabled=False):  # phases need more than bf16's 8 bits
            return self.head(self.norm(x.transpose(1, 2).float()))

    def inverse_stft(self, columns: Tensor, frames: int) -> Tensor:
        """columns: Tensor[B, F, 2 · bins] of log-magnitudes and phases -> audio Tensor[B, 1, F · hop]."""
        with torch.autocast(device_type=columns.device.type, enabled=False):
            log_magnitude, phase = columns.float().transpose(1, 2).chunk(2, dim=1)  # [B, bins, F] each
            magnitude = log_magnitude.clamp(max=math.log(MAX_MAGNITUDE)).exp()  # clamped before exp: no inf
            spectrum = torch.complex(magnitude * torch.cos(phase), magnitude * torch.sin(phase))
            audio = torch.istft(spectrum, self.n_fft, self.hop_length, window=self.window, center=True,
                                length=frames * self.hop_length)
        return audio[:, None]

    def loss(self, target: Tensor, latents: Tensor, speaker: Tensor) -> DecoderLoss:
        audio = self(latents, speaker)
        stft, mel = self.stft_loss(audio, target), self.mel_loss(audio, target)
        return DecoderLoss(losses={"stft": stft, "mel": mel}, score=(stft + mel).detach(), output=audio)

    @torch.inference_mode()
    def generate(self, latents: list[Tensor], speakers: Tensor, config=None, generator=None,
                 progress: bool = False) -> list[Tensor]:
        """One pass per chunk of :attr:`chunk_frames` frames; ``config`` and ``generator`` are not used (the
        decoder is deterministic)."""
        return [self.decode_chunked(z[None], speakers[i:i + 1], self.chunk_frames)[0, 0].clamp(-1.0, 1.0)
                for i, z in enumerate(latents)]

    def decode_chunked(self, latents: Tensor, speaker: Tensor, chunk_frames: int) -> Tensor:
        """:meth:`forward` of latents Tensor[B, D, F] in chunks of ``chunk_frames`` frames, each decoded with
        :attr:`context_frames` frames of context either side -> audio Tensor[B, 1, F · hop]."""
        frames, hop, context = latents.shape[-1], self.hop_length, self.context_frames
        if frames <= chunk_frames:
            return self(latents, speaker)
        pieces = []
        for start in range(0, frames, chunk_frames):
            end = min(frames, start + chunk_frames)
            first, last = max(0, start - context), min(frames, end + context)
            audio = self(latents[..., first:last], speaker)
            pieces.append(audio[..., (start - first) * hop: (end - first) * hop])
        return torch.cat(pieces, dim=-1)

    def describe_generation(self, config=None) -> str:
        return f"one pass (no sampling), chunks of {self.chunk_frames} frames"

    def describe(self) -> str:
        return (f"parallel, {len(self.blocks)} ConvNeXt blocks × {self.channels} channels at frame rate "
                f"(dilations {self.dilation_cycle} cycled), iSTFT head n_fft {self.n_fft} hop "
                f"{self.hop_length}; sees ±{self.reach_frames} codes")


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, (nn.Conv1d, nn.Linear)):  # Vocos' initialisation
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
