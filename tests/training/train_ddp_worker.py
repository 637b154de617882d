"""Run by test_distributed.py under ``torchrun --nproc_per_node=2``: ``vqspeech train`` through cli.main, as
``-m vqspeech`` would, recording what this rank did.

    torchrun ... train_ddp_worker.py OUT train RECIPE [override ...]

Writes OUT/rank{RANK}.pt: the model's state right after it was built ("initial") and when training
returned ("final"), the checkpoint files this rank wrote ("writes"), the crop indices it read ("items"),
and the CLI's exit status ("code").
"""

import os
import sys
from pathlib import Path

import torch

from vqspeech import cli
from vqspeech.data.dataset import RandomCrops
from vqspeech import checkpoint as ckpt
from vqspeech.training import vqvae_task

out, argv = Path(sys.argv[1]), sys.argv[2:]
built: dict = {}
writes: list[str] = []
items: list[int] = []

build_model, save_checkpoint, getitem = vqvae_task.build_model, ckpt.save_checkpoint, RandomCrops.__getitem__


def recording_build(kwargs):
    model = build_model(kwargs)
    built["model"] = model
    built["initial"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return model


def recording_save(path, payload):
    writes.append(Path(path).name)
    return save_checkpoint(path, payload)


def recording_getitem(self, i):
    items.append(i)
    return getitem(self, i)


vqvae_task.build_model, ckpt.save_checkpoint, RandomCrops.__getitem__ = recording_build, recording_save, recording_getitem
code = cli.main(argv)
torch.save({"initial": built["initial"], "final": built["model"].state_dict(), "writes": writes, "items": items,
            "code": code}, out / f"rank{os.environ['RANK']}.pt")
sys.exit(code)
