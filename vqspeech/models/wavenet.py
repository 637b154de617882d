"""The WaveNet decoder: dilated causal gated convolutions predicting 8-bit μ-law samples, conditioned
locally on the quantised latents and globally on a speaker vector; with cached autoregressive generation.

Teacher forcing: the input at sample t is the μ-law sample t − 1 (silence before the first), and the
output at t is a 256-way distribution over sample t.

Conditioning is projected for all blocks at once, at frame rate: cond [B, L, 2C, F] = W·upnet(latents)
+ V·speaker. Each block adds its slice to its gate pre-activation, upsampled to the samples by
repetition (``upsample="repeat"``: constant over a frame's hop samples, broadcast, never materialised) or
by linear interpolation between frame centres (``upsample="linear"``: a sample knows where it lies between
two codes, at the cost of each block's conditioning at sample rate). Generation (models/generation.py)
computes it once per utterance, at frame rate, and interpolates per sample.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from vqspeech.data.audio import MU_LAW_CHANNELS, MU_LAW_SILENCE as SILENCE, mu_law_encode
from vqspeech.models.decoder import Decoder, DecoderLoss
from vqspeech.models.generation import Conditioning, generate
from vqspeech.nn import GatedResidualBlock
from vqspeech.nn.frames import frame_mix, interpolate_frames
CHECKPOINTING = (None, "block", "stack")
UPSAMPLING = ("repeat", "linear")


class WaveNetDecoder(Decoder):
    """Args:
        latent_dim: D of the quantised latents.
        speaker_dim: E of the global conditioning vector.
        hop_length: samples per latent frame (read from the encoder).
        residual_channels: C.   skip_channels: S.   cond_channels: width of the upsampling net.
        kernel_size: of the dilated convolutions.
        layers_per_stack, stacks: dilations 1, 2, …, 2^(layers_per_stack−1), repeated ``stacks`` times.
        upsample: how frame-rate conditioning reaches the samples, "repeat" or "linear" (see the module doc).

    ``activation_checkpointing`` (set by the training loop from ``train.checkpoint_activations``; not a
    weight, so not a constructor argument): None keeps every block's activations for backward; "block"
    keeps only each block's input and recomputes the block in backward; "stack" keeps only each stack's
    input. Values and gradients are unchanged; memory falls and compute rises by about one forward pass.
    """

    kind = "wavenet"
    score_name = "cross-entropy, nats/sample, teacher-forced"

    def __init__(self, latent_dim: int, speaker_dim: int, hop_length: int, residual_channels: int = 64,
                 skip_channels: int = 128, cond_channels: int = 128, kernel_size: int = 2,
                 layers_per_stack: int = 10, stacks: int = 2, upsample: str = "repeat"):
        super().__init__()
        if upsample not in UPSAMPLING:
            raise ValueError(f"model.decoder.upsample must be one of {', '.join(UPSAMPLING)}, got {upsample!r}")
        self.hop_length = hop_length
        self.upsample = upsample
        self.channels = residual_channels
        self.dilations = [2 ** i for _ in range(stacks) for i in range(layers_per_stack)]
        n_blocks = len(self.dilations)
        self.input_embedding = nn.Embedding(MU_LAW_CHANNELS, residual_channels)
        self.upnet = nn.Sequential(nn.Conv1d(latent_dim, cond_channels, 3, padding=1), nn.ReLU())
        self.local_projection = nn.Conv1d(cond_channels, n_blocks * 2 * residual_channels, 1)
        self.global_projection = nn.Linear(speaker_dim, n_blocks * 2 * residual_channels, bias=False)
        self.blocks = nn.ModuleList(
            GatedResidualBlock(residual_channels, skip_channels, kernel_size, d) for d in self.dilations)
        self.head = nn.Sequential(nn.ReLU(), nn.Conv1d(skip_channels, skip_channels, 1), nn.ReLU(),
                                  nn.Conv1d(skip_channels, MU_LAW_CHANNELS, 1))
        self.layers_per_stack = layers_per_stack
        self.activation_checkpointing: str | None = None

    @property
    def receptive_field(self) -> int:
        """Samples of past audio one prediction sees (including the current input)."""
        kernel = self.blocks[0].conv.kernel_size[0]
        return (kernel - 1) * sum(self.dilations) + 1

    @property
    def receptive_field_codes(self) -> int:
        """Latent frames (codes) one prediction can depend on, at most: the frames that the window of
        positions whose conditioning reaches it overlaps (the receptive field less the first layer's reach,
        since conditioning enters each layer at its output), widened by one frame either side by the
        conditioning convolution (kernel 3 at frame rate). Under linear upsampling each position also mixes
        in the neighbouring frame on its side of its frame's centre (with weight 0 at an odd hop's centre
        sample), which reaches one frame further at most. Repeated, the conditioning is constant over a
        frame's hop samples, so when that window is shorter than the hop the decoder cannot tell where in a
        frame it is."""
        window = self.receptive_field - (self.blocks[0].conv.kernel_size[0] - 1) * self.dilations[0]
        hop = self.hop_length

        mix = frame_mix(hop)

        def frames_reached(first: int) -> int:  # by positions first … first + window − 1
            last = first + window - 1
            if self.upsample == "repeat":
                return last // hop - first // hop + 1
            low = first // hop + mix[first % hop][0]
            before_last, weight = mix[last % hop]
            return last // hop + before_last + (weight > 0) - low + 1

        return max(frames_reached(first) for first in range(hop)) + 2

    def conditioning(self, latents: Tensor, speaker: Tensor, start: int = 0, end: int | None = None) -> Tensor:
        """Every block's conditioning at frame rate, as added to its gate pre-activation.

        latents: Tensor[B, D, F], speaker: Tensor[B, E] -> Tensor[B, L, 2C, end − start] for the L blocks:
        frames [start, end) (default all) of the whole utterance's conditioning, computed from latents
        [start − 1, end + 1) only (the upsampling convolution sees one frame either side), so a long
        utterance can be conditioned piece by piece.
        """
        frames = latents.shape[-1]
        end = frames if end is None else end
        first, last = max(0, start - 1), min(frames, end + 1)
        cond = self.local_projection(self.upnet(latents[..., first:last])) + self.global_projection(speaker)[..., None]
        cond = cond[..., start - first: end - first]
        return cond.reshape(latents.shape[0], len(self.blocks), 2 * self.channels, end - start)

    def forward(self, samples: Tensor, latents: Tensor, speaker: Tensor) -> Tensor:
        """Teacher-forced logits.

        Args:
            samples: LongTensor[B, T], μ-law targets, T = F · hop_length.
            latents: Tensor[B, D, F].
            speaker: Tensor[B, E].
        Returns:
            logits: Tensor[B, 256, T]; logits[..., t] predicts samples[:, t] from samples[:, :t].
        """
        inputs = F.pad(samples[:, :-1], (1, 0), value=SILENCE)
        x = self.input_embedding(inputs).transpose(1, 2)  # [B, C, T]
        cond = self.conditioning(latents, speaker)
        mode = self.activation_checkpointing if torch.is_grad_enabled() else None
        if mode not in CHECKPOINTING:
            raise ValueError(f"activation_checkpointing must be one of {CHECKPOINTING}, got {mode!r}")
        group = {None: len(self.blocks), "block": 1, "stack": self.layers_per_stack}[mode]
        skips = None
        for first in range(0, len(self.blocks), group):
            blocks = range(first, min(first + group, len(self.blocks)))
            if mode is None:
                x, skip = self._run_blocks(blocks, x, cond)
            else:
                x, skip = checkpoint(self._run_blocks, blocks, x, cond, use_reentrant=False)
            skips = skip if skips is None else skips + skip
        return self.head(skips)

    def _run_blocks(self, blocks: range, x: Tensor, cond: Tensor) -> tuple[Tensor, Tensor]:
        """Blocks ``blocks`` in order: x Tensor[B, C, T] -> (their output, the sum of their skips [B, S, T])."""
        skips = None
        for i in blocks:
            if self.upsample == "linear":
                x, skip = self.blocks[i](x, interpolate_frames(cond[:, i], self.hop_length), 1)
            else:
                x, skip = self.blocks[i](x, cond[:, i], self.hop_length)
            skips = skip if skips is None else skips + skip
        return x, skips

    def loss(self, target: Tensor, latents: Tensor, speaker: Tensor) -> DecoderLoss:
        """The teacher-forced cross-entropy of the μ-law samples of target Tensor[B, 1, T]."""
        samples = mu_law_encode(target[:, 0])
        logits = self(samples, latents, speaker)
        ce = F.cross_entropy(logits, samples)
        return DecoderLoss(losses={"reconstruction": ce}, score=ce.detach(), output=logits)

    def generate(self, latents: list[Tensor], speakers: Tensor, config, generator: torch.Generator | None = None,
                 progress: bool = False) -> list[Tensor]:
        """Cached autoregressive generation, sampled or argmax and folded as ``config`` says
        (models/generation.py)."""
        conds = [Conditioning(self, z, speakers[i]) for i, z in enumerate(latents)]
        return generate(self, conds, config, generator, progress)

    def describe(self) -> str:
        return (f"wavenet, {len(self.blocks)} blocks, receptive field {self.receptive_field} samples, "
                f"up to {self.receptive_field_codes} codes")
