"""Preparing a recorded corpus: resample once into a cache, trim silence, split, write the manifest.

The corpus readers (:mod:`vqspeech.data.vctk`, :mod:`vqspeech.data.librispeech`) only find files: each
turns its layout into :class:`Source` rows. :func:`prepare_corpus` does the rest, the same for every
corpus. Layout of the output folder::

    out_dir/<speaker>/<utterance>.wav   16-bit PCM at the model rate, silence trimmed (the cache)
    out_dir/manifest.jsonl              {"path": "p225/p225_001.wav", "speaker": "p225", "utterance":
                                         "p225_001", "duration": 1.92, "text": "Please call Stella.",
                                         "gender": "F", "accent": "English", "split": "valid"}
    out_dir/prepare.json                the settings the cache was made with (sample rate, trimming, ...)

A re-run reuses every cached file and rewrites only the manifest, so changing the split policy is cheap;
changing a setting that shapes the audio is refused (choose another folder or delete this one).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import zlib
from collections import Counter, defaultdict
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from vqspeech.data.audio import AudioError, load_audio, save_audio
from vqspeech.data.corpus import HELDOUT
from vqspeech.errors import UserError
from vqspeech.files import refuse_foreign_folder, remove_stale_temps, write_atomic

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Source:
    """One utterance of a recorded corpus, as its reader found it."""

    path: Path                    # the original audio file, any format and rate
    speaker: str
    utterance: str                # unique in the corpus; the cached file is <speaker>/<utterance>.wav
    text: str | None = None
    sentence: str | None = None   # the same for the same prompt read by several speakers (split key without text)
    gender: str | None = None
    accent: str | None = None


@dataclass(frozen=True)
class SplitPolicy:
    """Held-out sentences per speaker, and whole held-out speakers.

    Sentences, not files, are held out: each sentence (its normalised text, else ``Source.sentence``) gets one
    split for all the speakers who read it, so a parallel corpus holds the same sentences out for every voice
    and no held-out sentence is heard in training. Sentences read by more speakers are held out first, then in
    a stable hash order; a speaker gets ``valid_per_speaker`` valid and ``test_per_speaker`` test utterances
    (exactly, on a parallel corpus; at least, when a sentence it shares was needed by another speaker).
    Held-out speakers (``heldout_speakers``, plus ``n_heldout_speakers`` more picked by a stable hash of
    their name) put all their utterances in split ``heldout`` and stay out of the speaker table.
    ``all_heldout`` holds out every speaker: an evaluation-only corpus of new voices, for scoring a run
    trained elsewhere (``evaluate-conversion --unseen --data-root``); nothing in it can be trained on.
    """

    valid_per_speaker: int = 3
    test_per_speaker: int = 3
    heldout_speakers: tuple[str, ...] = ()
    n_heldout_speakers: int = 0
    all_heldout: bool = False

    def __post_init__(self):
        if min(self.valid_per_speaker, self.test_per_speaker, self.n_heldout_speakers) < 0:
            raise UserError(f"held-out counts must not be negative: --valid {self.valid_per_speaker}, --test "
                            f"{self.test_per_speaker}, --n-heldout-speakers {self.n_heldout_speakers}")


@dataclass
class PreparedCorpus:
    """What :func:`prepare_corpus` built (counts are utterances unless named otherwise)."""

    name: str                     # e.g. "VCTK 0.92 (mic1)"
    root: Path
    manifest: Path
    speakers: int
    utterances: int               # rows in the manifest
    made: int                     # resampled in this call
    reused: int                   # already in the cache
    corrupt: int                  # unreadable, or silent: named in a warning and left out
    missing_text: int             # in the manifest without a transcript
    seconds: float                # total audio in the manifest
    splits: dict[str, int] = field(default_factory=dict)
    heldout_speakers: list[str] = field(default_factory=list)
    note: str | None = None       # one line on a split made differently (one utterance per speaker)

    def summary(self) -> str:
        splits = ", ".join(f"{n} {name}" for name, n in self.splits.items())
        held = f" (held out: {' '.join(self.heldout_speakers)})" if self.heldout_speakers else ""
        return (f"{self.name} -> {self.root}: {self.speakers} speakers{held}, {self.utterances} utterances "
                f"({self.made} made, {self.reused} reused; {splits}), {self.corrupt} skipped as corrupt, "
                f"{self.missing_text} without text, {self.seconds / 60:.1f} min of audio; manifest {self.manifest}"
                + (f"\n{self.note}" if self.note else ""))


def corpus_options(corpus: str, **given) -> dict:
    """Keyword arguments for ``prepare_<corpus>``: configs/data/<corpus>.yaml, then the ``given`` values that are
    not None (``no_trim=True`` sets trim_db to None). Keys: out_dir, manifest, sample_rate, trim_db, policy, ...
    """
    from omegaconf import OmegaConf

    from vqspeech.config import configs_dir

    cfg = OmegaConf.to_container(OmegaConf.load(configs_dir() / "data" / f"{corpus}.yaml"))
    options = {"out_dir": cfg["root"], "manifest": cfg["manifest"], "sample_rate": cfg["sample_rate"], **cfg["prepare"]}
    no_trim = given.pop("no_trim", False)
    options.update({key: value for key, value in given.items() if value is not None})
    if no_trim:
        options["trim_db"] = None
    policy = {key: options.pop(key) for key in ("valid_per_speaker", "test_per_speaker", "n_heldout_speakers")}
    policy["all_heldout"] = bool(options.pop("all_heldout", False))
    options["policy"] = SplitPolicy(heldout_speakers=tuple(options.pop("heldout_speakers")), **policy)
    return options


def prepare_corpus(name: str, sources: Sequence[Source], out_dir: str | os.PathLike, *, sample_rate: int,
                   trim_db: float | None, policy: SplitPolicy, settings: dict | None = None,
                   manifest: str = "manifest.jsonl", workers: int = 2, progress: bool = True) -> PreparedCorpus:
    """Resample every source into ``out_dir`` (reusing cached files), split, and write the manifest.

    Args:
        trim_db: cut leading and trailing audio quieter than this many dB below the utterance's peak;
            None keeps the audio whole.
        settings: what else shaped the audio (corpus, microphone), stored beside the cache and checked on re-runs.
    Raises:
        UserError: no sources; the cache was made with other settings; a bad split policy; nothing readable.
    """
    if not sources:
        raise UserError(f"{name}: no utterances found")
    if workers < 1 or sample_rate <= 0 or (trim_db is not None and trim_db <= 0):
        raise UserError(f"workers ({workers}), sample rate ({sample_rate}) and trim dB ({trim_db}) must be positive")
    root = Path(out_dir)
    if root.exists() and not root.is_dir():
        raise UserError(f"--out {root} is a file, not a folder; choose another --out")
    root.mkdir(parents=True, exist_ok=True)
    _check_settings(root, {**(settings or {}), "sample_rate": sample_rate, "trim_db": trim_db})
    if remove_stale_temps(root):  # an interrupted run's half-written files: never read, now gone
        log.info("%s: removed the temp files of an interrupted run", root)
    _heldout_speakers(sorted({s.speaker for s in sources}), policy, _genders(sources))  # a bad name fails early
    policy, auto = _auto_heldout(sources, policy)

    durations, errors, made = _fill_cache(root, sources, sample_rate, trim_db, workers, progress)
    for error in errors:
        log.warning("%s; skipped", error)
    if errors:
        log.warning("%d corrupt or silent file(s) skipped (named above)", len(errors))
    usable = [s for s in sources if s.utterance in durations]
    if not usable:
        raise UserError(f"{name}: none of the {len(sources)} audio files could be read")
    splits, heldout = assign_splits(usable, policy)
    rows = [{"path": _cached(s), "speaker": s.speaker, "utterance": s.utterance,
             "duration": round(durations[s.utterance], 3), "text": s.text, "gender": s.gender, "accent": s.accent,
             "split": splits[s.utterance]} for s in usable]
    rows, note = split_single_utterances(rows, policy, heldout)
    if auto and note:
        note += (f"; the {len(heldout)} held-out speakers were chosen automatically (every speaker has one "
                 f"utterance; --n-heldout-speakers N to choose how many)")
    manifest_path = root / manifest
    write_atomic(manifest_path, "".join(json.dumps(row) + "\n" for row in rows))
    counts = Counter(row["split"] for row in rows)
    return PreparedCorpus(
        name=name, root=root, manifest=manifest_path, speakers=len({row["speaker"] for row in rows}),
        utterances=len(rows), made=made, reused=len(usable) - made, corrupt=len(errors),
        missing_text=sum(row["text"] is None for row in rows), seconds=sum(durations.values()),
        splits={k: counts[k] for k in ("train", "valid", "test", HELDOUT) if counts[k]}, heldout_speakers=heldout,
        note=note)


AUTO_HELDOUT = 20       # whole speakers held out when every speaker has one utterance and none is held out


def _auto_heldout(sources: Sequence[Source], policy: SplitPolicy) -> tuple[SplitPolicy, bool]:
    """A corpus of one utterance per speaker can test no voice on held-out sentences, only on held-out
    speakers: when the policy holds none out and there are at least 2 × AUTO_HELDOUT speakers, hold out
    AUTO_HELDOUT (balanced by gender when it is known)."""
    per_speaker = Counter(s.speaker for s in sources)
    if (policy.heldout_speakers or policy.n_heldout_speakers or max(per_speaker.values()) > 1
            or len(per_speaker) < 2 * AUTO_HELDOUT):
        return policy, False
    return replace(policy, n_heldout_speakers=AUTO_HELDOUT), True


SEGMENT_SECONDS = 3.0   # validation / test audio cut from the end of a single-utterance speaker's recording
SEGMENT_SPEAKERS = 10   # speakers per split who give it such a segment


def split_single_utterances(rows: list[dict], policy: SplitPolicy, heldout: Sequence[str]) -> tuple[list[dict], str | None]:
    """Validation and test audio for a corpus whose speakers have one utterance each (LibriSpeech excerpts).

    Such a speaker's only utterance stays in training (:func:`assign_splits` asks none of it). When that
    leaves the valid (or test) split empty although the policy asks for it, the last SEGMENT_SECONDS of
    SEGMENT_SPEAKERS training speakers' utterances (picked by a stable hash, each speaker used once) become
    that split, as manifest rows with ``start``, and their training rows end there (``end``): no audio is in
    two splits. Returns the rows and the one line that says what was done (None when nothing was).
    """
    wanted = [name for name, n in (("valid", policy.valid_per_speaker), ("test", policy.test_per_speaker))
              if n > 0 and not any(r["split"] == name for r in rows)]
    per_speaker = Counter(r["speaker"] for r in rows)
    alone = [r for r in rows if r["split"] == "train" and per_speaker[r["speaker"]] == 1]
    single = [r for r in alone if r["duration"] >= 3 * SEGMENT_SECONDS]  # long enough to lose 3 s
    if not wanted or not single:
        return rows, None
    single.sort(key=lambda r: (_stable_hash(r["speaker"]), r["speaker"]))
    out, made = list(rows), {}
    for i, name in enumerate(wanted):
        chosen = single[i * SEGMENT_SPEAKERS:(i + 1) * SEGMENT_SPEAKERS]
        for row in chosen:
            cut = round(row["duration"] - SEGMENT_SECONDS, 3)
            row.update(end=cut, duration=cut)
            out.append({**row, "utterance": f"{row['utterance']}_{name}", "start": cut, "end": None,
                        "duration": SEGMENT_SECONDS, "split": name})
        made[name] = len(chosen)
    parts = " and ".join(f"{name} from {n}" for name, n in made.items())
    held = f"{len(heldout)} whole speakers are held out (split heldout); " if heldout else ""
    return out, (f"{len(alone)} training speakers have a single utterance: {held}{parts} of them is the last "
                 f"{SEGMENT_SECONDS:g} s of that utterance (manifest start/end), the rest trains")


def assign_splits(sources: Sequence[Source], policy: SplitPolicy) -> tuple[dict[str, str], list[str]]:
    """Split of every utterance id, and the held-out speakers (see :class:`SplitPolicy`). A speaker with a
    single utterance gives none to valid or test (see :func:`split_single_utterances`)."""
    speakers = sorted({s.speaker for s in sources})
    heldout = _heldout_speakers(speakers, policy, _genders(sources))
    single = {spk for spk, n in Counter(s.speaker for s in sources).items() if n == 1}
    readers: dict[str, set[str]] = defaultdict(set)
    for s in sources:
        if s.speaker not in heldout:
            readers[sentence_key(s)].add(s.speaker)
    need = {"valid": Counter({spk: 0 if spk in single else policy.valid_per_speaker for spk in speakers}),
            "test": Counter({spk: 0 if spk in single else policy.test_per_speaker for spk in speakers})}
    split_of_sentence = {}
    for key in sorted(readers, key=lambda k: (-len(readers[k]), _stable_hash(k), k)):
        split = next((name for name in ("valid", "test") if any(need[name][spk] > 0 for spk in readers[key])),
                     "train")
        if split != "train":
            need[split].subtract(readers[key])
        split_of_sentence[key] = split
    splits = {s.utterance: HELDOUT if s.speaker in heldout else split_of_sentence[sentence_key(s)] for s in sources}
    in_training = {s.speaker for s in sources if splits[s.utterance] == "train"}
    starved = [spk for spk in speakers if spk not in heldout and spk not in in_training]
    if not in_training and not policy.all_heldout:
        raise UserError(f"no utterance is left for training: all {len(sources)} are held out for validation, "
                        "test or held-out speakers; lower --valid/--test or hold out fewer speakers (or, for an "
                        "evaluation-only corpus of new voices, pass --all-heldout)")
    if starved:
        log.warning("%d speaker(s) have every utterance held out and so no training audio: %s (lower the held-out "
                    "counts)", len(starved), " ".join(starved))
    return splits, sorted(heldout)


def sentence_key(source: Source) -> str:
    """What makes two recordings 'the same sentence': the text without case and punctuation, else the id."""
    if source.text:
        return " ".join(re.sub(r"[^\w\s']", " ", source.text.lower()).split())
    return f"#{source.sentence or source.utterance}"


def _genders(sources: Sequence[Source]) -> dict[str, str]:
    return {s.speaker: s.gender for s in sources if s.gender}


def _heldout_speakers(speakers: list[str], policy: SplitPolicy, genders: dict[str, str] | None = None) -> set[str]:
    """The named held-out speakers and n_heldout_speakers more in a stable hash order; when every speaker's
    gender is known, the extra ones alternate F and M (10 F and 10 M for 20), as far as each has speakers."""
    unknown = sorted(set(policy.heldout_speakers) - set(speakers))
    if unknown:
        raise UserError(f"held-out speaker(s) not in the corpus: {' '.join(unknown)}")
    heldout = set(policy.heldout_speakers)
    rest = sorted((spk for spk in speakers if spk not in heldout), key=lambda spk: (_stable_hash(spk), spk))
    genders = genders or {}
    if rest and all(spk in genders for spk in rest):
        queues = [[spk for spk in rest if genders[spk] == g] for g in sorted({genders[spk] for spk in rest})]
        rest = [spk for group in itertools.zip_longest(*queues) for spk in group if spk is not None]
    if policy.all_heldout:
        return set(speakers)
    heldout.update(rest[: policy.n_heldout_speakers])
    if len(heldout) >= len(speakers):
        raise UserError(f"holding out {len(heldout)} of {len(speakers)} speakers leaves none to train on; "
                        f"--all-heldout prepares an evaluation-only corpus of new voices")
    return heldout


def _stable_hash(text: str) -> int:
    return zlib.crc32(text.encode())


def _cached(source: Source) -> str:
    return f"{source.speaker}/{source.utterance}.wav"


def _check_settings(root: Path, settings: dict) -> None:
    path = root / "prepare.json"
    if path.is_file():
        try:
            before = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UserError(f"{path} is damaged ({exc}); choose another --out, or delete {root} to prepare "
                            f"it again") from None
        changed = sorted(k for k in settings.keys() | before.keys() if before.get(k) != settings.get(k))
        if changed:
            detail = ", ".join(f"{k} {before.get(k)!r} -> {settings.get(k)!r}" for k in changed)
            raise UserError(f"{root} was prepared with other settings ({detail}); choose another --out or delete it")
    else:
        refuse_foreign_folder(root, path.name)
        write_atomic(path, json.dumps(settings, indent=1) + "\n")


def _fill_cache(root: Path, sources: Sequence[Source], sample_rate: int, trim_db: float | None, workers: int,
                progress: bool) -> tuple[dict[str, float], list[str], int]:
    """Durations (s) of the cached files by utterance id, the errors of the sources left out, how many were made."""
    durations, errors, todo = {}, [], []
    for s in sources:
        cached = root / _cached(s)
        try:
            info = sf.info(str(cached)) if cached.is_file() else None
        except Exception:  # a damaged cache file (soundfile raises several types) is made again
            info = None
        if info is not None and info.frames:
            durations[s.utterance] = info.frames / info.samplerate
        else:
            todo.append((s.utterance, str(s.path), str(cached), sample_rate, trim_db))
    if not todo:
        return durations, errors, 0
    import librosa  # noqa: F401  (load_audio resamples with it: imported once here, forked workers inherit it)

    with tqdm(total=len(sources), initial=len(sources) - len(todo), desc="resample", unit="file",
              disable=not progress) as bar:
        def done(utterance: str, seconds: float | None, error: str | None) -> None:
            if error is None:
                durations[utterance] = seconds
            else:
                errors.append(error)
            bar.update(1)

        if workers == 1 or len(todo) == 1:
            for job in todo:
                done(job[0], *_make(*job[1:]))
        else:
            pool = ProcessPoolExecutor(max_workers=workers)
            try:
                futures = {pool.submit(_make, *job[1:]): job[0] for job in todo}
                for future in as_completed(futures):
                    done(futures[future], *future.result())
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
    return durations, sorted(errors), len(todo) - len(errors)


def _make(source: str, cached: str, sample_rate: int, trim_db: float | None) -> tuple[float | None, str | None]:
    """Resample (and trim) one file into the cache: (seconds, None), or (None, why it was left out)."""
    try:
        wav = load_audio(source, sample_rate)
    except AudioError as exc:
        return None, str(exc)
    if trim_db is not None:
        wav = trim_silence(wav, sample_rate, trim_db)
    if wav.size == 0 or not np.any(wav):
        return None, f"{source}: nothing but silence"
    save_audio(cached, wav, sample_rate, overwrite=True)
    return len(wav) / sample_rate, None


def trim_silence(wav: np.ndarray, sample_rate: int, top_db: float) -> np.ndarray:
    """Cut leading and trailing audio whose power is more than ``top_db`` below the loudest frame's.

    Frames of 25 ms every 10 ms; the kept audio runs from the first loud frame's start to the last one's end.
    wav: [T] -> [T'] (empty when every frame is silent).
    """
    frame, hop = round(0.025 * sample_rate), round(0.010 * sample_rate)
    padded = np.pad(wav, (0, frame + (-(len(wav) - frame) % hop)))  # whole frames up to the last sample
    power = np.mean(np.lib.stride_tricks.sliding_window_view(padded, frame)[::hop].astype(np.float64) ** 2, axis=1)
    loud = np.flatnonzero(power > power.max() * 10 ** (-top_db / 10))
    if loud.size == 0:
        return wav[:0]
    return wav[loud[0] * hop: loud[-1] * hop + frame]
