"""A corpus: audio files with a speaker each, split into train / valid / test.

Two ways to describe one:
  * a manifest (JSONL, or CSV with a header) with ``path`` and ``speaker`` columns, and optionally
    ``split``, ``utterance``, ``text``, ``alignment``, and ``start``/``end`` (seconds: the row is that part
    of the file, as ``vqspeech prepare`` writes validation audio cut from a reader's only utterance); paths are relative to the corpus root; other
    columns (``duration``, ``gender``, ``accent`` from ``vqspeech prepare``) are allowed and not read;
  * a folder, ``root/<speaker>/**/*.wav|flac``, or TIMIT's ``root/{TRAIN,TEST}/DRx/<speaker>/*.WAV`` (its
    split taken from the top folder). Each audio file ``x.wav`` is paired with the phone alignment beside
    it, ``x.TextGrid``, ``x.PHN`` or ``x.lab`` (any letter case), if there is one.
Without a split column, utterances are split by a stable hash of their file name, so a file keeps its
split when the corpus grows. A manifest may also put utterances in split ``heldout``: speakers kept out of
training altogether (no split the training loop reads holds them), for tests on unseen voices.

Only training needs training utterances: :attr:`Corpus.speakers` (the model's speaker table) refuses a
corpus without them, :func:`load_corpus` does not, so a held-out corpus can be probed or scored.
"""

from __future__ import annotations

import csv
import json
import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vqspeech.errors import UserError

AUDIO_EXTENSIONS = (".wav", ".flac")
SPLITS = ("train", "valid", "test")
HELDOUT = "heldout"  # held-out speakers: in a manifest only, never made by the hash split
MANIFEST_SPLITS = (*SPLITS, HELDOUT)
ALIGNMENT_EXTENSIONS = (".TextGrid", ".PHN", ".lab")  # looked for beside scanned audio, in this order
_TIMIT_DIALECT = re.compile(r"dr\d", re.IGNORECASE)


@dataclass(frozen=True)
class Utterance:
    path: Path
    speaker: str
    utterance: str                 # id within the speaker (the file stem by default)
    split: str                     # train | valid | test | heldout
    text: str | None = None
    alignment: Path | None = None  # phone alignment file, if the corpus has one
    start: float | None = None     # seconds: the row is this part of the file (None: from its start)
    end: float | None = None       # seconds (None: to its end)

    @property
    def part(self) -> str:
        """'' for a whole file, else '@start-end' (seconds): what distinguishes rows of one file."""
        return "" if self.start is None and self.end is None else f"@{self.start or 0:g}-{self.end or ''}"

    def cut(self, wav, sample_rate: int):
        """The row's part of its file's audio wav [T] at sample_rate."""
        first = 0 if self.start is None else int(round(self.start * sample_rate))
        return wav[first:] if self.end is None else wav[first:int(round(self.end * sample_rate))]


@dataclass
class Corpus:
    root: Path
    utterances: list[Utterance]
    manifest: Path | None = None   # None: read by scanning root's folders

    @classmethod
    def from_config(cls, data: Mapping[str, Any], root: str | Path | None = None) -> Corpus:
        """The corpus a ``data:`` config (configs/data/, or a run's saved config) describes: its root (or
        ``root`` instead), manifest and split fractions."""
        return load_corpus(root if root is not None else data["root"], data["manifest"],
                           data["valid_fraction"], data["test_fraction"])

    def split(self, name: str) -> list[Utterance]:
        return [u for u in self.utterances if u.split == name]

    @property
    def speakers(self) -> list[str]:
        """Speakers with training audio, sorted: the model's speaker table.

        Raises:
            UserError: the corpus has no training utterance (training needs them; nothing else reads this).
        """
        speakers = sorted({u.speaker for u in self.split("train")})
        if not speakers:
            raise UserError(f"corpus {self.description} has no training utterances; check its split column")
        return speakers

    @property
    def description(self) -> str:
        """Where the corpus was read from: its manifest, or ``root (folder scan)``."""
        return str(self.manifest) if self.manifest is not None else f"{self.root} (folder scan)"


def load_corpus(root: str | Path, manifest: str | None = None, valid_fraction: float = 0.05,
                test_fraction: float = 0.05) -> Corpus:
    """Read a corpus from a manifest (relative to root, or absolute) or by scanning root's folders (see the
    module docstring). A corpus without training utterances is read: only training refuses it."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"corpus folder {root} does not exist (for the demo corpus run `vqspeech prepare demo`; "
                        f"otherwise point data.root=... (training) or --data-root (the other commands) at it)")
    manifest_path = None
    if manifest is not None:
        manifest_path = root / manifest
        if not manifest_path.is_file():
            raise UserError(f"manifest {manifest_path} not found (to scan {root}/<speaker>/*.wav instead: "
                            f"data.manifest=null when training, --no-manifest for probe-phonemes)")
        rows = list(read_manifest(manifest_path))
    else:
        rows = scan_folder(root)
    utterances = [_utterance(root, row, valid_fraction, test_fraction) for row in rows]
    if not utterances:
        raise UserError(f"no audio found in {root}: expected {root}/<speaker>/*.wav|flac or a manifest")
    return Corpus(root=root, utterances=utterances, manifest=manifest_path)


def scan_folder(root: Path) -> list[dict]:
    """Manifest rows of the audio under root: ``root/<speaker>/**/x.wav|flac``, or TIMIT's
    ``root/{TRAIN,TEST}/DRx/<speaker>/x.WAV`` (split ``train``/``test``), each with ``alignment`` set when an
    ``x`` + one of ALIGNMENT_EXTENSIONS (any case) lies beside it. Files directly in root are not audio of a
    speaker and are skipped."""
    rows, beside = [], {}
    for path in sorted(root.rglob("*")):
        parts = path.relative_to(root).parts
        if path.suffix.lower() not in AUDIO_EXTENSIONS or len(parts) < 2 or not path.is_file():
            continue
        stem = path.stem  # TIMIT copies converted to RIFF are often named x.WAV.wav, beside x.WAV
        while Path(stem).suffix.lower() in AUDIO_EXTENSIONS:
            stem = Path(stem).stem
        if stem != path.stem and (path.parent / path.stem).is_file():
            continue  # the same recording twice: keep x.WAV
        row = {"path": str(path.relative_to(root)), "speaker": parts[0], "utterance": stem}
        if len(parts) >= 4 and parts[0].lower() in ("train", "test") and _TIMIT_DIALECT.fullmatch(parts[1]):
            row.update(speaker=parts[2], split=parts[0].lower())
        if path.parent not in beside:
            beside[path.parent] = {p.name.lower(): p.name for p in path.parent.iterdir()}
        for ext in ALIGNMENT_EXTENSIONS:
            name = beside[path.parent].get((stem + ext).lower())
            if name is not None:
                row["alignment"] = str((path.parent / name).relative_to(root))
                break
        rows.append(row)
    return rows


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
                     alignment=(root / alignment) if alignment else None,
                     start=_seconds(row.get("start")), end=_seconds(row.get("end")))


def _seconds(value) -> float | None:
    return None if value in (None, "") else float(value)


def _hash_split(name: str, valid_fraction: float, test_fraction: float) -> str:
    u = zlib.crc32(name.encode()) / 2 ** 32
    if u < valid_fraction:
        return "valid"
    if u < valid_fraction + test_fraction:
        return "test"
    return "train"
