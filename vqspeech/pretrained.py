"""The shipped models: weights inside the package (vqspeech/weights/), checked against their SHA-256 at load.

    vqspeech.load("librispeech")                    # the Python API
    vqspeech convert in.wav --reference ref.wav     # a command given no --run uses the default shipped model
    vqspeech train RECIPE init_from=librispeech     # fine-tuning starts from its weights

``vqspeech/weights/index.json`` names each model's files (the VQ-VAE, weights only; its code prior, for the
codec and sampling; the training run's reference curve) with their sizes and SHA-256, as
tools/export_pretrained.py wrote them. docs/pretrained.md is the model card.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from vqspeech.errors import UserError
from vqspeech.files import sha256

DEFAULT = "librispeech"  # what a command given no --run uses
INDEX = "index.json"


@dataclass(frozen=True)
class Shipped:
    """One shipped model: its files (checked) and what the index says of it.

    Attributes:
        name: what ``vqspeech.load`` and ``init_from=`` take.
        checkpoint: the VQ-VAE, weights only (a checkpoint :func:`vqspeech.runs.load_run` reads).
        prior: its code prior, trained on this checkpoint's codes (None if none is shipped).
        curve: the training run's curve, CSV (vqspeech/reference.py reads it; None if none is shipped).
        summary: one line: what it was trained on, for how long.
    """

    name: str
    checkpoint: Path
    prior: Path | None
    curve: Path | None
    summary: str


def weights_dir() -> Path:
    """The installed vqspeech/weights/ folder."""
    return Path(str(resources.files("vqspeech"))) / "weights"


def index(folder: Path | None = None) -> dict[str, Any]:
    """index.json: {name: {"summary", "checkpoint": {"file", "bytes", "sha256"}, "prior": ..., "curve": ...}}."""
    path = (folder or weights_dir()) / INDEX
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


def names(folder: Path | None = None) -> list[str]:
    return sorted(index(folder))


def shipped(name: str = DEFAULT, folder: Path | None = None) -> Shipped:
    """The shipped model ``name``, each of its files checked against its SHA-256.

    Raises:
        UserError: no such model, a file missing, or a file whose SHA-256 differs (damaged or altered).
    """
    folder = folder or weights_dir()
    entries = index(folder)
    if name not in entries:
        known = ", ".join(sorted(entries)) or "none (this install has no vqspeech/weights/index.json)"
        raise UserError(f"no shipped model named {name!r}; shipped: {known}. Pass a run folder or a checkpoint "
                        f"file instead")
    entry = entries[name]
    files = {part: _checked(folder, entry[part], name) if entry.get(part) else None
             for part in ("checkpoint", "prior", "curve")}
    return Shipped(name=name, summary=entry.get("summary", ""), **files)


def shipped_name(path: str | Path, folder: Path | None = None) -> str | None:
    """The shipped model whose VQ-VAE checkpoint ``path`` is, else None."""
    folder = folder or weights_dir()
    try:
        resolved = Path(path).resolve()
    except OSError:
        return None
    for name, entry in index(folder).items():
        if entry.get("checkpoint") and (folder / entry["checkpoint"]["file"]).resolve() == resolved:
            return name
    return None


def shipped_file(name: str, part: str, folder: Path | None = None) -> Path | None:
    """One file of a shipped model (``checkpoint``, ``prior`` or ``curve``), checked; None if it ships none.

    Raises:
        UserError: as :func:`shipped`, for that file alone.
    """
    folder = folder or weights_dir()
    entry = index(folder).get(name) or {}
    return _checked(folder, entry[part], name) if entry.get(part) else None


def _checked(folder: Path, entry: dict[str, Any], name: str) -> Path:
    path = folder / entry["file"]
    if not path.is_file():
        raise UserError(f"the shipped model {name!r} is incomplete: {path} is missing; reinstall vqspeech "
                        f"(pip install --force-reinstall vqspeech, or pip install -e . in a clone)")
    got = sha256(path)
    if got != entry["sha256"]:
        raise UserError(f"{path} is damaged or altered: its SHA-256 is {got[:16]}…, the package expects "
                        f"{entry['sha256'][:16]}…; reinstall vqspeech (pip install --force-reinstall vqspeech, or "
                        f"git checkout that file in a clone)")
    return path
