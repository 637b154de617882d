"""The Python API: what ``import vqspeech`` offers notebooks and scripts.

    model = vqspeech.load("librispeech")            # a shipped model, a run folder or a checkpoint file
    codes = model.encode(wav)                       # wav [T] at model.sample_rate -> codes [T / hop]
    out = model.decode(codes, speaker="slt")        # -> wav [codes · hop]
    out = model.convert(wav, speaker="slt")         # or reference=other_wav (a speaker=reference model)

NumPy in gives NumPy out, torch in gives torch out (on the CPU). Audio is mono float in [-1, 1] at
``model.sample_rate``, or at the ``sample_rate=`` given with it (resampled); read files with
:func:`vqspeech.data.audio.load_audio`, which resamples. The CLI's commands are built on the same functions
(vqspeech/synthesis.py, vqspeech/runs.py), and the API refuses what the CLI refuses, in one line each: audio
that is not float, not mono, empty, shorter than one code, or not finite; codes of the wrong dtype, shape or
range; references that are silent or shorter than 1 s. Seeded sampling draws its noise on the CPU, so one seed
gives the same audio on every device.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar, Union

import numpy as np
import torch

from vqspeech import pretrained
from vqspeech.data.audio import match_loudness, resample
from vqspeech.errors import UserError
from vqspeech.models.generation import SEGMENT_SECONDS, GenerationConfig, recipe_sampling
from vqspeech.runs import LoadedRun, load_run
from vqspeech.synthesis import Voice, decode_in_voices, voice_of_waves

Array = TypeVar("Array", np.ndarray, torch.Tensor)
PathLike = Union[str, os.PathLike]


class Model:
    """A trained VQ-VAE for inference (eval mode). Built by :func:`load`."""

    def __init__(self, run: LoadedRun, seed: int = 0):
        self.run = run
        self.model = run.model
        self.seed = seed
        self.generation = GenerationConfig.from_seconds(SEGMENT_SECONDS, run.sample_rate, self.model.hop_length,
                                                        **recipe_sampling(run.config))

    @property
    def sample_rate(self) -> int:
        """Hz of every waveform in and out."""
        return self.run.sample_rate

    @property
    def hop_length(self) -> int:
        """Samples per code."""
        return self.model.hop_length

    @property
    def speakers(self) -> list[str]:
        """The training voices, by name (what ``speaker=`` takes)."""
        return list(self.model.speakers.names)

    def encode(self, wav: Array, sample_rate: int | None = None) -> Array:
        """wav [T] (at ``sample_rate``, default the model's) -> codes [⌈T' / hop⌉] of it at the model's rate
        (int64; Tensor[D, F] latents for a continuous bottleneck)."""
        codes = self.model.encode_waveform(self._audio(wav, sample_rate)).cpu()
        return codes if isinstance(wav, torch.Tensor) else codes.numpy()

    def decode(self, codes: Array, speaker: str | None = None, reference: Array | None = None,
               reference_rate: int | None = None, pitch_of: Array | None = None) -> Array:
        """codes [F] -> wav [F · hop] at the model's rate, generated in a training voice (``speaker``) or in the
        voice of ``reference`` audio [R] at ``reference_rate`` (default the model's; a model trained with
        speaker=reference). Sampling is seeded (``seed``), its noise drawn on the CPU. A model with a pitch
        stream also takes the melody from ``pitch_of``, the audio [T] at the model's rate that the codes came
        from (spoken in the voice's register)."""
        voice = self._voice(speaker, reference, reference_rate)
        generator = torch.Generator().manual_seed(self.seed)
        tensor = self._codes(codes)
        if self.model.pitch is not None and pitch_of is None:
            raise UserError("this model has a pitch stream: give decode() the source audio as pitch_of=, "
                            "or use convert()")
        sources = None if pitch_of is None else [self._audio(pitch_of, None, "pitch_of")]
        (out,) = decode_in_voices(self.model, [tensor.to(self.model.device)], [voice], self.generation, generator,
                                  sources=sources)
        out = out.float().cpu()
        return out if isinstance(codes, torch.Tensor) else out.numpy()

    def convert(self, wav: Array, speaker: str | None = None, reference: Array | None = None,
                sample_rate: int | None = None) -> Array:
        """wav [T] spoken in another voice: a training speaker's, or that of ``reference`` audio [R] (both at
        ``sample_rate``, default the model's); at the model's rate, loudness-matched to the input, cut to its
        length."""
        source = self._audio(wav, sample_rate)
        out = self.decode(self.model.encode_waveform(source).cpu(), speaker, reference, sample_rate,
                          pitch_of=source if self.model.pitch is not None else None)
        out = match_loudness(_numpy(out)[: len(source)], source, self.sample_rate).astype(np.float32)
        return torch.from_numpy(out) if isinstance(wav, torch.Tensor) else out

    def reconstruct(self, wav: Array, speaker: str | None = None, sample_rate: int | None = None) -> Array:
        """Encode and decode wav [T] in its own voice: a training speaker's name, or (a reference model,
        ``speaker`` None) the voice of the input itself."""
        if speaker is None and self.model.speakers.kind != "reference":
            raise UserError(f"reconstruct needs speaker= for a speaker-table model: one of {', '.join(self.speakers)}")
        return self.convert(wav, speaker=speaker, reference=wav if speaker is None else None, sample_rate=sample_rate)

    def _voice(self, speaker: str | None, reference: Array | None, sample_rate: int | None) -> Voice:
        if (speaker is None) == (reference is None):
            raise UserError("give exactly one of speaker=NAME and reference=WAV")
        if speaker is not None:
            if speaker not in self.speakers:
                raise UserError(f"unknown speaker {speaker!r}; this model knows {', '.join(self.speakers)}")
            return speaker
        if self.model.speakers.kind != "reference":
            raise UserError("reference= needs a model trained with speaker=reference; name a training voice with "
                            "speaker= instead")
        from vqspeech.data.speaker_vectors import reference_problem

        wav = self._audio(reference, sample_rate, "reference")
        problem = reference_problem(wav, self.sample_rate)
        if problem is not None:
            raise UserError(problem)
        try:
            return voice_of_waves(self.model, [wav])
        except ValueError as exc:  # too little voiced speech for a pitch register
            raise UserError(str(exc)) from None

    def _audio(self, wav: Array, sample_rate: int | None, what: str = "audio") -> np.ndarray:
        """A waveform as the CLI would accept it, float32 [T] at the model's rate (resampled from
        ``sample_rate`` when that differs)."""
        if sample_rate is not None and (isinstance(sample_rate, bool) or not isinstance(sample_rate, int)
                                        or sample_rate < 1):
            raise UserError(f"sample_rate must be a positive whole number of Hz, got {sample_rate!r}")
        array = wav.detach().cpu().numpy() if isinstance(wav, torch.Tensor) else np.asarray(wav)
        if not np.issubdtype(array.dtype, np.floating):
            raise UserError(f"{what} must be float samples in [-1, 1], got {array.dtype}; divide 16-bit PCM by "
                            f"32768, or read files with vqspeech.data.audio.load_audio")
        if array.ndim != 1:
            raise UserError(f"expected a mono waveform [T] as {what}, got shape {tuple(array.shape)}")
        if array.size == 0:
            raise UserError(f"the {what} is empty (0 samples)")
        if not np.isfinite(array).all():
            raise UserError(f"the {what} holds NaN or infinite samples")
        array = array.astype(np.float32)
        if sample_rate is not None and sample_rate != self.sample_rate:
            array = resample(array, sample_rate, self.sample_rate)
        if len(array) < self.hop_length:
            raise UserError(f"the {what} holds {len(array)} samples at {self.sample_rate} Hz, fewer than one code "
                            f"({self.hop_length} samples)")
        return array

    def _codes(self, codes: Array) -> torch.Tensor:
        """Codes as :meth:`encode` gives them, checked: int [F] in [0, K) (a continuous bottleneck: float [D, F])."""
        tensor = codes if isinstance(codes, torch.Tensor) else torch.as_tensor(np.asarray(codes))
        bottleneck = self.model.bottleneck
        if not bottleneck.discrete:
            if not tensor.is_floating_point() or tensor.ndim != 2 or tensor.shape[0] != bottleneck.dim:
                raise UserError(f"latents must be float [{bottleneck.dim}, F] as encode() gives them, got "
                                f"{tensor.dtype} {tuple(tensor.shape)}")
            return tensor.float()
        if tensor.is_floating_point() or tensor.dtype == torch.bool or tensor.is_complex():
            raise UserError(f"codes must be integers, got {tensor.dtype}")
        if tensor.ndim != 1:
            raise UserError(f"codes must be one utterance [F], got shape {tuple(tensor.shape)}")
        if tensor.numel() == 0:
            raise UserError("codes are empty (0 frames)")
        low, high = int(tensor.min()), int(tensor.max())
        if low < 0 or high >= bottleneck.codebook_size:
            raise UserError(f"codes must lie in [0, {bottleneck.codebook_size}), got values from {low} to {high}")
        return tensor.long()

    def __repr__(self) -> str:
        return (f"vqspeech.Model({self.run.checkpoint}, step {self.run.step}, {self.sample_rate} Hz, hop "
                f"{self.hop_length}, {len(self.speakers)} speakers)")


def load(run_or_checkpoint: PathLike = pretrained.DEFAULT, device: str = "auto", seed: int = 0) -> Model:
    """A trained model for inference: a shipped model's name (``"librispeech"``, the default; see
    docs/pretrained.md), a run folder (its last checkpoint) or a checkpoint file (.pt).
    ``device`` is auto | cpu | cuda | cuda:N | mps."""
    from vqspeech.device import pick_device

    path = Path(run_or_checkpoint)
    if not path.exists() and path.suffix != ".pt" and len(path.parts) == 1:  # a name: a shipped model's
        path = pretrained.shipped(str(run_or_checkpoint)).checkpoint
    run = load_run(checkpoint=path, device=pick_device(device)) if path.suffix == ".pt" or path.is_file() else \
        load_run(path, device=pick_device(device))
    return Model(run, seed)


def prepare(corpus: str, out: PathLike | None = None, root: PathLike | None = None, workers: int = 2,
            progress: bool = False, **options: Any):
    """Build a corpus as ``vqspeech prepare`` does, and return its summary dataclass.

    ``"demo"`` synthesises the offline flite corpus into ``out`` (default data/demo; options n_sentences,
    n_valid, n_test, voices, seed). ``"vctk"`` and ``"librispeech"`` resample the downloaded corpus at ``root``
    into ``out`` (default: configs/data/<corpus>.yaml's root); options sample_rate, trim_db, no_trim,
    valid_per_speaker, test_per_speaker, heldout_speakers, n_heldout_speakers (and mic for VCTK).
    """
    if corpus == "demo":
        from vqspeech.data.demo import prepare_demo

        return prepare_demo(out or "data/demo", workers=workers, progress=progress, **options)
    if corpus not in ("vctk", "librispeech"):
        raise UserError(f"unknown corpus {corpus!r}: demo, vctk or librispeech")
    if root is None:
        raise UserError(f"prepare({corpus!r}) needs root=, the folder of the downloaded corpus")
    from vqspeech.data.prepare import corpus_options

    settings = corpus_options(corpus, out_dir=None if out is None else str(out), **options)
    if corpus == "vctk":
        from vqspeech.data.vctk import prepare_vctk as prepare_recorded
    else:
        from vqspeech.data.librispeech import prepare_librispeech as prepare_recorded
    return prepare_recorded(root, **settings, workers=workers, progress=progress)


def train(recipe: PathLike, overrides: Sequence[str] = (), progress: bool = False):
    """Train (or resume) a recipe as ``vqspeech train RECIPE overrides...`` does; returns its TrainResult."""
    from vqspeech.config import compose_recipe
    from vqspeech.training import train as train_config

    return train_config(compose_recipe(recipe, list(overrides)), progress=progress)


def _numpy(wav: np.ndarray | torch.Tensor) -> np.ndarray:
    array = wav.detach().cpu().float().numpy() if isinstance(wav, torch.Tensor) else np.asarray(wav, np.float32)
    if array.ndim != 1:
        raise UserError(f"expected a mono waveform [T], got shape {tuple(array.shape)}")
    return array
