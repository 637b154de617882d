"""The shared path from audio files to audio files: encode each input to codes, decode them in a voice.

Inputs go through the shared audio path (any format and rate soundfile reads, downmixed, resampled to
the model rate). All files generate as one batch (folded when long: see models/generation.py), and
each output is loudness-matched to its input (:func:`vqspeech.data.audio.match_loudness`) and written
whole. A file that cannot be synthesised is reported and the others still are.

:func:`synthesize_files` takes a voice per file: a training speaker's name, or (a model with
``speaker=reference``) a speaker vector from reference audio, :func:`reference_voice`. Conversion
(:mod:`vqspeech.convert`) gives every file the same voice, reconstruction (:mod:`vqspeech.reconstruct`)
each file its own speaker's.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
import torch

from vqspeech.data.audio import SILENCE_PEAK, load_audio, match_loudness, normalize_loudness, save_audio
from vqspeech.errors import UserError
from vqspeech.models import VQVAE
from vqspeech.models.generation import GenerationConfig


@dataclass
class GivenVoice:
    """A voice given by reference audio: its speaker vector float32 [V] and, for a model with a pitch stream,
    its pitch register Tensor[2] (mean, std of log-F0; None otherwise)."""

    vector: np.ndarray
    register: torch.Tensor | None = None


Voice = Union[str, GivenVoice]  # a training speaker's name, or a voice from reference audio


def reference_voice(model: VQVAE, paths: Sequence[str | os.PathLike]) -> GivenVoice:
    """The voice of reference recordings for ``model`` (:func:`voice_of_waves` of their audio).

    Raises:
        UserError: the model has no reference encoder (speaker=table); a reference that cannot be read, is
            silent or too short, or (a pitch model) has too little voiced speech to measure its pitch (one line).
    """
    if model.speakers.kind != "reference":
        raise UserError("--reference needs a model trained with speaker=reference; this one has a speaker table "
                        "and no reference encoder: name a training voice with --speaker NAME (--list-speakers)")
    from vqspeech.data.speaker_vectors import load_references

    waves = load_references(paths, model.sample_rate)
    try:
        return voice_of_waves(model, waves)
    except ValueError as exc:  # too little voiced speech for the pitch register
        raise UserError(f"{', '.join(map(str, paths))}: {exc}") from None


@torch.inference_mode()
def voice_of_waves(model: VQVAE, waves: Sequence[np.ndarray]) -> GivenVoice:
    """A reference model's voice for waveforms [T_i] of one voice: the speaker vector [V] is the unit-norm
    mean of their Resemblyzer segment vectors, or the mean of the learned encoder's vectors (each wave scaled
    to the model's input level first, as in training); with a pitch stream, the register of their F0.

    Raises:
        ValueError: (a pitch model) less voiced speech than a register needs (:func:`~vqspeech.data.pitch.reference_register`).
    """
    speakers = model.speakers
    register = None
    if model.pitch is not None:
        from vqspeech.data.pitch import reference_register

        register = reference_register(waves, model.sample_rate).as_tensor()
    if speakers.encoder == "resemblyzer":
        from vqspeech.data.speaker_vectors import SpeakerEncoder

        return GivenVoice(SpeakerEncoder.shared(model.sample_rate, speakers.segment_seconds).voice(waves), register)
    vectors = [speakers.embed_audio(torch.from_numpy(normalize_loudness(w, model.sample_rate, model.loudness_lufs))
                                    [None, None].to(model.device))[0] for w in waves]
    return GivenVoice(torch.stack(vectors).mean(dim=0).float().cpu().numpy(), register)


def decode_in_voices(model: VQVAE, codes: Sequence[torch.Tensor], voices: Sequence[Voice],
                     generation: GenerationConfig, generator: torch.Generator | None = None,
                     progress: bool = False, sources: Sequence[np.ndarray] | None = None,
                     pitch: Sequence | None = None) -> list[torch.Tensor]:
    """:meth:`VQVAE.decode` of each utterance's codes in its voice (a name, or a :class:`GivenVoice`), in one
    batch; named training voices are their mean vectors when any voice is given by audio.

    A model with a pitch stream also needs each utterance's melody: the ``sources`` waveforms float32 [T_i]
    the codes came from, spoken in the voice's register (a training speaker's stored one, or the reference
    audio's); or ``pitch`` (PitchCodes, e.g. from a bitstream), spoken in the register each carries.
    """
    if model.pitch is not None and pitch is None:
        if sources is None:
            raise ValueError("this model has a pitch stream: decode_in_voices needs the sources or their pitch")
        pitch = [p.in_register(voice_register(model, v)) for p, v in zip(model.encode_pitches(list(sources)), voices)]
    if all(isinstance(v, str) for v in voices):
        return model.decode(list(codes), model.speakers.ids(list(voices), model.device), generation, generator,
                            progress, pitch=pitch)
    means = model.speakers.means.detach().cpu()  # a given voice means a reference model (see reference_voice)
    vectors = torch.stack([means[model.speakers.index(v)] if isinstance(v, str) else torch.from_numpy(v.vector)
                           for v in voices])
    return model.decode(list(codes), None, generation, generator, progress, speaker_vectors=vectors.to(model.device),
                        pitch=pitch)


def voice_register(model: VQVAE, voice: Voice) -> torch.Tensor:
    """The pitch register Tensor[2] a voice speaks in (a pitch model)."""
    if isinstance(voice, str):
        return model.speaker_register(torch.tensor([model.speakers.index(voice)]))[0]
    if voice.register is None:
        raise ValueError("this voice has no pitch register; make it with voice_of_waves of a pitch model")
    return voice.register


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
                     voice_of: Callable[[Path], Voice], sample_rate: int, generation: GenerationConfig,
                     overwrite: bool = False, loudness_match: bool = True,
                     generator: torch.Generator | None = None, progress: bool = False) -> list[Converted]:
    """Encode every source, decode its codes in the voice ``voice_of(source)`` gives, write it to its
    destination. A UserError from ``voice_of`` (or from the speaker table, for a name the model does
    not know) is that file's error; the other files still go through."""
    results = [Converted(source=Path(s)) for s in sources]
    jobs = []  # (result, input waveform, codes, speaker index or vector)
    for result, destination in zip(results, destinations):
        if destination.exists() and not overwrite:
            result.error = f"{destination} already exists; pass --overwrite to replace it"
            continue
        try:
            wav = load_audio(result.source, sample_rate)  # first: a missing file is named as such
            voice = voice_of(result.source)
            if isinstance(voice, str):
                model.speakers.index(voice)  # UserError listing the known speakers
        except UserError as exc:  # AudioError included
            result.error = str(exc)
            continue
        if np.abs(wav).max() < SILENCE_PEAK:
            result.error = f"{result.source}: the audio is silent; nothing to encode"
            continue
        result.output, result.seconds = destination, len(wav) / sample_rate
        jobs.append((result, wav, model.encode_waveform(wav), voice))
    if not jobs:
        return results

    waves = decode_in_voices(model, [c for _, _, c, _ in jobs], [v for *_, v in jobs], generation, generator,
                             progress, sources=[w for _, w, _, _ in jobs])
    for (result, wav, _, _), generated in zip(jobs, waves):
        audio = generated[: len(wav)].cpu().numpy()
        if loudness_match:
            audio = match_loudness(audio, wav, sample_rate)
        try:
            save_audio(result.output, audio, sample_rate, overwrite=overwrite)
        except UserError as exc:  # appeared meanwhile
            result.output, result.error = None, str(exc)
    return results
