"""What the VQ-VAE asks of its decoder, whatever makes the samples: a training loss and generated audio.

Two decoders share this interface (``model.decoder.kind``, configs/decoder/):

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

import inspect
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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


def _decoders() -> dict[str, type[Decoder]]:
    from vqspeech.models.parallel import ParallelDecoder
    from vqspeech.models.wavenet import WaveNetDecoder

    return {"wavenet": WaveNetDecoder, "parallel": ParallelDecoder}


_BUILT_FROM_THE_MODEL = ("latent_dim", "speaker_dim", "hop_length", "sample_rate")  # not options


def decoder_kinds() -> tuple[str, ...]:
    return tuple(_decoders())


def options_of(kind: str) -> tuple[str, ...]:
    """The option names a decoder kind takes (its constructor's arguments beyond the model's sizes)."""
    return tuple(name for name in inspect.signature(_decoders()[kind]).parameters
                 if name not in _BUILT_FROM_THE_MODEL)


def decoder_options(spec: Mapping[str, Any]) -> dict[str, Any]:
    """``model.decoder`` with only its kind's own options (a model file's WaveNet sizes are left out when
    decoder=parallel is chosen). No ``kind`` is the WaveNet (checkpoints made before there were two).

    Raises:
        ValueError: an unknown kind, or an option that no kind takes.
    """
    kinds = _decoders()
    kind = spec.get("kind", "wavenet")
    if kind not in kinds:
        raise ValueError(f"model.decoder.kind must be one of {', '.join(kinds)}, got {kind!r} "
                         f"(choose it with decoder=KIND)")
    known = {name for k in kinds for name in options_of(k)}
    unknown = sorted(set(spec) - known - {"kind"})
    if unknown:
        raise ValueError(f"model.decoder has no option {', '.join(unknown)} (the {kind} options are "
                         f"{', '.join(options_of(kind))})")
    own = options_of(kind)
    return {"kind": kind, **{k: v for k, v in spec.items() if k in own}}


def build_decoder(spec: Mapping[str, Any], latent_dim: int, speaker_dim: int, hop_length: int,
                  sample_rate: int) -> Decoder:
    """The decoder ``spec`` (``model.decoder``: kind and options) for the given model sizes."""
    options = decoder_options(spec)
    cls = _decoders()[options.pop("kind")]
    given = {"latent_dim": latent_dim, "speaker_dim": speaker_dim, "hop_length": hop_length,
             "sample_rate": sample_rate}
    wanted = inspect.signature(cls).parameters
    return cls(**{k: v for k, v in given.items() if k in wanted}, **options)
