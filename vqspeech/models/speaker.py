"""The decoder's global conditioning: whose voice to speak in.

Two kinds (``model.speaker.kind``, configs/speaker/):
  * ``table``: a learned embedding per training speaker (van den Oord et al. 2017). Only those voices exist.
  * ``reference``: a speaker vector computed from reference audio, projected to the decoder's size, so any
    voice given by a few seconds of audio can be spoken. ``encoder: resemblyzer`` (the default) is the frozen
    Resemblyzer d-vector (:mod:`vqspeech.data.speaker_vectors`, computed outside the model and cached);
    ``encoder: learned`` needs no pretrained model: a small log-mel encoder trained with the VQ-VAE, in the
    manner of AdaIN-VC's speaker encoder (:class:`MelReferenceEncoder`). The mean vector of each training
    speaker is kept with the model, so a training voice can still be named.

Both take speaker indices LongTensor[B] (a reference model then uses the speakers' mean vectors) and give
Tensor[B, E]; a reference model also takes the vectors themselves, Tensor[B, V].
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from vqspeech.errors import UserError

SPEAKER_KINDS = ("table", "reference")


class _Voices(nn.Module):
    """The names of the training speakers, part of the model (saved with every checkpoint) so that
    ``--speaker p225`` means the same voice at conversion time as at training time."""

    kind = ""

    def __init__(self, names: Sequence[str], dim: int):
        super().__init__()
        if len(set(names)) != len(names):
            raise ValueError("speaker names must be unique")
        self.names = list(names)
        self.dim = dim

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise UserError(f"unknown speaker {name!r}; this model knows: {', '.join(self.names)}") from None

    def ids(self, names: Sequence[str], device: torch.device | None = None) -> Tensor:
        """LongTensor[B] of indices for names."""
        return torch.tensor([self.index(n) for n in names], dtype=torch.long, device=device)


class SpeakerTable(_Voices):
    """speaker index -> learned embedding [E]."""

    kind = "table"

    def __init__(self, names: Sequence[str], dim: int):
        super().__init__(names, dim)
        self.embedding = nn.Embedding(len(self.names), dim)

    def forward(self, speaker_ids: Tensor, vectors: Tensor | None = None) -> Tensor:
        """speaker_ids: LongTensor[B] -> Tensor[B, E]. ``vectors`` must be None (a table has no encoder)."""
        if vectors is not None:
            raise UserError("this model has no reference encoder (it was trained with speaker=table); name a "
                            "training voice with --speaker NAME (--list-speakers shows them)")
        return self.embedding(speaker_ids)


class MelReferenceEncoder(nn.Module):
    """A speaker encoder trained jointly with the model (no pretrained weights): audio [B, 1, T] -> log-mel
    frames (80 bands, 16 ms hop) -> 3 × (conv k5 + ReLU) -> mean over time -> linear -> [B, V]."""

    HOP = 256

    def __init__(self, sample_rate: int, dim: int = 128, channels: int = 128):
        super().__init__()
        from vqspeech.nn.spectral import FrameFeatures

        self.features = FrameFeatures("logmel", sample_rate, self.HOP, n_mels=80)
        layers, width = [], self.features.n_features
        for _ in range(3):
            layers += [nn.Conv1d(width, channels, 5, padding=2), nn.ReLU()]
            width = channels
        self.convs = nn.Sequential(*layers)
        self.out = nn.Linear(channels, dim)

    def forward(self, audio: Tensor) -> Tensor:
        """audio Tensor[B, 1, T] (T ≥ 256) -> Tensor[B, V]."""
        wav = audio[:, 0, : audio.shape[-1] // self.HOP * self.HOP]
        mel = self.features(wav) / 20.0  # dB / 20: unit-ish scale
        return self.out(self.convs(mel).mean(dim=-1))


class ReferenceSpeaker(_Voices):
    """speaker vector [V] (from reference audio) -> linear projection -> [E]; ``means`` [S, V] holds each
    training speaker's mean vector (a buffer: saved in the state dict, set by training). With
    ``encoder="learned"`` the vectors come from :meth:`embed_audio`, this module's own encoder."""

    kind = "reference"
    ENCODERS = ("resemblyzer", "learned")

    def __init__(self, names: Sequence[str], dim: int, encoder: str = "resemblyzer", vector_dim: int = 256,
                 segment_seconds: float = 2.0, reference_seconds: float = 1.0, sample_rate: int = 16000):
        super().__init__(names, dim)
        if encoder not in self.ENCODERS:
            raise ValueError(f"model.speaker.encoder must be one of {', '.join(self.ENCODERS)}, got {encoder!r}")
        self.encoder, self.vector_dim, self.segment_seconds = encoder, vector_dim, segment_seconds
        self.reference_seconds = reference_seconds  # learned: the reference crop of each training crop
        self.register_buffer("means", torch.zeros(len(self.names), vector_dim))
        self.projection = nn.Linear(vector_dim, dim)
        self.reference_encoder = MelReferenceEncoder(sample_rate, vector_dim) if encoder == "learned" else None

    def embed_audio(self, audio: Tensor) -> Tensor:
        """The learned encoder's vectors: audio Tensor[B, 1, T] -> Tensor[B, V]."""
        if self.reference_encoder is None:
            raise ValueError("this model's speaker vectors come from Resemblyzer, not from its own encoder")
        return self.reference_encoder(audio)

    def set_means(self, means: Tensor) -> None:
        """means: Tensor[S, V], one unit-norm vector per training speaker, in ``names`` order."""
        if tuple(means.shape) != tuple(self.means.shape):
            raise ValueError(f"speaker means must be {tuple(self.means.shape)}, got {tuple(means.shape)}")
        self.means.copy_(means)

    def forward(self, speaker_ids: Tensor | None, vectors: Tensor | None = None) -> Tensor:
        """speaker_ids LongTensor[B] (their means are used) or vectors Tensor[B, V] -> Tensor[B, E]."""
        if vectors is None:
            vectors = self.means[speaker_ids]
        return self.projection(vectors.to(self.projection.weight.dtype))


def build_speakers(spec: Mapping[str, Any] | None, names: Sequence[str], dim: int,
                   sample_rate: int = 16000) -> SpeakerTable | ReferenceSpeaker:
    """The conditioning ``model.speaker`` names; kwargs without one (checkpoints before it existed) mean a table.

    Raises:
        ValueError: an unknown kind or option value. TypeError: an option the kind does not take.
    """
    spec = dict(spec or {"kind": "table"})
    kind = spec.pop("kind", "table")
    if kind == "table":
        if spec:
            raise TypeError(f"model.speaker table takes no options (got {sorted(spec)})")
        return SpeakerTable(names, dim)
    if kind == "reference":
        return ReferenceSpeaker(names, dim, sample_rate=sample_rate, **spec)
    raise ValueError(f"model.speaker.kind must be one of {', '.join(SPEAKER_KINDS)}, got {kind!r}")
