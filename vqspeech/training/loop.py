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
from tqdm import tqdm

from vqspeech.data.corpus import load_corpus
from vqspeech.data.dataset import LoadedSplit, RandomCrops, crop_loader, load_split
from vqspeech.errors import UserError
from vqspeech.files import write_atomic
from vqspeech.models import VQVAE, build_model
from vqspeech.models.builders import model_kwargs
from vqspeech.training import checkpoint as ckpt
from vqspeech.training import distributed
from vqspeech.training.precision import Precision

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    resumed_from: int              # 0 for a fresh run
    train_losses: dict[str, float]  # last logged values (unweighted terms and "total")
    valid_loss: float | None        # reconstruction cross-entropy on held-out audio, nats/sample
    metrics: dict[str, float]       # last logged perplexity / used_codes
    checkpoint: Path
    skipped_steps: int = 0          # steps whose loss or gradient was not finite (no update)
    already_done: bool = False      # the checkpoint was already at train.max_steps: nothing trained


def weighted_loss(losses: Mapping[str, torch.Tensor], weights: Mapping[str, float]) -> torch.Tensor:
    """Σ weights[name] · losses[name]; every term the model returns must have a weight."""
    missing = set(losses) - set(weights)
    if missing:
        raise UserError(f"train.loss_weights has no weight for {', '.join(sorted(missing))}")
    return sum(weights[name] * value for name, value in losses.items())


def check_train_config(tcfg: DictConfig) -> None:
    """A one-line UserError for a train.* value the loop cannot run with, before anything is loaded or written."""
    def bad(key: str, need: str) -> UserError:
        return UserError(f"train.{key} must be {need}, got {tcfg[key]!r}")

    for key in ("max_steps", "batch_size", "crop_samples", "log_every", "valid_every", "checkpoint_every",
                "max_bad_steps"):
        if tcfg[key] is None or tcfg[key] < 1:
            raise bad(key, "at least 1")
    for key in ("lr", "grad_clip", "valid_max_seconds"):
        if tcfg[key] is None or not tcfg[key] > 0:
            raise bad(key, "positive")
    for key in ("num_workers", "valid_utterances"):
        if tcfg[key] is None or tcfg[key] < 0:
            raise bad(key, "0 or more")
    if tcfg.max_minutes is not None and not tcfg.max_minutes > 0:
        raise bad("max_minutes", "positive, or null for no time limit")
    if tcfg.keep_last is not None and tcfg.keep_last < 0:
        raise bad("keep_last", "0 or more, or null to keep every checkpoint")
    if tcfg.audio_every is not None and tcfg.audio_every < 0:
        raise bad("audio_every", "0 or more, or null for never")


def train(cfg: DictConfig, progress: bool = True) -> TrainResult:
    """Train (or resume) the run in ``cfg.run_dir``. Returns where it ended.

    Under torchrun every process calls this; see :mod:`vqspeech.training.distributed`. train.batch_size is
    per process. Every rank returns the same TrainResult.
    """
    with distributed.process_group(cfg.train.device) as (env, device):
        return _train(cfg, env, device, progress)


def _train(cfg: DictConfig, env: distributed.Distributed, device: torch.device, progress: bool) -> TrainResult:
    tcfg = cfg.train
    check_train_config(tcfg)
    if cfg.data.sample_rate is None or cfg.data.sample_rate < 1:
        raise UserError(f"data.sample_rate must be a positive number of Hz, got {cfg.data.sample_rate!r}")
    run_dir = Path(cfg.run_dir)
    main = env.is_main  # the one process that writes files and shows progress
    progress = progress and main
    precision = Precision(tcfg.precision, device)
    torch.manual_seed(tcfg.seed)

    corpus = load_corpus(cfg.data.root, cfg.data.manifest, cfg.data.valid_fraction, cfg.data.test_fraction)
    speakers = corpus.speakers
    kwargs = model_kwargs(cfg.model, cfg.quantizer, speakers)
    last_path = run_dir / "checkpoints" / ckpt.LAST
    state = ckpt.load_checkpoint(last_path, map_location=device) if last_path.exists() else None
    if state is not None:
        differs = ckpt.find_kwargs_difference(state["model_kwargs"], kwargs)
        if differs is not None:
            raise UserError(f"{run_dir} holds a run whose model differs at '{differs}' from this config; "
                            f"resume with the same model config, or choose a new run_dir=...")
    try:
        model = build_model(kwargs).to(device)
    except (TypeError, ValueError) as exc:
        raise UserError(f"bad model or quantizer config: {exc}") from None
    optimizer = torch.optim.Adam(model.parameters(), lr=tcfg.lr)
    scaler = precision.scaler
    step, best = 0, math.inf
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        for group in optimizer.param_groups:  # the config's learning rate wins over the saved one
            group["lr"] = tcfg.lr
        if scaler.is_enabled() and "scaler" in state:
            scaler.load_state_dict(state["scaler"])
        ckpt.set_rng_state(state["rng"])
        step, best = int(state["step"]), float(state["best_valid_loss"])
        if main:
            log.info("resuming %s from step %d", run_dir, step)
            if state.get("world_size", 1) != env.world_size:
                log.warning("%s was trained by %d processes, resumed by %d: the crops of each step differ from "
                            "those of an uninterrupted run", run_dir, state.get("world_size", 1), env.world_size)
        if step >= tcfg.max_steps:  # nothing to do: say so before loading any audio
            return TrainResult(run_dir=run_dir, step=step, resumed_from=step, train_losses={}, valid_loss=None,
                               metrics={}, checkpoint=last_path, already_done=True)
    elif run_dir.exists() and any(run_dir.iterdir()):
        raise UserError(f"{run_dir} already holds files but no checkpoint to resume; choose another "
                        f"run_dir=... or remove that folder")
    if main:
        log.info("%s", model.summary())

    crop = tcfg.crop_samples
    if crop % model.hop_length:
        raise UserError(f"train.crop_samples={crop} must be a multiple of the encoder hop ({model.hop_length})")
    sample_rate = cfg.data.sample_rate
    train_audio = load_split(corpus.split("train"), speakers, sample_rate, progress, "load train audio", pcm16=True)
    if not train_audio.waves:
        raise UserError(f"no usable training audio in {corpus.root} ({len(train_audio.skipped)} files skipped)")
    valid_audio = _validation_set(corpus, speakers, cfg, progress)
    loader = crop_loader(RandomCrops(train_audio, crop, tcfg.seed), tcfg.batch_size, step,
                         tcfg.num_workers, pin_memory=device.type == "cuda", rank=env.rank,
                         world_size=env.world_size)
    env.barrier()  # every rank has looked at run_dir (and found its data usable) before rank 0 writes to it
    if state is None and main:  # written only now, so a run refused above can be started again as it is
        run_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(run_dir / "config.yaml", OmegaConf.to_yaml(cfg))
    if main:
        log.info("train: %d utterances, %.1f min of audio; %d speakers; device %s%s; precision %s",
                 len(train_audio.waves), train_audio.samples / sample_rate / 60, len(speakers), device,
                 f" × {env.world_size} processes" if env.enabled else "", precision.name)
    net = env.wrap(model, device)  # what the steps run; `model` (unwrapped) is what is saved and validated

    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(run_dir / "tensorboard")) if main else None
    start_step, started = step, time.monotonic()
    logged: dict[str, float] = {}
    metrics: dict[str, float] = {}
    valid_loss = None
    skipped = bad_in_row = 0

    def save(name: str = ckpt.LAST) -> Path:
        payload = {"step": step, "model_kwargs": kwargs, "model": model.state_dict(),
                   "optimizer": optimizer.state_dict(), "config": OmegaConf.to_container(cfg, resolve=True),
                   "rng": ckpt.rng_state(), "best_valid_loss": best, "world_size": env.world_size}
        if scaler.is_enabled():
            payload["scaler"] = scaler.state_dict()
        path = ckpt.save_checkpoint(run_dir / "checkpoints" / name, payload)
        if name == ckpt.LAST:
            ckpt.keep_history(path, step, tcfg.keep_last)
        return path

    bar = _ProgressBar(tcfg, step, enabled=progress)
    batches = iter(loader)
    model.train()
    try:
        while step < tcfg.max_steps:
            wav, speaker_ids = next(batches)
            wav, speaker_ids = wav.to(device, non_blocking=True), speaker_ids.to(device, non_blocking=True)
            with precision.autocast():
                out = net(wav, speaker_ids)
                loss = weighted_loss(out.losses, tcfg.loss_weights)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg.grad_clip)  # equal on every rank
            # the total and each term, averaged over ranks: every rank takes the same skip decision
            terms = env.mean(torch.stack([loss.detach().float(), *(v.detach().float() for v in out.losses.values())]))
            step += 1  # a skipped step still consumes its batch, so resumed runs stay aligned
            finite_loss, finite_grad = bool(torch.isfinite(terms[0])), bool(torch.isfinite(grad_norm))
            # fp16: a finite loss with a non-finite gradient is an overflow; scaler.step skips that update and
            # scaler.update lowers the scale
            overflow = scaler.is_enabled() and finite_loss and not finite_grad
            if not (finite_loss and finite_grad) and not overflow:
                scaler.update()
                skipped, bad_in_row = skipped + 1, bad_in_row + 1
                if main:
                    writer.add_scalar("train/skipped_steps", skipped, step)
                    bar.write(f"step {step}: non-finite loss or gradient, update skipped ({skipped} so far)")
                if bad_in_row >= tcfg.max_bad_steps:
                    good = ckpt.load_checkpoint(last_path)["step"] if last_path.exists() else None
                    where = f"{last_path} (step {good})" if good is not None else "none yet"
                    raise UserError(f"{bad_in_row} non-finite steps in a row up to step {step}; stopped. "
                                    f"Last good checkpoint: {where}")
                bar.advance(step)
                continue
            bad_in_row = 0
            scaler.step(optimizer)
            scaler.update()

            if step % tcfg.log_every == 0 or step == tcfg.max_steps:
                logged = dict(zip(["total", *out.losses], terms.tolist()))
                metrics = {k: v.item() for k, v in out.vq.metrics.items()}  # of the global batch
                if main:
                    for name, value in logged.items():
                        writer.add_scalar(f"train/loss_{name}", value, step)
                    for name, value in metrics.items():
                        writer.add_scalar(f"train/{name}", value, step)
                    writer.add_scalar("train/grad_norm", grad_norm.item(), step)
                    if scaler.is_enabled():
                        writer.add_scalar("train/loss_scale", scaler.get_scale(), step)
                    bar.set_postfix(loss=f"{logged['total']:.3f}", rec=f"{logged['reconstruction']:.3f}",
                                    codes=int(metrics["used_codes"]), ppl=f"{metrics['perplexity']:.1f}")
            bar.advance(step)

            out_of_time = (tcfg.max_minutes is not None
                           and env.main_says(time.monotonic() - started > 60 * tcfg.max_minutes, device))
            if step % tcfg.valid_every == 0 or step == tcfg.max_steps or out_of_time:
                valid_loss = validate(model, valid_audio, device, precision, env)
                if valid_loss is not None:
                    if main:
                        writer.add_scalar("valid/loss_reconstruction", valid_loss, step)
                        bar.write(f"step {step}: valid reconstruction loss {valid_loss:.4f} nats/sample")
                    if valid_loss < best:
                        best = valid_loss
                        if main:
                            save(ckpt.BEST)
                model.train()
            if main and tcfg.audio_every and step % tcfg.audio_every == 0 and valid_audio.waves:
                from vqspeech.training.tensorboard import log_reconstructions

                log_reconstructions(writer, model, valid_audio.waves[:2], valid_audio.speaker_ids[:2],
                                    [f"{u.speaker}_{u.utterance}" for u in valid_audio.utterances[:2]], step,
                                    sample_rate)
            if main and (step % tcfg.checkpoint_every == 0 or step == tcfg.max_steps or out_of_time):
                save()
            if out_of_time:
                if main:
                    bar.write(f"stopping at step {step}: train.max_minutes={tcfg.max_minutes} reached")
                break
    except KeyboardInterrupt:
        if main:
            bar.write(f"interrupted at step {step}; saving a checkpoint to resume from")
            save()
        raise
    finally:
        bar.close()
        if writer is not None:
            writer.close()
    env.barrier()  # rank 0 has written its last checkpoint when any rank returns
    seconds = time.monotonic() - started
    if main:
        log.info("trained steps %d..%d in %.1f s", start_step, step, seconds)
    return TrainResult(run_dir=run_dir, step=step, resumed_from=start_step, train_losses=logged,
                       valid_loss=valid_loss, metrics=metrics, checkpoint=last_path, skipped_steps=skipped)


class _ProgressBar:
    """The training bar. Bounded by steps it counts steps; with train.max_minutes it counts this run's wall
    seconds against that bound, so its total and ETA are the time limit's, and shows the step beside them."""

    def __init__(self, tcfg: DictConfig, step: int, enabled: bool):
        self.by_time = tcfg.max_minutes is not None
        self.started = time.monotonic()
        if self.by_time:
            self.bar = tqdm(total=round(60 * tcfg.max_minutes), unit="s", desc=f"train step {step}",
                            disable=not enabled, dynamic_ncols=True,
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total} s "
                                       "[{elapsed}<{remaining}{postfix}]")
        else:
            self.bar = tqdm(total=tcfg.max_steps, initial=step, desc="train", unit="step", disable=not enabled,
                            dynamic_ncols=True)

    def advance(self, step: int) -> None:
        if self.by_time:
            self.bar.set_description(f"train step {step}", refresh=False)
            elapsed = min(time.monotonic() - self.started, self.bar.total)
            self.bar.update(elapsed - self.bar.n)
        else:
            self.bar.update(1)

    def set_postfix(self, **values) -> None:
        self.bar.set_postfix(**values)

    def write(self, message: str) -> None:
        self.bar.write(message)

    def close(self) -> None:
        self.bar.close()


def _validation_set(corpus, speakers, cfg: DictConfig, progress: bool) -> LoadedSplit:
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
    split = load_split(chosen, speakers, cfg.data.sample_rate, progress, "load valid audio")
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
