"""The pitch stream: an utterance's intonation as a few codes per second beside the content codes, and the
register (mean and spread of log-F0) that says whose pitch it is.

Each pitch frame (``hop`` samples; 640 = 25 frames/s at 16 kHz) gets one of ``levels`` codes: 0 where the
frame is unvoiced, else the voiced log-F0's z-score relative to the utterance's register (its own mean and
spread, :mod:`vqspeech.data.pitch`), clipped to ±``z_range`` and cut into levels − 1 equal bins. The codes
therefore hold the melody and not the voice (Polyak et al. 2021 code speaker-normalised F0 the same way, at
12.5 Hz). The register travels as two numbers per utterance; conversion replaces it with the target's.

The decoder reads, per content frame, the decoded log-F0 in the register it is given (centred on 150 Hz,
scaled by 0.5 nats, 0 where unvoiced) and a voicing flag: two more input channels
(:meth:`PitchStream.features`). Nothing here is learned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

LOG_F0_CENTRE, LOG_F0_SCALE = math.log(150.0), 0.5
CHANNELS = 2  # decoded log-F0, voicing


def register_tensor(register) -> Tensor:
    """Tensor[2] (mean, std of log-F0) of a :class:`vqspeech.data.pitch.Register`; for None (nothing voiced,
    so no code will use it) a register at 150 Hz."""
    return register.as_tensor() if register is not None else torch.tensor([LOG_F0_CENTRE, 0.25])


@dataclass
class PitchCodes:
    """One utterance's pitch stream: codes LongTensor[P] (0 unvoiced) and its register Tensor[2] (mean, std of
    log-F0)."""

    codes: Tensor
    register: Tensor

    def in_register(self, register: Tensor) -> PitchCodes:
        """The same melody in another register Tensor[2] (a conversion's target)."""
        return PitchCodes(self.codes, register.to(self.register))


class PitchStream(nn.Module):
    """Scalar quantiser of normalised log-F0 at ``hop`` samples per frame (a multiple of the content hop).

    Args:
        levels: codes per frame, the unvoiced one included (≥ 3).
        hop: samples per pitch frame.
        z_range: voiced z-scores are clipped to ±z_range before binning.
    """

    def __init__(self, levels: int = 32, hop: int = 640, z_range: float = 3.0):
        super().__init__()
        if levels < 3:
            raise ValueError(f"model.pitch.levels must be at least 3 (unvoiced and two voiced bins), got {levels}")
        if hop < 1 or z_range <= 0:
            raise ValueError(f"model.pitch.hop must be ≥ 1 and z_range > 0, got hop={hop}, z_range={z_range}")
        self.levels, self.hop, self.z_range = levels, hop, z_range

    def bits_per_second(self, sample_rate: int) -> float:
        """Nominal rate of the codes: log2(levels) per frame (the register's 32 bits per utterance aside)."""
        return sample_rate / self.hop * math.log2(self.levels)

    def quantize(self, log_f0: Tensor, voiced: Tensor, register: Tensor) -> Tensor:
        """log_f0: Tensor[B, P] (natural log of Hz), voiced: BoolTensor[B, P], register: Tensor[B, 2] ->
        codes LongTensor[B, P] in [0, levels): 0 unvoiced, else the bin of the clipped z-score."""
        z = ((log_f0 - register[:, :1]) / register[:, 1:]).clamp(-self.z_range, self.z_range)
        bins = self.levels - 1
        index = ((z + self.z_range) / (2 * self.z_range) * bins).floor().clamp(0, bins - 1).long()
        return torch.where(voiced.bool(), index + 1, torch.zeros_like(index))

    def dequantize(self, codes: Tensor, register: Tensor) -> tuple[Tensor, Tensor]:
        """codes LongTensor[B, P], register Tensor[B, 2] -> (log_f0 Tensor[B, P], the bins' centres in that
        register, 0 where unvoiced; voiced BoolTensor[B, P])."""
        bins = self.levels - 1
        z = ((codes - 1).clamp(min=0).float() + 0.5) / bins * (2 * self.z_range) - self.z_range
        voiced = codes > 0
        log_f0 = register[:, :1] + z * register[:, 1:]
        return torch.where(voiced, log_f0, torch.zeros_like(log_f0)), voiced

    def features(self, codes: Tensor, register: Tensor, frames: int, content_hop: int) -> Tensor:
        """What the decoder reads: codes LongTensor[B, P], register Tensor[B, 2] -> Tensor[B, 2, frames] at the
        content rate (each pitch frame repeated hop / content_hop times, cut or held at the end)."""
        if self.hop % content_hop:
            raise ValueError(f"model.pitch.hop={self.hop} must be a multiple of the content hop ({content_hop})")
        log_f0, voiced = self.dequantize(codes, register.float())
        scaled = torch.where(voiced, (log_f0 - LOG_F0_CENTRE) / LOG_F0_SCALE, torch.zeros_like(log_f0))
        stacked = torch.stack([scaled, voiced.float()], dim=1).repeat_interleave(self.hop // content_hop, dim=2)
        if stacked.shape[2] < frames:
            stacked = torch.cat([stacked, stacked[:, :, -1:].expand(-1, -1, frames - stacked.shape[2])], dim=2)
        return stacked[:, :, :frames]

    def extra_repr(self) -> str:
        return f"levels={self.levels}, hop={self.hop}, z_range={self.z_range:g}"
