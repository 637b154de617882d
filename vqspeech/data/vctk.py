"""The CSTR VCTK corpus: find its files, read its transcripts and speaker table, prepare it for training.

Accepted layouts under ROOT (the first present wins)::

    wav48_silence_trimmed/pXXX/pXXX_NNN_mic1.flac   VCTK 0.92 (also _mic2: choose with ``mic``)
    wav48/pXXX/pXXX_NNN.wav                         VCTK 0.80
    wavNN/pXXX/pXXX_NNN.wav                         0.80 naming, already resampled (e.g. wav16/)
    txt/pXXX/pXXX_NNN.txt                           transcripts (optional)
    speaker-info.txt                                ID AGE GENDER ACCENTS REGION [COMMENTS] (optional)

Speakers without transcripts (p315) keep their audio with empty text; transcripts without audio (all of
p280 and part of p362 with mic2) are counted in a warning. Both are expected in the real corpus.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from vqspeech.data.download import download, extract_zip, extracted
from vqspeech.data.prepare import PreparedCorpus, Source, SplitPolicy, prepare_corpus
from vqspeech.errors import UserError

log = logging.getLogger(__name__)

VCTK_URL = "https://datashare.ed.ac.uk/bitstream/handle/10283/3443/VCTK-Corpus-0.92.zip"
# The sha256 torchaudio's VCTK_092 dataset checks this archive against (not re-measured here: no network).
VCTK_CHECKSUM = "sha256:f96258be9fdc2cbff6559541aae7ea4f59df3fcaf5cf963aae5ca647357e359c"
MICS = ("mic1", "mic2")
EXPECTED = ("expected ROOT/wav48_silence_trimmed/pXXX/pXXX_NNN_mic1.flac (VCTK 0.92), ROOT/wav48/pXXX/pXXX_NNN.wav "
            "(0.80) or ROOT/wavNN/pXXX/pXXX_NNN.wav (0.80 naming, resampled)")
_NAME_092 = re.compile(r"(?P<speaker>[^_/]+)_(?P<number>\d+)_(?P<mic>mic\d)\.flac")
_NAME_080 = re.compile(r"(?P<speaker>[^_/]+)_(?P<number>\d+)\.wav")


@dataclass(frozen=True)
class Speaker:
    gender: str | None
    accent: str | None


def prepare_vctk(root: str | os.PathLike, out_dir: str | os.PathLike, *, mic: str = "mic1", sample_rate: int = 16000,
                 trim_db: float | None = 30.0, policy: SplitPolicy = SplitPolicy(), manifest: str = "manifest.jsonl",
                 download_corpus: bool = False, url: str = VCTK_URL, checksum: str | None = VCTK_CHECKSUM,
                 workers: int = 2, progress: bool = True) -> PreparedCorpus:
    """Resample VCTK at ``root`` into ``out_dir`` and write its manifest (see :mod:`vqspeech.data.prepare`).

    With ``download_corpus``, VCTK 0.92 is first fetched from ``url`` into ``root`` (resuming a partial
    download, checked against ``checksum``) and unpacked there, unless it already is.

    Raises:
        UserError: ``root`` is not VCTK (the message says what was expected); a bad ``mic``; download errors.
    """
    if mic not in MICS:
        raise UserError(f"mic must be one of {', '.join(MICS)}, got {mic!r}")
    root = Path(root)
    if download_corpus:
        root = download_vctk(root, url, checksum, progress)
    version, sources = scan_vctk(root, mic)
    return prepare_corpus(version, sources, out_dir, sample_rate=sample_rate, trim_db=trim_db, policy=policy,
                          settings={"corpus": "vctk", "mic": mic if version.startswith("VCTK 0.92") else None},
                          manifest=manifest, workers=workers, progress=progress)


def scan_vctk(root: Path, mic: str = "mic1") -> tuple[str, list[Source]]:
    """The layout's name (e.g. "VCTK 0.92 (mic1)") and one Source per audio file, sorted; warns about gaps."""
    version, audio = find_audio(root, mic)
    texts = read_transcripts(root / "txt")
    info_path = root / "speaker-info.txt"
    info = read_speaker_info(info_path) if info_path.is_file() else {}
    if not texts:
        log.warning("%s has no txt/pXXX/pXXX_NNN.txt transcripts: text left empty for all %d utterances",
                    root, len(audio))
    if not info:
        log.warning("%s has no speaker-info.txt: gender and accent left empty", root)
    no_text = Counter(spk for spk, utt in audio if texts and utt not in texts)
    if no_text:
        log.warning("%d utterance(s) of %d speaker(s) have no transcript, text left empty: %s", sum(no_text.values()),
                    len(no_text), _listing(no_text))
    have_audio = {utt for _, utt in audio}
    no_audio = Counter(spk for utt, (_, spk) in texts.items() if utt not in have_audio)
    if no_audio:
        log.warning("%d transcript(s) of %d speaker(s) have no %saudio, left out: %s", sum(no_audio.values()),
                    len(no_audio), f"{mic} " if version.startswith("VCTK 0.92") else "", _listing(no_audio))
    sources = []
    for (speaker, utt), path in sorted(audio.items()):
        facts = info.get(speaker, Speaker(None, None))
        sources.append(Source(path=path, speaker=speaker, utterance=utt, text=texts.get(utt, (None,))[0],
                              sentence=utt.rsplit("_", 1)[-1], gender=facts.gender, accent=facts.accent))
    return version, sources


def find_audio(root: Path, mic: str = "mic1") -> tuple[str, dict[tuple[str, str], Path]]:
    """The layout's name and the audio files by (speaker, utterance id), e.g. ("p225", "p225_001")."""
    if not root.is_dir():
        raise UserError(f"VCTK folder {root} does not exist ({EXPECTED}; or pass --download)")
    resampled = sorted((d for d in root.glob("wav*") if re.fullmatch(r"wav\d+", d.name) and d.name != "wav48"),
                       key=lambda d: -int(d.name[3:]))
    for folder, pattern, version in [(root / "wav48_silence_trimmed", _NAME_092, f"VCTK 0.92 ({mic})"),
                                     (root / "wav48", _NAME_080, "VCTK 0.80"),
                                     *[(d, _NAME_080, f"VCTK 0.80 ({d.name})") for d in resampled]]:
        if not folder.is_dir():
            continue
        if pattern is _NAME_080 and mic != "mic1":
            raise UserError(f"{folder} is VCTK 0.80, recorded with one microphone; --mic {mic} needs VCTK 0.92")
        audio = {}
        for speaker_dir in sorted(d for d in folder.iterdir() if d.is_dir()):
            for path in speaker_dir.iterdir():
                m = pattern.fullmatch(path.name)
                if m and m["speaker"] == speaker_dir.name and m.groupdict().get("mic", mic) == mic:
                    audio[(m["speaker"], f"{m['speaker']}_{m['number']}")] = path
        if audio:
            return version, audio
    raise UserError(f"{root} is not a VCTK corpus: {EXPECTED}")


def read_transcripts(txt_dir: Path) -> dict[str, tuple[str, str]]:
    """(text, speaker) by utterance id, from txt/pXXX/pXXX_NNN.txt (empty when the folder is absent)."""
    texts = {}
    if txt_dir.is_dir():
        for path in sorted(txt_dir.glob("*/*.txt")):
            text = " ".join(path.read_text(encoding="utf-8", errors="replace").split())
            if text:
                texts[path.stem] = (text, path.parent.name)
    return texts


def read_speaker_info(path: Path) -> dict[str, Speaker]:
    """Gender and accent by speaker folder name, from either version's speaker-info.txt.

    0.80 gives bare numbers (``225  23  F    English    Southern  England``), 0.92 p-prefixed ids and a
    comment column (``p280  25  F    France   (mic2 files unavailable)``); region and comments are not kept.
    """
    speakers = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        fields = line.split()
        if len(fields) < 3 or fields[0].upper() == "ID" or fields[0].startswith((";", "#")):
            continue
        speaker = f"p{fields[0]}" if fields[0].isdigit() else fields[0]
        accent = fields[3] if len(fields) > 3 and not fields[3].startswith("(") else None
        speakers[speaker] = Speaker(gender=fields[2], accent=accent)
    return speakers


def download_vctk(root: Path, url: str = VCTK_URL, checksum: str | None = VCTK_CHECKSUM,
                  progress: bool = True) -> Path:
    """Fetch and unpack VCTK 0.92 into ``root`` (skipped when done before); the folder that holds the corpus."""
    archive = root / url.rsplit("/", 1)[-1]
    if not extracted(archive, root):
        root.mkdir(parents=True, exist_ok=True)
        download(url, archive, checksum, progress=progress)
        extract_zip(archive, root, progress=progress)
    inner = [d for d in root.iterdir() if d.is_dir() and (d / "wav48_silence_trimmed").is_dir()]
    return inner[0] if not (root / "wav48_silence_trimmed").is_dir() and len(inner) == 1 else root


def _listing(counts: Counter, most: int = 8) -> str:
    shown = " ".join(f"{spk} ({n})" for spk, n in sorted(counts.items())[:most])
    return shown + (f" and {len(counts) - most} more" if len(counts) > most else "")
