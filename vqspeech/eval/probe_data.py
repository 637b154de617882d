"""What the phoneme probe reads: which corpus, which of its utterances, and their audio with one phone label
per code frame.

The corpus is the run's own (its manifest, or the folder it scanned; under ``--data-root`` if it moved), or
another aligned corpus: another manifest, or a folder scan (:func:`vqspeech.data.corpus.scan_folder` pairs
``x.wav`` with ``x.TextGrid``/``x.PHN``/``x.lab`` and reads TIMIT's layout). On the run's own corpus only its
held-out splits (test, valid) are probed by default; on another corpus every utterance.

Audio is resampled to the model's rate; alignment times are in seconds, or (TIMIT ``.PHN``) in samples of the
audio file's own rate, so resampling never shifts a phone against its frames.
"""

from __future__ import annotations

import logging
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from tqdm import tqdm

from vqspeech.data.alignments import PhoneSet, Segment, check_alignment, frame_labels, read_alignment
from vqspeech.data.audio import load_audio
from vqspeech.data.corpus import ALIGNMENT_EXTENSIONS, AUDIO_EXTENSIONS, Corpus, Utterance
from vqspeech.errors import UserError

log = logging.getLogger(__name__)
HELD_OUT_SPLITS = ("test", "valid")  # probed by default on the corpus the model was trained on
UNKNOWN_SHARE = 0.5                  # a file with more unknown symbols than this is "mostly unknown"
SYMBOL_HINT = ("pass --any-symbol to score another phone set as it is, or --fold-timit for TIMIT's 61 "
               "symbols")


@dataclass
class ProbeCorpus:
    """The corpus to probe, the splits to probe (None: every utterance) and what the model was trained on."""

    corpus: Corpus
    splits: list[str] | None
    trained_on: str


def probe_corpus(data: Mapping[str, Any], data_root: str | Path | None = None, manifest: str | None = None,
                 scan: bool = False, splits: Sequence[str] | None = None) -> ProbeCorpus:
    """Choose the corpus to probe from a run's ``data`` config and the user's choices.

    Args:
        data: the run's data config (root, manifest, valid_fraction, test_fraction).
        data_root: the corpus folder (default: the run's).
        manifest: a manifest under it to read instead of the run's; with ``scan``, none is read.
        scan: read the folder, ``root/<speaker>/**/*.wav|flac`` (or TIMIT's layout), even if a manifest is there.
            Without ``manifest`` or ``scan``, the run's manifest name is read if it exists, else the folder.
        splits: the splits to probe; None chooses (the run's own corpus: test and valid; another: every one).
    """
    root = Path(data_root if data_root is not None else data["root"])
    if scan:
        name = None
    elif manifest is not None:
        name = manifest
    else:
        name = data["manifest"] if data["manifest"] is not None and (root / data["manifest"]).is_file() else None
        if name is None and data["manifest"] is not None:
            log.info("no %s in %s: scanning its folders", data["manifest"], root)
    corpus = Corpus.from_config({**data, "manifest": name}, root)
    trained_root = Path(data["root"])
    own = name == data["manifest"] and (name is not None or root.resolve() == trained_root.resolve())
    trained_on = str(trained_root / data["manifest"]) if data["manifest"] else f"{trained_root} (folder scan)"
    chosen = list(splits) if splits else list(HELD_OUT_SPLITS) if own else None
    return ProbeCorpus(corpus, chosen, trained_on)


@dataclass
class AlignedItem:
    utterance: Utterance
    wav: np.ndarray            # [T] at the model's rate, T a multiple of the hop
    segments: list[Segment]    # in seconds
    labels: list[str | None]   # one per code frame
    source_rate: int           # the audio file's own sample rate


def load_items(corpus: Corpus, splits: Sequence[str] | None, sample_rate: int, hop: int, phone_set: PhoneSet,
               max_utterances: int | None = None, tier: str = "phones", progress: bool = True
               ) -> tuple[list[AlignedItem], dict[str, list[str]]]:
    """The aligned utterances of ``splits`` (None: all) that fit their audio, and file -> problems of the rest.

    At most ``max_utterances``, chosen by a hash of the utterance id (a parallel corpus keeps whole sentences).

    Raises:
        UserError: no aligned utterance (a scanned folder: naming the extensions looked for), or none usable.
    """
    what = f"split {'+'.join(splits)}" if splits else "any split"
    chosen = [u for u in corpus.utterances if splits is None or u.split in splits]
    utts = [u for u in chosen if u.alignment is not None]
    if not chosen and corpus.manifest is None:
        raise UserError(f"no audio of {what} under {corpus.root}: a folder scan puts TIMIT's TRAIN/TEST folders in "
                        f"splits train/test and other files in a hash split; leave out --split to probe every one")
    if not utts:
        if corpus.manifest is None:
            raise UserError(f"no alignment beside any of the {len(chosen)} audio files of {what} under "
                            f"{corpus.root}: looked for x{', x'.join(ALIGNMENT_EXTENSIONS)} (any case) next to "
                            f"each x{'|'.join(AUDIO_EXTENSIONS)}; `vqspeech align` makes TextGrids from transcripts")
        raise UserError(f"no utterance of {what} in {corpus.description} has a phone alignment "
                        f"(the manifest's 'alignment' column); nothing to probe")
    if len(utts) < len(chosen):
        log.info("%d of %d utterances of %s have no alignment: not probed", len(chosen) - len(utts), len(chosen),
                 what)
    utts.sort(key=lambda u: (zlib.crc32(u.utterance.encode()), u.utterance, u.speaker))
    items, skipped = [], {}
    frame_rate = sample_rate / hop
    for u in tqdm(utts[:max_utterances], desc="load aligned audio", unit="file", disable=not progress, leave=False):
        try:
            source_rate = _source_rate(u.path)
            segments = read_alignment(u.alignment, sample_rate=source_rate, tier=tier)  # .PHN: the file's samples
            wav = load_audio(u.path, sample_rate)
        except UserError as exc:  # the message names the file
            skipped[str(u.alignment)] = [str(exc)]
            log.warning("left out: %s", exc)
            continue
        problems = check_alignment(segments, len(wav) / sample_rate, phone_set)
        unknown = sum(seg.phone not in phone_set for seg in segments)
        if unknown > UNKNOWN_SHARE * len(segments):
            examples = ", ".join(repr(s) for s, _ in Counter(seg.phone for seg in segments
                                                             if seg.phone not in phone_set).most_common(3))
            problems.insert(0, f"mostly unknown symbols ({unknown} of {len(segments)} segments, e.g. {examples}); "
                               + SYMBOL_HINT)
        wav = wav[: len(wav) // hop * hop]
        labels = frame_labels(segments, len(wav) // hop, frame_rate, phone_set)
        if not problems and all(label is None for label in labels):
            problems = ["no code frame falls inside a phone"]
        if problems:
            skipped[str(u.alignment)] = problems
            log.warning("%s: %d problem(s), left out: %s", u.alignment, len(problems), "; ".join(problems[:3]))
            continue
        items.append(AlignedItem(u, wav, segments, labels, source_rate))
    if not items:
        first = "; ".join(f"{path}: {p[0]}" for path, p in list(skipped.items())[:3])
        raise UserError(f"none of the {len(skipped)} aligned utterances of {what} is usable (e.g. {first})")
    return items, skipped


def _source_rate(path: Path) -> int:
    """The audio file's own sample rate (16 kHz if soundfile cannot tell: then load_audio names the fault)."""
    try:
        return int(sf.info(str(path)).samplerate)
    except Exception:  # soundfile raises several types for broken files; load_audio reports them
        return 16000
