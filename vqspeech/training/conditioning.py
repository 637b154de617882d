"""What a reference model's training crops are conditioned on, and its training speakers' mean vectors.

The trainer asks :func:`crop_conditioning` once, after loading the training audio, and hands the result to
:class:`~vqspeech.data.dataset.RandomCrops`:
  * ``speaker=table``: nothing (the crop's speaker index is all the decoder gets);
  * ``speaker=reference`` (Resemblyzer): every utterance's segment vectors, cached with the corpus
    (:func:`~vqspeech.data.speaker_vectors.cached_segments`); a crop gets the mean of its speaker's segments
    that do not overlap it, and each speaker's mean vector is set in the model;
  * ``speaker=learned``: the length of the reference audio drawn for each crop (the model embeds it itself);
    the speakers' means come from the encoder as it is, refreshed by :func:`refresh_learned_means` before
    every validation and save.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from vqspeech.data.dataset import LoadedSplit, as_float
from vqspeech.models import VQVAE

log = logging.getLogger(__name__)
MEAN_SECONDS = 4.0  # a learned encoder's speaker mean: over the first 4 s of each of the speaker's utterances


@dataclass
class CropConditioning:
    segments: list | None = None          # Resemblyzer: SegmentVectors per training utterance
    reference_samples: int | None = None  # learned: samples of reference audio per crop


def crop_conditioning(model: VQVAE, train_audio: LoadedSplit, corpus_root: Path, sample_rate: int,
                      progress: bool = False, main: bool = True) -> CropConditioning:
    """See the module docstring; sets ``model.speakers.means`` for a reference model."""
    speakers = model.speakers
    if speakers.kind != "reference":
        return CropConditioning()
    if speakers.encoder == "learned":
        refresh_learned_means(model, train_audio, sample_rate)
        return CropConditioning(reference_samples=int(round(speakers.reference_seconds * sample_rate)))
    from vqspeech.data.speaker_vectors import SpeakerEncoder, cached_segments, speaker_means

    encoder = SpeakerEncoder.shared(sample_rate, speakers.segment_seconds)
    started = time.monotonic()
    segments = cached_segments(encoder, [(u.path, u.part) for u in train_audio.utterances], train_audio.waves,
                               corpus_root / "speaker_vectors", progress)
    means = speaker_means(segments, train_audio.speaker_ids, len(speakers.names))
    speakers.set_means(torch.from_numpy(means).to(speakers.means.device))
    if main:
        log.info("speaker vectors (%s): %d segments of %d utterances in %.1f s; a crop is conditioned on its "
                 "speaker's segments that do not overlap it", encoder.id, sum(len(s.vectors) for s in segments),
                 len(segments), time.monotonic() - started)
    return CropConditioning(segments=segments)


@torch.no_grad()
def refresh_learned_means(model: VQVAE, train_audio: LoadedSplit, sample_rate: int) -> None:
    """A learned encoder's training-speaker means: the mean vector of (up to) the first MEAN_SECONDS of each
    of the speaker's utterances, with the encoder as it is now. Nothing for other models."""
    speakers = model.speakers
    if speakers.kind != "reference" or speakers.encoder != "learned":
        return
    limit = int(MEAN_SECONDS * sample_rate)
    was_training = speakers.training
    speakers.eval()
    device = speakers.means.device
    sums = torch.zeros_like(speakers.means)
    counts = torch.zeros(len(speakers.names), device=device)
    for spk, wav in zip(train_audio.speaker_ids, train_audio.waves):
        sums[spk] += speakers.embed_audio(torch.from_numpy(as_float(wav[:limit]))[None, None].to(device))[0]
        counts[spk] += 1
    speakers.set_means(sums / counts.clamp(min=1)[:, None])
    speakers.train(was_training)


def crop_perturbation(spec, model: VQVAE, train_audio: LoadedSplit, corpus_root: Path, sample_rate: int,
                      progress: bool = False):
    """With ``model.perturb`` on, every training utterance's voice-randomised variants (built once, cached with
    the corpus: :func:`vqspeech.data.perturb.cached_bank`) and the per-crop EQ; None when off."""
    from vqspeech.data.dataset import CropPerturbation
    from vqspeech.data.perturb import PerturbConfig, cached_bank
    from vqspeech.errors import UserError

    try:
        config = PerturbConfig.from_config(spec)
    except (TypeError, ValueError) as exc:
        raise UserError(str(exc)) from None
    if not config.enabled:
        return None
    bank = cached_bank(config, [(u.path, u.part) for u in train_audio.utterances], train_audio.waves, sample_rate,
                       model.loudness_lufs, corpus_root, progress)
    log.info("perturbation: %d variants per utterance (%s, %.1f MB), EQ ±%g dB per crop", config.variants,
             bank.folder.name, bank.bytes / 1e6, config.eq_gain_db)
    return CropPerturbation(bank.variants, config.eq_gain_db, sample_rate)


def crop_pitch(model: VQVAE, train_audio: LoadedSplit, corpus_root: Path, sample_rate: int, progress: bool = False):
    """With a pitch stream, every training utterance's F0 track (cached with the corpus) and register, and each
    training speaker's register set in the model (``model.pitch_registers``); None without one."""
    if model.pitch is None:
        return None
    import numpy as np

    from vqspeech.data.dataset import CropPitch
    from vqspeech.data.pitch import cached_tracks, register

    started = time.monotonic()
    tracks = cached_tracks([(u.path, u.part) for u in train_audio.utterances], train_audio.waves, sample_rate,
                           corpus_root, progress)
    from vqspeech.models.pitch import register_tensor

    registers = [register_tensor(register(f0)) for f0 in tracks]
    by_speaker: dict[int, list[np.ndarray]] = {}
    for spk, f0 in zip(train_audio.speaker_ids, tracks):
        by_speaker.setdefault(spk, []).append(f0)
    speaker_registers = torch.stack([register_tensor(register(np.concatenate(by_speaker[spk])) if spk in by_speaker
                                                     else None) for spk in range(len(model.speakers.names))])
    model.pitch_registers.copy_(speaker_registers.to(model.pitch_registers.device))
    log.info("pitch: F0 of %d utterances in %.1f s; %s, %.0f bit/s", len(tracks), time.monotonic() - started,
             model.pitch.extra_repr(), model.pitch.bits_per_second(sample_rate))
    return CropPitch(tracks, registers, model.pitch.hop, sample_rate)
