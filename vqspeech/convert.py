"""Speaker conversion of files: every input spoken in one target voice, a training speaker's (``--speaker``)
or one given by reference recordings (``--reference``, models trained with ``speaker=reference``).

The path itself (audio loading, one folded batch, loudness matching, per-file errors, no silent
overwrite) is :func:`vqspeech.synthesis.synthesize_files`; outputs are ``<stem>_to_<speaker>.wav``
(``<stem>_to_<first reference's stem>.wav`` for references).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from vqspeech.errors import UserError
from vqspeech.models import VQVAE
from vqspeech.models.generation import GenerationConfig
from vqspeech.synthesis import Converted, reference_voice, suffixed_paths, synthesize_files


def output_paths(sources: list[Path], speaker: str, out: Path) -> list[Path]:
    """Where conversions to ``speaker`` go: :func:`suffixed_paths` with suffix ``_to_<speaker>``."""
    return suffixed_paths(sources, f"_to_{speaker}", out)


def convert_files(model: VQVAE, sources: list[str | Path], speaker: str | None, out: str | Path, sample_rate: int,
                  generation: GenerationConfig, overwrite: bool = False, loudness_match: bool = True,
                  generator: torch.Generator | None = None, progress: bool = False,
                  reference: Sequence[str | Path] = ()) -> list[Converted]:
    """Convert every source to ``speaker``'s voice, or to the voice of the ``reference`` files (their
    vectors averaged); see the module docstring.

    Raises:
        UserError: neither or both voices given; an unknown speaker; a bad reference (one line).
    """
    if (speaker is None) == (not reference):
        raise UserError("give the target voice either as --speaker NAME or as --reference target.wav [more.wav ...]")
    if reference:
        voice, name = reference_voice(model, reference), Path(reference[0]).stem
    else:
        model.speakers.index(speaker)  # UserError listing the known speakers
        voice, name = speaker, speaker
    paths = [Path(s) for s in sources]
    return synthesize_files(model, paths, output_paths(paths, name, Path(out)), lambda _: voice,
                            sample_rate, generation, overwrite, loudness_match, generator, progress)
