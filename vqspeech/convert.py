"""Speaker conversion: encode each input to codes, decode them with another speaker's embedding.

Inputs go through the shared audio path (any format and rate soundfile reads, downmixed, resampled to
the model rate). All files generate as one batch (folded when long: see models/generation.py), and
each output is loudness-matched to its input (ITU-R BS.1770 through pyloudnorm; RMS for clips shorter
than the meter's 0.4 s block) and written whole. A file that cannot be converted is reported and the
others still are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vqspeech.data.audio import AudioError, load_audio, save_audio
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
    """``out`` itself when it names a .wav and there is one input; else out/<stem>_to_<speaker>.wav,
    with the parent folder's name in front when two inputs share a stem."""
    if out.suffix.lower() == ".wav" and len(sources) == 1:
        return [out]
    stems = [s.stem for s in sources]
    names = [f"{s.parent.name}_{s.stem}" if stems.count(s.stem) > 1 else s.stem for s in sources]
    return [out / f"{name}_to_{speaker}.wav" for name in names]


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


@torch.inference_mode()
def convert_files(model: VQVAE, sources: list[str | Path], speaker: str, out: str | Path, sample_rate: int,
                  generation: GenerationConfig, overwrite: bool = False, loudness_match: bool = True,
                  generator: torch.Generator | None = None, progress: bool = False) -> list[Converted]:
    """Convert every source to ``speaker``'s voice; see the module docstring."""
    target = model.speakers.index(speaker)  # UserError listing the known speakers
    device = next(model.parameters()).device
    out = Path(out)
    hop = model.hop_length
    results = [Converted(source=Path(s)) for s in sources]
    jobs = []  # (result, input waveform, codes)
    destinations = output_paths([r.source for r in results], speaker, out)
    for result, destination in zip(results, destinations):
        if destination.exists() and not overwrite:
            result.error = f"{destination} already exists; pass --overwrite to replace it"
            continue
        try:
            wav = load_audio(result.source, sample_rate)
        except AudioError as exc:
            result.error = str(exc)
            continue
        if np.abs(wav).max() < SILENCE_PEAK:
            result.error = f"{result.source}: the audio is silent; nothing to convert"
            continue
        padded = np.pad(wav, (0, -len(wav) % hop))
        codes = model.encode(torch.from_numpy(padded).to(device)[None, None]).codes[0]
        result.output, result.seconds = destination, len(wav) / sample_rate
        jobs.append((result, wav, codes))
    if not jobs:
        return results

    speaker_ids = torch.full((len(jobs),), target, dtype=torch.long, device=device)
    waves = model.decode([codes for _, _, codes in jobs], speaker_ids, generation, generator, progress)
    for (result, wav, _), generated in zip(jobs, waves):
        audio = generated[: len(wav)].cpu().numpy()
        if loudness_match:
            audio = match_loudness(audio, wav, sample_rate)
        try:
            save_audio(result.output, audio, sample_rate, overwrite=overwrite)
        except UserError as exc:  # appeared meanwhile
            result.output, result.error = None, str(exc)
    return results
