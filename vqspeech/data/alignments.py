"""Phone alignments: reading them, mapping their symbols to one phone set, one label per code frame.

Readers return the file's intervals as :class:`Segment` (seconds, in file order, symbols verbatim):

* flite ``-psdur`` (``.psdur``, the demo corpus): ``pau:0.184 dh:0.236 ...``, each phone's END time;
  a phone starts where the previous one ends (the first at 0);
* Praat TextGrid (``.TextGrid``), long or short text format, UTF-8 or UTF-16: the intervals of one
  interval tier (``phones`` by default); an empty interval has the symbol "" (unlabelled: silence);
* TIMIT ``.PHN``: ``start end phone`` in samples;
* HTK label files (``.lab``): ``start end label [...]`` in units of 100 ns.

:func:`write_textgrid` writes interval tiers as a long-format TextGrid that :func:`read_textgrid` reads back.

:class:`PhoneSet` maps raw symbols to the set phonemes are scored on, and :func:`check_alignment` lists
what makes a file unusable (intervals past the audio, overlapping or negative ones, unknown symbols).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vqspeech.errors import UserError
from vqspeech.files import write_atomic

END_TOLERANCE = 0.15  # seconds an alignment may run past its audio (flite's final pause does, by ~0.12 s)

# Lee & Hon (1989) folding of the 61 TIMIT symbols to 39 classes; "q" (glottal stop) is deleted.
TIMIT_FOLD: dict[str, str | None] = {
    "ao": "aa", "ax": "ah", "ax-h": "ah", "axr": "er", "hv": "hh", "ix": "ih", "el": "l", "em": "m",
    "en": "n", "nx": "n", "eng": "ng", "zh": "sh", "ux": "uw", "q": None,
    **{s: "sil" for s in ("pcl", "tcl", "kcl", "bcl", "dcl", "gcl", "h#", "pau", "epi")},
}
SILENCE_SYMBOLS = frozenset({"", "pau", "sil", "sp", "h#", "epi", "silence", "<sil>", "#"})
# ARPAbet (CMUdict, flite) and TIMIT symbols, stress stripped and lower-cased.
ENGLISH_PHONES = frozenset(
    "aa ae ah ao aw ax axr ay b ch d dh dx eh el em en er ey f g hh ih ix iy jh k l m n ng nx ow oy p r s "
    "sh t th uh uw ux v w wh y z zh ax-h bcl dcl gcl pcl tcl kcl eng hv q".split())


class AlignmentError(UserError):
    """An alignment file that cannot be read; the message names the file and the reason."""


@dataclass(frozen=True)
class Segment:
    """One labelled interval, in seconds."""

    start: float
    end: float
    phone: str


@dataclass(frozen=True)
class PhoneSet:
    """How raw symbols become the phones that are scored, applied in this order:
    lower-case (``lowercase``), ARPAbet stress digits dropped (``strip_stress``: ``AH0`` -> ``ah``),
    TIMIT 61 -> 39 folding (``fold_timit``; ``q`` is deleted: its frames get no label), and every symbol
    in ``silence`` becomes ``silence_label``. ``inventory`` lists the phones (after mapping, besides the
    silence label) a file may use; None accepts any. ``symbol in phone_set`` says whether a raw symbol is known.
    """

    lowercase: bool = True
    strip_stress: bool = True
    fold_timit: bool = False
    silence: frozenset[str] = SILENCE_SYMBOLS
    silence_label: str = "sil"
    inventory: frozenset[str] | None = ENGLISH_PHONES

    def map(self, symbol: str) -> str | None:
        """The phone a raw symbol stands for; None for a deleted symbol."""
        phone = symbol.strip()
        if self.lowercase:
            phone = phone.lower()
        if self.strip_stress:
            phone = re.sub(r"(?<=[A-Za-z])[012]$", "", phone)
        if self.fold_timit:
            phone = TIMIT_FOLD.get(phone.lower(), phone)
            if phone is None:
                return None
        return self.silence_label if phone.lower() in self.silence else phone

    def __contains__(self, symbol: object) -> bool:
        if not isinstance(symbol, str):
            return False
        phone = self.map(symbol)
        return (self.inventory is None or phone is None or phone == self.silence_label
                or phone in self.inventory or phone.lower() in self.inventory)


def read_psdur(path: str | Path) -> list[Segment]:
    """flite ``-psdur`` output: whitespace-separated ``phone:end_seconds`` tokens."""
    segments, start = [], 0.0
    for token in _read_text(path).split():
        phone, sep, end = token.rpartition(":")
        if not sep or not phone:
            raise AlignmentError(f"{path}: expected phone:end_time, got {token!r}")
        segments.append(Segment(start, _number(path, end), phone))
        start = segments[-1].end
    return segments


def read_timit_phn(path: str | Path, sample_rate: int = 16000) -> list[Segment]:
    """TIMIT ``.PHN``: one ``start end phone`` line per phone, times in samples at ``sample_rate``."""
    return [Segment(_number(path, a) / sample_rate, _number(path, b) / sample_rate, phone)
            for a, b, phone in _columns(path)]


def read_htk_lab(path: str | Path) -> list[Segment]:
    """HTK label file: ``start end label [score ...]`` lines, times in 100 ns units; MLF markers skipped."""
    return [Segment(_number(path, a) / 1e7, _number(path, b) / 1e7, label) for a, b, label in _columns(path)]


def read_textgrid(path: str | Path, tier: str = "phones") -> list[Segment]:
    """The intervals of interval tier ``tier`` (exact name, else case-insensitive) of a Praat TextGrid.

    Both text formats reduce to the same stream of values once keys (``xmin =``), headers
    (``item [1]:``) and punctuation are dropped, which is how this reader parses them.
    """
    stream = iter(_textgrid_values(_read_text(path)))
    try:
        if next(stream) != "ooTextFile" or next(stream) != "TextGrid":
            raise AlignmentError(f"{path}: not a Praat TextGrid text file")
        next(stream), next(stream)  # xmin, xmax of the grid
        n_tiers = 0 if next(stream) == "<absent>" else int(float(next(stream)))
        tiers: dict[str, list[Segment]] = {}
        for _ in range(n_tiers):
            kind, name = next(stream), next(stream)
            next(stream), next(stream)
            count = int(float(next(stream)))
            if kind == "IntervalTier":
                items = [(next(stream), next(stream), next(stream)) for _ in range(count)]
                tiers.setdefault(name, [Segment(float(a), float(b), label) for a, b, label in items])
            else:  # a TextTier: points (time, mark), skipped
                for _ in range(2 * count):
                    next(stream)
    except StopIteration:
        raise AlignmentError(f"{path}: the TextGrid ends early") from None
    except ValueError as exc:
        raise AlignmentError(f"{path}: malformed TextGrid ({exc})") from None
    matches = [name for name in tiers if name == tier] or [name for name in tiers if name.lower() == tier.lower()]
    if not matches:
        raise AlignmentError(f"{path}: no interval tier named {tier!r} (tiers: {', '.join(tiers) or 'none'})")
    return tiers[matches[0]]


def write_textgrid(path: str | Path, tiers: Mapping[str, Sequence[Segment]], duration: float,
                   overwrite: bool = False) -> Path:
    """Write interval tiers (name -> ordered, non-overlapping segments) as a long-format UTF-8 Praat TextGrid
    spanning 0..``duration`` s (or to the last segment's end, if later), whole or not at all (temp file + rename).

    Gaps, and the stretches before the first and after the last segment, become empty ("") intervals, since
    a tier must cover the grid. An existing file is an error unless ``overwrite``.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise UserError(f"{path} already exists; pass --overwrite to replace it")
    end = max([float(duration)] + [float(seg.end) for segments in tiers.values() for seg in segments])
    lines = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "xmin = 0", f"xmax = {end!r}",
             "tiers? <exists>", f"size = {len(tiers)}", "item []:"]
    for n, (name, segments) in enumerate(tiers.items(), 1):
        intervals, t = [], 0.0
        for seg in segments:
            if seg.start > t:
                intervals.append((t, float(seg.start), ""))
            intervals.append((float(seg.start), float(seg.end), seg.phone))
            t = float(seg.end)
        if t < end:
            intervals.append((t, end, ""))
        lines += [f"    item [{n}]:", '        class = "IntervalTier"', f'        name = "{_quote(name)}"',
                  "        xmin = 0", f"        xmax = {end!r}", f"        intervals: size = {len(intervals)}"]
        for i, (a, b, label) in enumerate(intervals, 1):
            lines += [f"        intervals [{i}]:", f"            xmin = {a!r}", f"            xmax = {b!r}",
                      f'            text = "{_quote(label)}"']
    return write_atomic(path, "\n".join(lines) + "\n")


def _quote(text: str) -> str:
    return text.replace('"', '""')


# a quoted string ("" escapes a quote) | a flag | a number | things to skip: item headers, keys, punctuation
_TEXTGRID_TOKEN = re.compile(r'"((?:[^"]|"")*)"|(<exists>|<absent>)|([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)'
                             r'|\[\s*\d*\s*\]|[A-Za-z_]\w*\??|\S')


def _textgrid_values(text: str) -> list[str]:
    values = []
    for match in _TEXTGRID_TOKEN.finditer(text):
        string, flag, number = match.groups()
        if string is not None:
            values.append(string.replace('""', '"'))
        elif flag or number:
            values.append(flag or number)
    return values


def read_alignment(path: str | Path, sample_rate: int = 16000, tier: str = "phones") -> list[Segment]:
    """Read an alignment by its suffix: .psdur, .TextGrid, .PHN/.phn (samples at ``sample_rate``), .lab."""
    suffix = Path(path).suffix.lower()
    if suffix == ".psdur":
        return read_psdur(path)
    if suffix == ".textgrid":
        return read_textgrid(path, tier)
    if suffix == ".phn":
        return read_timit_phn(path, sample_rate)
    if suffix == ".lab":
        return read_htk_lab(path)
    raise AlignmentError(f"{path}: unknown alignment format {suffix!r} (expected .psdur, .TextGrid, .PHN or .lab)")


def _read_text(path: str | Path) -> str:
    """The file's text: UTF-16 with a byte-order mark (as Praat writes non-ASCII TextGrids), else UTF-8."""
    try:
        raw = Path(path).read_bytes()
        return raw.decode("utf-16") if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else raw.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise AlignmentError(f"{path}: cannot read ({exc})") from None


def _columns(path: str | Path) -> list[tuple[str, str, str]]:
    rows = []
    for i, line in enumerate(_read_text(path).splitlines(), 1):
        fields = line.split()
        if not fields or fields[0] in ("#!MLF!#", ".", "///") or fields[0].startswith('"'):
            continue
        if len(fields) < 3:
            raise AlignmentError(f"{path}: line {i} should read 'start end label', got {line.strip()!r}")
        rows.append((fields[0], fields[1], fields[2]))
    return rows


def _number(path: str | Path, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise AlignmentError(f"{path}: {text!r} is not a number") from None
    if not np.isfinite(value):
        raise AlignmentError(f"{path}: {text!r} is not a finite time")
    return value


def frame_labels(segments: Sequence[Segment], n_frames: int, frame_rate: float,
                 phone_set: PhoneSet | None = None) -> list[str | None]:
    """One label per frame: the (mapped) phone of the segment covering the frame's centre (i + ½) / frame_rate.

    A frame no segment covers, or whose phone the phone set deletes, gets None. A centre on a boundary
    belongs to the segment that starts there.
    """
    ordered = sorted(segments, key=lambda s: (s.start, s.end))
    starts = np.array([s.start for s in ordered])
    centres = (np.arange(n_frames) + 0.5) / frame_rate
    index = np.searchsorted(starts, centres, side="right") - 1
    labels: list[str | None] = []
    for t, i in zip(centres, index):
        if i < 0 or t >= ordered[i].end:
            labels.append(None)
        else:
            labels.append(phone_set.map(ordered[i].phone) if phone_set is not None else ordered[i].phone)
    return labels


def check_alignment(segments: Sequence[Segment], audio_seconds: float,
                    known_phones: Container[str] | None = None, tolerance: float = END_TOLERANCE) -> list[str]:
    """What makes this alignment unusable with its audio; empty when nothing does.

    Faults: no segments; a segment starting before 0 or ending before it starts; a segment starting before
    the previous one ends (overlap); the last end more than ``tolerance`` seconds past the audio; symbols
    not in ``known_phones`` (a :class:`PhoneSet` works: it knows which raw symbols it maps).
    """
    if not segments:
        return ["no phone segments"]
    problems = []
    previous_end = 0.0
    for i, seg in enumerate(segments, 1):
        if seg.start < 0 or seg.end < seg.start:
            problems.append(f"segment {i} ({seg.phone!r}) is negative: {seg.start:.3f}-{seg.end:.3f} s")
        elif seg.start < previous_end - 1e-6:
            problems.append(f"segment {i} ({seg.phone!r}) overlaps the previous one: starts at {seg.start:.3f} s, "
                            f"before {previous_end:.3f} s")
        previous_end = max(previous_end, seg.end)
    end = max(seg.end for seg in segments)
    if end > audio_seconds + tolerance:
        problems.append(f"ends at {end:.3f} s, past the audio ({audio_seconds:.3f} s)")
    if known_phones is not None:
        unknown = Counter(seg.phone for seg in segments if seg.phone not in known_phones)
        problems += [f"unknown phone symbol {phone!r} ({n}×)" for phone, n in sorted(unknown.items())]
    return problems
