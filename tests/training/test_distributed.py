"""Two gloo processes under torchrun train the tiny config (EMA quantizer, k-means init, a dead-code restart
at every step): every rank ends with the same weights, codebook and EMA buffers, training moved them, the
ranks read disjoint crops, and only rank 0 wrote files."""

import logging
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vqspeech.training import train
from vqspeech.checkpoint import load_checkpoint

WORKER = Path(__file__).with_name("train_ddp_worker.py")
STEPS, BATCH = 4, 2  # BATCH: train.batch_size of +debug=tiny


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(*args: str, nproc: int = 2, timeout: float = 120) -> subprocess.CompletedProcess:
    """``torchrun --nproc_per_node=nproc args`` on 127.0.0.1:<a free port>, one thread per process."""
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}",
               "--master_addr=127.0.0.1", f"--master_port={free_port()}", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)


# the EMA quantizer, k-means init and a restart of every code unused for a step
EXTRA = ("bottleneck=ema", "model.bottleneck.init=kmeans", "model.bottleneck.dead_code_steps=1", "train.audio_every=null")


def overrides(root: Path, run_dir: Path, *extra: str) -> list[str]:
    """The tiny config (as conftest's tiny_overrides) with EXTRA."""
    return ["+debug=tiny", f"data.root={root}", f"run_dir={run_dir}", "train.device=cpu", *EXTRA, *extra]


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory, demo_recipe, tiny_corpus):
    """(run_dir, [rank 0's record, rank 1's record]) of one 2-process run; see train_ddp_worker.py."""
    out = tmp_path_factory.mktemp("ddp")
    run_dir = out / "run"
    done = torchrun(str(WORKER), str(out), "train", str(demo_recipe),
                    *overrides(tiny_corpus, run_dir, f"train.max_steps={STEPS}"), "-q")
    assert done.returncode == 0, done.stderr[-3000:]
    return run_dir, [torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1)]


def test_every_rank_ends_with_the_same_weights_codebook_and_ema_buffers(two_ranks):
    _, (rank0, rank1) = two_ranks
    assert rank0["final"].keys() == rank1["final"].keys()
    for name in ("bottleneck.codebook", "bottleneck.embed_sum", "bottleneck.cluster_size", "bottleneck.unused_steps",
                 "bottleneck.initialized"):
        assert name in rank0["final"]
    for name, value in rank0["final"].items():
        assert torch.equal(value, rank1["final"][name]), name  # bitwise


def test_training_moved_the_weights_codebook_and_ema_buffers(two_ranks):
    """Guards the test above: the states it compares are not just the common initial ones."""
    _, (rank0, _) = two_ranks
    unchanged = [k for k, v in rank0["final"].items() if torch.equal(v, rank0["initial"][k])]
    assert unchanged == ["bottleneck.unused_steps"]  # zeros: every code is used or restarted at every step
    assert bool(rank0["final"]["bottleneck.initialized"])


def test_only_rank_0_writes_and_its_checkpoint_holds_the_unwrapped_final_state(two_ranks):
    run_dir, (rank0, rank1) = two_ranks
    assert rank1["writes"] == []
    assert set(rank0["writes"]) == {"last.pt", "best.pt"}
    assert len(list((run_dir / "tensorboard").iterdir())) == 1
    saved = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert (saved["step"], saved["world_size"]) == (STEPS, 2)
    assert saved["model"].keys() == rank0["final"].keys()  # no "module." prefix
    assert all(torch.equal(saved["model"][k], v) for k, v in rank0["final"].items())


def test_ranks_read_disjoint_crops_that_together_are_the_single_process_items(two_ranks):
    _, (rank0, rank1) = two_ranks
    assert all(r["code"] == 0 for r in (rank0, rank1))
    assert not set(rank0["items"]) & set(rank1["items"])
    # step s: rank 0 items (2s)·B …, rank 1 items (2s + 1)·B …: two single-process steps' worth
    assert sorted(rank0["items"] + rank1["items"]) == list(range(2 * STEPS * BATCH))


def test_a_two_rank_run_resumes_in_one_process_with_a_warning(two_ranks, tiny_config, tmp_path, caplog):
    run_dir, _ = two_ranks
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    with caplog.at_level(logging.WARNING, logger="vqspeech"):
        result = train(tiny_config(*EXTRA, f"train.max_steps={STEPS + 1}", run_dir=copy), progress=False)
    assert (result.resumed_from, result.step) == (STEPS, STEPS + 1)
    assert "trained by 2 processes, resumed by 1" in caplog.text
    assert load_checkpoint(copy / "checkpoints" / "last.pt")["world_size"] == 1


@pytest.mark.slow
def test_a_resumed_two_rank_run_equals_an_uninterrupted_one(demo_recipe, tiny_corpus, tmp_path):
    """Through ``torchrun -m vqspeech``; resume loads on every rank and each rank continues its own crops."""
    def run(run_dir, steps):
        done = torchrun("-m", "vqspeech", "train", str(demo_recipe),
                        *overrides(tiny_corpus, run_dir, f"train.max_steps={steps}"), "-q")
        assert done.returncode == 0, done.stderr[-3000:]
        return load_checkpoint(run_dir / "checkpoints" / "last.pt")

    straight = run(tmp_path / "a", 4)
    run(tmp_path / "b", 2)
    resumed = run(tmp_path / "b", 4)
    assert (straight["step"], resumed["step"]) == (4, 4)
    for name, value in straight["model"].items():
        assert torch.equal(value, resumed["model"][name]), name
    assert straight["best_valid_loss"] == resumed["best_valid_loss"]
