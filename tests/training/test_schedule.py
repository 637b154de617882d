"""train.lr_schedule, train.snapshot_minutes and train.checkpoint_activations in the loop."""

from __future__ import annotations

import math

import pytest
import torch
from omegaconf import OmegaConf

from vqspeech.errors import UserError
from vqspeech.training import train
from vqspeech.training.keys import learning_rate


def schedule(**keys):
    base = {"lr": 1.0, "lr_schedule": "cosine", "warmup_steps": 10, "final_lr_fraction": 0.1, "max_steps": 110,
            "max_minutes": None}
    return OmegaConf.create({**base, **keys})


def test_warm_up_is_linear_then_cosine_ends_at_the_floor():
    tcfg = schedule()
    assert learning_rate(tcfg, 0, 0) == 0.0 and learning_rate(tcfg, 5, 0) == pytest.approx(0.5 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 5 / 110))))
    assert learning_rate(tcfg, 110, 0) == pytest.approx(0.1)
    values = [learning_rate(tcfg, s, 0) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(values, values[1:]))  # monotone after warm-up


def test_exponential_decays_geometrically_and_constant_stays():
    tcfg = schedule(lr_schedule="exponential", warmup_steps=0, max_steps=100)
    assert learning_rate(tcfg, 50, 0) == pytest.approx(0.1 ** 0.5)
    assert learning_rate(tcfg, 100, 0) == pytest.approx(0.1)
    assert learning_rate(schedule(lr_schedule="constant", warmup_steps=0), 77, 1e6) == 1.0


def test_a_time_bound_that_comes_first_sets_the_pace():
    tcfg = schedule(warmup_steps=0, max_steps=10 ** 9, max_minutes=2.0)
    assert learning_rate(tcfg, 5, 60.0) == pytest.approx(0.1 + 0.9 * 0.5)  # half the minutes: cosine midpoint
    assert learning_rate(tcfg, 5, 1e4) == pytest.approx(0.1)


@pytest.mark.parametrize("override, message", [
    ("train.lr_schedule=linear", "train.lr_schedule must be constant, cosine or exponential"),
    ("train.final_lr_fraction=0", "train.final_lr_fraction must be in (0, 1]"),
    ("train.checkpoint_activations=layer", "train.checkpoint_activations must be null, block or stack"),
    ("train.snapshot_minutes=0", "train.snapshot_minutes must be positive"),
])
def test_bad_schedule_keys_are_one_line_errors(tiny_config, override, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        train(tiny_config(override), progress=False)


def test_checkpointed_schedule_run_keeps_snapshots_and_matches_plain_weights(tiny_config, tmp_path):
    """A tiny run with activation checkpointing and a cosine schedule trains; with snapshot_minutes tiny,
    every step leaves a minutes-NNN snapshot; the weights equal an identical run without checkpointing."""
    common = ("train.max_steps=3", "train.lr_schedule=cosine", "train.warmup_steps=1", "train.valid_every=3")
    plain = train(tiny_config(*common, run_dir=tmp_path / "plain"), progress=False)
    checkpointed = train(tiny_config(*common, "train.checkpoint_activations=block", "train.snapshot_minutes=1e-9",
                                     run_dir=tmp_path / "ckpt"), progress=False)
    assert plain.step == checkpointed.step == 3
    snapshots = sorted(p.name for p in (tmp_path / "ckpt" / "checkpoints").glob("minutes-*.pt"))
    assert len(snapshots) >= 1
    a = torch.load(plain.checkpoint, weights_only=True)["model"]
    b = torch.load(checkpointed.checkpoint, weights_only=True)["model"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)
