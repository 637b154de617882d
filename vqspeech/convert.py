"""Speaker conversion: encode each input to codes, decode them with another speaker's embedding.

Inputs go through the shared audio path (any format and rate soundfile reads, downmixed, resampled to
the model rate). All files generate as one batch (folded when long: see models/generation.py), and
each output is loudness-matched to its input (ITU-R BS.1770 through pyloudnorm; RMS for clips shorter
than the meter's 0.4 s block) and written whole. A file that cannot be converted is reported and the
others still are.

:func:`synthesize_files` is that path with a voice per file; conversion gives every file the same
voice, reconstruction (:mod:`vqspeech.reconstruct`) each file its own speaker's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vqspeech.data.audio import load_audio, save_audio
from vqspeech.errors import UserError
from vqspeech.models import VQVAE
from vqspeech.models.generation import GenerationConfig

SILENCE_PEAK = 1e-4  # inputs whose peak is below this hold nothing to convert


@dataclass
class Converted:
    """What happened to one input: ``output`` is set on success, ``error`` (one line) otherwise."""

    source: Path
    output: Path | None = None
    error: str | None = None
    seconds: float = 0.0


def output_paths(sources: list[Path], speaker: str, out: Path) -> list[Path]:
    """Where conversions to ``speaker`` go: :func:`suffixed_paths` with suffix ``_to_<speaker>``."""
    return suffixed_paths(sources, f"_to_{speaker}", out)


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


def match_loudness(audio: np.ndarray, reference: np.ndarray, sample_rate: int) -> np.ndarray:
    """Scale audio [T] to the integrated loudness of reference [T] (peak-limited to 0.99)."""
    import pyloudnorm

    block = int(0.4 * sample_rate)
    gain = None
    if min(len(audio), len(reference)) >= block:
        meter = pyloudnorm.Meter(sample_rate)
        target, current = meter.integrated_loudness(reference), meter.integrated_loudness(audio)
        if np.isfinite(target) and np.isfinite(current):
            gain = 10 ** ((target - current) / 20)
    if gain is None:  # too short for the meter, or gated to silence: match RMS
        gain = np.sqrt((reference ** 2).mean() / max((audio ** 2).mean(), 1e-12))
    out = audio * gain
    peak = np.abs(out).max()
    return out * (0.99 / peak) if peak > 0.99 else out


def convert_files(model: VQVAE, sources: list[str | Path], speaker: str, out: str | Path, sample_rate: int,
                  generation: GenerationConfig, overwrite: bool = False, loudness_match: bool = True,
                  generator: torch.Generator | None = None, progress: bool = False) -> list[Converted]:
    """Convert every source to ``speaker``'s voice; see the module docstring."""
    model.speakers.index(speaker)  # UserError listing the known speakers
    paths = [Path(s) for s in sources]
    return synthesize_files(model, paths, output_paths(paths, speaker, Path(out)), lambda _: speaker,
                            sample_rate, generation, overwrite, loudness_match, generator, progress)


@torch.inference_mode()
def synthesize_files(model: VQVAE, sources: Sequence[Path], destinations: Sequence[Path],
                     speaker_of: Callable[[Path], str], sample_rate: int, generation: GenerationConfig,
                     overwrite: bool = False, loudness_match: bool = True,
                     generator: torch.Generator | None = None, progress: bool = False) -> list[Converted]:
    """Encode every source, decode its codes in the voice ``speaker_of(source)`` names, write it to its
    destination. A UserError from ``speaker_of`` (or from the speaker table, for a name the model does
    not know) is that file's error; the other files still go through."""
    device = next(model.parameters()).device
    hop = model.hop_length
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
        padded = np.pad(wav, (0, -len(wav) % hop))
        codes = model.encode(torch.from_numpy(padded).to(device)[None, None]).codes[0]
        result.output, result.seconds = destination, len(wav) / sample_rate
        jobs.append((result, wav, codes, target))
    if not jobs:
        return results

    speaker_ids = torch.tensor([target for *_, target in jobs], dtype=torch.long, device=device)
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
