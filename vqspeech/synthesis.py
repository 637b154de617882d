"""The shared path from audio files to audio files: encode each input to codes, decode them in a voice.

Inputs go through the shared audio path (any format and rate soundfile reads, downmixed, resampled to
the model rate). All files generate as one batch (folded when long: see models/generation.py), and
each output is loudness-matched to its input (:func:`vqspeech.data.audio.match_loudness`) and written
whole. A file that cannot be synthesised is reported and the others still are.

:func:`synthesize_files` takes a voice per file; conversion (:mod:`vqspeech.convert`) gives every file
the same voice, reconstruction (:mod:`vqspeech.reconstruct`) each file its own speaker's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vqspeech.data.audio import SILENCE_PEAK, load_audio, match_loudness, save_audio
from vqspeech.errors import UserError
from vqspeech.models import VQVAE
from vqspeech.models.generation import GenerationConfig


@dataclass
class Converted:
    """What happened to one input: ``output`` is set on success, ``error`` (one line) otherwise."""

    source: Path
    output: Path | None = None
    error: str | None = None
    seconds: float = 0.0


def suffixed_paths(sources: list[Path], suffix: str, out: Path) -> list[Path]:
    """``out`` itself when it names a .wav and there is one input; else out/<stem><suffix>.wav,
    with the parent folder's name in front when two inputs share a stem.

    Raises:
        UserError: ``out`` names a .wav but there are several inputs.
    """
    if out.suffix.lower() == ".wav":
        if len(sources) == 1:
            return [out]
        raise UserError(f"-o {out} names one .wav file, but {len(sources)} inputs were given; name a folder")
    stems = [s.stem for s in sources]
    names = [f"{s.parent.name}_{s.stem}" if stems.count(s.stem) > 1 else s.stem for s in sources]
    return [out / f"{name}{suffix}.wav" for name in names]


@torch.inference_mode()
def synthesize_files(model: VQVAE, sources: Sequence[Path], destinations: Sequence[Path],
                     speaker_of: Callable[[Path], str], sample_rate: int, generation: GenerationConfig,
                     overwrite: bool = False, loudness_match: bool = True,
                     generator: torch.Generator | None = None, progress: bool = False) -> list[Converted]:
    """Encode every source, decode its codes in the voice ``speaker_of(source)`` names, write it to its
    destination. A UserError from ``speaker_of`` (or from the speaker table, for a name the model does
    not know) is that file's error; the other files still go through."""
    results = [Converted(source=Path(s)) for s in sources]
    jobs = []  # (result, input waveform, codes, speaker index)
    for result, destination in zip(results, destinations):
        if destination.exists() and not overwrite:
            result.error = f"{destination} already exists; pass --overwrite to replace it"
            continue
        try:
            wav = load_audio(result.source, sample_rate)  # first: a missing file is named as such
            target = model.speakers.index(speaker_of(result.source))
        except UserError as exc:  # AudioError included
            result.error = str(exc)
            continue
        if np.abs(wav).max() < SILENCE_PEAK:
            result.error = f"{result.source}: the audio is silent; nothing to encode"
            continue
        result.output, result.seconds = destination, len(wav) / sample_rate
        jobs.append((result, wav, model.encode_waveform(wav), target))
    if not jobs:
        return results

    speaker_ids = torch.tensor([target for *_, target in jobs], dtype=torch.long, device=model.device)
    waves = model.decode([codes for _, _, codes, _ in jobs], speaker_ids, generation, generator, progress)
    for (result, wav, _, _), generated in zip(jobs, waves):
        audio = generated[: len(wav)].cpu().numpy()
        if loudness_match:
            audio = match_loudness(audio, wav, sample_rate)
        try:
            save_audio(result.output, audio, sample_rate, overwrite=overwrite)
        except UserError as exc:  # appeared meanwhile
            result.output, result.error = None, str(exc)
    return results
