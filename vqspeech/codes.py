"""The codes of a run's corpus, extracted once with its frozen encoder: what the prior trains on.

``extract_codes(run)`` encodes every utterance of the train, valid and test splits (whole, as
:meth:`VQVAE.encode_waveform` does) and writes ``RUN/codes/<checkpoint hash>/<split>.pt``: a later
checkpoint has another hash, so its prior never reads stale codes. Each file is a weights-only torch file
(:class:`CodeSplit`'s fields), written atomically.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from vqspeech.checkpoint import file_hash
from vqspeech.data.dataset import as_float, load_split
from vqspeech.errors import UserError
from vqspeech.files import atomic_target
from vqspeech.runs import LoadedRun

SPLITS = ("train", "valid", "test")


@dataclass
class CodeSplit:
    """One split's codes.

    Attributes:
        codes: per utterance, LongTensor[F_i].
        speaker_ids: per utterance, its speaker's index in ``speakers``.
        utterances: per utterance, "<speaker>/<utterance id>".
        speakers: the run's training speakers.
        speaker_vectors: Tensor[S, V], each speaker's mean reference vector (a reference run), else None.
        codebook_size: K. frame_rate: codes per second (sample rate / hop).
        checkpoint_hash: of the VQ-VAE checkpoint that made them.
    """

    codes: list[torch.Tensor]
    speaker_ids: list[int]
    utterances: list[str]
    speakers: list[str]
    speaker_vectors: torch.Tensor | None
    codebook_size: int
    frame_rate: float
    checkpoint_hash: str

    @property
    def frames(self) -> int:
        return sum(len(c) for c in self.codes)

    def speaker_condition(self, index: int | list[int]) -> torch.Tensor:
        """The prior's speaker input of utterances: ids LongTensor[B], or their speakers' vectors [B, V]."""
        index = [index] if isinstance(index, int) else index
        ids = torch.tensor([self.speaker_ids[i] for i in index], dtype=torch.long)
        return ids if self.speaker_vectors is None else self.speaker_vectors[ids]


def codes_dir(run: LoadedRun) -> Path:
    return run.run_dir / "codes" / file_hash(run.checkpoint)


def speaker_vectors(run: LoadedRun) -> torch.Tensor | None:
    speakers = run.model.speakers
    return speakers.means.detach().float().cpu().clone() if speakers.kind == "reference" else None


def extract_codes(run: LoadedRun, data_root: str | Path | None = None, progress: bool = True) -> Path:
    """Write the codes of every split (those already written for this checkpoint are kept); returns their folder.

    Raises:
        UserError: a model with a continuous bottleneck (no codes to model); a corpus without training audio.
    """
    model = run.model
    size = getattr(model.bottleneck, "codebook_size", None)
    if size is None:
        raise UserError(f"{run.run_dir} has a continuous bottleneck ({model.bottleneck.kind}): it makes no codes "
                        f"for a prior; train a run with bottleneck=vq or ema")
    out = codes_dir(run)
    corpus = run.corpus(data_root)
    speakers = model.speakers.names
    for split in SPLITS:
        path = out / f"{split}.pt"
        if path.is_file():
            continue
        audio = load_split(corpus.split(split), speakers, run.sample_rate, progress, f"encode {split}")
        if split == "train" and not audio.waves:
            raise UserError(f"no training audio for {run.run_dir}'s speakers under {corpus.root}; "
                            f"pass --data-root if the corpus moved")
        codes = [model.encode_waveform(as_float(w)).cpu() for w in audio.waves]
        result = CodeSplit(codes=codes, speaker_ids=audio.speaker_ids,
                           utterances=[f"{u.speaker}/{u.utterance}" for u in audio.utterances], speakers=speakers,
                           speaker_vectors=speaker_vectors(run), codebook_size=int(size),
                           frame_rate=run.sample_rate / model.hop_length, checkpoint_hash=out.name)
        out.mkdir(parents=True, exist_ok=True)
        with atomic_target(path, fsync=True) as tmp:
            torch.save(asdict(result), tmp)
    return out


def load_codes(folder: str | Path, split: str) -> CodeSplit:
    path = Path(folder) / f"{split}.pt"
    if not path.is_file():
        raise UserError(f"no {split} codes at {path}; run vqspeech extract-codes --run RUN")
    try:
        return CodeSplit(**torch.load(path, weights_only=True))
    except Exception as exc:  # a truncated or foreign file: say which, and how to remake it
        raise UserError(f"{path}: not a readable codes file ({type(exc).__name__}); delete it and run "
                        f"vqspeech extract-codes again") from None
