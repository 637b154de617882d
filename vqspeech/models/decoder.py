"""What the VQ-VAE asks of its decoder, whatever makes the samples: a training loss and generated audio.

Two decoders share this interface (``model.decoder.kind``, configs/decoder/; models/builders.py builds
them by kind):

* ``wavenet`` (models/wavenet.py): the paper's autoregressive WaveNet, a 256-way μ-law distribution per
  sample, teacher-forced in training and generated sample by sample (models/generation.py).
* ``parallel`` (models/parallel.py): a frame-rate network of dilated ConvNeXt blocks whose head predicts
  an STFT (magnitude and phase) per code frame; an inverse STFT makes the waveform in one pass.

The composition (models/vqvae.py) calls :meth:`Decoder.loss` in training and validation, and
:meth:`Decoder.generate` wherever audio is made (reconstruct, convert, report, evaluate-*, sample,
decompress, the Python API). Nothing outside models/ asks which kind it holds.

Both decoders work in the same signal domain: the waveform pre-emphasised by the model's
``preemphasis`` (what :meth:`VQVAE.target_signal` gives); the composition de-emphasises what they generate.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from vqspeech.models.generation import GenerationConfig


@dataclass
class DecoderLoss:
    """One teacher-forced (wavenet) or one-pass (parallel) decoding of a batch against its target.

    Attributes:
        losses: unweighted training terms by name (0-dim tensors with gradients), each weighted by
            ``train.loss_weights[name]``: wavenet "reconstruction" (cross-entropy, nats per sample);
            parallel "stft" (multi-resolution STFT) and "mel" (multi-scale log-mel L1).
        score: the decoder's reconstruction score (0-dim, lower is better), what validation, the report and
            latent usage compare: wavenet the cross-entropy in nats per sample, parallel stft + mel.
        output: what the decoder produced: wavenet logits Tensor[B, 256, T], parallel audio Tensor[B, 1, T].
        metrics: detached scalars to log beside the terms.
    """

    losses: dict[str, Tensor]
    score: Tensor
    output: Tensor
    metrics: dict[str, Tensor] = field(default_factory=dict)


class Decoder(nn.Module, ABC):
    """A decoder of quantised latents and a speaker vector into audio.

    Every decoder is built from ``latent_dim`` (D), ``speaker_dim`` (E), ``hop_length`` (samples per
    frame) and ``sample_rate`` (Hz), plus its kind's own options. ``activation_checkpointing`` (None,
    "block" or "stack"; set by the trainer from ``train.checkpoint_activations``) trades compute for memory
    in backward without changing values.
    """

    kind: str = ""
    score_name: str = ""  # what :attr:`DecoderLoss.score` measures, in words (reports)
    stochastic: bool = True  # generation samples (so sampling settings and seeds matter); False: one fixed output
    score_in_nats: bool = True  # the score is a cross-entropy in nats per sample (so its gaps have a bit rate)
    activation_checkpointing: str | None = None

    @abstractmethod
    def loss(self, target: Tensor, latents: Tensor, speaker: Tensor) -> DecoderLoss:
        """target: Tensor[B, 1, T] (the pre-emphasised waveform, T = F · hop); latents: Tensor[B, D, F];
        speaker: Tensor[B, E] -> the decoding's :class:`DecoderLoss`."""

    @abstractmethod
    def generate(self, latents: list[Tensor], speakers: Tensor, config: GenerationConfig,
                 generator: torch.Generator | None = None, progress: bool = False) -> list[Tensor]:
        """Audio of each utterance: latents Tensor[D, F_i] per utterance, speakers Tensor[B, E] ->
        Tensor[F_i · hop] per utterance (the pre-emphasised domain), floats in about [-1, 1]. ``config``
        holds the sampling and folding settings an autoregressive decoder needs; a deterministic one
        ignores them and ``generator``."""

    def describe_generation(self, config: GenerationConfig) -> str:
        """How :meth:`generate` makes audio under ``config``, in words (reports and the harness)."""
        return config.describe()

    @abstractmethod
    def describe(self) -> str:
        """One line for the model summary: the decoder's shape and what it can see."""
