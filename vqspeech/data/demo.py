"""The offline demo corpus: a small parallel multi-speaker corpus synthesised with flite.

Every voice reads the same sentences, generated from a small built-in grammar, so the corpus is
parallel and splits are made by sentence. Each utterance is a 16 kHz wav plus flite's phone end
times (``-psdur``), kept verbatim as a ``.psdur`` file for phoneme-probing. Layout::

    out_dir/sentences.txt        s0001<TAB>the old farmer carried a basket near the river.
    out_dir/manifest.jsonl       {"path": "slt/s0001.wav", "speaker": "slt", "utterance": "s0001",
                                  "text": ..., "split": "train", "alignment": "slt/s0001.psdur"}
    out_dir/<voice>/sNNNN.wav    16-bit PCM, 16 kHz, mono
    out_dir/<voice>/sNNNN.psdur  "pau:0.184 dh:0.236 ..." (phone end times in seconds)
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import soundfile as sf
from tqdm import tqdm

from vqspeech.errors import UserError
from vqspeech.files import atomic_target, refuse_foreign_folder, write_atomic

DEMO_VOICES: tuple[str, ...] = ("kal16", "awb", "rms", "slt")

# The grammar. Word lists are disjoint; every verb is a past-tense transitive verb, so any
# subject/object combination is grammatical (if not always sensible).
_WORDS: dict[str, tuple[str, ...]] = {
    "D": ("the", "a", "every", "that", "this", "one", "my", "your", "our", "their", "her", "his", "each"),
    "A": ("old", "young", "quiet", "bright", "heavy", "small", "tiny", "huge", "golden", "purple", "green",
          "yellow", "frozen", "sleepy", "angry", "happy", "clever", "gentle", "noisy", "shiny", "broken",
          "wooden", "curious", "ancient", "careful", "thirsty", "hungry", "smooth", "rough", "dusty",
          "muddy", "fragile", "cheerful", "famous", "strange", "silver", "warm", "chilly"),
    "N": ("dog", "cat", "farmer", "teacher", "child", "pilot", "doctor", "baker", "sailor", "king",
          "queen", "horse", "rabbit", "turtle", "giraffe", "monkey", "penguin", "wizard", "robot",
          "engineer", "neighbor", "student", "singer", "painter", "judge", "fox", "owl", "eagle",
          "elephant", "octopus", "uncle", "artist", "fisherman", "captain", "driver", "nurse",
          "squirrel", "zebra", "dragon", "clown", "chef", "hunter", "poet", "thief", "goose", "lion"),
    "O": ("letter", "basket", "violin", "pumpkin", "lantern", "bicycle", "sandwich", "umbrella",
          "jacket", "bottle", "candle", "hammer", "blanket", "ticket", "mirror", "kettle", "wallet",
          "feather", "pebble", "window", "package", "orange", "apple", "pillow", "trumpet", "compass",
          "shovel", "puzzle", "necklace", "camera", "pencil", "cushion", "teapot", "rope", "ladder",
          "map", "coin", "shoe", "spoon", "box"),
    "V": ("found", "carried", "painted", "dropped", "lifted", "washed", "hid", "chased", "bought",
          "sold", "borrowed", "threw", "caught", "opened", "repaired", "pushed", "pulled", "stole",
          "watched", "kicked", "polished", "wrapped", "dragged", "tossed", "grabbed", "moved", "fixed",
          "cleaned", "measured", "shared", "brought", "forgot", "juggled", "touched", "weighed"),
    "R": ("slowly", "quickly", "quietly", "carefully", "gladly", "proudly", "suddenly", "gently",
          "loudly", "nervously", "happily", "calmly", "eagerly", "secretly", "boldly", "politely",
          "rarely", "twice", "yesterday", "again"),
    "P": ("near the river", "under the bridge", "behind the barn", "across the valley",
          "inside the kitchen", "beside the fountain", "after the storm", "before midnight",
          "during the parade", "on the roof", "in the garden", "at the market", "by the lake",
          "through the forest", "along the shore", "over the hill", "below the castle",
          "around the corner", "past the church", "toward the harbor", "beyond the mountains",
          "within the cave", "outside the theater", "among the pines", "in the morning", "at noon"),
}
MAX_SENTENCES = 20_000  # per voice; far above the demo's 240, and a bound on the sentence search
# Templates: one symbol per slot above; any other token is a literal word. 5 to 11 words each.
_TEMPLATES: tuple[str, ...] = (
    "D N V D O",
    "D A N V D O P",
    "D N R V D A O",
    "P D N V D O",
    "D A N V D A O R",
    "D N V D O R P",
    "D N and D N V D O P",
    "D N V D O and D O",
    "D A N V D O with D A O",
    "R D N V D O P",
)


def _capacity() -> int:
    """Upper bound on the number of distinct sentences the grammar produces."""
    return sum(math.prod(len(_WORDS.get(t, ("",))) for t in tpl.split()) for tpl in _TEMPLATES)


def _fix_articles(words: list[str]) -> list[str]:
    """'a' before a vowel becomes 'an' (the word lists avoid 'u' read as /ju/ and silent 'h')."""
    return ["an" if w == "a" and i + 1 < len(words) and words[i + 1][0] in "aeiou" else w
            for i, w in enumerate(words)]


def make_sentences(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct English sentences from the built-in grammar, deterministic in ``seed``.

    Lower case, 5-11 words and a final period each (about 2-3 s of flite speech). The first ``k``
    sentences for ``n`` are the sentences for ``n = k`` with the same seed.

    Raises:
        ValueError: ``n`` is negative or more than the grammar can produce.
    """
    if n < 0 or n > min(_capacity(), MAX_SENTENCES):
        raise ValueError(f"cannot make {n} distinct sentences: at most {min(_capacity(), MAX_SENTENCES)} (the "
                         "grammar's reach, capped to keep the search bounded)")
    rng = random.Random(seed)
    sentences: list[str] = []
    seen: set[str] = set()
    for _ in range(50 * n + 10_000):  # bounded: the capacity is an upper bound, not exact
        if len(sentences) == n:
            break
        template = rng.choice(_TEMPLATES).split()
        words = " ".join(rng.choice(_WORDS[t]) if t in _WORDS else t for t in template).split()
        sentence = " ".join(_fix_articles(words)) + "."
        if sentence not in seen:
            seen.add(sentence)
            sentences.append(sentence)
    if len(sentences) < n:
        raise ValueError(f"could only make {len(sentences)} distinct sentences, not {n}")
    return sentences


@dataclass
class DemoCorpus:
    """What :func:`prepare_demo` built."""

    root: Path
    manifest: Path
    n_utterances: int  # total written (all voices)
    n_created: int  # synthesised in this call
    n_skipped: int  # already present (re-run skips finished work)
    seconds: float  # total audio duration in the corpus


def _find_flite(voices: Sequence[str]) -> str:
    """Path of the flite binary, after checking that it knows every voice in ``voices``."""
    flite = shutil.which("flite")
    if flite is None:
        raise UserError("flite not found: install the Debian package 'flite' (apt-get install flite)")
    listing = subprocess.run([flite, "-lv"], capture_output=True, text=True).stdout
    known = listing.split(":", 1)[-1].split()
    unknown = [v for v in voices if v not in known]
    if unknown:
        raise UserError(f"flite has no voice {', '.join(unknown)}; known voices: {' '.join(known)}")
    return flite


def _synthesise(flite: str, voice: str, utt: str, text: str, wav: Path, psdur: Path) -> None:
    """Run flite once; write ``psdur`` (its stdout, verbatim) and then ``wav``, each via a temp name."""
    try:
        with atomic_target(wav) as tmp_wav:
            proc = subprocess.run([flite, "-voice", voice, "-psdur", "-t", text, "-o", tmp_wav],
                                  capture_output=True, text=True, timeout=120)
            if proc.returncode != 0 or not proc.stdout.strip() or os.path.getsize(tmp_wav) == 0:
                detail = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
                raise UserError(f"flite failed for voice {voice}, sentence {utt}: {detail}")
            write_atomic(psdur, proc.stdout)
    except subprocess.TimeoutExpired:
        raise UserError(f"flite timed out for voice {voice}, sentence {utt}") from None


def _split(index: int, n_sentences: int, n_valid: int, n_test: int) -> str:
    """Split of sentence ``index``: the last n_valid + n_test sentences are valid, then test."""
    first_held_out = n_sentences - n_valid - n_test
    if index < first_held_out:
        return "train"
    return "valid" if index < first_held_out + n_valid else "test"


def prepare_demo(out_dir: str | os.PathLike, n_sentences: int = 240, n_valid: int = 10, n_test: int = 10,
                 voices: Sequence[str] = DEMO_VOICES, seed: int = 0, workers: int = 2,
                 progress: bool = True) -> DemoCorpus:
    """Synthesise the parallel demo corpus into ``out_dir`` with flite, or finish an interrupted one.

    Utterances whose wav and psdur both exist are skipped, so re-running is cheap; flite is only
    needed when something is left to synthesise. Writes ``sentences.txt`` and ``manifest.jsonl``
    (see the module docstring).

    Raises:
        UserError: bad arguments; ``out_dir`` holds a different demo corpus; flite is missing,
            lacks a voice, or fails on an utterance.
    """
    if n_valid < 0 or n_test < 0 or n_valid + n_test >= n_sentences:
        raise UserError(f"n_valid ({n_valid}) + n_test ({n_test}) must leave training sentences "
                        f"out of n_sentences ({n_sentences})")
    if not voices or len(set(voices)) != len(voices):
        raise UserError(f"voices must be distinct and not empty, got {list(voices)}")
    if workers < 1:
        raise UserError(f"workers must be at least 1, got {workers}")
    try:
        texts = make_sentences(n_sentences, seed)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    root = Path(out_dir)
    if root.exists() and not root.is_dir():
        raise UserError(f"--out {root} is a file, not a folder; choose another --out")
    ids = [f"s{i + 1:04d}" for i in range(n_sentences)]
    listing = "".join(f"{utt}\t{text}\n" for utt, text in zip(ids, texts))
    sentences_txt = root / "sentences.txt"
    refuse_foreign_folder(root, sentences_txt.name)
    if sentences_txt.is_file() and sentences_txt.read_text() != listing:
        raise UserError(f"{root} holds a different demo corpus (other seed or number of sentences); "
                        "choose another folder or delete it")
    write_atomic(sentences_txt, listing)  # first: it marks the folder as a demo corpus for a re-run
    for voice in voices:
        (root / voice).mkdir(parents=True, exist_ok=True)

    rows, todo = [], []
    for voice in voices:
        for i, (utt, text) in enumerate(zip(ids, texts)):
            wav, psdur = root / voice / f"{utt}.wav", root / voice / f"{utt}.psdur"
            rows.append({"path": f"{voice}/{utt}.wav", "speaker": voice, "utterance": utt, "text": text,
                         "split": _split(i, n_sentences, n_valid, n_test), "alignment": f"{voice}/{utt}.psdur"})
            if not (wav.is_file() and psdur.is_file()):
                todo.append((voice, utt, text, wav, psdur))

    if todo:
        flite = _find_flite(voices)
        with tqdm(total=len(rows), initial=len(rows) - len(todo), desc="flite", unit="utt",
                  disable=not progress) as bar:
            pool = ThreadPoolExecutor(max_workers=workers)
            try:
                for future in as_completed([pool.submit(_synthesise, flite, *job) for job in todo]):
                    future.result()
                    bar.update(1)
            finally:
                pool.shutdown(wait=True, cancel_futures=True)

    write_atomic(root / "manifest.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
    seconds = sum(sf.info(str(root / row["path"])).duration for row in rows)
    return DemoCorpus(root=root, manifest=root / "manifest.jsonl", n_utterances=len(rows),
                      n_created=len(todo), n_skipped=len(rows) - len(todo), seconds=seconds)
