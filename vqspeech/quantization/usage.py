"""How a codebook is used: the one place where a code histogram becomes perplexity, entropy, used codes and
bitrates. The VQ layer reports it per training batch; the evaluations (run report, reconstruction, probing)
over a whole split."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class CodeUsage:
    """A code histogram summarised. The tensors are 0-dim and detached, on the histogram's device.

    Attributes:
        codebook_size: K, the histogram's length.
        used_codes: distinct codes with a nonzero count.
        entropy_bits: unigram entropy of the codes, bits per code (0 for an empty histogram).
        perplexity: 2 ** entropy_bits.
        bitrate: nominal, frame_rate × log2 K (bit/s); None without a frame rate.
        entropy_rate: frame_rate × entropy_bits (bit/s); None without a frame rate.
    """

    codebook_size: int
    used_codes: Tensor
    entropy_bits: Tensor
    perplexity: Tensor
    bitrate: float | None = None
    entropy_rate: Tensor | None = None


def code_usage(counts: Tensor, frame_rate: float | None = None) -> CodeUsage:
    """Summarise counts [K] (occurrences of each code), emitted at ``frame_rate`` codes per second if given.

    Computed in float64 (float32 on MPS, which has no float64)."""
    counts = counts.detach()
    dtype = torch.float32 if counts.device.type == "mps" else torch.float64
    probs = counts.to(dtype) / counts.sum().clamp(min=1)
    nonzero = probs[probs > 0]
    entropy = -(nonzero * nonzero.log2()).sum()
    k = counts.numel()
    return CodeUsage(codebook_size=k, used_codes=(counts > 0).sum(), entropy_bits=entropy, perplexity=2 ** entropy,
                     bitrate=None if frame_rate is None else frame_rate * math.log2(k),
                     entropy_rate=None if frame_rate is None else frame_rate * entropy)
