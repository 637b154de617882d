"""A corpus: audio files with a speaker each, split into train / valid / test.

Two ways to describe one:
  * a manifest (JSONL, or CSV with a header) with ``path`` and ``speaker`` columns, and optionally
    ``split``, ``utterance``, ``text`` and ``alignment``; paths are relative to the corpus root; other
    columns (``duration``, ``gender``, ``accent`` from ``vqspeech prepare``) are allowed and not read;
  * a folder, ``root/<speaker>/**/*.wav|flac``.
Without a split column, utterances are split by a stable hash of their file name, so a file keeps its
split when the corpus grows. A manifest may also put utterances in split ``heldout``: speakers kept out of
training altogether (no split the training loop reads holds them), for tests on unseen voices.
"""

from __future__ import annotations

import csv
import json
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from vqspeech.errors import UserError

AUDIO_EXTENSIONS = (".wav", ".flac")
SPLITS = ("train", "valid", "test")
HELDOUT = "heldout"  # held-out speakers: in a manifest only, never made by the hash split
MANIFEST_SPLITS = (*SPLITS, HELDOUT)


@dataclass(frozen=True)
class Utterance:
    path: Path
    speaker: str
    utterance: str                 # id within the speaker (the file stem by default)
    split: str                     # train | valid | test | heldout
    text: str | None = None
    alignment: Path | None = None  # phone alignment file, if the corpus has one


@dataclass
class Corpus:
    root: Path
    utterances: list[Utterance]

    def split(self, name: str) -> list[Utterance]:
        return [u for u in self.utterances if u.split == name]

    @property
    def speakers(self) -> list[str]:
        """Speakers with training audio, sorted: the model's speaker table."""
        return sorted({u.speaker for u in self.split("train")})


def load_corpus(root: str | Path, manifest: str | None = None, valid_fraction: float = 0.05,
                test_fraction: float = 0.05) -> Corpus:
    """Read a corpus from a manifest (relative to root, or absolute) or by scanning root's folders."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"corpus folder {root} does not exist (for the demo corpus run `vqspeech prepare demo`; "
                        f"otherwise point data.root=... (training) or --data-root (the other commands) at it)")
    if manifest is not None:
        manifest_path = root / manifest
        if not manifest_path.is_file():
            raise UserError(f"manifest {manifest_path} not found (set data.manifest=null to scan "
                            f"{root}/<speaker>/*.wav instead)")
        rows = list(read_manifest(manifest_path))
    else:
        rows = [{"path": str(p.relative_to(root)), "speaker": p.relative_to(root).parts[0]}
                for p in sorted(root.rglob("*")) if p.suffix.lower() in AUDIO_EXTENSIONS
                and len(p.relative_to(root).parts) >= 2]
    utterances = [_utterance(root, row, valid_fraction, test_fraction) for row in rows]
    if not utterances:
        raise UserError(f"no audio found in {root}: expected {root}/<speaker>/*.wav|flac or a manifest")
    if not any(u.split == "train" for u in utterances):
        raise UserError(f"corpus {root} has no training utterances; check its split column")
    return Corpus(root=root, utterances=utterances)


def read_manifest(path: Path) -> Iterable[dict]:
    """The rows of a manifest (JSONL, or CSV with a header), as written, with every column kept.

    Raises:
        UserError: invalid JSON, a row without path or speaker, or an unknown split (naming the row).
    """
    with open(path, newline="") as f:
        if path.suffix == ".csv":
            rows = list(csv.DictReader(f))
        else:
            try:
                rows = [json.loads(line) for line in f if line.strip()]
            except json.JSONDecodeError as exc:
                raise UserError(f"{path}: not valid JSON lines ({exc})") from None
    for i, row in enumerate(rows, 1):
        missing = {"path", "speaker"} - set(row)
        if missing:
            raise UserError(f"{path}: row {i} lacks {', '.join(sorted(missing))}")
        if row["speaker"] in (None, "") or row["path"] in (None, ""):
            raise UserError(f"{path}: row {i} has an empty path or speaker")
        if row.get("split") not in (None, "", *MANIFEST_SPLITS):
            raise UserError(f"{path}: row {i} has split {row['split']!r}; "
                            f"expected one of {', '.join(MANIFEST_SPLITS)}")
        yield row


def _utterance(root: Path, row: dict, valid_fraction: float, test_fraction: float) -> Utterance:
    path = Path(row["path"])
    split = row.get("split") or _hash_split(path.stem, valid_fraction, test_fraction)
    alignment = row.get("alignment")
    return Utterance(path=path if path.is_absolute() else root / path, speaker=str(row["speaker"]),
                     utterance=row.get("utterance") or path.stem, split=split, text=row.get("text") or None,
                     alignment=(root / alignment) if alignment else None)


def _hash_split(name: str, valid_fraction: float, test_fraction: float) -> str:
    u = zlib.crc32(name.encode()) / 2 ** 32
    if u < valid_fraction:
        return "valid"
    if u < valid_fraction + test_fraction:
        return "test"
    return "train"
