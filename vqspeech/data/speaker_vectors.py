"""Speaker vectors from reference audio: the frozen Resemblyzer d-vector, per fixed segment, cached on disk.

The one place Resemblyzer is called, for conditioning (``speaker=reference``) and for scoring conversions.
Every utterance is cut into segments of ``SEGMENT_SECONDS`` (the last one takes the remainder when it is at
least ``MIN_SECONDS``, else it joins the one before), and each segment gets a unit-norm d-vector [256]. A
voice given by several segments or files is the unit-norm mean of their vectors
(:func:`mean_vector`). Training conditions a crop on the segments that do not overlap it (see
:class:`vqspeech.data.dataset.RandomCrops`), so a crop's vector never comes from its own audio.

Computing the vectors of a corpus takes about a minute on a CPU per hour of audio, once: they are cached in
``<corpus root>/speaker_vectors/<encoder id>.pt``, one entry per file keyed by its path, size and
modification time (and the slice a manifest row takes of it). A changed file, or another encoder, gets new
vectors; the others are reused.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vqspeech.data.audio import SILENCE_PEAK, AudioError, load_audio
from vqspeech.data.file_cache import cached_per_file

log = logging.getLogger(__name__)

SEGMENT_SECONDS = 2.0
MIN_SECONDS = 1.0          # a reference shorter than this is refused; shorter tails join the segment before
CACHE_FOLDER = "speaker_vectors"


@dataclass
class SegmentVectors:
    """One utterance's segments: ``bounds`` int64 [N, 2] (start, end) in samples at the model rate, and
    ``vectors`` float32 [N, D], unit norm."""

    bounds: np.ndarray
    vectors: np.ndarray


def segment_bounds(length: int, sample_rate: int, seconds: float = SEGMENT_SECONDS) -> np.ndarray:
    """int64 [N, 2]: consecutive segments of ``seconds`` covering [0, length); a tail shorter than MIN_SECONDS
    joins the segment before (one segment when the whole is shorter)."""
    size, least = int(round(seconds * sample_rate)), int(round(MIN_SECONDS * sample_rate))
    starts = list(range(0, max(length, 1), size))
    if len(starts) > 1 and length - starts[-1] < least:
        starts.pop()
    ends = starts[1:] + [length]
    return np.array(list(zip(starts, ends)), dtype=np.int64).reshape(-1, 2)


def mean_vector(vectors: np.ndarray) -> np.ndarray:
    """vectors [N, D] -> their unit-norm mean [D]."""
    mean = np.asarray(vectors, dtype=np.float64).mean(axis=0)
    return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)


class SpeakerEncoder:
    """The frozen Resemblyzer voice encoder on the CPU: waveform at ``sample_rate`` -> d-vector [256].

    Resemblyzer drops long silences; when that leaves under 0.1 s (noise, a broken output) the untrimmed
    audio is used.
    """

    dim = 256

    def __init__(self, sample_rate: int, segment_seconds: float = SEGMENT_SECONDS):
        with warnings.catch_warnings():  # resemblyzer imports a deprecated scipy namespace
            warnings.simplefilter("ignore", DeprecationWarning)
            import resemblyzer
            from resemblyzer import VoiceEncoder

        self.sample_rate, self.segment_seconds = sample_rate, segment_seconds
        self.encoder = VoiceEncoder(device="cpu", verbose=False)
        weights = Path(resemblyzer.__file__).parent / "pretrained.pt"
        digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:12] if weights.is_file() else "unknown"
        self.id = f"resemblyzer-{digest}-seg{segment_seconds:g}s-{sample_rate}hz"

    @classmethod
    @functools.lru_cache(maxsize=4)
    def shared(cls, sample_rate: int, segment_seconds: float = SEGMENT_SECONDS) -> SpeakerEncoder:
        """One encoder per (rate, segment length) for the process: loading Resemblyzer once, not per file."""
        return cls(sample_rate, segment_seconds)

    def __call__(self, wav: np.ndarray) -> np.ndarray:
        """wav float32 [T] -> unit-norm d-vector float32 [256].

        Resemblyzer's own steps (``preprocess_wav``, then ``embed_utterance``: partials of 1.6 s at 1.3 per
        second, their mean), with the resampling and the mel spectrogram done here rather than by librosa
        (loading its audio module costs 1–2.5 s of a command's start-up); tests/data/test_speaker_vectors.py
        holds the two to the same vector."""
        from resemblyzer.audio import normalize_volume, trim_long_silences
        from resemblyzer.hparams import audio_norm_target_dBFS, sampling_rate

        from vqspeech.data.audio import resample

        louder = normalize_volume(resample(wav, self.sample_rate, sampling_rate), audio_norm_target_dBFS,
                                  increase_only=True)
        prepared = trim_long_silences(louder)
        if len(prepared) < 0.1 * sampling_rate:
            prepared = louder
        with torch.inference_mode():
            return self._embed(prepared.astype(np.float32))

    def _embed(self, wav: np.ndarray) -> np.ndarray:
        """A preprocessed wav [T] at 16 kHz -> the unit-norm mean of its partials' embeddings [256]."""
        wav_slices, mel_slices = self.encoder.compute_partial_slices(len(wav), rate=1.3, min_coverage=0.75)
        if wav_slices[-1].stop >= len(wav):
            wav = np.pad(wav, (0, wav_slices[-1].stop - len(wav)))
        mel = resemblyzer_mel(wav)
        partials = self.encoder(torch.from_numpy(np.stack([mel[s] for s in mel_slices]))).cpu().numpy()
        mean = partials.mean(axis=0)
        return (mean / np.linalg.norm(mean)).astype(np.float32)

    def segments(self, wav: np.ndarray) -> SegmentVectors:
        """The vector of each segment of wav [T] (see :func:`segment_bounds`)."""
        bounds = segment_bounds(len(wav), self.sample_rate, self.segment_seconds)
        return SegmentVectors(bounds=bounds, vectors=np.stack([self(wav[a:b]) for a, b in bounds]))

    def voice(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        """The voice of several waveforms [T_i]: the unit-norm mean of all their segments' vectors [256]."""
        return mean_vector(np.concatenate([self.segments(w).vectors for w in waves]))

    def reference(self, paths: Sequence[str | os.PathLike]) -> np.ndarray:
        """The voice of reference files (:meth:`voice` of :func:`load_references`)."""
        return self.voice(load_references(paths, self.sample_rate))


@functools.lru_cache(maxsize=1)
def _mel_filters() -> np.ndarray:
    """Resemblyzer's mel filterbank [40, 201]: 40 Slaney-scale, Slaney-normalised bands of a 400-point FFT at
    16 kHz (librosa.filters.mel's defaults, as torchaudio computes them)."""
    import torchaudio

    return torchaudio.functional.melscale_fbanks(201, 0.0, 8000.0, 40, 16000, norm="slaney",
                                                 mel_scale="slaney").T.numpy()


def resemblyzer_mel(wav: np.ndarray) -> np.ndarray:
    """wav [T] at 16 kHz -> the power mel spectrogram Resemblyzer's encoder reads [frames, 40]: 25 ms periodic
    Hann windows every 10 ms, centred (zero padding), |STFT|², 40 mel bands."""
    n_fft, hop = 400, 160
    padded = np.pad(wav.astype(np.float32), (n_fft // 2, n_fft // 2))
    starts = hop * np.arange(1 + (len(padded) - n_fft) // hop)
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)
    power = np.abs(np.fft.rfft(padded[starts[:, None] + np.arange(n_fft)] * window, axis=1)) ** 2
    return (power @ _mel_filters().T).astype(np.float32)


def load_references(paths: Sequence[str | os.PathLike], sample_rate: int) -> list[np.ndarray]:
    """Reference recordings at ``sample_rate``, float32 [T_i] each.

    Raises:
        AudioError: a file that cannot be read, is silent, or is shorter than MIN_SECONDS (one line naming it).
    """
    waves = []
    for path in paths:
        wav = load_audio(path, sample_rate)
        problem = reference_problem(wav, sample_rate)
        if problem is not None:
            raise AudioError(f"{path}: {problem}")
        waves.append(wav)
    return waves


def reference_problem(wav: np.ndarray, sample_rate: int) -> str | None:
    """Why reference audio float32 [T] at ``sample_rate`` cannot give a voice (silent, or shorter than
    MIN_SECONDS), in words; None when it can."""
    if np.abs(wav).max() < SILENCE_PEAK:
        return "the reference audio is silent; give a recording of the target voice"
    if len(wav) < MIN_SECONDS * sample_rate:
        return (f"the reference is {len(wav) / sample_rate:.2f} s long; a reference needs at least "
                f"{MIN_SECONDS:g} s of speech")
    return None


def speaker_means(segments: Sequence[SegmentVectors], speaker_ids: Sequence[int], n_speakers: int) -> np.ndarray:
    """float32 [n_speakers, D]: each speaker's unit-norm mean over all its utterances' segment vectors (zeros
    for a speaker without any, e.g. whose files were all unreadable)."""
    by_speaker: dict[int, list[np.ndarray]] = {}
    for spk, seg in zip(speaker_ids, segments):
        by_speaker.setdefault(spk, []).append(seg.vectors)
    dim = segments[0].vectors.shape[1] if segments else SpeakerEncoder.dim
    return np.stack([mean_vector(np.concatenate(by_speaker[i])) if i in by_speaker
                     else np.zeros(dim, np.float32) for i in range(n_speakers)])


def cached_segments(encoder: SpeakerEncoder, keys: Sequence[tuple[Path, str]], waves: Sequence[np.ndarray],
                    cache_dir: Path, progress: bool = False) -> list[SegmentVectors]:
    """Segment vectors of each wave, from ``cache_dir/<encoder.id>.pt`` where its entry is current
    (:func:`vqspeech.data.file_cache.cached_per_file`).

    Args:
        keys: per wave, the file it was read from and the part of it taken ("" for the whole file).
        waves: float32 or int16 [T_i], at the encoder's rate.
    """
    from vqspeech.data.dataset import as_float

    def compute(wav: np.ndarray) -> dict[str, torch.Tensor]:
        segments = encoder.segments(as_float(wav))
        return {"bounds": torch.from_numpy(segments.bounds), "vectors": torch.from_numpy(segments.vectors)}

    entries = cached_per_file(cache_dir / f"{encoder.id}.pt", keys, waves, compute, "speaker vectors", progress)
    return [SegmentVectors(bounds=e["bounds"].numpy(), vectors=e["vectors"].numpy()) for e in entries]
