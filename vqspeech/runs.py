"""A trained run, ready for inference: which checkpoint to use and the model rebuilt from it.

Inference (convert, reconstruct, the evaluations, the report) loads runs from here, without the training
code; the checkpoint format itself is :mod:`vqspeech.checkpoint`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vqspeech import pretrained
from vqspeech.checkpoint import BEST, LAST, load_checkpoint, model_from_checkpoint
from vqspeech.data.corpus import Corpus
from vqspeech.errors import UserError
from vqspeech.models import VQVAE
from vqspeech.models.prior import Prior


@dataclass
class LoadedRun:
    """A trained VQ-VAE ready for inference, with where it came from."""

    model: VQVAE
    config: dict[str, Any]
    checkpoint: Path
    step: int
    model_kwargs: dict[str, Any]
    shipped: str | None = None  # the shipped model's name (vqspeech/pretrained.py), if it is one
    world_size: int = 1         # the processes it was trained by

    @property
    def sample_rate(self) -> int:
        """The rate (Hz) the model was trained at: its inputs and outputs."""
        return self.model.sample_rate

    @property
    def run_dir(self) -> Path:
        """The run's folder, where outputs go by default; a shipped model's is runs/shipped-NAME (never the
        installed package)."""
        return Path("runs") / f"shipped-{self.shipped}" if self.shipped else self.checkpoint.parent.parent

    def corpus(self, root: str | Path | None = None) -> Corpus:
        """The corpus the run was trained on (its saved data config), or the same layout under ``root``."""
        return Corpus.from_config(self.config["data"], root)


def resolve_checkpoint(run_dir: str | Path | None = None, checkpoint: str | Path | None = None) -> Path:
    """The checkpoint to use: the one named, else run_dir's last.pt, else the default shipped model's
    (vqspeech/pretrained.py; its SHA-256 checked)."""
    if checkpoint is not None:
        return Path(checkpoint)
    if run_dir is not None:
        path = Path(run_dir) / "checkpoints" / LAST
        if not path.is_file():
            raise UserError(f"{run_dir} holds no checkpoint ({path} not found); train it first")
        return path
    return pretrained.shipped(pretrained.DEFAULT).checkpoint


def load_run(run_dir: str | Path | None = None, checkpoint: str | Path | None = None,
             device: torch.device | str = "cpu") -> LoadedRun:
    """Load a VQ-VAE for inference (eval mode, on device)."""
    path = resolve_checkpoint(run_dir, checkpoint)
    shipped = pretrained.shipped_name(path)
    if shipped is not None:  # named by its path too: still checked against its SHA-256
        pretrained.shipped_file(shipped, "checkpoint")
    payload = load_checkpoint(path)
    model = model_from_checkpoint(payload, kind="vqvae").to(device).eval()
    return LoadedRun(model=model, config=payload["config"], checkpoint=path, step=int(payload["step"]),
                     model_kwargs=payload["model_kwargs"], shipped=shipped,
                     world_size=int(payload.get("world_size", 1)))


@dataclass
class LoadedPrior:
    """A trained code prior (eval mode) and the VQ-VAE checkpoint hash whose codes it models."""

    model: Prior
    checkpoint: Path
    step: int
    codes_hash: str


def load_prior(run: LoadedRun, prior_dir: str | Path | None = None, device: torch.device | str = "cpu") -> LoadedPrior:
    """The prior in ``prior_dir`` (default RUN/prior; a shipped model's own) of ``run``: its best.pt (the lowest
    validation cross-entropy: a prior overfits the codes of a small corpus within minutes), else its last.pt.

    Raises:
        UserError: no prior there (train one), or one trained on another checkpoint's codes.
    """
    from vqspeech.checkpoint import file_hash

    folder = Path(prior_dir) if prior_dir is not None else run.run_dir / "prior"
    path = folder / "checkpoints" / BEST
    if not path.is_file():
        path = folder / "checkpoints" / LAST
    if prior_dir is None and run.shipped and not path.is_file():
        path = pretrained.shipped_file(run.shipped, "prior")
        if path is None:
            raise UserError(f"the shipped model {run.shipped!r} comes without a prior; pass --prior FOLDER, a prior "
                            f"trained on its codes")
        folder = path.parent
    if not path.is_file():
        raise UserError(f"{folder} holds no prior ({path} not found); train one: vqspeech train-prior --run "
                        f"{run.run_dir}")
    payload = load_checkpoint(path)
    model = model_from_checkpoint(payload, kind="prior").to(device).eval()
    codes_hash = payload["model_kwargs"]["codes_hash"]
    if codes_hash != file_hash(run.checkpoint):
        raise UserError(f"the prior in {folder} models the codes of another checkpoint than {run.checkpoint} "
                        f"(hash {codes_hash}); train it again on this one: vqspeech train-prior --run "
                        f"{run.run_dir} run_dir=NEW_FOLDER")
    return LoadedPrior(model=model, checkpoint=path, step=int(payload["step"]), codes_hash=codes_hash)
