"""The learned prior over the codes: the VQ-VAE's second half (van den Oord et al. 2017, §4.3).

An autoregressive model of a code sequence, conditioned on the speaker: input position t holds code t − 1
(``BOS``, index K, before the first), output t a K-way distribution over code t. Two kinds
(``prior.kind``, configs/prior/):

* ``wavenet`` (the default, the paper's choice): dilated causal gated convolutions over code embeddings,
  the decoder's own residual block (nn/wavenet_block.py) with the speaker as global conditioning. Kernel 3
  and dilations 1 … 128 see 511 codes (about 2 s at 250 Hz). It trains in parallel, and steps one code at a
  time from cached past inputs with the decoder's :class:`~vqspeech.models.generation.IncrementalWaveNet`.
* ``transformer``: a small causal Transformer over a window of ``context`` codes (GSLM's unit LM), for GPUs.

The speaker is a training speaker's index LongTensor[B] (a run with a speaker table; −1: none) or its
speaker vector Tensor[B, V] (a reference run; a zero row: none). In training, ``speaker_dropout`` of the
rows see no speaker, so one model also gives the unconditional prior: the difference of the two
cross-entropies is the voice the codes still carry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vqspeech.nn import GatedResidualBlock

PRIOR_KINDS = ("wavenet", "transformer")


class _SpeakerCondition(nn.Module):
    """speaker ids LongTensor[B] (−1: none) or vectors Tensor[B, V] (zero rows: none) -> Tensor[B, E]."""

    def __init__(self, speakers: int, dim: int, vector_dim: int | None):
        super().__init__()
        self.vector_dim = vector_dim
        if vector_dim is None:
            self.table = nn.Embedding(speakers + 1, dim)  # the last row: no speaker
        else:
            self.projection = nn.Linear(vector_dim, dim)
            self.none = nn.Parameter(torch.zeros(dim))

    def forward(self, speaker: Tensor | None, batch: int, dropout: float = 0.0) -> Tensor:
        device = (self.table.weight if self.vector_dim is None else self.none).device
        if self.vector_dim is None:
            ids = torch.full((batch,), -1, dtype=torch.long, device=device) if speaker is None else speaker.long()
            if dropout:
                ids = torch.where(torch.rand(batch, device=device) < dropout, -1, ids)
            return self.table(torch.where(ids < 0, self.table.num_embeddings - 1, ids))
        if speaker is None:
            return self.none.expand(batch, -1)
        vectors = speaker.to(self.projection.weight.dtype)
        absent = vectors.abs().sum(-1) == 0
        if dropout:
            absent = absent | (torch.rand(batch, device=device) < dropout)
        return torch.where(absent[:, None], self.none, self.projection(vectors))


class Prior(nn.Module):
    """What both kinds share: the code alphabet, the speaker condition and the scoring of whole sequences."""

    kind = ""

    def __init__(self, codebook_size: int, speakers: int, speaker_dim: int, speaker_vector_dim: int | None,
                 speaker_dropout: float):
        super().__init__()
        if codebook_size < 2:
            raise ValueError(f"a prior needs a codebook of 2 or more codes, got {codebook_size}")
        if not 0.0 <= speaker_dropout < 1.0:
            raise ValueError(f"prior.speaker_dropout must lie in [0, 1), got {speaker_dropout}")
        self.codebook_size = codebook_size
        self.bos = codebook_size  # the input before the first code
        self.speaker_dropout = speaker_dropout
        self.speaker = _SpeakerCondition(speakers, speaker_dim, speaker_vector_dim)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def inputs(self, codes: Tensor) -> Tensor:
        """codes LongTensor[B, F] -> the inputs that predict them, LongTensor[B, F]: BOS, codes[:, :-1]."""
        return F.pad(codes[:, :-1], (1, 0), value=self.bos)

    def forward(self, inputs: Tensor, speaker: Tensor | None = None) -> Tensor:
        """inputs LongTensor[B, F] (code t − 1 at t, BOS first) -> logits Tensor[B, K, F] over code t."""
        raise NotImplementedError

    def log_probs(self, codes: Tensor, speaker: Tensor | None = None) -> Tensor:
        """log p(code_t | codes_<t, speaker) in nats, Tensor[B, F], of whole sequences LongTensor[B, F]."""
        logits = self(self.inputs(codes), speaker)
        if logits.dtype in (torch.float16, torch.bfloat16):  # under autocast
            logits = logits.float()
        return -F.cross_entropy(logits, codes, reduction="none")

    def summary(self) -> str:
        count = sum(p.numel() for p in self.parameters()) / 1e6
        return (f"{type(self).__name__}: {count:.2f}M parameters, K = {self.codebook_size}, receptive field "
                f"{self.receptive_field} codes, speaker dropout {self.speaker_dropout}")

    def stepper(self, speaker: Tensor | None, batch: int) -> "Stepper":
        """A generator of logits one code at a time, for sampling and entropy decoding."""
        raise NotImplementedError


class Stepper:
    """``step(previous) -> logits``: previous LongTensor[B] (BOS first) -> Tensor[B, K] for the next code."""

    def step(self, previous: Tensor) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError


class WaveNetPrior(Prior):
    """Args:
        codebook_size: K. speakers: S training speakers. speaker_vector_dim: V for a reference run, else None.
        channels: C residual channels. skip_channels: S of the skip path. kernel_size, layers, stacks:
            dilations 1, 2, …, 2^(layers−1), ``stacks`` times. speaker_dim: E. dropout: of the input
            embeddings and the skip sum, in training.
    """

    kind = "wavenet"
    hop_length = None  # one global conditioning frame (IncrementalWaveNet reads both)
    upsample = "repeat"

    def __init__(self, codebook_size: int, speakers: int, speaker_vector_dim: int | None = None,
                 channels: int = 128, skip_channels: int = 128, kernel_size: int = 3, layers: int = 8,
                 stacks: int = 1, speaker_dim: int = 64, speaker_dropout: float = 0.1, dropout: float = 0.0):
        super().__init__(codebook_size, speakers, speaker_dim, speaker_vector_dim, speaker_dropout)
        if layers < 1 or stacks < 1 or kernel_size < 2:
            raise ValueError("prior.layers and prior.stacks must be 1 or more, prior.kernel_size 2 or more")
        self.channels = channels
        self.dilations = [2 ** i for _ in range(stacks) for i in range(layers)]
        self.input_embedding = nn.Embedding(codebook_size + 1, channels)
        self.global_projection = nn.Linear(speaker_dim, len(self.dilations) * 2 * channels)
        self.blocks = nn.ModuleList(GatedResidualBlock(channels, skip_channels, kernel_size, d)
                                    for d in self.dilations)
        self.head = nn.Sequential(nn.ReLU(), nn.Conv1d(skip_channels, skip_channels, 1), nn.ReLU(),
                                  nn.Conv1d(skip_channels, codebook_size, 1))
        self.dropout = nn.Dropout(dropout)  # in training only: on the input embeddings and the skip sum

    @property
    def receptive_field(self) -> int:
        """Codes one prediction sees, its own input included."""
        return (self.blocks[0].conv.kernel_size[0] - 1) * sum(self.dilations) + 1

    def conditioning(self, speaker: Tensor | None, batch: int, dropout: float = 0.0) -> Tensor:
        """Every block's speaker conditioning, Tensor[B, L, 2C, 1] (one frame: it is global)."""
        cond = self.global_projection(self.speaker(speaker, batch, dropout))
        return cond.view(batch, len(self.blocks), 2 * self.channels, 1)

    def forward(self, inputs: Tensor, speaker: Tensor | None = None) -> Tensor:
        batch, length = inputs.shape
        cond = self.conditioning(speaker, batch, self.speaker_dropout if self.training else 0.0)
        x = self.dropout(self.input_embedding(inputs)).transpose(1, 2)  # [B, C, F]
        skips = 0
        for i, block in enumerate(self.blocks):
            x, skip = block(x, cond[:, i], length)
            skips = skips + skip
        return self.head(self.dropout(skips))

    def stepper(self, speaker: Tensor | None, batch: int) -> Stepper:
        from vqspeech.models.generation import IncrementalWaveNet

        net = IncrementalWaveNet(self)
        net.start(self.conditioning(speaker, batch))
        return net


class TransformerPrior(Prior):
    """A causal Transformer (pre-norm) over at most ``context`` codes, the speaker added to every input.

    Longer sequences are scored in windows of ``context`` codes overlapping by half, each keeping the
    predictions of its second half (:meth:`window_start`): every code sees between context/2 and
    context − 1 codes before it, the same in a parallel pass and one code at a time.
    """

    kind = "transformer"

    def __init__(self, codebook_size: int, speakers: int, speaker_vector_dim: int | None = None, dim: int = 256,
                 layers: int = 4, heads: int = 4, context: int = 512, dropout: float = 0.1,
                 speaker_dim: int = 64, speaker_dropout: float = 0.1):
        super().__init__(codebook_size, speakers, speaker_dim, speaker_vector_dim, speaker_dropout)
        if context < 2 or context % 2 or dim % heads:
            raise ValueError(f"prior.context must be even and 2 or more, and prior.dim a multiple of prior.heads "
                             f"(got context {context}, dim {dim}, heads {heads})")
        self.context = context
        self.input_embedding = nn.Embedding(codebook_size + 1, dim)
        self.position = nn.Embedding(context, dim)
        self.speaker_projection = nn.Linear(speaker_dim, dim)
        layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout, batch_first=True, norm_first=True)
        self.layers = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, codebook_size)

    @property
    def receptive_field(self) -> int:
        return self.context

    def window_start(self, t: int) -> int:
        """Where the window that predicts code t starts: 0 up to ``context``, then the multiple of
        context/2 that leaves code t between context/2 and context − 1 codes of history."""
        half = self.context // 2
        return max(0, (t // half - 1) * half)

    def forward(self, inputs: Tensor, speaker: Tensor | None = None) -> Tensor:
        batch, length = inputs.shape
        voice = self.speaker_projection(self.speaker(speaker, batch, self.speaker_dropout if self.training else 0.0))
        half = self.context // 2
        out = [self._window(inputs[:, : self.context], voice)]
        for start in range(half, length - half, half):  # window [start, start + context) keeps its second half
            out.append(self._window(inputs[:, start:start + self.context], voice)[..., half:])
        return torch.cat(out, dim=-1)

    def _window(self, inputs: Tensor, voice: Tensor) -> Tensor:
        """inputs LongTensor[B, L ≤ context], voice Tensor[B, dim] -> logits Tensor[B, K, L]."""
        length = inputs.shape[1]
        positions = torch.arange(length, device=inputs.device)
        x = self.input_embedding(inputs) + self.position(positions) + voice[:, None]
        mask = nn.Transformer.generate_square_subsequent_mask(length, device=inputs.device, dtype=x.dtype)
        x = self.layers(x, mask=mask, is_causal=True)
        return self.head(self.norm(x)).transpose(1, 2)

    def stepper(self, speaker: Tensor | None, batch: int) -> Stepper:
        return _WindowStepper(self, speaker)


class _WindowStepper(Stepper):
    """The transformer's steps: each re-runs the window that predicts the next code in a parallel pass
    (:meth:`TransformerPrior.window_start`; no key/value cache)."""

    def __init__(self, prior: TransformerPrior, speaker: Tensor | None):
        self.prior, self.speaker, self.history = prior, speaker, []

    def step(self, previous: Tensor) -> Tensor:
        self.history.append(previous)
        t = len(self.history) - 1
        start = self.prior.window_start(t)
        window = torch.stack(self.history[start:], dim=1)
        batch = window.shape[0]
        voice = self.prior.speaker_projection(self.prior.speaker(self.speaker, batch))
        return self.prior._window(window, voice)[..., -1]


def prior_kwargs(spec: Mapping[str, Any], codebook_size: int, speakers: Sequence[str],
                 speaker_vector_dim: int | None, codes_hash: str) -> dict[str, Any]:
    """What a prior checkpoint stores to rebuild its model: the ``prior`` group's options, the code alphabet,
    the run's speakers and the hash of the VQ-VAE checkpoint whose codes it models."""
    return {"kind": "prior", "prior": dict(spec), "codebook_size": int(codebook_size), "speakers": list(speakers),
            "speaker_vector_dim": speaker_vector_dim, "codes_hash": codes_hash}


def build_prior(kwargs: Mapping[str, Any]) -> Prior:
    """The prior of :func:`prior_kwargs` output, untrained.

    Raises:
        ValueError: an unknown kind or a bad option value. TypeError: an option the kind does not take.
    """
    spec = dict(kwargs["prior"])
    kind = spec.pop("kind", "wavenet")
    classes = {"wavenet": WaveNetPrior, "transformer": TransformerPrior}
    if kind not in classes:
        raise ValueError(f"prior.kind must be one of {', '.join(PRIOR_KINDS)}, got {kind!r}")
    return classes[kind](kwargs["codebook_size"], len(kwargs["speakers"]), kwargs.get("speaker_vector_dim"), **spec)
