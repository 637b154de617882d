"""Forced phone alignment with pocketsphinx: a transcript and its audio in, word and phone intervals out.

pocketsphinx's wheel ships an English (US) acoustic model and the CMU pronouncing dictionary, so this runs
offline. One utterance is decoded twice, as pocketsphinx's own aligner does: a word-level pass through the
transcript (silence allowed at either end, alternative pronunciations such as ``and(2)`` chosen by the
audio), then a phone- and state-level pass through that word sequence. Times come in 10 ms frames.

Transcripts are normalised before lookup (:func:`normalise_transcript`). A word still missing from the
dictionary (pocketsphinx has no letter-to-sound rules) makes the utterance *skipped*, with the word reported,
rather than aligned to a guessed pronunciation; add such words with an extra dictionary file in CMU format
(``word  W ER D``, one a line; ``extra_dictionary=``). A word the dictionary has gets the file's
pronunciation as one more alternative.

Outputs use the symbols :class:`~vqspeech.data.alignments.PhoneSet` maps: phones in lower case ARPAbet
without stress (``ah``), pocketsphinx's silence and noise phones (``SIL``, ``+NSN+``, ``+SPN+``) as ``sil``,
and in the word tier silence as an empty label. :mod:`vqspeech.eval.boundaries` scores the phone
boundaries against reference times (tools/eval_align.py runs it on the demo corpus).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import re
import time
import unicodedata
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from vqspeech.data.alignments import Segment, write_textgrid
from vqspeech.data.audio import AudioError, load_audio
from vqspeech.files import write_atomic
from vqspeech.data.corpus import load_corpus, read_manifest
from vqspeech.errors import UserError

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000  # the rate pocketsphinx's en-us model was trained on
SILENCE = "sil"  # PhoneSet().silence_label


class AlignmentFailed(Exception):
    """pocketsphinx found no path through the transcript (audio too short for it, or a different text)."""


@dataclass(frozen=True)
class Alignment:
    words: list[Segment]  # words in the transcript's normalised spelling; silence ""
    phones: list[Segment]  # lower-case ARPAbet, silence "sil"
    duration: float  # seconds of audio; the last segment of each tier ends here


# --- transcripts ----------------------------------------------------------------------------------------

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
         "sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10 ** 9, "billion"), (10 ** 6, "million"), (1000, "thousand"), (100, "hundred"))


def spell_number(n: int) -> str:
    """A non-negative integer in words, as a cardinal: 1905 -> "one thousand nine hundred five"."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    for scale, name in _SCALES:
        if n >= scale:
            rest = n % scale
            return f"{spell_number(n // scale)} {name}" + ("" if rest == 0 else " " + spell_number(rest))
    raise AssertionError(n)


def _spell_numeral(match: re.Match) -> str:
    whole, fraction = match.group(1).replace(",", ""), match.group(2)
    if len(whole) > 12:  # not a quantity anyone reads as a cardinal: leave it, it will be reported
        return match.group(0)
    words = spell_number(int(whole))
    if fraction:
        words += " point " + " ".join(_ONES[int(d)] for d in fraction)
    return f" {words} "


def normalise_transcript(text: str) -> list[str]:
    """The words of a transcript as the CMU dictionary spells them.

    Lower case, accents dropped, curly apostrophes straightened; integers and decimals spelled out
    ("1,250" -> "one thousand two hundred fifty", "2.5" -> "two point five"; years and ordinals are not
    special-cased); "%" and "&" read as words; hyphens split words; other punctuation, and apostrophes
    at a word's edges, dropped. Apostrophes inside a word are kept ("don't", "john's").
    """
    text = text.replace("\u2019", "'")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    text = re.sub(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?![\w])", _spell_numeral, text)
    text = text.replace("%", " percent ").replace("&", " and ")
    return [word for token in re.sub(r"[^a-z0-9']+", " ", text).split() if (word := token.strip("'"))]


# --- the aligner ----------------------------------------------------------------------------------------

class Aligner:
    """A pocketsphinx decoder set up for alignment; one per process (it is not thread-safe)."""

    def __init__(self, extra_dictionary: str | Path | None = None):
        from pocketsphinx import Decoder

        self.decoder = Decoder(lm=None, bestpath=False, loglevel="FATAL")
        entries = read_dictionary(extra_dictionary) if extra_dictionary is not None else []
        for k, (word, phones) in enumerate(entries, 1):
            name, variant = word, 1
            while self.decoder.lookup_word(name) is not None:  # a known word: add an alternative, word(2) ...
                variant += 1
                name = f"{word}({variant})"
            try:
                self.decoder.add_word(name, phones, k == len(entries))  # rebuild the search once, at the end
            except RuntimeError:
                raise UserError(f"{extra_dictionary}: pocketsphinx cannot add {word!r} /{phones}/ "
                                f"(phones must be ARPAbet without stress, as in CMUdict)") from None

    def missing_words(self, words: Sequence[str]) -> list[str]:
        """The words (in order, once each) that the dictionary lacks."""
        return list(dict.fromkeys(w for w in words if self.decoder.lookup_word(w) is None))

    def align(self, wav: np.ndarray, words: Sequence[str]) -> Alignment:
        """Align ``words`` (all in the dictionary) to ``wav``: float [T] in [-1, 1] at 16 kHz.

        Raises:
            AlignmentFailed: no alignment through the whole transcript.
        """
        if not words:
            raise AlignmentFailed("the transcript has no words")
        pcm = (np.clip(wav, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        duration = len(wav) / SAMPLE_RATE
        self.decoder.reinit_feat()  # else the previous utterance's cepstral mean leaks into this one
        self.decoder.set_align_text(" ".join(words))
        self._decode(pcm)
        if self.decoder.hyp() is None:
            raise AlignmentFailed("pocketsphinx found no path through the transcript")
        self.decoder.set_alignment()
        self._decode(pcm)
        alignment = self.decoder.get_alignment()
        if alignment is None:
            raise AlignmentFailed("pocketsphinx returned no phone alignment")
        word_segments, phone_segments = [], []
        for word in alignment.words():
            name = re.sub(r"\(\d+\)$", "", word.name)
            word_segments.append(_segment(word.start, word.duration, "" if _is_filler(name) else name))
            phone_segments += [_segment(p.start, p.duration, SILENCE if _is_filler(p.name) else p.name.lower())
                               for p in word]
        aligned = [s.phone for s in word_segments if s.phone]
        if aligned != list(words):
            raise AlignmentFailed(f"pocketsphinx aligned {len(aligned)} of {len(words)} words")
        return Alignment(_fit(word_segments, "", duration), _fit(phone_segments, SILENCE, duration), duration)

    def _decode(self, pcm: bytes) -> None:
        self.decoder.start_utt()
        self.decoder.process_raw(pcm, no_search=False, full_utt=True)
        self.decoder.end_utt()


def read_dictionary(path: str | Path) -> list[tuple[str, str]]:
    """(word, "PH ON ES") pairs of a CMU-format dictionary file; '#' starts a comment."""
    try:
        lines = Path(path).read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read the dictionary {path} ({exc})") from None
    entries = []
    for i, line in enumerate(lines, 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) < 2:
            raise UserError(f"{path}: line {i} should read 'word PH ON ES', got {line.strip()!r}")
        entries.append((fields[0].lower(), " ".join(p.upper() for p in fields[1:])))
    return entries


def _is_filler(name: str) -> bool:
    return name in ("<s>", "</s>", "<sil>", "SIL") or name.startswith(("+", "["))


def _segment(start_frame: int, n_frames: int, label: str) -> Segment:
    return Segment(start_frame / 100, (start_frame + n_frames) / 100, label)


def _fit(segments: list[Segment], silence: str, duration: float) -> list[Segment]:
    """Merge neighbouring silences; start at 0 and end at ``duration`` (pocketsphinx's last frame stops
    short of the audio's end by less than a window)."""
    merged: list[Segment] = []
    for seg in segments:
        if merged and seg.phone == silence and merged[-1].phone == silence:
            merged[-1] = Segment(merged[-1].start, seg.end, silence)
        else:
            merged.append(seg)
    merged[0] = Segment(0.0, merged[0].end, merged[0].phone)
    merged[-1] = Segment(merged[-1].start, max(duration, merged[-1].start), merged[-1].phone)
    return merged


# --- a corpus -------------------------------------------------------------------------------------------

@dataclass
class CorpusAlignment:
    """What :func:`align_corpus` did."""

    manifest: Path  # the manifest it wrote
    aligned: int  # TextGrids written now
    existing: int  # TextGrids already there, kept (and listed in the manifest)
    no_text: int  # utterances without a transcript
    missing_words: dict[str, list[str]]  # audio file -> transcript words the dictionary lacks (skipped)
    failed: dict[str, str]  # audio file -> why it could not be aligned (unreadable audio, no path)
    seconds: float  # wall time

    def summary(self) -> str:
        words = Counter(w for ws in self.missing_words.values() for w in ws)
        listed = ", ".join(f"{w} ({n}x)" for w, n in words.most_common(12)) + (", ..." if len(words) > 12 else "")
        return (f"aligned {self.aligned}, already aligned {self.existing}; skipped {self.no_text} without text, "
                f"{len(self.missing_words)} with words missing from the dictionary"
                + (f" [{listed}]" if words else "") + f", {len(self.failed)} failed; "
                f"{self.seconds:.1f} s; manifest {self.manifest}")


def align_corpus(root: str | Path, manifest: str = "manifest.jsonl", out: str | Path | None = None,
                 manifest_out: str = "manifest.aligned.jsonl", workers: int = 1, overwrite: bool = False,
                 extra_dictionary: str | Path | None = None, progress: bool = True) -> CorpusAlignment:
    """Align every utterance of a corpus that has a transcript; write TextGrids and a manifest listing them.

    Each TextGrid (tiers "words" and "phones") lies beside its audio, ``x.wav`` -> ``x.TextGrid``, or with
    ``out`` under ``out`` at the audio's path relative to ``root``. One that exists is kept and not
    re-aligned unless ``overwrite``. The manifest ``manifest_out`` is written to ``out`` (default ``root``):
    the input manifest's rows and columns with ``alignment`` naming the TextGrid (other rows keep what they
    had); its paths are relative to the folder it lies in, or absolute when outside it, so it is read with
    ``data.root=<that folder> data.manifest=<manifest_out>``. It never replaces the input manifest.

    Raises:
        UserError: no manifest; no utterance has a transcript; the output manifest would be the input one; a
            bad extra dictionary.
    """
    start = time.perf_counter()
    root = Path(root)
    if not (root / manifest).is_file():  # load_corpus's hint (data.manifest=null) is for training
        raise UserError(f"no manifest {root / manifest}: align reads the transcripts from a manifest's 'text' "
                        f"column; name the corpus folder with --data-root and its manifest with --manifest")
    corpus = load_corpus(root, manifest)
    rows = list(read_manifest(root / manifest))
    dest = Path(out) if out is not None else root
    manifest_path = dest / manifest_out
    if manifest_path.resolve() == (root / manifest).resolve():
        raise UserError(f"the aligned manifest would replace {root / manifest}; choose another --manifest-out")
    if workers < 1:
        raise UserError(f"workers must be at least 1, got {workers}")
    texts = [u for u in corpus.utterances if u.text]
    if not texts:
        raise UserError(f"no utterance in {root / manifest} has a transcript (its 'text' column); nothing to align")
    grids = {u.path: _textgrid_path(u.path, root, out) for u in texts}
    jobs = [(u.path, u.text, grids[u.path]) for u in texts if overwrite or not grids[u.path].exists()]
    aligner = Aligner(extra_dictionary)  # checks the dictionary file before any work
    results: dict[Path, tuple[str, object]] = {}
    with tqdm(total=len(jobs), desc="align", unit="utt", disable=not progress) as bar:
        if workers == 1 or len(jobs) < 2:
            for job in jobs:
                results[job[0]] = _align_file(aligner, *job)
                bar.update(1)
        else:
            context = multiprocessing.get_context("fork")  # quick; workers run no torch/OpenMP code, so it is safe
            with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=context, initializer=_start_worker,
                                     initargs=(extra_dictionary,)) as pool:
                futures = {pool.submit(_align_in_worker, *job): job[0] for job in jobs}
                for future in as_completed(futures):
                    results[futures[future]] = future.result()
                    bar.update(1)
    missing = {str(p): r for p, (status, r) in results.items() if status == "missing"}
    failed = {str(p): r for p, (status, r) in results.items() if status == "failed"}
    for path, words in missing.items():
        log.warning("%s: skipped, words not in the dictionary: %s", path, " ".join(words))
    for reason in failed.values():
        log.warning("not aligned: %s", reason)

    new_rows = []
    for row, u in zip(rows, corpus.utterances):
        row = {**row, "path": _relative(u.path, dest)}
        status = results.get(u.path, ("existing", None))[0] if u.text else "no text"
        if status in ("aligned", "existing"):
            row["alignment"] = _relative(grids[u.path], dest)
        elif u.alignment is not None:
            row["alignment"] = _relative(u.alignment, dest)
        new_rows.append(row)
    dest.mkdir(parents=True, exist_ok=True)
    write_atomic(manifest_path, "".join(json.dumps(row) + "\n" for row in new_rows))
    return CorpusAlignment(manifest=manifest_path, aligned=sum(s == "aligned" for s, _ in results.values()),
                           existing=len(texts) - len(jobs), no_text=len(corpus.utterances) - len(texts),
                           missing_words=missing, failed=failed, seconds=time.perf_counter() - start)


def _textgrid_path(audio: Path, root: Path, out: str | Path | None) -> Path:
    if out is None:
        return audio.with_suffix(".TextGrid")
    try:
        relative = audio.relative_to(root)
    except ValueError:  # an absolute path in the manifest, outside the corpus folder
        relative = Path(audio.name)
    return (Path(out) / relative).with_suffix(".TextGrid")


def _relative(path: Path, folder: Path) -> str:
    try:
        return str(path.relative_to(folder))
    except ValueError:
        return str(path.resolve())


def _align_file(aligner: Aligner, audio: Path, text: str, grid: Path) -> tuple[str, object]:
    """("aligned", None), ("missing", [words]) or ("failed", "file: reason"); writes the TextGrid when aligned."""
    words = normalise_transcript(text)
    missing = aligner.missing_words(words)
    if missing:
        return "missing", missing
    try:
        alignment = aligner.align(load_audio(audio, SAMPLE_RATE), words)
    except AudioError as exc:  # its message names the file
        return "failed", str(exc)
    except AlignmentFailed as exc:
        return "failed", f"{audio}: {exc}"
    write_textgrid(grid, {"words": alignment.words, "phones": alignment.phones}, alignment.duration,
                   overwrite=True)  # align_corpus decided already whether to replace it
    return "aligned", None


_worker_aligner: Aligner | None = None


def _start_worker(extra_dictionary: str | Path | None) -> None:
    global _worker_aligner
    _worker_aligner = Aligner(extra_dictionary)


def _align_in_worker(audio: Path, text: str, grid: Path) -> tuple[str, object]:
    return _align_file(_worker_aligner, audio, text, grid)
