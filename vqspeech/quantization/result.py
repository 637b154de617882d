"""What the VQ layer returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class QuantizedResult:
    """Output of :meth:`VectorQuantizer.forward`.

    Attributes:
        quantized: Tensor[B, D, F], the selected codebook vectors with a straight-through gradient to z_e.
        codes: LongTensor[B, F], index of the nearest codebook vector per frame.
        losses: unweighted loss terms by name; "commitment" = ‖z_e − sg[e]‖², and "codebook" =
            ‖sg[z_e] − e‖² when the codebook is learnt by gradient (absent in EMA mode).
            The training loop weights each by the key of the same name in ``train.loss_weights``.
        metrics: detached scalars: "perplexity" (exp entropy of the batch code histogram) and
            "used_codes" (distinct codes in the batch).
    """

    quantized: torch.Tensor
    codes: torch.Tensor
    losses: dict[str, torch.Tensor] = field(default_factory=dict)
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)
