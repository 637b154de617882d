"""LibriSpeech: find its files and transcripts, prepare it for training like any recorded corpus.

ROOT is either the LibriSpeech folder that holds subsets, or one subset::

    ROOT/[train-clean-100/]SPEAKER/CHAPTER/SPEAKER-CHAPTER-NNNN.flac
    ROOT/[train-clean-100/]SPEAKER/CHAPTER/SPEAKER-CHAPTER.trans.txt   "SPEAKER-CHAPTER-NNNN TEXT" a line
    ROOT/SPEAKERS.TXT (or beside a subset ROOT)                         "ID | SEX | SUBSET | MINUTES | NAME"

LibriSpeech's dev-* and test-* speakers are not in its train-* subsets: when ROOT holds both, the
dev/test speakers become held-out speakers (split ``heldout``), as the corpus intends.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from dataclasses import replace
from pathlib import Path

from vqspeech.data.prepare import PreparedCorpus, Source, SplitPolicy, prepare_corpus
from vqspeech.errors import UserError

log = logging.getLogger(__name__)

EXPECTED = ("expected ROOT/[SUBSET/]SPEAKER/CHAPTER/SPEAKER-CHAPTER-NNNN.flac beside SPEAKER-CHAPTER.trans.txt "
            "(LibriSpeech)")
_NAME = re.compile(r"(?P<speaker>\d+)-(?P<chapter>\d+)-(?P<number>\d+)\.flac")


def prepare_librispeech(root: str | os.PathLike, out_dir: str | os.PathLike, *, sample_rate: int = 16000,
                        trim_db: float | None = 30.0, policy: SplitPolicy = SplitPolicy(),
                        manifest: str = "manifest.jsonl", workers: int = 2, progress: bool = True) -> PreparedCorpus:
    """Resample LibriSpeech at ``root`` into ``out_dir`` and write its manifest (see :mod:`vqspeech.data.prepare`).

    Raises:
        UserError: ``root`` is not LibriSpeech (the message says what was expected).
    """
    sources, subsets = scan_librispeech(Path(root))
    if any(s.startswith("train") for s in subsets.values()):
        unseen = sorted(spk for spk, subset in subsets.items() if subset.startswith(("dev", "test")))
        policy = replace(policy, heldout_speakers=tuple(sorted({*policy.heldout_speakers, *unseen})))
    name = f"LibriSpeech ({', '.join(sorted(set(subsets.values())))})"
    return prepare_corpus(name, sources, out_dir, sample_rate=sample_rate, trim_db=trim_db, policy=policy,
                          settings={"corpus": "librispeech"}, manifest=manifest, workers=workers, progress=progress)


def scan_librispeech(root: Path) -> tuple[list[Source], dict[str, str]]:
    """One Source per flac file, sorted, and each speaker's subset; warns about files without transcripts."""
    if not root.is_dir():
        raise UserError(f"LibriSpeech folder {root} does not exist ({EXPECTED})")
    files = [p for pattern in ("*/*/*.flac", "*/*/*/*.flac") for p in root.glob(pattern)
             if (m := _NAME.fullmatch(p.name)) and p.parent.name == m["chapter"] and p.parent.parent.name == m["speaker"]]
    if not files:
        raise UserError(f"{root} is not a LibriSpeech corpus: {EXPECTED}")
    genders = read_speakers(root / "SPEAKERS.TXT") or read_speakers(root.parent / "SPEAKERS.TXT")
    texts, sources, subsets = {}, [], {}
    for path in sorted(files):
        chapter = path.parent
        if chapter not in texts:
            texts[chapter] = read_transcripts(chapter / f"{chapter.parent.name}-{chapter.name}.trans.txt")
        speaker = chapter.parent.name
        subsets[speaker] = chapter.parent.parent.name if chapter.parent.parent != root else root.name
        sources.append(Source(path=path, speaker=speaker, utterance=path.stem, text=texts[chapter].get(path.stem),
                              gender=genders.get(speaker)))
    no_text = Counter(s.speaker for s in sources if s.text is None)
    if no_text:
        log.warning("%d utterance(s) of %d speaker(s) have no transcript, text left empty", sum(no_text.values()),
                    len(no_text))
    return sources, subsets


def read_transcripts(path: Path) -> dict[str, str]:
    """Text by utterance id from one chapter's SPEAKER-CHAPTER.trans.txt (empty when it is absent)."""
    if not path.is_file():
        return {}
    lines = (line.split(maxsplit=1) for line in path.read_text(encoding="utf-8", errors="replace").splitlines())
    return {fields[0]: fields[1].strip() for fields in lines if len(fields) == 2}


def read_speakers(path: Path) -> dict[str, str]:
    """Gender (F or M) by speaker id from SPEAKERS.TXT (empty when it is absent)."""
    if not path.is_file():
        return {}
    fields = (line.split("|") for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
              if not line.startswith(";"))
    return {f[0].strip(): f[1].strip() for f in fields if len(f) >= 2 and f[0].strip()}
