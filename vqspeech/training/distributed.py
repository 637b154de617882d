"""Several training processes under torchrun: the process group, each process's device, and the few
collectives the loop needs.

``torchrun --nproc_per_node=N -m vqspeech train RECIPE`` starts N processes and sets RANK, WORLD_SIZE and
LOCAL_RANK in each one's environment. :func:`process_group` reads them, joins the group (nccl on CUDA,
gloo on the CPU) and picks the device (cuda:LOCAL_RANK); without them, or with WORLD_SIZE=1, it is a
single process on ``train.device`` and every method here does nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from vqspeech.device import pick_device
from vqspeech.errors import UserError


@dataclass(frozen=True)
class Distributed:
    """Where this process stands among the training processes (rank 0 of 1 when alone)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes checkpoints, config.yaml, TensorBoard and the progress bar."""
        return self.rank == 0

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """The model itself when alone, else in DistributedDataParallel (gradients averaged over ranks).

        broadcast_buffers=False: DDP would otherwise copy rank 0's buffers (the EMA statistics and usage
        counts of the VQ layer) to every rank before each forward, which would hide a rank whose codebook
        state had drifted. The quantiser keeps them equal itself (all-reduced statistics, rank 0's
        restarts), and the tests check that it does. Every parameter that requires a gradient gets one at
        every step, so find_unused_parameters stays off.
        """
        if not self.enabled:
            return model
        return nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, broadcast_buffers=False)

    def mean(self, t: torch.Tensor) -> torch.Tensor:
        """The mean of t (any shape, the same on every rank) over ranks; t itself when alone."""
        if not self.enabled:
            return t
        t = t.clone()
        dist.all_reduce(t)
        return t / self.world_size

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        """The sum of t (any shape, the same on every rank) over ranks; t itself when alone."""
        if not self.enabled:
            return t
        t = t.clone()
        dist.all_reduce(t)
        return t

    def main_says(self, flag: bool, device: torch.device) -> bool:
        """Rank 0's value of flag, on every rank (for decisions such as a wall-clock limit)."""
        if not self.enabled:
            return flag
        t = torch.tensor(int(flag), device=device)
        dist.broadcast(t, src=0)
        return bool(t)

    def any_says(self, flag: bool, device: torch.device) -> bool:
        """True on every rank when flag is true on any (a signal that reached some of the processes)."""
        if not self.enabled:
            return flag
        t = torch.tensor(int(flag), device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t)

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def from_env() -> Distributed:
    """RANK, WORLD_SIZE and LOCAL_RANK as torchrun sets them; rank 0 of 1 when they are absent."""
    try:
        return Distributed(rank=int(os.environ.get("RANK", 0)), world_size=int(os.environ.get("WORLD_SIZE", 1)),
                           local_rank=int(os.environ.get("LOCAL_RANK", 0)))
    except ValueError:
        raise UserError("RANK, WORLD_SIZE and LOCAL_RANK must be integers (torchrun sets them)") from None


def device_for(env: Distributed, requested: str) -> torch.device:
    """train.device for this process: as asked when alone; under torchrun cuda:LOCAL_RANK (auto or cuda)
    or the CPU (cpu, or auto on a machine without CUDA)."""
    if not env.enabled:
        return pick_device(requested)
    if requested == "cpu" or (requested == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if requested not in ("auto", "cuda"):
        raise UserError(f"train.device={requested} under torchrun: use auto, cuda or cpu (each process takes "
                        f"cuda:LOCAL_RANK; choose the GPUs with CUDA_VISIBLE_DEVICES)")
    if not torch.cuda.is_available():
        raise UserError("train.device=cuda asked for, but this machine has no CUDA; use auto or cpu")
    if env.local_rank >= torch.cuda.device_count():
        raise UserError(f"LOCAL_RANK {env.local_rank} but only {torch.cuda.device_count()} CUDA devices; "
                        f"start at most that many processes per node")
    return torch.device("cuda", env.local_rank)


@contextmanager
def process_group(requested_device: str) -> Iterator[tuple[Distributed, torch.device]]:
    """Join the process group torchrun describes (if any) for the duration; yields (env, device).

    A group that is already initialised (by the caller) is used as it is and left open.
    """
    env = from_env()
    device = device_for(env, requested_device)
    owned = env.enabled and not dist.is_initialized()
    if owned:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=env.rank,
                                world_size=env.world_size, device_id=device if device.type == "cuda" else None)
    try:
        yield env, device
    finally:
        if owned:
            dist.destroy_process_group()
