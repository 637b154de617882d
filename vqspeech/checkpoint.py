"""Checkpoints, below both training and inference: written whole (temp file, fsync, rename), read without pickle.

A checkpoint is a dict of tensors and plain Python values, loadable with ``torch.load(weights_only=True)``:
``format`` and ``vqspeech_version`` (added by :func:`save_checkpoint`), then the fields of
:class:`TrainingState`, the one definition of what training stores. ``model_kwargs["kind"]`` says what
model it holds; :data:`BUILDERS` maps each kind to the builder that rebuilds it (checkpoints written before
kinds existed hold a ``vqvae``).
"""

from __future__ import annotations

import copy
import os
import pickle
import re
import shutil
import zipfile
from dataclasses import dataclass, fields
from pathlib import Path
from collections.abc import Callable
from typing import Any

import torch

from vqspeech import __version__
from vqspeech.errors import UserError
from vqspeech.files import atomic_target, sha256
from vqspeech.models import build_model
from vqspeech.models.prior import build_prior

FORMAT = 1
LAST = "last.pt"
BEST = "best.pt"
# model_kwargs["kind"] -> the function that builds that model from its kwargs
BUILDERS: dict[str, Callable[[dict[str, Any]], torch.nn.Module]] = {"vqvae": build_model, "prior": build_prior}


@dataclass
class TrainingState:
    """What a training checkpoint holds.

    Attributes:
        step: optimizer steps taken (skipped steps included).
        model_kwargs: the model's constructor arguments (see models.builders; includes the speaker names).
        model: state dict of the unwrapped module.
        optimizer: the optimizer's state dict.
        config: the composed recipe config, resolved.
        rng: torch CPU/CUDA generator states (:func:`rng_state`; rank 0's under torchrun).
        best_valid_loss: the lowest validation loss so far (inf before the first validation).
        world_size: the number of training processes (1 in checkpoints from before it was stored).
        scaler: the fp16 GradScaler's state, only with train.precision=fp16.
        minutes_trained: training wall minutes over every invocation of the run (train.max_minutes counts
            each invocation's own; 0 in checkpoints from before it was stored).
    """

    step: int
    model_kwargs: dict[str, Any]
    model: dict[str, Any]
    optimizer: dict[str, Any]
    config: dict[str, Any]
    rng: dict[str, Any]
    best_valid_loss: float
    world_size: int = 1
    scaler: dict[str, Any] | None = None
    minutes_trained: float = 0.0

    def payload(self) -> dict[str, Any]:
        """The dict save_checkpoint writes (no scaler entry without one)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        if values["scaler"] is None:
            del values["scaler"]
        return values

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> TrainingState:
        """The state in a dict :func:`load_checkpoint` read."""
        return cls(**{f.name: payload[f.name] for f in fields(cls) if f.name in payload})


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write payload to path atomically: a kill at any moment leaves the previous file intact.

    A write that fails (ENOSPC, or any other OSError, at the write, the fsync or the rename) leaves the previous
    file intact and no temp file, and raises a one-line UserError naming the folder and the space needed.
    """
    path = Path(path)
    payload = {"format": FORMAT, "vqspeech_version": __version__, **payload}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_target(path, fsync=True) as tmp:
            torch.save(payload, tmp)
    except OSError as exc:
        raise save_error(exc, path, payload_bytes(payload)) from None
    return path


def payload_bytes(value: Any) -> int:
    """The bytes of the tensors in a (nested) checkpoint payload: about the size of its file."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(payload_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(payload_bytes(v) for v in value)
    return 0


def save_error(exc: OSError, path: Path, needed: int) -> UserError:
    """The one-line error of a failed save: what failed, the space needed and free, and what to do."""
    try:
        free = f"{shutil.disk_usage(path.parent).free / 1e6:.1f} MB free"
    except OSError:
        free = "free space unknown"
    return UserError(f"could not save {path}: {exc.strerror or exc}; a checkpoint needs about {needed / 1e6:.1f} MB "
                     f"in {path.parent} ({free}); the previous checkpoint is intact: free some space, then run "
                     f"the same command to resume")


def file_hash(path: str | Path) -> str:
    """The first 16 hex digits of a file's SHA-256 (:func:`vqspeech.files.sha256`): what names a checkpoint's
    codes and a prior's VQ-VAE."""
    return sha256(path)[:16]


def keep_history(last: Path, step: int, keep: int | None) -> None:
    """Keep ``last`` also as ``step-NNNNNNNN.pt`` (a hard link: no copy) and delete all but the newest
    ``keep`` of those; None keeps every one."""
    numbered = last.with_name(f"step-{step:08d}.pt")
    if numbered.exists():
        numbered.unlink()
    try:
        os.link(last, numbered)
    except OSError:  # a file system without hard links: a copy, whole or not at all
        try:
            with atomic_target(numbered, fsync=True) as tmp:
                shutil.copyfile(last, tmp)
        except OSError as exc:
            raise save_error(exc, numbered, last.stat().st_size) from None
    if keep is not None:
        history = sorted(last.parent.glob("step-*.pt"))
        for old in history[: max(len(history) - keep, 0)]:
            old.unlink()


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with weights_only=True; anything that would need pickle to load is refused."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} not found")
    if not zipfile.is_zipfile(path):
        raise UserError(f"{path}: not a readable checkpoint (not a torch zip file, or truncated)")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        unsupported = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        what = f" {unsupported.group(1)}" if unsupported else " objects beyond tensors and plain values"
        raise UserError(f"{path}: refused, it needs pickle to load{what}, which can run arbitrary code; "
                        f"vqspeech only loads checkpoints of plain tensors and values") from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise UserError(f"{path}: not a readable checkpoint ({str(exc).splitlines()[0]})") from None
    if not isinstance(payload, dict) or "model_kwargs" not in payload or "model" not in payload:
        raise UserError(f"{path}: not a vqspeech checkpoint (no model_kwargs/model entries)")
    return _upgraded(payload)


def _upgraded(payload: dict[str, Any]) -> dict[str, Any]:
    """An older checkpoint in today's form: without a kind, a "vqvae"; without model.bottleneck (the VQ
    layer's weights under "quantizer."), a VQ bottleneck whose weights are under "bottleneck."; with a separate
    "quantizer" entry, the VQ options inside model.bottleneck (a continuous bottleneck's k-means K, now a probe
    option, is dropped); without the model's sample rate, the run's data rate; without model.decoder.kind, the
    WaveNet; without model.pitch and model.perturb, both off (as the configs' defaults write them)."""
    kwargs = payload["model_kwargs"]
    if not isinstance(kwargs, dict):
        return payload
    kwargs.setdefault("kind", "vqvae")
    if kwargs["kind"] != "vqvae":
        return payload
    rate = (payload.get("config") or {}).get("data", {}).get("sample_rate")
    if "sample_rate" not in kwargs and rate:
        kwargs["sample_rate"] = int(rate)
    model = kwargs.get("model")
    if isinstance(model, dict) and "bottleneck" not in model:
        model["bottleneck"] = {"kind": "vq"}
        payload["model"] = {("bottleneck." + k[len("quantizer."):] if k.startswith("quantizer.") else k): v
                            for k, v in payload["model"].items()}
    if isinstance(model, dict) and isinstance(model.get("decoder"), dict):
        model["decoder"].setdefault("kind", "wavenet")  # before there were two decoders
    if isinstance(model, dict) and "encoder" in model:  # before the pitch stream and the perturbation
        model.setdefault("pitch", {"levels": 0, "hop": 640, "z_range": 3.0})
        model.setdefault("perturb", {"variants": 0, "formant": 1.4, "pitch_median": 2.0, "pitch_range": 1.5,
                                     "eq_gain_db": 12.0, "seed": 0})
    quantizer = kwargs.pop("quantizer", None)
    if isinstance(model, dict) and quantizer is not None and model["bottleneck"].get("kind") == "vq":
        model["bottleneck"] = {**model["bottleneck"], **quantizer}
    return payload


def upgraded_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Model kwargs in today's form, as :func:`load_checkpoint` gives a checkpoint's (a copy)."""
    return _upgraded({"model_kwargs": copy.deepcopy(kwargs), "model": {}})["model_kwargs"]


def build(kwargs: dict[str, Any]) -> torch.nn.Module:
    """The model of ``kwargs["kind"]`` (see :data:`BUILDERS`), untrained."""
    kind = kwargs.get("kind", "vqvae")
    if kind not in BUILDERS:
        raise UserError(f"checkpoint holds a model of kind {kind!r}, which this vqspeech cannot build "
                        f"(it knows {', '.join(sorted(BUILDERS))})")
    return BUILDERS[kind](kwargs)


def model_from_checkpoint(payload: dict[str, Any], kind: str | None = None) -> torch.nn.Module:
    """Rebuild the model a checkpoint was saved from and load its weights; with ``kind``, refuse any other."""
    payload = _upgraded({**payload, "model_kwargs": copy.deepcopy(payload["model_kwargs"])})  # idempotent
    kwargs = payload["model_kwargs"]
    held = kwargs.get("kind", "vqvae")
    if kind is not None and held != kind:
        raise UserError(f"the checkpoint holds a {held}, not a {kind}; pass a {kind} checkpoint")
    try:
        model = build(kwargs)
    except (TypeError, ValueError, KeyError) as exc:
        raise UserError(f"checkpoint's model_kwargs do not build a model ({exc}); it was written by "
                        f"vqspeech {payload.get('vqspeech_version', '?')}") from None
    expected, stored = model.state_dict(), payload["model"]
    for key in sorted(set(expected) | set(stored)):
        if key not in stored or key not in expected:
            where = "missing from the checkpoint" if key not in stored else "not in the model"
            raise UserError(f"checkpoint does not match its model_kwargs: '{key}' is {where}")
        if expected[key].shape != stored[key].shape:
            raise UserError(f"checkpoint does not match its model_kwargs: '{key}' has shape "
                            f"{tuple(stored[key].shape)}, the model expects {tuple(expected[key].shape)}")
    model.load_state_dict(stored)
    return model


def find_kwargs_difference(a: Any, b: Any, prefix: str = "") -> str | None:
    """The first key (dotted) where two nested dicts differ, or None if equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            where = f"{prefix}.{key}" if prefix else str(key)
            if key not in a or key not in b:
                return where
            diff = find_kwargs_difference(a[key], b[key], where)
            if diff is not None:
                return diff
        return None
    return None if a == b else (prefix or "<root>")


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore rng_state()'s result (its tensors may have been loaded onto a GPU: generator states are CPU
    tensors)."""
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
