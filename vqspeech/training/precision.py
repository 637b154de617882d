"""train.precision: fp32, or autocast to bfloat16 / float16 for the encoder and decoder.

  fp32  everything in float32 (the default of configs/train/default.yaml).
  auto  bf16 where the hardware computes it natively (a CUDA GPU that supports bfloat16; a CPU whose oneDNN
        has bf16 kernels, i.e. avx512_bf16 or AMX), else fp32. The CPU recipes' default
        (configs/train/cpu.yaml): bf16 without such units is emulated and slower than fp32.
  bf16  torch.autocast(bfloat16) on CUDA or the CPU; bfloat16 has float32's range, so no loss scaling.
  fp16  torch.autocast(float16) with a GradScaler, CUDA only. A step whose scaled gradient overflows
        makes no update and lowers the scale (the GradScaler's usual behaviour); it is not counted as a
        non-finite step.

Weights, optimizer state and the VQ codebook stay float32 throughout; the VQ layer turns autocast off
for its distances and codebook updates (see quantization/vq.py).
"""

from __future__ import annotations

import torch

from vqspeech.errors import UserError

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
CHOICES = ("auto", *DTYPES)
DEVICES = {"bf16": ("cuda", "cpu"), "fp16": ("cuda",)}  # device types each reduced precision runs on


class Precision:
    """The autocast context and gradient scaler for one precision on one device."""

    def __init__(self, name: str, device: torch.device):
        if name not in CHOICES:
            raise UserError(f"train.precision must be one of {', '.join(CHOICES)}, got {name!r}")
        if name == "auto":
            name = "bf16" if native_bf16(device) else "fp32"
        if name in DEVICES and device.type not in DEVICES[name]:
            raise UserError(f"train.precision={name} runs on {' or '.join(DEVICES[name])}, not {device.type}; "
                            f"use {'bf16 or ' if device.type in DEVICES['bf16'] else ''}fp32")
        self.name = name
        self.device = device
        self.dtype = DTYPES[name]
        self.scaler = torch.amp.GradScaler(device.type, enabled=name == "fp16")

    def autocast(self) -> torch.autocast:
        """The context for forward passes (a disabled autocast for fp32)."""
        return torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None)


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 in hardware (so bf16 autocast is faster than fp32 there)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False
