"""The speaker table: names of the training speakers and a learned embedding per speaker."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from vqspeech.errors import UserError


class SpeakerTable(nn.Module):
    """Global conditioning: speaker name -> index -> embedding [E].

    The names are part of the model (saved with every checkpoint) so that ``--speaker p225`` means the
    same voice at conversion time as at training time.
    """

    def __init__(self, names: Sequence[str], dim: int):
        super().__init__()
        if len(set(names)) != len(names):
            raise ValueError("speaker names must be unique")
        self.names = list(names)
        self.dim = dim
        self.embedding = nn.Embedding(len(self.names), dim)

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise UserError(f"unknown speaker {name!r}; this model knows: {', '.join(self.names)}") from None

    def ids(self, names: Sequence[str], device: torch.device | None = None) -> Tensor:
        """LongTensor[B] of indices for names."""
        return torch.tensor([self.index(n) for n in names], dtype=torch.long, device=device)

    def forward(self, speaker_ids: Tensor) -> Tensor:
        """speaker_ids: LongTensor[B] -> Tensor[B, E]."""
        return self.embedding(speaker_ids)
