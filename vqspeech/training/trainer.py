"""The trainer: one training run of any task, top to bottom in this file.

``fit(cfg, task)`` builds the task's model (or resumes it from ``run_dir/checkpoints/last.pt``), then loops:
batch -> task.losses -> Σ weight · term -> backward -> clip -> Adam step, with validation, TensorBoard scalars,
media, atomic checkpoints and time snapshots at their intervals, until train.max_steps or train.max_minutes,
or until SIGTERM/SIGINT (training/stopping.py: the step ends, a checkpoint is saved, then the run stops).
The run directory is locked for the whole run (training/runlock.py): one writer per run.
Forward passes run in ``train.precision`` (training/precision.py); under torchrun the model is wrapped in DDP,
each process reads its own batches (training/distributed.py), and only rank 0 writes files. What is particular
to a model (its data, losses, validation) is its :class:`~vqspeech.training.task.Task`'s.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from vqspeech import checkpoint as ckpt
from vqspeech.errors import UserError
from vqspeech.files import write_atomic
from vqspeech.training import distributed
from vqspeech.training.keys import check_train_config, learning_rate
from vqspeech.training.precision import Precision, cached_choice, check_choice, measure_auto, timing_step
from vqspeech.training.progress import ProgressBar
from vqspeech.training.runlock import LOCK_NAME, RunLock
from vqspeech.training.stopping import StopSignals
from vqspeech.training.task import Batch, Task

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    resumed_from: int              # 0 for a fresh run
    train_losses: dict[str, float]  # last logged values (unweighted terms and "total")
    valid_loss: float | None        # the task's validation score (VQ-VAE: reconstruction nats/sample)
    metrics: dict[str, float]       # the task's last logged metrics (VQ: perplexity, used_codes)
    checkpoint: Path
    skipped_steps: int = 0          # steps whose loss or gradient was not finite (no update)
    already_done: bool = False      # the checkpoint was already at train.max_steps: nothing trained
    stopped_by: int | None = None   # the signal (SIGTERM, SIGINT) that stopped the run after a save, if any


@dataclass
class StepOutcome:
    """One optimizer step: the loss terms averaged over ranks ("total" first; 0-dim tensors), the task's
    metrics of the global batch, the gradient norm, and whether the update was skipped (non-finite)."""

    losses: dict[str, torch.Tensor]
    metrics: dict[str, torch.Tensor]
    grad_norm: torch.Tensor
    skipped: bool


def weighted_loss(losses: Mapping[str, torch.Tensor], weights: Mapping[str, float]) -> torch.Tensor:
    """Σ weights[name] · losses[name]; every term the model returns must have a weight."""
    missing = set(losses) - set(weights)
    if missing:
        raise UserError(f"train.loss_weights has no weight for {', '.join(sorted(missing))}")
    return sum(weights[name] * value for name, value in losses.items())


def fit(cfg: DictConfig, task: Task, progress: bool = True) -> TrainResult:
    """Train (or resume) ``task`` in ``cfg.run_dir``. Returns where it ended.

    Under torchrun every process calls this; see :mod:`vqspeech.training.distributed`. train.batch_size is
    per process. Every rank returns the same TrainResult.
    """
    with distributed.process_group(cfg.train.device) as (env, device):
        trainer = Trainer(cfg, task, env, device, progress and env.is_main)
        try:
            return trainer.run()
        finally:
            trainer.release()


class Trainer:
    """One run's state: built (and resumed from run_dir's last checkpoint, if any) on construction;
    :meth:`run` trains it. ``model`` (unwrapped) is what is saved and validated, ``net`` (DDP-wrapped under
    torchrun, compiled with train.compile) what trains."""

    def __init__(self, cfg: DictConfig, task: Task, env: distributed.Distributed, device: torch.device,
                 progress: bool):
        self.cfg, self.tcfg, self.task, self.env, self.device = cfg, cfg.train, task, env, device
        check_train_config(self.tcfg)
        check_choice(self.tcfg.precision)
        # auto is decided in start(), by timing the built model; it never picks fp16, so no scaler state
        self.precision = Precision("fp32" if self.tcfg.precision == "auto" else self.tcfg.precision, device)
        torch.manual_seed(self.tcfg.seed)
        self.run_dir = Path(cfg.run_dir)
        self.last_path = self.run_dir / "checkpoints" / ckpt.LAST
        self.main = env.is_main  # the one process that writes files and shows progress
        self.progress = progress
        self.lock = RunLock(self.run_dir)
        self.made_dir, self.made_lock = not self.run_dir.exists(), not self.lock.path.exists()
        if self.main:  # under torchrun rank 0 alone holds the run
            self.lock.acquire()
        try:
            self._build(task, device)
        except BaseException:
            self.release()
            raise
        self.skipped = self.bad_in_row = 0
        self.minutes_trained = self.minutes_before
        self.writer = self.bar = None
        self.saved_step = self.step if self.resumed else None  # the step last.pt holds

    def _build(self, task: Task, device: torch.device) -> None:
        try:
            self.kwargs = task.model_kwargs()
            state = self._saved_state()
            self.model = task.build_model(self.kwargs).to(device)
        except (TypeError, ValueError) as exc:
            raise UserError(f"bad model config: {exc}") from None
        except RuntimeError as exc:  # torch refusing a layer shape, e.g. model.encoder.channels=-3
            raise UserError(f"bad model config: {str(exc).splitlines()[0]}") from None
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.tcfg.lr)
        self.step, self.best, self.lr = 0, math.inf, self.tcfg.lr
        self.minutes_before = 0.0  # training minutes of the run's earlier invocations
        self.resumed = state is not None
        if state is not None:
            self._resume(state)
        elif self.run_dir.exists() and any(p.name != LOCK_NAME for p in self.run_dir.iterdir()):
            raise UserError(f"{self.run_dir} already holds files but no checkpoint to resume; choose another "
                            f"run_dir=... or remove that folder")
        elif self.cfg.get("init_from"):  # fine-tuning: a new run's first weights from a trained model
            from vqspeech.training.init_from import initialize_from

            done = initialize_from(self.model, self.kwargs, str(self.cfg.init_from))
            if self.main:
                log.info("%s", done.describe())

    # ---- the run --------------------------------------------------------------------------------------------

    def run(self) -> TrainResult:
        if self.step >= self.tcfg.max_steps:  # nothing to do: say so before loading any data
            return TrainResult(run_dir=self.run_dir, step=self.step, resumed_from=self.step, train_losses={},
                               valid_loss=None, metrics={}, checkpoint=self.last_path, already_done=True)
        with StopSignals() as signals:  # from here on: a signal while data loads stops after the first step
            return self._train(signals)

    def _train(self, signals: StopSignals) -> TrainResult:
        tcfg, env, device = self.tcfg, self.env, self.device
        if self.main:
            log.info("%s", self.model.summary())
        data_summary = self.task.load_data(self.model, env, self.progress)
        loader = self.task.loader(self.step, env, device)
        self.start(data_summary)
        batches = iter(loader)  # after start(): loader workers must not compete with auto's timing
        start_step, started = self.step, time.monotonic()
        next_snapshot = 1
        pending_hours = self._hours_pending()
        logged: dict[str, float] = {}
        metrics: dict[str, float] = {}
        valid_loss = None
        try:
            while self.step < tcfg.max_steps:
                self.set_learning_rate(learning_rate(tcfg, self.step, time.monotonic() - started))
                outcome = self.train_step(next(batches))
                if outcome.skipped:
                    self.bar.advance(self.step)
                    continue
                if self.step % tcfg.log_every == 0 or self.step == tcfg.max_steps:
                    logged, metrics = self.log(outcome)
                self.bar.advance(self.step)
                elapsed = time.monotonic() - started
                self.minutes_trained = self.minutes_before + elapsed / 60
                out_of_time = (tcfg.max_minutes is not None
                               and env.main_says(elapsed > 60 * tcfg.max_minutes, device))
                if self.step % tcfg.valid_every == 0 or self.step == tcfg.max_steps or out_of_time:
                    valid_loss = self.validate()
                if self.main and tcfg.audio_every and self.step % tcfg.audio_every == 0:
                    self.task.log_media(self.writer, self.model, self.step)
                    self.model.train()
                if self.main and (self.step % tcfg.checkpoint_every == 0 or self.step == tcfg.max_steps
                                  or out_of_time):
                    self.save()
                if pending_hours and env.main_says(self.minutes_trained >= 60 * pending_hours[0], device):
                    if self.main:  # over all invocations: checkpoints/hours-1.pt, hours-2.pt, …
                        self.save(f"hours-{pending_hours[0]:g}.pt")
                    pending_hours.pop(0)
                if (tcfg.snapshot_minutes is not None
                        and env.main_says(elapsed >= 60 * tcfg.snapshot_minutes * next_snapshot, device)):
                    if self.main:  # a learning curve against CPU time: checkpoints/minutes-005.0.pt, …
                        self.save(f"minutes-{tcfg.snapshot_minutes * next_snapshot:05.1f}.pt")
                    next_snapshot += 1
                if out_of_time:
                    if self.main:
                        self.bar.write(f"stopping at step {self.step}: train.max_minutes={tcfg.max_minutes} "
                                       f"reached")
                    break
                if env.any_says(signals.received is not None, device):
                    if self.main:  # the step has ended: save it, then stop (a second signal stops at once)
                        self.bar.write(f"{signals.name or 'a signal'} at step {self.step}: saving a checkpoint, "
                                       f"then stopping")
                        if self.saved_step != self.step:
                            self.save()
                    break
        except KeyboardInterrupt:
            if self.main:
                self.bar.write(f"interrupted at step {self.step}; saving a checkpoint to resume from")
                self.save()
            raise
        finally:
            self.close()
        env.barrier()  # rank 0 has written its last checkpoint when any rank returns
        if self.main:
            log.info("trained steps %d..%d in %.1f s (%.1f training minutes in all)", start_step, self.step,
                     time.monotonic() - started, self.minutes_trained)
        return TrainResult(run_dir=self.run_dir, step=self.step, resumed_from=start_step, train_losses=logged,
                           valid_loss=valid_loss, metrics=metrics, checkpoint=self.last_path,
                           skipped_steps=self.skipped, stopped_by=signals.received)

    def start(self, data_summary: str) -> None:
        """Write config.yaml (a new run), settle the precision, open TensorBoard and the bar, wrap the model."""
        self.env.barrier()  # every rank has looked at run_dir (and found its data usable) before rank 0 writes
        if not self.resumed and self.main:  # written only now, so a run refused above can be started again
            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_atomic(self.run_dir / "config.yaml", OmegaConf.to_yaml(self.cfg))
        self.task.prepare(self.model)
        if self.tcfg.precision == "auto":
            self._choose_precision()
        if self.main:
            log.info("train: %s; device %s%s; precision %s", data_summary, self.device,
                     f" × {self.env.world_size} processes" if self.env.enabled else "", self.precision.name)
        self.net = self.env.wrap(self.model, self.device)
        if self.tcfg.compile:  # compiled on the first step (about 90 s at r9y9's size on 2 CPU cores)
            self.net = torch.compile(self.net)

        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(self.run_dir / "tensorboard")) if self.main else None
        if self.main and not self.resumed:  # the shipped run's curve beside this one's, at equal audio read
            from vqspeech import reference

            curve = reference.shipped_curve()
            if reference.comparable(curve, self.kwargs):
                reference.log_reference(self.writer, curve, OmegaConf.to_container(self.cfg, resolve=True),
                                        self.env.world_size)
        self.bar = ProgressBar(self.tcfg, self.step, enabled=self.progress)
        self.model.train()

    def train_step(self, batch: Batch) -> StepOutcome:
        """One step on a batch; a non-finite loss or gradient skips the update (on every rank alike) and,
        train.max_bad_steps times in a row, stops the run."""
        with self.precision.autocast():
            out = self.task.losses(self.net, batch, self.device)
            loss = weighted_loss(out.losses, self.task.loss_weights(self.step))
        scaler = self.precision.scaler
        self.optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.tcfg.grad_clip)  # same on all ranks
        # the total and each term, averaged over ranks: every rank takes the same skip decision
        terms = self.env.mean(torch.stack([loss.detach().float(), *(v.detach().float() for v in out.losses.values())]))
        self.step += 1  # a skipped step still consumes its batch, so resumed runs stay aligned
        outcome = StepOutcome(losses=dict(zip(["total", *out.losses], terms)), metrics=out.metrics,
                              grad_norm=grad_norm, skipped=False)
        finite_loss, finite_grad = bool(torch.isfinite(terms[0])), bool(torch.isfinite(grad_norm))
        # fp16: a finite loss with a non-finite gradient is an overflow; scaler.step skips that update and
        # scaler.update lowers the scale
        overflow = scaler.is_enabled() and finite_loss and not finite_grad
        if not (finite_loss and finite_grad) and not overflow:
            scaler.update()
            self._skip()
            outcome.skipped = True
            return outcome
        self.bad_in_row = 0
        self.task.after_update(self.model, self.optimizer)
        scaler.step(self.optimizer)
        scaler.update()
        return outcome

    def validate(self) -> float | None:
        """The task's validation score (None without validation data); a new best is saved as best.pt."""
        valid_loss = self.task.validate(self.model, self.precision, self.env)
        if valid_loss is not None:
            if self.main:
                self.writer.add_scalar(f"valid/{self.task.valid_name}", valid_loss, self.step)
                self.bar.write(f"step {self.step}: valid {self.task.valid_name.replace('_', ' ')} {valid_loss:.4f}")
            if valid_loss < self.best:
                self.best = valid_loss
                if self.main:
                    self.save(ckpt.BEST)
        self.model.train()
        return valid_loss

    def log(self, outcome: StepOutcome) -> tuple[dict[str, float], dict[str, float]]:
        """The step's losses and metrics as numbers, written to TensorBoard and the bar (rank 0)."""
        logged = dict(zip(outcome.losses, torch.stack(list(outcome.losses.values())).tolist()))
        metrics = {k: v.item() for k, v in outcome.metrics.items()}  # of the global batch
        if self.main:
            for name, value in logged.items():
                self.writer.add_scalar(f"train/loss_{name}", value, self.step)
            for name, value in metrics.items():
                self.writer.add_scalar(f"train/{name}", value, self.step)
            self.writer.add_scalar("train/grad_norm", outcome.grad_norm.item(), self.step)
            self.writer.add_scalar("train/lr", self.lr, self.step)
            if self.precision.scaler.is_enabled():
                self.writer.add_scalar("train/loss_scale", self.precision.scaler.get_scale(), self.step)
            self.bar.set_postfix(**self.task.postfix(logged, metrics))
        return logged, metrics

    def save(self, name: str = ckpt.LAST) -> Path:
        self.task.before_save(self.model)
        scaler = self.precision.scaler
        state = ckpt.TrainingState(
            step=self.step, model_kwargs=self.kwargs, model=self.model.state_dict(),
            optimizer=self.optimizer.state_dict(), config=OmegaConf.to_container(self.cfg, resolve=True),
            rng=ckpt.rng_state(), best_valid_loss=self.best, world_size=self.env.world_size,
            scaler=scaler.state_dict() if scaler.is_enabled() else None, minutes_trained=self.minutes_trained)
        path = ckpt.save_checkpoint(self.run_dir / "checkpoints" / name, state.payload())
        if name == ckpt.LAST:
            ckpt.keep_history(path, self.step, self.tcfg.keep_last)
            self.saved_step = self.step
        return path

    def set_learning_rate(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.lr = lr

    def release(self) -> None:
        """Give the run's lock back. A run refused before its first checkpoint leaves no lock file behind,
        nor the folder it would have made."""
        self.lock.release()
        if self.main and self.made_lock and not self.last_path.exists():
            self.lock.path.unlink(missing_ok=True)
            if self.made_dir and self.run_dir.is_dir() and not any(self.run_dir.iterdir()):
                self.run_dir.rmdir()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.writer is not None:
            self.writer.close()

    # ---- resume, precision, bad steps -----------------------------------------------------------------------

    def _saved_state(self) -> ckpt.TrainingState | None:
        """run_dir's last checkpoint, refused if its model differs from this config's."""
        if not self.last_path.exists():
            return None
        state = ckpt.TrainingState.from_payload(ckpt.load_checkpoint(self.last_path, map_location=self.device))
        differs = ckpt.find_kwargs_difference(state.model_kwargs, self.kwargs)
        if differs is not None:
            raise UserError(f"{self.run_dir} holds a run whose model differs at '{differs}' from this config; "
                            f"resume with the same model config, or choose a new run_dir=...")
        return state

    def _resume(self, state: ckpt.TrainingState) -> None:
        self.model.load_state_dict(state.model)
        self.optimizer.load_state_dict(state.optimizer)
        for group in self.optimizer.param_groups:  # the config's learning rate wins over the saved one
            group["lr"] = self.tcfg.lr
        if self.precision.scaler.is_enabled() and state.scaler is not None:
            self.precision.scaler.load_state_dict(state.scaler)
        ckpt.set_rng_state(state.rng)
        self.step, self.best = int(state.step), float(state.best_valid_loss)
        self.minutes_before = self.minutes_trained = float(state.minutes_trained)
        if self.main and self.tcfg.get("keep_hours") and not self.minutes_before and self.step:
            log.warning("%s's checkpoint does not count its training minutes (written before they were stored): "
                        "train.keep_hours counts from this invocation", self.last_path)
        if self.main:
            log.info("resuming %s from step %d", self.run_dir, self.step)
            if state.world_size != self.env.world_size:
                log.warning("%s was trained by %d processes, resumed by %d: the batches of each step differ from "
                            "those of an uninterrupted run", self.run_dir, state.world_size, self.env.world_size)

    def _hours_pending(self) -> list[float]:
        """train.keep_hours still to keep, in order (rank 0 decides): not those whose checkpoint exists, nor
        those earlier invocations passed before the list was given."""
        folder = self.run_dir / "checkpoints"
        return [h for h in sorted(self.tcfg.get("keep_hours") or [])
                if self.env.main_says(not (folder / f"hours-{h:g}.pt").exists() and self.minutes_before <= 60 * h,
                                      self.device)]

    def _choose_precision(self) -> None:
        """train.precision=auto: fp32 against bf16, timed on a copy of the model, or rank 0's cached choice.
        Under DDP every rank times alongside rank 0 (the model's collectives must match) and rank 0 decides."""
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            example = self.task.example_batch(self.device)
            shapes = [list(t.shape) for t in (example.values() if isinstance(example, dict) else example)]
        key = {"model": self.kwargs, "batch": shapes, "activation_checkpointing": self.tcfg.checkpoint_activations}
        choice = cached_choice(self.device, key) if self.main else None
        if not self.env.main_says(choice is not None, self.device):
            step = timing_step(self.model, lambda: self.task.example_batch(self.device), self._loss_of)
            choice = measure_auto(step, self.device, key, cache=self.main)
        bf16 = self.env.main_says(choice is not None and choice.name == "bf16", self.device)
        self.precision = Precision("bf16" if bf16 else "fp32", self.device)
        if self.main:
            log.info("%s", choice.describe())

    def _loss_of(self, model: torch.nn.Module, batch: Batch) -> torch.Tensor:
        return weighted_loss(self.task.losses(model, batch, self.device).losses, self.task.loss_weights(self.step))

    def _skip(self) -> None:
        self.skipped, self.bad_in_row = self.skipped + 1, self.bad_in_row + 1
        if self.main:
            self.writer.add_scalar("train/skipped_steps", self.skipped, self.step)
            self.bar.write(f"step {self.step}: non-finite loss or gradient, update skipped ({self.skipped} so far)")
        if self.bad_in_row >= self.tcfg.max_bad_steps:
            good = ckpt.load_checkpoint(self.last_path)["step"] if self.last_path.exists() else None
            where = f"{self.last_path} (step {good})" if good is not None else "none yet"
            raise UserError(f"{self.bad_in_row} non-finite steps in a row up to step {self.step}; stopped. "
                            f"Last good checkpoint: {where}")
