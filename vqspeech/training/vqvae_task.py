"""The VQ-VAE as a training task, and ``train(cfg)``, the run ``vqspeech train`` starts.

wav crops [B, 1, T] (and, for a reference-voice model, each crop's speaker vector or reference audio) ->
VQVAE -> its loss terms ("reconstruction", the bottleneck's, the auxiliary ones). Validation is the
teacher-forced reconstruction cross-entropy on whole held-out utterances; TensorBoard also gets two of them
with their sampled reconstructions and spectrograms. The loop itself is the trainer's (training/trainer.py).
"""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig
from torch import nn

from vqspeech.data.corpus import Corpus
from vqspeech.data.dataset import LoadedSplit, RandomCrops, crop_loader, load_split
from vqspeech.errors import UserError
from vqspeech.models import VQVAE, build_model
from vqspeech.models.builders import model_kwargs
from vqspeech.models.scoring import teacher_forced_loss
from vqspeech.training.conditioning import (CropConditioning, crop_conditioning, crop_perturbation, crop_pitch,
                                            refresh_learned_means)
from vqspeech.training.distributed import Distributed
from vqspeech.training.precision import Precision
from vqspeech.training.task import Batch, StepLosses, Task
from vqspeech.training.trainer import TrainResult, fit

DECODER_TERMS = ("reconstruction", "stft", "mel")  # the decoders' terms (WaveNet: reconstruction) on the bar
POSTFIX = {"used_codes": "codes", "perplexity": "ppl", "kl_nats_per_frame": "kl"}  # short names on the bar


def train(cfg: DictConfig, progress: bool = True) -> TrainResult:
    """Train (or resume) the VQ-VAE of ``cfg`` in ``cfg.run_dir``; see :func:`vqspeech.training.trainer.fit`."""
    return fit(cfg, VQVAETask(cfg), progress)


class VQVAETask(Task):
    valid_name = "loss_reconstruction"  # the decoder's score (WaveNet: nats per sample)

    def __init__(self, cfg: DictConfig):
        super().__init__(cfg)
        if cfg.data.sample_rate is None or cfg.data.sample_rate < 1:
            raise UserError(f"data.sample_rate must be a positive number of Hz, got {cfg.data.sample_rate!r}")
        self.sample_rate = cfg.data.sample_rate
        self.corpus = Corpus.from_config(cfg.data)
        self.speakers = self.corpus.speakers
        self.conditioning = CropConditioning()
        self.perturbation = self.pitch = None

    def model_kwargs(self) -> dict[str, Any]:
        return model_kwargs(self.cfg.model, self.speakers, self.sample_rate)

    def build_model(self, kwargs) -> VQVAE:
        return build_model(kwargs)

    def load_data(self, model: VQVAE, env: Distributed, progress: bool) -> str:
        """The training audio and the validation set, after checking that the crops fit the hop."""
        tcfg = self.cfg.train
        crop, hop = tcfg.crop_samples, model.hop_length
        if crop % hop:
            raise UserError(f"train.crop_samples={crop} must be a multiple of the encoder hop ({hop})")
        if model.cpc is not None and crop // hop <= model.cpc.steps:
            raise UserError(f"train.crop_samples={crop} holds {crop // hop} frames, but CPC predicts "
                            f"{model.cpc.steps} ahead; use longer crops or fewer model.cpc_steps")
        self.train_audio = load_split(self.corpus.split("train"), self.speakers, self.sample_rate, progress,
                                      "load train audio", pcm16=True, loudness_lufs=model.loudness_lufs)
        if not self.train_audio.waves:
            raise UserError(f"no usable training audio in {self.corpus.root} "
                            f"({len(self.train_audio.skipped)} files skipped)")
        self.conditioning = crop_conditioning(model, self.train_audio, self.corpus.root, self.sample_rate,
                                              progress, env.is_main)
        self.perturbation = crop_perturbation(self.cfg.model.get("perturb"), model, self.train_audio,
                                              self.corpus.root, self.sample_rate, progress)
        self.pitch = crop_pitch(model, self.train_audio, self.corpus.root, self.sample_rate, progress)
        self.valid_audio = self._validation_set(progress, model.loudness_lufs)
        self.vector_dim = getattr(model.speakers, "vector_dim", None)
        minutes = self.train_audio.samples / self.sample_rate / 60
        return (f"{len(self.train_audio.waves)} utterances, {minutes:.1f} min of audio; "
                f"{len(self.speakers)} speakers")

    def loader(self, step: int, env: Distributed, device: torch.device):
        """Batches (wav [B, 1, T], speaker_ids [B][, reference]) of random crops; see data/dataset.py."""
        tcfg = self.cfg.train
        crops = RandomCrops(self.train_audio, tcfg.crop_samples, tcfg.seed, self.conditioning.segments,
                            self.conditioning.reference_samples, self.perturbation, self.pitch)
        return crop_loader(crops, tcfg.batch_size, step, tcfg.num_workers, pin_memory=device.type == "cuda",
                           rank=env.rank, world_size=env.world_size)

    def losses(self, net: nn.Module, batch: Batch, device: torch.device) -> StepLosses:
        """batch: the crops' dict (:class:`~vqspeech.data.dataset.RandomCrops`): "wav" [B, 1, T], "speaker" [B],
        and as the model needs them "speaker_vector" [B, V] or "speaker_audio" [B, 1, R], "encoder_wav"
        [B, 1, T], "f0" [B, 2, P] with "register" [B, 2]."""
        got = {k: t.to(device, non_blocking=True) for k, t in batch.items()}
        pitch = (got["f0"], got["register"]) if "f0" in got else None
        out = net(got["wav"], got["speaker"], got.get("speaker_vector"), got.get("speaker_audio"),
                  got.get("encoder_wav"), pitch)
        return StepLosses(out.losses, out.metrics)

    def example_batch(self, device: torch.device) -> Batch:
        tcfg = self.cfg.train
        batch, crop = tcfg.batch_size, tcfg.crop_samples
        made = {"wav": (0.1 * torch.randn(batch, 1, crop, device=device)).clamp(-1, 1),
                "speaker": torch.zeros(batch, dtype=torch.long, device=device)}
        if self.conditioning.reference_samples is not None:
            made["speaker_audio"] = 0.1 * torch.randn(batch, 1, self.conditioning.reference_samples, device=device)
        elif self.conditioning.segments is not None:
            made["speaker_vector"] = torch.nn.functional.normalize(torch.randn(batch, self.vector_dim, device=device),
                                                                   dim=-1)
        if self.perturbation is not None:
            made["encoder_wav"] = made["wav"].flip(-1)
        if self.pitch is not None:
            frames = -(-crop // self.pitch.hop)
            made["f0"] = torch.stack([torch.full((batch, frames), 5.0, device=device),
                                      torch.ones(batch, frames, device=device)], dim=1)
            made["register"] = torch.tensor([[5.0, 0.2]], device=device).expand(batch, 2)
        return made

    def prepare(self, model: VQVAE) -> None:
        model.decoder.activation_checkpointing = self.cfg.train.checkpoint_activations

    def after_update(self, model: VQVAE, optimizer: torch.optim.Optimizer) -> None:
        model.bottleneck.reset_optimizer_state(optimizer)  # restarted codes start with clean moments

    def validate(self, model: VQVAE, precision: Precision, env: Distributed) -> float | None:
        """The decoder's mean reconstruction score (WaveNet: teacher-forced cross-entropy, nats/sample) over the
        held-out utterances, in the training precision. Under torchrun rank r scores utterances r, r + W, … and the sums are all-reduced."""
        refresh_learned_means(model, self.train_audio, self.sample_rate)
        part = teacher_forced_loss(model, self.valid_audio, range(env.rank, len(self.valid_audio.waves),
                                                                  env.world_size), precision.autocast)
        total, count = part.total, part.samples
        if env.enabled:
            total, count = env.sum(torch.tensor([total, count], dtype=torch.float64, device=model.device)).tolist()
        return total / count if count else None

    def log_media(self, writer, model: VQVAE, step: int) -> None:
        from vqspeech.training.tensorboard import log_reconstructions

        valid = self.valid_audio
        if valid.waves:
            log_reconstructions(writer, model, valid.waves[:2], valid.speaker_ids[:2],
                                [f"{u.speaker}_{u.utterance}" for u in valid.utterances[:2]], step,
                                self.sample_rate)

    def before_save(self, model: VQVAE) -> None:
        refresh_learned_means(model, self.train_audio, self.sample_rate)

    def postfix(self, logged, metrics) -> dict[str, str]:
        decoder_terms = {k: f"{logged[k]:.3f}" for k in DECODER_TERMS if k in logged}
        return {"loss": f"{logged['total']:.3f}", **decoder_terms,
                **{POSTFIX.get(k, k): f"{v:.4g}" for k, v in metrics.items()}}

    def _validation_set(self, progress: bool, loudness_lufs: float | None) -> LoadedSplit:
        """Up to train.valid_utterances held-out utterances, spread over speakers, each cut to
        valid_max_seconds."""
        tcfg = self.cfg.train
        by_speaker: dict[str, list] = {}
        for utt in self.corpus.split("valid"):
            by_speaker.setdefault(utt.speaker, []).append(utt)
        chosen = []
        while len(chosen) < tcfg.valid_utterances and any(by_speaker.values()):
            for name in sorted(by_speaker):
                if by_speaker[name] and len(chosen) < tcfg.valid_utterances:
                    chosen.append(by_speaker[name].pop(0))
        split = load_split(chosen, self.speakers, self.sample_rate, progress, "load valid audio",
                           loudness_lufs=loudness_lufs)
        limit = int(tcfg.valid_max_seconds * self.sample_rate)
        split.waves = [w[:limit] for w in split.waves]
        return split
