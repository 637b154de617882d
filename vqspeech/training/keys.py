"""The train.* keys: each declared once with the values the loop can run with (:class:`TrainKeys`,
checked by :func:`check_train_config` before anything is loaded or written), and the schedules they
describe: the learning rate (:func:`learning_rate`) and the loss weights (:func:`loss_weights`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

from omegaconf import DictConfig

from vqspeech.errors import UserError

SCHEDULES = ("constant", "cosine", "exponential")

# The checks of train.* values, by what a value must be: (wording of the error, test it passes).
_AT_LEAST_1 = ("at least 1", lambda v: v is not None and v >= 1)
_POSITIVE = ("positive", lambda v: v is not None and v > 0)
_NON_NEGATIVE = ("0 or more", lambda v: v is not None and v >= 0)


def _or_null(rule: tuple, meaning: str) -> tuple:
    need, ok = rule
    return f"{need}, or null {meaning}", lambda v: v is None or ok(v)


def _key(rule: tuple | None = None):
    return field(metadata={"rule": rule})


@dataclass
class TrainKeys:
    """Every train.* key and the values the loop can run with (None: any value), declared once;
    :func:`check_train_config` checks them in this order. configs/train/default.yaml gives the defaults."""

    max_steps: int = _key(_AT_LEAST_1)
    batch_size: int = _key(_AT_LEAST_1)
    crop_samples: int = _key(_AT_LEAST_1)
    log_every: int = _key(_AT_LEAST_1)
    valid_every: int = _key(_AT_LEAST_1)
    checkpoint_every: int = _key(_AT_LEAST_1)
    max_bad_steps: int = _key(_AT_LEAST_1)
    lr: float = _key(_POSITIVE)
    grad_clip: float = _key(_POSITIVE)
    valid_max_seconds: float = _key(_POSITIVE)
    num_workers: int = _key(_NON_NEGATIVE)
    valid_utterances: int = _key(_NON_NEGATIVE)
    max_minutes: float | None = _key(_or_null(_POSITIVE, "for no time limit"))
    keep_last: int | None = _key(_or_null(_NON_NEGATIVE, "to keep every checkpoint"))
    audio_every: int | None = _key(_or_null(_NON_NEGATIVE, "for never"))
    loss_weights: dict[str, float] = _key()
    seed: int = _key()
    device: str = _key()
    checkpoint_activations: str | None = _key(("null, block or stack", lambda v: v in (None, "block", "stack")))
    compile: bool = _key()
    lr_schedule: str = _key(("constant, cosine or exponential", lambda v: v in SCHEDULES))
    warmup_steps: int = _key(_NON_NEGATIVE)
    final_lr_fraction: float = _key(("in (0, 1]", lambda v: v is not None and 0 < v <= 1))
    snapshot_minutes: float | None = _key(_or_null(_POSITIVE, "for none"))
    keep_hours: list | None = _key(("a list of positive hours such as [1, 2, 4, 8], or null for none",
                                    lambda v: v is None or (isinstance(v, Sequence) and not isinstance(v, str) and all(
                                        isinstance(h, (int, float)) and not isinstance(h, bool) and h > 0
                                        for h in v))))
    kl_warmup_steps: int = _key(_NON_NEGATIVE)
    speaker_adv_ramp_steps: int = _key(_NON_NEGATIVE)
    precision: str = _key()   # checked by training.precision.Precision


def learning_rate(tcfg: DictConfig, step: int, elapsed_seconds: float) -> float:
    """train.lr at ``step`` under train.lr_schedule: linear warm-up over warmup_steps, then (cosine or
    exponential) decay to lr · final_lr_fraction at the budget: the fraction done is the larger of
    step / max_steps and elapsed / max_minutes (when set), so a time-bounded run decays over its minutes.
    The time is this invocation's: a resumed time-bounded run decays again over its new budget."""
    warm = min(1.0, step / tcfg.warmup_steps) if tcfg.warmup_steps else 1.0
    if tcfg.lr_schedule == "constant":
        return tcfg.lr * warm
    done = step / tcfg.max_steps
    if tcfg.max_minutes is not None:
        done = max(done, elapsed_seconds / (60 * tcfg.max_minutes))
    done = min(1.0, done)
    floor = tcfg.final_lr_fraction
    if tcfg.lr_schedule == "cosine":
        decay = floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * done))
    else:
        decay = floor ** done
    return tcfg.lr * warm * decay


def dann_ramp(progress: float, gamma: float = 10.0) -> float:
    """Ganin & Lempitsky (2015)'s adaptation factor 2 / (1 + exp(−γ·p)) − 1 at p = ``progress`` (clipped to
    [0, 1]): 0 at the start, 0.46 at p = 0.1, 0.96 at p = 0.4, 0.99991 at p = 1."""
    p = min(1.0, max(0.0, progress))
    return 2.0 / (1.0 + math.exp(-gamma * p)) - 1.0


def loss_weights(tcfg: DictConfig, step: int) -> dict[str, float]:
    """train.loss_weights at ``step``: the "kl" weight rises linearly from 0 over kl_warmup_steps (KL annealing,
    Bowman et al. 2016); the "speaker_adv" weight rises along :func:`dann_ramp` with p = step /
    speaker_adv_ramp_steps (DANN's schedule); the others are constant."""
    weights = dict(tcfg.loss_weights)
    if tcfg.kl_warmup_steps and "kl" in weights:
        weights["kl"] *= min(1.0, step / tcfg.kl_warmup_steps)
    if tcfg.speaker_adv_ramp_steps and "speaker_adv" in weights:
        weights["speaker_adv"] *= dann_ramp(step / tcfg.speaker_adv_ramp_steps)
    return weights


def check_train_config(tcfg: DictConfig) -> None:
    """A one-line UserError for a train.* value the loop cannot run with, before anything is loaded or written."""
    for key in fields(TrainKeys):
        if key.metadata["rule"] is not None:
            need, ok = key.metadata["rule"]
            if not ok(tcfg[key.name]):
                raise UserError(f"train.{key.name} must be {need}, got {tcfg[key.name]!r}")
    for name, weight in tcfg.loss_weights.items():
        if weight is None or weight < 0:
            raise UserError(f"train.loss_weights.{name} must be 0 or more, got {weight!r}")
