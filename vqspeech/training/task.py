"""What the :class:`~vqspeech.training.trainer.Trainer` asks of a model it trains: the task interface.

A task owns everything that is particular to one kind of model: its constructor arguments (what the
checkpoint stores), its data, how a batch becomes named loss terms, its validation score and what it shows in
TensorBoard beyond scalars. The trainer owns what every task shares: resume, precision, DDP, the learning-rate
schedule, the step and time bounds, the progress bar, scalar logging and atomic checkpoints.

The VQ-VAE is one task (training/vqvae_task.py).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from vqspeech import checkpoint as ckpt
from vqspeech.training.distributed import Distributed
from vqspeech.training.keys import loss_weights
from vqspeech.training.precision import Precision

Batch = tuple[Tensor, ...] | dict[str, Tensor]  # the VQ-VAE task: a dict by name; the prior: a tuple


@dataclass
class StepLosses:
    """One batch's forward pass: the unweighted loss terms by name (0-dim tensors, with gradients) and
    detached metrics (0-dim tensors) to log beside them."""

    losses: dict[str, Tensor]
    metrics: dict[str, Tensor] = field(default_factory=dict)


class Task(ABC):
    """One kind of model to train. ``cfg`` is the whole composed config (``cfg.train`` is the trainer's).

    Call order: :meth:`model_kwargs` and :meth:`build_model` (before resuming), :meth:`load_data`,
    :meth:`loader`, then per step :meth:`losses` and :meth:`after_update`; :meth:`validate` and
    :meth:`log_media` at their intervals, :meth:`before_save` before each checkpoint.
    """

    valid_name = "loss"  # TensorBoard's valid/<valid_name>, and the bar's name for the validation score

    def __init__(self, cfg: DictConfig):
        self.cfg = cfg

    @abstractmethod
    def model_kwargs(self) -> dict[str, Any]:
        """The model's constructor arguments as plain values, with its ``kind`` (see checkpoint.BUILDERS)."""

    def build_model(self, kwargs: Mapping[str, Any]) -> nn.Module:
        return ckpt.build(dict(kwargs))

    @abstractmethod
    def load_data(self, model: nn.Module, env: Distributed, progress: bool) -> str:
        """Read the training and validation data (refusing data the model cannot train on); returns a
        one-line description of the training data for the log."""

    @abstractmethod
    def loader(self, step: int, env: Distributed, device: torch.device) -> Iterable[Batch]:
        """The training batches from ``step`` on (an endless iterable; this rank's share under DDP)."""

    @abstractmethod
    def losses(self, net: nn.Module, batch: Batch, device: torch.device) -> StepLosses:
        """The forward pass of ``net`` (the model, DDP-wrapped under torchrun) on one batch."""

    @abstractmethod
    def example_batch(self, device: torch.device) -> Batch:
        """A batch of the training shape with made-up content, for timing (train.precision=auto)."""

    def loss_weights(self, step: int) -> dict[str, float]:
        """train.loss_weights at ``step`` (with its schedules)."""
        return loss_weights(self.cfg.train, step)

    def prepare(self, model: nn.Module) -> None:
        """Set training-only options on the unwrapped model before it is wrapped and trained."""

    def after_update(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        """Called after the backward pass and before the optimizer step of every update."""

    def validate(self, model: nn.Module, precision: Precision, env: Distributed) -> float | None:
        """The validation score (lower is better; None without validation data), the same on every rank."""
        return None

    def log_media(self, writer, model: nn.Module, step: int) -> None:
        """TensorBoard beyond scalars (rank 0, every train.audio_every steps)."""

    def before_save(self, model: nn.Module) -> None:
        """Bring state that is derived from the data up to date before the model is saved."""

    def postfix(self, logged: Mapping[str, float], metrics: Mapping[str, float]) -> dict[str, str]:
        """What the progress bar shows after a logged step."""
        return {"loss": f"{logged['total']:.3f}"}
