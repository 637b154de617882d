"""Reconstruction of files: encode each input to codes and decode them in the voice of its own speaker.

The same path as conversion (:func:`vqspeech.synthesis.synthesize_files`: shared audio loading, one
folded batch, loudness matching, per-file errors, no silent overwrite); only the voice differs. A file's
speaker is ``speaker`` when given, else the folder it lies in when that folder is named after a speaker
the model knows (the corpus layout root/<speaker>/x.wav); otherwise that file is reported, with the
known speakers, and the others are still reconstructed. Outputs are ``<stem>_reconstructed.wav``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from vqspeech.errors import UserError
from vqspeech.models import VQVAE
from vqspeech.models.generation import GenerationConfig
from vqspeech.synthesis import Converted, suffixed_paths, synthesize_files

SUFFIX = "_reconstructed"


def speaker_from_folder(path: Path, known: Sequence[str]) -> str:
    """The speaker whose name the folder holding ``path`` bears; UserError naming the known ones if none."""
    folder = Path(path).resolve().parent.name
    if folder in known:
        return folder
    raise UserError(f"{path}: cannot tell whose voice this is (its folder {folder!r} is not a speaker the "
                    f"model knows); pass --speaker NAME, one of: {', '.join(known)}")


def reconstruct_files(model: VQVAE, sources: Sequence[str | Path], out: str | Path, sample_rate: int,
                      generation: GenerationConfig, speaker: str | None = None, overwrite: bool = False,
                      loudness_match: bool = True, generator: torch.Generator | None = None,
                      progress: bool = False) -> list[Converted]:
    """Reconstruct every source in its own speaker's voice (or ``speaker``'s); see the module docstring."""
    known = model.speakers.names
    if speaker is not None:
        model.speakers.index(speaker)  # UserError listing the known speakers

    def speaker_of(path: Path) -> str:
        return speaker if speaker is not None else speaker_from_folder(path, known)

    paths = [Path(s) for s in sources]
    return synthesize_files(model, paths, suffixed_paths(paths, SUFFIX, Path(out)), speaker_of, sample_rate,
                            generation, overwrite, loudness_match, generator, progress)
