"""What every bottleneck returns, and what every bottleneck offers the rest of the model (:class:`Bottleneck`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class BottleneckResult:
    """Output of a bottleneck's forward (the VQ layer, the VAE's Gaussian, the plain autoencoder's identity).

    Attributes:
        quantized: Tensor[B, D, F], what the decoder is conditioned on: the selected codebook vectors with a
            straight-through gradient to z_e (VQ), a sample of the posterior (VAE, its mean outside
            training), or z_e itself (AE).
        codes: what the bottleneck transmits, and what ``bottleneck.decode`` turns into the decoder's conditioning:
            LongTensor[B, F] code indices for a discrete bottleneck, Tensor[B, D, F] latents for a continuous
            one (a VAE's posterior mean; outside training that equals ``quantized``).
        losses: unweighted loss terms by name. VQ: "commitment" = ‖z_e − sg[e]‖², and "codebook" =
            ‖sg[z_e] − e‖² when the codebook is learnt by gradient (absent in EMA mode). VAE: "kl".
            The training loop weights each by the key of the same name in ``train.loss_weights``.
        metrics: detached scalars. VQ: "perplexity" (exp entropy of the batch code histogram) and "used_codes"
            (distinct codes in the batch). VAE: "kl_nats_per_frame" (the KL before free bits).
    """

    quantized: torch.Tensor
    codes: torch.Tensor
    losses: dict[str, torch.Tensor] = field(default_factory=dict)
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)


class Bottleneck(nn.Module):
    """What the model, training, generation and the evaluations ask of a bottleneck, with the defaults of a
    continuous one. ``forward(z_e [B, D, F]) -> BottleneckResult``. Training, generation and convert use every
    bottleneck alike; the evaluations that count codes ask ``discrete``.

    Attributes:
        kind: "vq", "vae" or "ae" (the ``model.bottleneck.kind`` it was built from), set by each subclass.
        discrete: whether ``codes`` are indices into a codebook. The phoneme probe scores a continuous
            bottleneck through k-means (its --kmeans-k clusters), fitted on its training frames; the report
            and the reconstruction evaluation show its code counts as n/a, and the conversion evaluation its
            code agreement.
        codebook_size: K of a discrete bottleneck; None for a continuous one.
    """

    kind: str
    discrete = False

    def __init__(self, codebook_size: int | None = None):
        super().__init__()
        if codebook_size is not None and codebook_size < 1:
            raise ValueError(f"codebook_size must be at least 1, got {codebook_size}")
        self.codebook_size = codebook_size

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes as in BottleneckResult.codes -> the decoder's conditioning Tensor[B, D, F]."""
        return codes

    def bits_per_frame(self) -> float | None:
        """The nominal bits a frame carries (log2 K for VQ); None for a continuous bottleneck, whose rate is
        unbounded (AE) or measured (a VAE's KL, see eval.latent_usage)."""
        return None

    def reset_optimizer_state(self, optimizer: torch.optim.Optimizer) -> int:
        """Called by the loop before each optimizer step; only the gradient VQ codebook has state to reset."""
        return 0
