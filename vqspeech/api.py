"""The Python API: what ``import vqspeech`` offers notebooks and scripts.

    model = vqspeech.load("runs/demo")              # a run folder or a checkpoint file
    codes = model.encode(wav)                       # wav [T] at model.sample_rate -> codes [T / hop]
    out = model.decode(codes, speaker="slt")        # -> wav [codes · hop]
    out = model.convert(wav, speaker="slt")         # or reference=other_wav (a speaker=reference model)

NumPy in gives NumPy out, torch in gives torch out (on the CPU). Audio is mono float in [-1, 1] at
``model.sample_rate``; read files with :func:`vqspeech.data.audio.load_audio`, which resamples. The CLI's
commands are built on the same functions (vqspeech/synthesis.py, vqspeech/runs.py).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar, Union

import numpy as np
import torch

from vqspeech.data.audio import match_loudness
from vqspeech.errors import UserError
from vqspeech.models.generation import SEGMENT_SECONDS, GenerationConfig, recipe_sampling
from vqspeech.runs import LoadedRun, load_run
from vqspeech.synthesis import decode_in_voices, voice_of_waves

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

    def encode(self, wav: Array) -> Array:
        """wav [T] -> codes [⌈T / hop⌉] (int64; Tensor[D, F] latents for a continuous bottleneck)."""
        codes = self.model.encode_waveform(_numpy(wav)).cpu()
        return codes if isinstance(wav, torch.Tensor) else codes.numpy()

    def decode(self, codes: Array, speaker: str | None = None, reference: Array | None = None) -> Array:
        """codes [F] -> wav [F · hop], generated in a training voice (``speaker``) or in the voice of
        ``reference`` audio [R] (a model trained with speaker=reference). Sampling is seeded (``seed``)."""
        voice = self._voice(speaker, reference)
        generator = torch.Generator(device=self.model.device).manual_seed(self.seed)
        tensor = torch.as_tensor(np.asarray(codes) if not isinstance(codes, torch.Tensor) else codes)
        (out,) = decode_in_voices(self.model, [tensor.to(self.model.device)], [voice], self.generation, generator)
        out = out.float().cpu()
        return out if isinstance(codes, torch.Tensor) else out.numpy()

    def convert(self, wav: Array, speaker: str | None = None, reference: Array | None = None) -> Array:
        """wav [T] spoken in another voice: a training speaker's, or that of ``reference`` audio [R];
        loudness-matched to the input, cut to its length."""
        source = _numpy(wav)
        out = self.decode(self.model.encode_waveform(source).cpu(), speaker, reference)
        out = match_loudness(_numpy(out)[: len(source)], source, self.sample_rate).astype(np.float32)
        return torch.from_numpy(out) if isinstance(wav, torch.Tensor) else out

    def reconstruct(self, wav: Array, speaker: str | None = None) -> Array:
        """Encode and decode wav [T] in its own voice: a training speaker's name, or (a reference model,
        ``speaker`` None) the voice of the input itself."""
        if speaker is None and self.model.speakers.kind != "reference":
            raise UserError(f"reconstruct needs speaker= for a speaker-table model: one of {', '.join(self.speakers)}")
        return self.convert(wav, speaker=speaker, reference=wav if speaker is None else None)

    def _voice(self, speaker: str | None, reference: Array | None) -> str | np.ndarray:
        if (speaker is None) == (reference is None):
            raise UserError("give exactly one of speaker=NAME and reference=WAV")
        if speaker is not None:
            if speaker not in self.speakers:
                raise UserError(f"unknown speaker {speaker!r}; this model knows {', '.join(self.speakers)}")
            return speaker
        if self.model.speakers.kind != "reference":
            raise UserError("reference= needs a model trained with speaker=reference; name a training voice with "
                            "speaker= instead")
        return voice_of_waves(self.model, [_numpy(reference)])

    def __repr__(self) -> str:
        return (f"vqspeech.Model({self.run.checkpoint}, step {self.run.step}, {self.sample_rate} Hz, hop "
                f"{self.hop_length}, {len(self.speakers)} speakers)")


def load(run_or_checkpoint: PathLike, device: str = "auto", seed: int = 0) -> Model:
    """A trained run for inference: a run folder (its last checkpoint) or a checkpoint file (.pt).
    ``device`` is auto | cpu | cuda | cuda:N | mps."""
    from vqspeech.device import pick_device

    path = Path(run_or_checkpoint)
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
