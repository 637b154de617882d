"""The code prior as a training task, and ``train_prior(cfg)``, the run ``vqspeech train-prior`` starts.

A VQ-VAE run's codes (vqspeech/codes.py: extracted once, keyed by its checkpoint) -> random windows of
``train.crop_codes`` codes, each with the code before it (BOS at an utterance's start) and its speaker ->
the prior's cross-entropy ("prior", nats per code). Validation is the same on the whole held-out
utterances, in bits per code. The loop, checkpoints, resume and TensorBoard are the trainer's
(training/trainer.py); the prior's run folder is ``RUN/prior`` unless ``run_dir=`` says otherwise.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf

from vqspeech.codes import extract_codes, load_codes
from vqspeech.errors import UserError
from vqspeech.models.prior import Prior, prior_kwargs
from vqspeech.runs import load_run
from vqspeech.training.distributed import Distributed
from vqspeech.training.precision import Precision
from vqspeech.training.task import Batch, StepLosses, Task
from vqspeech.training.trainer import TrainResult, fit

IGNORE = -100  # targets past an utterance's end


def train_prior(cfg: DictConfig, progress: bool = True) -> TrainResult:
    """Train (or resume) the prior of ``cfg.prior`` on the codes of the VQ-VAE run ``cfg.run``."""
    return fit(cfg, PriorTask(cfg, progress), progress)


class PriorTask(Task):
    valid_name = "bits_per_code"

    def __init__(self, cfg: DictConfig, progress: bool = True):
        super().__init__(cfg)
        run = load_run(cfg.run, cfg.get("checkpoint"))
        self.codes_dir = extract_codes(run, cfg.get("data_root"), progress)
        self.train_codes = load_codes(self.codes_dir, "train")
        vectors = self.train_codes.speaker_vectors
        self.kwargs = prior_kwargs(OmegaConf.to_container(cfg.prior, resolve=True), self.train_codes.codebook_size,
                                   self.train_codes.speakers, None if vectors is None else int(vectors.shape[1]),
                                   self.codes_dir.name)

    def model_kwargs(self) -> dict[str, Any]:
        return self.kwargs

    def loss_weights(self, step: int) -> dict[str, float]:
        return {"prior": 1.0}

    def load_data(self, model: Prior, env: Distributed, progress: bool) -> str:
        crop = self.cfg.train.crop_codes
        if crop < 2:
            raise UserError(f"train.crop_codes must be 2 or more codes, got {crop}")
        self.valid_codes = load_codes(self.codes_dir, "valid")
        usable = [i for i, c in enumerate(self.train_codes.codes) if len(c)]
        if not usable:
            raise UserError(f"the training codes in {self.codes_dir} are all empty")
        self.usable = usable
        minutes = self.train_codes.frames / self.train_codes.frame_rate / 60
        return (f"{len(usable)} utterances, {self.train_codes.frames} codes ({minutes:.1f} min at "
                f"{self.train_codes.frame_rate:g} Hz) of {self.codes_dir}; receptive field {model.receptive_field} codes")

    def loader(self, step: int, env: Distributed, device: torch.device):
        """Endless batches (window LongTensor[B, L + 1], speaker [B] or [B, V]); batch n depends only on the
        seed, n and the rank, so a resumed run reads the batches an uninterrupted one would."""
        tcfg = self.cfg.train
        while True:
            rng = np.random.default_rng([tcfg.seed, step, env.rank])
            picks = rng.choice(self.usable, size=tcfg.batch_size)
            yield self._batch(picks, rng)
            step += 1

    def _batch(self, picks, rng: np.random.Generator) -> Batch:
        crop, split = self.cfg.train.crop_codes, self.train_codes
        windows = torch.full((len(picks), crop + 1), IGNORE, dtype=torch.long)
        for row, i in enumerate(picks):
            padded = torch.cat([torch.tensor([-1]), split.codes[i]])  # −1: BOS (set by the model's index)
            start = int(rng.integers(0, max(1, len(padded) - crop)))
            piece = padded[start:start + crop + 1]
            windows[row, : len(piece)] = piece
        return windows, split.speaker_condition([int(i) for i in picks])

    def losses(self, net: torch.nn.Module, batch: Batch, device: torch.device) -> StepLosses:
        windows, speaker = (t.to(device, non_blocking=True) for t in batch)
        prior = getattr(net, "module", net)
        inputs = windows[:, :-1].clone()
        inputs[inputs == -1] = prior.bos
        inputs[inputs == IGNORE] = 0  # after the end: a causal model never looks back at it
        targets = windows[:, 1:]
        logits = net(inputs, speaker)
        loss = F.cross_entropy(logits.float(), targets, ignore_index=IGNORE)
        return StepLosses({"prior": loss}, {"bits_per_code": loss.detach() / math.log(2)})

    def example_batch(self, device: torch.device) -> Batch:
        tcfg = self.cfg.train
        windows = torch.randint(0, self.train_codes.codebook_size, (tcfg.batch_size, tcfg.crop_codes + 1))
        return windows.to(device), self.train_codes.speaker_condition([0] * tcfg.batch_size).to(device)

    def validate(self, model: Prior, precision: Precision, env: Distributed) -> float | None:
        """Bits per code of the held-out utterances (rank r scores utterances r, r + W, …; sums all-reduced)."""
        from vqspeech.eval.prior import sequence_nats

        split = self.valid_codes
        picks = [i for i in range(env.rank, len(split.codes), env.world_size) if len(split.codes[i])]
        with precision.autocast():
            nats = sequence_nats(model, split, picks, conditioned=True)
        total = torch.tensor([sum(nats), sum(len(split.codes[i]) for i in picks)], dtype=torch.float64,
                             device=model.device)
        if env.enabled:
            total = env.sum(total)
        return float(total[0] / total[1] / math.log(2)) if total[1] else None

    def postfix(self, logged, metrics) -> dict[str, str]:
        return {"bits": f"{metrics['bits_per_code']:.3f}"}

