"""Reconstruction of files: encode each input to codes and decode them in the voice of its own speaker.

The same path as conversion (:func:`vqspeech.synthesis.synthesize_files`: shared audio loading, one
folded batch, loudness matching, per-file errors, no silent overwrite); only the voice differs. A file's
voice is that of the ``reference`` recordings when given (a ``speaker=reference`` model), else
``speaker``'s when given, else the speaker the folder it lies in is named after, when the model knows it
(the corpus layout root/<speaker>/x.wav). Otherwise a reference model takes the file itself as its
reference (any voice), and a table model reports that file, with the known speakers, and still
reconstructs the others. Outputs are ``<stem>_reconstructed.wav``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from vqspeech.errors import UserError
from vqspeech.models import VQVAE
from vqspeech.models.generation import GenerationConfig
from vqspeech.synthesis import Converted, Voice, reference_voice, suffixed_paths, synthesize_files

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
                      progress: bool = False, reference: Sequence[str | Path] = ()) -> list[Converted]:
    """Reconstruct every source in its own voice (or ``speaker``'s, or the ``reference`` files'); see the
    module docstring."""
    known = model.speakers.names
    if speaker is not None and reference:
        raise UserError("give --speaker NAME or --reference FILE ..., not both")
    fixed: Voice | None = reference_voice(model, reference) if reference else speaker
    if speaker is not None:
        model.speakers.index(speaker)  # UserError listing the known speakers

    def voice_of(path: Path) -> Voice:
        if fixed is not None:
            return fixed
        if model.speakers.kind == "reference" and Path(path).resolve().parent.name not in known:
            return reference_voice(model, [path])  # an unknown voice: the file is its own reference
        return speaker_from_folder(path, known)

    paths = [Path(s) for s in sources]
    return synthesize_files(model, paths, suffixed_paths(paths, SUFFIX, Path(out)), voice_of, sample_rate,
                            generation, overwrite, loudness_match, generator, progress)
