"""Run by test_vq_distributed.py under ``torchrun --nproc_per_node=2``: training-mode steps of two quantisers on
each rank's own batches, recording the state after every step.

    torchrun ... vq_ddp_worker.py OUT

Each rank r quantises batch(r, s) at step s (see :func:`batch`); at NAN_STEP rank 1's batch holds a NaN.
  "ema":  EMA only, no init and no restarts, so its updates can be compared with one process on both ranks'
          batches;
  "full": EMA, k-means init from the first batch and a restart of every code unused for one step.
Writes OUT/rank{RANK}.pt: {name: [state dict after step s, ...]}, the usage metrics of each step, and the
batches this rank saw.
"""

import os
import sys
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist

from vqspeech.quantization import VectorQuantizer

STEPS, NAN_STEP = 5, 3
DIM, CODES = 4, 16


def batch(rank: int, step: int) -> torch.Tensor:
    """z [2, DIM, 6] for this rank and step; rank 1's at NAN_STEP holds a NaN."""
    z = torch.randn(2, DIM, 6, generator=torch.Generator().manual_seed(100 * step + rank))
    if rank == 1 and step == NAN_STEP:
        z[0, 1, 2] = float("nan")
    return z


def quantisers() -> dict[str, VectorQuantizer]:
    torch.manual_seed(0)
    return {"ema": VectorQuantizer(DIM, CODES, ema_decay=0.9).train(),
            "full": VectorQuantizer(DIM, CODES, ema_decay=0.9, init="kmeans", dead_code_steps=1).train()}


if __name__ == "__main__":
    dist.init_process_group("gloo", timeout=timedelta(seconds=60))
    rank = dist.get_rank()
    torch.manual_seed(1000 + rank)  # ranks draw differently: only rank 0's init and restarts may count
    states: dict[str, list] = {}
    metrics: dict[str, list] = {}
    for name, vq in quantisers().items():
        for step in range(STEPS):
            result = vq(batch(rank, step))
            states.setdefault(name, []).append({k: v.clone() for k, v in vq.state_dict().items()})
            metrics.setdefault(name, []).append({k: float(v) for k, v in result.metrics.items()})
    torch.save({"states": states, "metrics": metrics,
                "batches": [batch(rank, s) for s in range(STEPS)]}, Path(sys.argv[1]) / f"rank{os.environ['RANK']}.pt")
    dist.destroy_process_group()
