"""The VQ layer under torch.distributed (two gloo processes, see vq_ddp_worker.py): the ranks hold the same codebook
and EMA state after every step, an EMA step equals one process's step on both ranks' batches, init and
restarts come from rank 0, and a NaN on one rank stops the update on every rank (without a hang)."""

import os
import runpy
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

WORKER = Path(__file__).with_name("vq_ddp_worker.py")
worker = runpy.run_path(str(WORKER))  # its batch() and quantisers(), without running its main block
STEPS, NAN_STEP = worker["STEPS"], worker["NAN_STEP"]


def rows_of(z: torch.Tensor) -> torch.Tensor:
    """z [B, D, F] -> rows [B*F, D] in the quantiser's frame order."""
    return z.permute(0, 2, 1).reshape(-1, z.shape[1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """[rank 0's record, rank 1's record] of one run of the worker under torchrun --nproc_per_node=2."""
    out = tmp_path_factory.mktemp("vq_ddp")
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
               f"--master_port={free_port()}", str(WORKER), str(out)]
    done = subprocess.run(command, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1)]


@pytest.mark.parametrize("name", ["ema", "full"])
def test_ranks_hold_the_same_codebook_and_ema_state_after_every_step(ranks, name):
    rank0, rank1 = ranks
    for step in range(STEPS):
        for key, value in rank0["states"][name][step].items():
            assert torch.equal(value, rank1["states"][name][step][key]), (step, key)  # bitwise
    assert not torch.equal(rank0["states"][name][-1]["codebook"], worker["quantisers"]()[name].codebook.detach())


@pytest.mark.parametrize("name", ["ema", "full"])
def test_a_nan_on_one_rank_updates_no_rank(ranks, name):
    for record in ranks:
        before, after = record["states"][name][NAN_STEP - 1], record["states"][name][NAN_STEP]
        assert all(torch.equal(before[k], after[k]) for k in before)
        assert not torch.equal(after["codebook"], record["states"][name][NAN_STEP + 1]["codebook"])


def test_an_ema_step_on_two_ranks_equals_one_process_on_both_batches(ranks):
    rank0, _ = ranks
    vq = worker["quantisers"]()["ema"]
    for step in range(STEPS):
        result = vq(torch.cat([worker["batch"](0, step), worker["batch"](1, step)]))
        state = rank0["states"]["ema"][step]
        torch.testing.assert_close(state["cluster_size"], vq.cluster_size, rtol=0, atol=0)  # integer counts
        torch.testing.assert_close(state["embed_sum"], vq.embed_sum, rtol=1e-6, atol=1e-7)  # summation order
        torch.testing.assert_close(state["codebook"], vq.codebook.detach(), rtol=1e-6, atol=1e-7)
        if step != NAN_STEP:  # the metrics of an updating step describe the global batch, not the rank's own
            assert rank0["metrics"]["ema"][step] == pytest.approx({k: float(v) for k, v in result.metrics.items()})


def test_restart_vectors_come_from_rank_0s_batch(ranks):
    """A codebook row equal to an encoder output is a restart (EMA'd rows are averages): all come from rank 0.
    (The k-means init is rank 0's too: the ranks draw differently, yet hold the same codebook from step 0.)"""
    rank0, rank1 = ranks
    restarted = 0
    for step in range(STEPS):
        codebook = rank0["states"]["full"][step]["codebook"]
        for rank, record in ((0, rank0), (1, rank1)):
            pool = rows_of(record["batches"][step])
            taken = (codebook[:, None, :] == pool[None]).all(-1).any(-1)  # [K]
            if rank == 1:
                assert not taken.any(), step
            restarted += int(taken.sum())
    assert restarted > 0
