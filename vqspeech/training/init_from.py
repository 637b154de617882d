"""Fine-tuning: a new run's first weights from a trained model (``vqspeech train RECIPE init_from=librispeech``).

``init_from`` is a shipped model's name (vqspeech/pretrained.py; its model settings come with it, from
configs/pretrained/NAME.yaml, see :func:`vqspeech.config.compose_recipe`), a run folder or a checkpoint file.
Every weight is copied except those of the training speakers (``VQVAE.PER_SPEAKER``), unless the new corpus
has the same speakers, by name: another corpus brings its own. The optimizer starts fresh. A model whose settings differ where the weights' meaning
is fixed (``VQVAE.ARCHITECTURE``), or whose weights differ in shape, is refused in one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vqspeech.checkpoint import find_kwargs_difference, load_checkpoint, upgraded_kwargs
from vqspeech.errors import UserError
from vqspeech.models import VQVAE


@dataclass
class Initialized:
    """What :func:`initialize_from` copied: from where, how many tensors, and which it left to the new run."""

    source: Path
    step: int          # the source's training step
    copied: int        # state entries copied
    kept: list[str]    # per-speaker entries left as the new model has them

    def describe(self) -> str:
        kept = f"; {', '.join(self.kept)} left to this corpus's speakers" if self.kept else ""
        return f"init_from: {self.copied} weights from {self.source} (step {self.step}){kept}"


def resolve_source(spec: str) -> Path:
    """A shipped model's name, a run folder (its last.pt) or a checkpoint file -> the checkpoint's path."""
    from vqspeech import pretrained
    from vqspeech.runs import resolve_checkpoint

    path = Path(spec)
    if not path.exists() and spec in pretrained.names():
        return pretrained.shipped(spec).checkpoint
    if path.is_dir():
        return resolve_checkpoint(run_dir=path)
    if not path.is_file():
        shipped = ", ".join(pretrained.names()) or "none"
        raise UserError(f"init_from={spec}: no such file or run folder, and no shipped model of that name "
                        f"(shipped: {shipped})")
    return path


def initialize_from(model: VQVAE, model_kwargs: dict[str, Any], spec: str) -> Initialized:
    """Copy ``spec``'s weights into ``model`` (built from ``model_kwargs``), in place."""
    source = resolve_source(spec)
    payload = load_checkpoint(source)
    theirs, model_kwargs = payload["model_kwargs"], upgraded_kwargs(model_kwargs)
    if theirs.get("kind", "vqvae") != "vqvae":
        raise UserError(f"init_from={spec}: {source} holds a {theirs.get('kind')}, not a VQ-VAE")
    differs = architecture_difference(theirs.get("model", {}), model_kwargs.get("model", {}))
    if differs is None and theirs.get("sample_rate") != model_kwargs.get("sample_rate"):
        differs = ("sample_rate", theirs.get("sample_rate"), model_kwargs.get("sample_rate"))
    if differs is not None:
        key, there, here = differs
        raise UserError(f"init_from={spec}: its model differs at {key} ({there!r} there, {here!r} in this config); "
                        f"train with its settings (a shipped model's: docs/pretrained.md) or start from scratch")
    stored, own = payload["model"], model.state_dict()
    same_speakers = list(theirs.get("speakers", [])) == list(model_kwargs.get("speakers", []))
    kept = [] if same_speakers else sorted(k for k in own if k in VQVAE.PER_SPEAKER)
    for key in own:
        if key in kept:
            continue
        if key not in stored:
            raise UserError(f"init_from={spec}: {source} has no '{key}', which this model has; start from scratch "
                            f"or from a checkpoint of this model")
        if stored[key].shape != own[key].shape:
            raise UserError(f"init_from={spec}: '{key}' has shape {tuple(stored[key].shape)} there and "
                            f"{tuple(own[key].shape)} here; train with its model settings or start from scratch")
    with torch.no_grad():
        for key, value in own.items():
            if key not in kept:
                value.copy_(stored[key].to(value.dtype))
    return Initialized(source=source, step=int(payload["step"]), copied=len(own) - len(kept), kept=kept)


def architecture_difference(theirs: dict[str, Any], ours: dict[str, Any]) -> tuple[str, Any, Any] | None:
    """The first of ``VQVAE.ARCHITECTURE``'s settings (dotted, under model.) where two model configs differ:
    (key, theirs, ours), or None."""
    for dotted in VQVAE.ARCHITECTURE:
        a, b = _without_ignored(_select(theirs, dotted), dotted), _without_ignored(_select(ours, dotted), dotted)
        where = find_kwargs_difference(a, b)
        if where is not None:
            inner = "" if where == "<root>" else "." + where
            return f"model.{dotted}{inner}", _select(a, where), _select(b, where)
    return None


def _without_ignored(value: Any, dotted: str) -> Any:
    """``value`` (the setting ``dotted``) without the keys of ``VQVAE.IGNORED`` under it."""
    if not isinstance(value, dict):
        return value
    drop = {key.split(".", 1)[1] for key in VQVAE.IGNORED if key.split(".", 1)[0] == dotted}
    return {k: v for k, v in value.items() if k not in drop}


def _select(tree: Any, dotted: str) -> Any:
    for part in ("" if dotted == "<root>" else dotted).split("."):
        if part:
            tree = tree.get(part) if isinstance(tree, dict) else None
    return tree
