"""``train(cfg)``: the whole training run as one plain function.

wav crops -> VQVAE -> Σ loss_weights[name] · losses[name] -> Adam step, with periodic validation on
held-out utterances, TensorBoard scalars (and every ``train.audio_every`` steps two validation utterances
with their reconstructions and spectrograms), atomic checkpoints, and resume by default: a run directory
that holds ``checkpoints/last.pt`` continues from it. Forward passes run in ``train.precision``
(training/precision.py); under torchrun the model is wrapped in DDP and each process reads its own crops
(training/distributed.py), and only rank 0 writes files.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from vqspeech.data.corpus import load_corpus
from vqspeech.data.dataset import LoadedSplit, RandomCrops, crop_loader, load_split
from vqspeech.errors import UserError
from vqspeech.files import write_atomic
from vqspeech.models import VQVAE, build_model
from vqspeech.models.builders import model_kwargs
from vqspeech.training import checkpoint as ckpt
from vqspeech.training import distributed
from vqspeech.training.conditioning import crop_conditioning, refresh_learned_means
from vqspeech.training.keys import check_train_config, learning_rate, loss_weights
from vqspeech.training.precision import Precision, check_choice, measure_auto
from vqspeech.training.progress import ProgressBar

log = logging.getLogger(__name__)
POSTFIX = {"used_codes": "codes", "perplexity": "ppl", "kl_nats_per_frame": "kl"}  # short names on the bar


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    resumed_from: int              # 0 for a fresh run
    train_losses: dict[str, float]  # last logged values (unweighted terms and "total")
    valid_loss: float | None        # reconstruction cross-entropy on held-out audio, nats/sample
    metrics: dict[str, float]       # the bottleneck's last logged metrics (VQ: perplexity, used_codes)
    checkpoint: Path
    skipped_steps: int = 0          # steps whose loss or gradient was not finite (no update)
    already_done: bool = False      # the checkpoint was already at train.max_steps: nothing trained


def weighted_loss(losses: Mapping[str, torch.Tensor], weights: Mapping[str, float]) -> torch.Tensor:
    """Σ weights[name] · losses[name]; every term the model returns must have a weight."""
    missing = set(losses) - set(weights)
    if missing:
        raise UserError(f"train.loss_weights has no weight for {', '.join(sorted(missing))}")
    return sum(weights[name] * value for name, value in losses.items())


def train(cfg: DictConfig, progress: bool = True) -> TrainResult:
    """Train (or resume) the run in ``cfg.run_dir``. Returns where it ended.

    Under torchrun every process calls this; see :mod:`vqspeech.training.distributed`. train.batch_size is
    per process. Every rank returns the same TrainResult.
    """
    with distributed.process_group(cfg.train.device) as (env, device):
        return _train(cfg, env, device, progress)


@dataclass
class StepOutcome:
    """One optimizer step: the loss terms averaged over ranks ("total" first; 0-dim tensors), the VQ
    metrics of the global batch, the gradient norm, and whether the update was skipped (non-finite)."""

    losses: dict[str, torch.Tensor]
    metrics: dict[str, torch.Tensor]
    grad_norm: torch.Tensor
    skipped: bool


def _train(cfg: DictConfig, env: distributed.Distributed, device: torch.device, progress: bool) -> TrainResult:
    tcfg = cfg.train
    check_train_config(tcfg)
    if cfg.data.sample_rate is None or cfg.data.sample_rate < 1:
        raise UserError(f"data.sample_rate must be a positive number of Hz, got {cfg.data.sample_rate!r}")
    check_choice(tcfg.precision)
    precision = Precision("fp32" if tcfg.precision == "auto" else tcfg.precision, device)  # auto: chosen in start()
    torch.manual_seed(tcfg.seed)
    corpus = load_corpus(cfg.data.root, cfg.data.manifest, cfg.data.valid_fraction, cfg.data.test_fraction)
    run = _Run(cfg, env, device, precision, corpus.speakers, progress and env.is_main)
    if run.step >= tcfg.max_steps:  # nothing to do: say so before loading any audio
        return TrainResult(run_dir=run.run_dir, step=run.step, resumed_from=run.step, train_losses={},
                           valid_loss=None, metrics={}, checkpoint=run.last_path, already_done=True)
    train_audio, valid_audio = run.load_audio(corpus)
    crops = RandomCrops(train_audio, tcfg.crop_samples, tcfg.seed, run.conditioning.segments,
                        run.conditioning.reference_samples)
    loader = crop_loader(crops, tcfg.batch_size, run.step,
                         tcfg.num_workers, pin_memory=device.type == "cuda", rank=env.rank,
                         world_size=env.world_size)
    run.start()
    start_step, started = run.step, time.monotonic()
    next_snapshot = 1
    logged: dict[str, float] = {}
    metrics: dict[str, float] = {}
    valid_loss = None
    batches = iter(loader)
    try:
        while run.step < tcfg.max_steps:
            run.set_learning_rate(learning_rate(tcfg, run.step, time.monotonic() - started))
            outcome = run.train_step(*next(batches))
            if outcome.skipped:
                run.bar.advance(run.step)
                continue
            if run.step % tcfg.log_every == 0 or run.step == tcfg.max_steps:
                logged, metrics = run.log(outcome)
            run.bar.advance(run.step)
            elapsed = time.monotonic() - started
            out_of_time = tcfg.max_minutes is not None and env.main_says(elapsed > 60 * tcfg.max_minutes, device)
            if run.step % tcfg.valid_every == 0 or run.step == tcfg.max_steps or out_of_time:
                valid_loss = run.validate(valid_audio)
            if run.main and tcfg.audio_every and run.step % tcfg.audio_every == 0 and valid_audio.waves:
                run.log_audio(valid_audio)
            if run.main and (run.step % tcfg.checkpoint_every == 0 or run.step == tcfg.max_steps or out_of_time):
                run.save()
            if (tcfg.snapshot_minutes is not None
                    and env.main_says(elapsed >= 60 * tcfg.snapshot_minutes * next_snapshot, device)):
                if run.main:  # a learning curve against CPU time: checkpoints/minutes-005.0.pt, minutes-010.0.pt, …
                    run.save(f"minutes-{tcfg.snapshot_minutes * next_snapshot:05.1f}.pt")
                next_snapshot += 1
            if out_of_time:
                if run.main:
                    run.bar.write(f"stopping at step {run.step}: train.max_minutes={tcfg.max_minutes} reached")
                break
    except KeyboardInterrupt:
        if run.main:
            run.bar.write(f"interrupted at step {run.step}; saving a checkpoint to resume from")
            run.save()
        raise
    finally:
        run.close()
    env.barrier()  # rank 0 has written its last checkpoint when any rank returns
    if run.main:
        log.info("trained steps %d..%d in %.1f s", start_step, run.step, time.monotonic() - started)
    return TrainResult(run_dir=run.run_dir, step=run.step, resumed_from=start_step, train_losses=logged,
                       valid_loss=valid_loss, metrics=metrics, checkpoint=run.last_path, skipped_steps=run.skipped)


class _Run:
    """One training run's state and its steps: built (and resumed from run_dir's last checkpoint, if any)
    on construction; :meth:`start` opens its outputs, :meth:`train_step` takes one optimizer step.
    ``model`` (unwrapped) is what is saved and validated, ``net`` (DDP-wrapped under torchrun) what trains."""

    def __init__(self, cfg: DictConfig, env: distributed.Distributed, device: torch.device, precision: Precision,
                 speakers: list[str], progress: bool):
        self.cfg, self.tcfg, self.env, self.device, self.speakers = cfg, cfg.train, env, device, speakers
        self.run_dir = Path(cfg.run_dir)
        self.last_path = self.run_dir / "checkpoints" / ckpt.LAST
        self.main = env.is_main  # the one process that writes files and shows progress
        self.progress = progress
        self.precision, self.scaler = precision, precision.scaler
        self.kwargs = model_kwargs(cfg.model, cfg.quantizer, speakers, cfg.data.sample_rate)
        state = self._saved_state()
        try:
            self.model = build_model(self.kwargs).to(device)
        except (TypeError, ValueError) as exc:
            raise UserError(f"bad model or quantizer config: {exc}") from None
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.tcfg.lr)
        self.step, self.best = 0, math.inf
        self.resumed = state is not None
        if state is not None:
            self._resume(state)
        elif self.run_dir.exists() and any(self.run_dir.iterdir()):
            raise UserError(f"{self.run_dir} already holds files but no checkpoint to resume; choose another "
                            f"run_dir=... or remove that folder")
        self.skipped = self.bad_in_row = 0
        self.writer = self.bar = None

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
        if self.scaler.is_enabled() and state.scaler is not None:
            self.scaler.load_state_dict(state.scaler)
        ckpt.set_rng_state(state.rng)
        self.step, self.best = int(state.step), float(state.best_valid_loss)
        if self.main:
            log.info("resuming %s from step %d", self.run_dir, self.step)
            if state.world_size != self.env.world_size:
                log.warning("%s was trained by %d processes, resumed by %d: the crops of each step differ from "
                            "those of an uninterrupted run", self.run_dir, state.world_size, self.env.world_size)

    def load_audio(self, corpus) -> tuple[LoadedSplit, LoadedSplit]:
        """The training and validation audio, after checking that the crops fit the hop."""
        if self.main:
            log.info("%s", self.model.summary())
        crop, hop = self.tcfg.crop_samples, self.model.hop_length
        if crop % hop:
            raise UserError(f"train.crop_samples={crop} must be a multiple of the encoder hop ({hop})")
        if self.model.cpc is not None and crop // hop <= self.model.cpc.steps:
            raise UserError(f"train.crop_samples={crop} holds {crop // hop} frames, but CPC predicts "
                            f"{self.model.cpc.steps} ahead; use longer crops or fewer model.cpc_steps")
        sample_rate = self.cfg.data.sample_rate
        train_audio = load_split(corpus.split("train"), self.speakers, sample_rate, self.progress,
                                 "load train audio", pcm16=True, loudness_lufs=self.model.loudness_lufs)
        if not train_audio.waves:
            raise UserError(f"no usable training audio in {corpus.root} ({len(train_audio.skipped)} files skipped)")
        self.train_audio = train_audio
        self.conditioning = crop_conditioning(self.model, train_audio, corpus.root, sample_rate, self.progress,
                                              self.main)
        valid_audio = _validation_set(corpus, self.speakers, self.cfg, self.progress, self.model.loudness_lufs)
        self.audio_summary = (len(train_audio.waves), train_audio.samples / sample_rate / 60)  # minutes
        return train_audio, valid_audio

    def start(self) -> None:
        """Write config.yaml (a new run), open TensorBoard and the bar, wrap the model, set it training."""
        self.env.barrier()  # every rank has looked at run_dir (and found its data usable) before rank 0 writes
        if not self.resumed and self.main:  # written only now, so a run refused above can be started again
            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_atomic(self.run_dir / "config.yaml", OmegaConf.to_yaml(self.cfg))
        if self.tcfg.precision == "auto":
            self._choose_precision()
        if self.main:
            utterances, minutes = self.audio_summary
            log.info("train: %d utterances, %.1f min of audio; %d speakers; device %s%s; precision %s",
                     utterances, minutes, len(self.speakers), self.device,
                     f" × {self.env.world_size} processes" if self.env.enabled else "", self.precision.name)
        self.model.decoder.activation_checkpointing = self.tcfg.checkpoint_activations
        self.net = self.env.wrap(self.model, self.device)
        if self.tcfg.compile:  # compiled on the first step (about 90 s at r9y9's size on 2 CPU cores)
            self.net = torch.compile(self.net)

        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(self.run_dir / "tensorboard")) if self.main else None
        self.bar = ProgressBar(self.tcfg, self.step, enabled=self.progress)
        self.model.train()

    def _choose_precision(self) -> None:
        """train.precision=auto: rank 0 times fp32 against bf16 on a copy of the model; every rank follows."""
        choice = None
        if self.main:
            key = {"model": self.kwargs, "batch": self.tcfg.batch_size, "crop": self.tcfg.crop_samples,
                   "activation_checkpointing": self.tcfg.checkpoint_activations}
            choice = measure_auto(self._timing_step(), self.device, key)
        bf16 = self.env.main_says(choice is not None and choice.name == "bf16", self.device)
        self.precision = Precision("bf16" if bf16 else "fp32", self.device)
        self.scaler = self.precision.scaler
        if self.main:
            log.info("%s", choice.describe())

    def _timing_step(self):
        """One forward+backward of a copy of the model on a random batch of the training shape; the RNG and the
        model are left as they were."""
        import copy

        model = copy.deepcopy(self.model).train()
        tcfg, device = self.tcfg, self.device
        speakers = self.model.speakers
        weights = loss_weights(tcfg, self.step)

        def step(precision: Precision) -> None:
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                wav = (0.1 * torch.randn(tcfg.batch_size, 1, tcfg.crop_samples, device=device)).clamp(-1, 1)
                ids = torch.zeros(tcfg.batch_size, dtype=torch.long, device=device)
                vectors = audio = None
                if self.conditioning.reference_samples is not None:
                    audio = 0.1 * torch.randn(tcfg.batch_size, 1, self.conditioning.reference_samples, device=device)
                elif self.conditioning.segments is not None:
                    vectors = torch.nn.functional.normalize(torch.randn(tcfg.batch_size, speakers.vector_dim,
                                                                        device=device), dim=-1)
                with precision.autocast():
                    out = model(wav, ids, vectors, audio)
                    loss = weighted_loss(out.losses, weights)
                loss.backward()
                model.zero_grad(set_to_none=True)

        return step

    def set_learning_rate(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.lr = lr

    def train_step(self, wav: torch.Tensor, speaker_ids: torch.Tensor,
                   reference: torch.Tensor | None = None) -> StepOutcome:
        """One step on a batch (wav [B, 1, T], speaker_ids [B], and for a reference model each crop's speaker
        vector [B, V] or, for a learned encoder, reference audio [B, 1, R]); a non-finite loss or gradient
        skips the update (on every rank alike) and, train.max_bad_steps times in a row, stops the run."""
        wav, speaker_ids = wav.to(self.device, non_blocking=True), speaker_ids.to(self.device, non_blocking=True)
        vectors = audio = None
        if reference is not None:
            reference = reference.to(self.device, non_blocking=True)
            learned = self.conditioning.reference_samples is not None
            vectors, audio = (None, reference) if learned else (reference, None)
        with self.precision.autocast():
            out = self.net(wav, speaker_ids, vectors, audio)
            loss = weighted_loss(out.losses, loss_weights(self.tcfg, self.step))
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.tcfg.grad_clip)  # same on all ranks
        # the total and each term, averaged over ranks: every rank takes the same skip decision
        terms = self.env.mean(torch.stack([loss.detach().float(), *(v.detach().float() for v in out.losses.values())]))
        self.step += 1  # a skipped step still consumes its batch, so resumed runs stay aligned
        outcome = StepOutcome(losses=dict(zip(["total", *out.losses], terms)), metrics=out.metrics,
                              grad_norm=grad_norm, skipped=False)
        finite_loss, finite_grad = bool(torch.isfinite(terms[0])), bool(torch.isfinite(grad_norm))
        # fp16: a finite loss with a non-finite gradient is an overflow; scaler.step skips that update and
        # scaler.update lowers the scale
        overflow = self.scaler.is_enabled() and finite_loss and not finite_grad
        if not (finite_loss and finite_grad) and not overflow:
            self.scaler.update()
            self._skip()
            outcome.skipped = True
            return outcome
        self.bad_in_row = 0
        self.model.bottleneck.reset_optimizer_state(self.optimizer)  # restarted codes start with clean moments
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return outcome

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

    def log(self, outcome: StepOutcome) -> tuple[dict[str, float], dict[str, float]]:
        """The step's losses and VQ metrics as numbers, written to TensorBoard and the bar (rank 0)."""
        logged = dict(zip(outcome.losses, torch.stack(list(outcome.losses.values())).tolist()))
        metrics = {k: v.item() for k, v in outcome.metrics.items()}  # of the global batch
        if self.main:
            for name, value in logged.items():
                self.writer.add_scalar(f"train/loss_{name}", value, self.step)
            for name, value in metrics.items():
                self.writer.add_scalar(f"train/{name}", value, self.step)
            self.writer.add_scalar("train/grad_norm", outcome.grad_norm.item(), self.step)
            self.writer.add_scalar("train/lr", self.lr, self.step)
            if self.scaler.is_enabled():
                self.writer.add_scalar("train/loss_scale", self.scaler.get_scale(), self.step)
            self.bar.set_postfix(loss=f"{logged['total']:.3f}", rec=f"{logged['reconstruction']:.3f}",
                                 **{POSTFIX.get(k, k): f"{v:.4g}" for k, v in metrics.items()})
        return logged, metrics

    def validate(self, valid_audio: LoadedSplit) -> float | None:
        """The validation loss (None without validation audio); a new best is saved as best.pt."""
        refresh_learned_means(self.model, self.train_audio, self.cfg.data.sample_rate)
        valid_loss = validate(self.model, valid_audio, self.device, self.precision, self.env)
        if valid_loss is not None:
            if self.main:
                self.writer.add_scalar("valid/loss_reconstruction", valid_loss, self.step)
                self.bar.write(f"step {self.step}: valid reconstruction loss {valid_loss:.4f} nats/sample")
            if valid_loss < self.best:
                self.best = valid_loss
                if self.main:
                    self.save(ckpt.BEST)
        self.model.train()
        return valid_loss

    def log_audio(self, valid_audio: LoadedSplit) -> None:
        from vqspeech.training.tensorboard import log_reconstructions

        log_reconstructions(self.writer, self.model, valid_audio.waves[:2], valid_audio.speaker_ids[:2],
                            [f"{u.speaker}_{u.utterance}" for u in valid_audio.utterances[:2]], self.step,
                            self.cfg.data.sample_rate)

    def save(self, name: str = ckpt.LAST) -> Path:
        refresh_learned_means(self.model, self.train_audio, self.cfg.data.sample_rate)
        state = ckpt.TrainingState(
            step=self.step, model_kwargs=self.kwargs, model=self.model.state_dict(),
            optimizer=self.optimizer.state_dict(), config=OmegaConf.to_container(self.cfg, resolve=True),
            rng=ckpt.rng_state(), best_valid_loss=self.best, world_size=self.env.world_size,
            scaler=self.scaler.state_dict() if self.scaler.is_enabled() else None)
        path = ckpt.save_checkpoint(self.run_dir / "checkpoints" / name, state.payload())
        if name == ckpt.LAST:
            ckpt.keep_history(path, self.step, self.tcfg.keep_last)
        return path

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.writer is not None:
            self.writer.close()


def _validation_set(corpus, speakers, cfg: DictConfig, progress: bool, loudness_lufs: float | None) -> LoadedSplit:
    """Up to train.valid_utterances held-out utterances, spread over speakers, each cut to
    valid_max_seconds and to a multiple of the hop."""
    tcfg = cfg.train
    held_out = corpus.split("valid")
    by_speaker: dict[str, list] = {}
    for utt in held_out:
        by_speaker.setdefault(utt.speaker, []).append(utt)
    chosen = []
    while len(chosen) < tcfg.valid_utterances and any(by_speaker.values()):
        for name in sorted(by_speaker):
            if by_speaker[name] and len(chosen) < tcfg.valid_utterances:
                chosen.append(by_speaker[name].pop(0))
    split = load_split(chosen, speakers, cfg.data.sample_rate, progress, "load valid audio",
                       loudness_lufs=loudness_lufs)
    limit = int(tcfg.valid_max_seconds * cfg.data.sample_rate)
    split.waves = [w[:limit] for w in split.waves]
    return split


@torch.no_grad()
def validate(model: VQVAE, split: LoadedSplit, device: torch.device, precision: Precision | None = None,
             env: distributed.Distributed = distributed.Distributed()) -> float | None:
    """Mean teacher-forced reconstruction cross-entropy (nats/sample) over whole held-out utterances, in the
    training precision. Under torchrun rank r scores utterances r, r + W, … and the sums are all-reduced."""
    model.eval()
    hop = model.hop_length
    total, count = 0.0, 0
    for i in range(env.rank, len(split.waves), env.world_size):
        wav, speaker = split.waves[i], split.speaker_ids[i]
        usable = len(wav) // hop * hop
        if usable == 0:
            continue
        x = torch.from_numpy(wav[:usable]).to(device)[None, None]
        with precision.autocast() if precision is not None else nullcontext():
            out = model(x, torch.tensor([speaker], device=device))
        total += out.losses["reconstruction"].item() * usable
        count += usable
    if env.enabled:
        total, count = env.sum(torch.tensor([total, count], dtype=torch.float64, device=device)).tolist()
    return total / count if count else None
