"""Choosing the torch device: CUDA when present, else Apple MPS, else CPU."""

from __future__ import annotations

import contextlib

import torch

from vqspeech.errors import UserError


def pick_device(name: str = "auto") -> torch.device:
    """"auto" picks cuda > mps > cpu; any other name is used as given (and checked)."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {name!r} asked for, but this machine has no CUDA; use device=auto or cpu")
    return device


@contextlib.contextmanager
def single_thread():
    """Run torch on one CPU thread inside the block: one-step-at-a-time loops of small matmuls (the
    prior's cached steps) are faster so, and do not stall when other processes load the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
