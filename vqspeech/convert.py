"""Speaker conversion of files: every input spoken in one target voice.

The path itself (audio loading, one folded batch, loudness matching, per-file errors, no silent
overwrite) is :func:`vqspeech.synthesis.synthesize_files`; outputs are ``<stem>_to_<speaker>.wav``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from vqspeech.models import VQVAE
from vqspeech.models.generation import GenerationConfig
from vqspeech.synthesis import Converted, suffixed_paths, synthesize_files


def output_paths(sources: list[Path], speaker: str, out: Path) -> list[Path]:
    """Where conversions to ``speaker`` go: :func:`suffixed_paths` with suffix ``_to_<speaker>``."""
    return suffixed_paths(sources, f"_to_{speaker}", out)


def convert_files(model: VQVAE, sources: list[str | Path], speaker: str, out: str | Path, sample_rate: int,
                  generation: GenerationConfig, overwrite: bool = False, loudness_match: bool = True,
                  generator: torch.Generator | None = None, progress: bool = False) -> list[Converted]:
    """Convert every source to ``speaker``'s voice; see the module docstring."""
    model.speakers.index(speaker)  # UserError listing the known speakers
    paths = [Path(s) for s in sources]
    return synthesize_files(model, paths, output_paths(paths, speaker, Path(out)), lambda _: speaker,
                            sample_rate, generation, overwrite, loudness_match, generator, progress)
