"""Frame-rate conditioning at sample rate: the linear interpolation between frame centres that the WaveNet
decoder trains with (:func:`interpolate_frames`) and the per-sample mix its cached generation steps through
(:func:`frame_mix`), one position formula for both."""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor


def interpolate_frames(cond: Tensor, hop: int) -> Tensor:
    """Frame-rate conditioning to sample rate by linear interpolation between frame centres.

    cond: Tensor[B, C, F] -> Tensor[B, C, F·hop]. Sample s of frame f lies at frame position
    f + (s + 0.5)/hop − 0.5, and mixes the two frames around it; before the first frame's centre and after
    the last one's the edge frame holds (``align_corners=False``).
    """
    return F.interpolate(cond, size=cond.shape[-1] * hop, mode="linear", align_corners=False)


def frame_mix(hop: int) -> list[tuple[int, float]]:
    """What :func:`interpolate_frames` mixes, per sample s = 0 … hop − 1 of a frame f: (the lower of the two
    frames, relative to f: −1 before the frame's centre, else 0; the weight of the frame after it, in [0, 1)).
    The weight is exactly 0 only at an odd hop's centre sample."""
    positions = [(s + 0.5) / hop - 0.5 for s in range(hop)]
    return [(math.floor(p), p - math.floor(p)) for p in positions]
