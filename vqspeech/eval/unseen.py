"""Unseen voices, any to any: held-out speakers (split ``heldout``, never in training) converted to each other,
each target given only by reference audio.

Every held-out speaker gives two disjoint pieces of real audio: its first two utterances, or, with one
utterance, the utterance's two halves. **A** is what is converted (the source content) and what identifies
the speaker; **B** is the speaker's reference, the only audio the model is given of that voice. So the
audio that identifies a target is never the audio it was conditioned on.

Each source is reconstructed (its own reference B) and converted to ``targets_per_source`` other held-out
speakers (the next ones in name order, cyclically), all generated in one batch. A model with a speaker
table cannot take a reference: it speaks in the training voice nearest to the reference (by mean d-vector
of the training audio), which is all such a model can do for a new voice.

Three questions:
  * **whose voice?** two judges. The nearest Resemblyzer centroid among the N held-out voices (centroids:
    the d-vectors of the A pieces), and, since Resemblyzer is also the default conditioning, a second judge
    the conditioning never saw: the speaker classifier of :mod:`vqspeech.eval.speaker_classifier`, trained
    on 1.5 s chunks of the A pieces. The share identified as the target is reported with chance (1/N)
    beside it, and each judge's accuracy on the real B pieces. Also the Resemblyzer cosine of each output to
    the target's centroid and to the source's: conversion should raise the first and lower the second.
  * **still intelligible?** the ASR agreement error (:mod:`vqspeech.eval.asr_agreement`, a proxy) of the
    outputs against their source A pieces, with Codec2 2400 on the same A pieces beside it.
Written to ``out_dir``: ``unseen.md``, ``unseen.json`` and ``wavs/<source>_to_<target>.wav``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from vqspeech.data.audio import save_audio
from vqspeech.data.corpus import HELDOUT, Corpus
from vqspeech.data.dataset import load_split
from vqspeech.data.speaker_vectors import SpeakerEncoder, cached_segments, speaker_means
from vqspeech.errors import UserError
from vqspeech.eval import baselines
from vqspeech.eval.asr_agreement import Recognizer, agreement_error
from vqspeech.eval.speaker_classifier import SpeakerClassifier
from vqspeech.files import write_atomic
from vqspeech.models import VQVAE
from vqspeech.models.generation import SEGMENT_SECONDS, GenerationConfig
from vqspeech.pages import listen, write_report
from vqspeech.synthesis import Voice, decode_in_voices, voice_of_waves

CHUNK_SECONDS = 1.5  # the classifier's training examples: chunks of the A pieces


@dataclass
class UnseenOutput:
    source: str
    target: str
    wav: str                 # relative to the report folder
    identified: str          # nearest Resemblyzer centroid among the held-out voices
    predicted: str           # the speaker classifier's verdict
    cosine_target: float     # Resemblyzer cosine to the target's centroid (its A piece)
    cosine_source: float     # … to the source's
    voice: str               # what conditioned it: "reference" or the nearest training speaker's name


@dataclass
class GroupScores:
    """Means over one group of outputs (conversions, or reconstructions)."""

    outputs: int
    identified_as_target: float      # Resemblyzer judge
    classified_as_target: float      # speaker-classifier judge
    identified_as_source: float
    cosine_target: float
    cosine_source: float
    asr_agreement_error: float | None


@dataclass
class UnseenReport:
    speakers: list[str]
    pieces: str                      # "halves of one utterance" or "two utterances"
    seconds: float                   # mean length of a source (A) piece
    reference_seconds: float         # mean length of a reference (B) piece
    conditioning: str                # "reference audio" or "nearest training voice (speaker table)"
    chance: float                    # 1 / N
    judge_accuracy_real: float       # Resemblyzer: real B pieces identified by the A centroids
    classifier_accuracy_real: float  # the classifier on the real B pieces
    cosine_real_same: float          # real B vs own A centroid
    cosine_real_other: float         # real source A vs the target's A centroid, over the converted pairs
    asr_codec2_2400: float | None    # agreement error of Codec2 2400 on the A pieces
    generation_rtf: float
    converted: GroupScores
    reconstructed: GroupScores
    outputs: list[UnseenOutput] = field(default_factory=list)
    pieces_wavs: dict[str, list[str]] = field(default_factory=dict)  # speaker -> [A, B] wavs, relative

    def markdown(self) -> str:
        def num(v: float | None) -> str:
            return "–" if v is None else f"{v:.3f}"

        c, r = self.converted, self.reconstructed
        n = len(self.speakers)
        return "\n".join([
            "# vqspeech unseen-voice report (any-to-any)", "",
            f"{n} held-out speakers, never in training; each gives two pieces ({self.pieces}): A "
            f"({self.seconds:.2f} s on average) is converted and identifies the speaker, B "
            f"({self.reference_seconds:.2f} s) is its reference. Conditioning: {self.conditioning}. "
            f"{c.outputs} conversions, {r.outputs} reconstructions; generation real-time factor "
            f"{self.generation_rtf:.2f}.", "",
            "| measure | conversions | reconstructions (own reference) | real audio |", "|---|---|---|---|",
            f"| identified as the target, Resemblyzer nearest centroid (chance {self.chance:.3f}) | "
            f"{c.identified_as_target:.3f} | {r.identified_as_target:.3f} | B pieces {self.judge_accuracy_real:.3f} |",
            f"| identified as the target, speaker classifier (chance {self.chance:.3f}) | "
            f"{c.classified_as_target:.3f} | {r.classified_as_target:.3f} | B pieces "
            f"{self.classifier_accuracy_real:.3f} |",
            f"| identified as the source, Resemblyzer | {c.identified_as_source:.3f} | – | – |",
            f"| Resemblyzer cosine to the target's real voice | {c.cosine_target:.3f} | {r.cosine_target:.3f} | "
            f"same speaker {self.cosine_real_same:.3f} |",
            f"| Resemblyzer cosine to the source's real voice | {c.cosine_source:.3f} | – | source vs target "
            f"{self.cosine_real_other:.3f} |",
            f"| ASR agreement error vs the source (pocketsphinx words; a proxy) | {num(c.asr_agreement_error)} | "
            f"{num(r.asr_agreement_error)} | Codec2 2400 {num(self.asr_codec2_2400)} |", "",
            "The ASR agreement error is the word error rate of pocketsphinx's decode of each output against its "
            "decode of the source piece: a proxy for intelligibility on a corpus without transcripts, for "
            "comparing systems on the same files.", "", *self._listening_grid()])

    def _listening_grid(self) -> list[str]:
        """Per held-out speaker: its two real pieces, its reconstruction, and its conversions."""
        if not self.pieces_wavs:
            return []
        converted = {s: [o for o in self.outputs if o.source == s and o.target != s] for s in self.speakers}
        width = max((len(c) for c in converted.values()), default=0)
        lines = ["## Listen", "", "Rows: a held-out speaker's A piece (converted) and B piece (its reference), A "
                 "reconstructed from its own reference, then A converted to other speakers' voices.", "",
                 "| speaker | A (source) | B (reference) | reconstruction | " +
                 " | ".join(f"conversion {k + 1}" for k in range(width)) + " |", "|---" * (width + 4) + "|"]
        own = {o.source: o.wav for o in self.outputs if o.source == o.target}
        for s in self.speakers:
            a, b = self.pieces_wavs.get(s, ("", ""))
            cells = [listen(o.wav, f"→ {o.target}") for o in converted[s]] + ["–"] * (width - len(converted[s]))
            lines.append(f"| {s} | {listen(a, 'A') if a else '–'} | {listen(b, 'B') if b else '–'} | "
                         f"{listen(own[s], 'own voice') if s in own else '–'} | " + " | ".join(cells) + " |")
        return lines + [""]


@dataclass
class _Piece:
    speaker: str
    a: np.ndarray   # [T_a], a multiple of the hop
    b: np.ndarray   # [T_b]


def evaluate_unseen(model: VQVAE, corpus: Corpus, out_dir: str | Path, targets_per_source: int = 3,
                    max_seconds: float | None = 4.0, seed: int = 0, asr: bool = True,
                    progress: bool = True) -> UnseenReport:
    """Convert held-out speakers to each other and score the outputs; see the module docstring."""
    out_dir, sample_rate, hop = Path(out_dir), model.sample_rate, model.hop_length
    pieces = _pieces(corpus, sample_rate, hop, max_seconds, progress)
    speakers = [p.speaker for p in pieces]
    n = len(speakers)
    k = min(targets_per_source, n - 1)
    if k < 1:
        raise UserError(f"--targets must be at least 1, got {targets_per_source}")
    encoder = SpeakerEncoder.shared(sample_rate, getattr(model.speakers, "segment_seconds", 2.0))
    centroids = np.stack([encoder(p.a) for p in pieces])            # [N, 256], the identification voices
    if model.speakers.kind == "reference":
        voices: list[Voice] = [voice_of_waves(model, [p.b]) for p in pieces]
        conditioning = f"reference audio (the {model.speakers.encoder} speaker vector of the B piece)"
    else:
        voices = _nearest_training_voices(model, corpus, encoder, [encoder.voice([p.b]) for p in pieces], progress)
        conditioning = "nearest training voice to the B piece (a speaker table takes no reference)"

    classifier = _classifier(pieces, sample_rate)
    jobs = [(i, i) for i in range(n)] + [(i, (i + j) % n) for i in range(n) for j in range(1, k + 1)]
    codes = [model.encode_waveform(p.a) for p in pieces]
    generation = GenerationConfig.from_seconds(SEGMENT_SECONDS, sample_rate, hop)
    started = time.monotonic()
    waves = decode_in_voices(model, [codes[i] for i, _ in jobs], [voices[t] for _, t in jobs], generation,
                             torch.Generator(device=model.device).manual_seed(seed), progress,
                             sources=[pieces[i].a for i, _ in jobs])
    rtf = (time.monotonic() - started) / (sum(len(pieces[i].a) for i, _ in jobs) / sample_rate)
    waves = [w[: len(pieces[i].a)].float().cpu().numpy() for w, (i, _) in zip(waves, jobs)]

    predicted = classifier.predict(waves)
    outputs = []
    pieces_wavs = {speakers[i]: [save_audio(out_dir / "wavs" / f"{speakers[i]}_{name}.wav", wav, sample_rate,
                                            overwrite=True).relative_to(out_dir).as_posix()
                                 for name, wav in (("A", p.a), ("B", p.b))] for i, p in enumerate(pieces)}
    for (i, t), wav, label in tqdm(list(zip(jobs, waves, predicted)), desc="score outputs", disable=not progress,
                                   leave=False):
        path = save_audio(out_dir / "wavs" / f"{speakers[i]}_to_{speakers[t]}.wav", wav, sample_rate, overwrite=True)
        vector = encoder(wav)
        similarity = centroids @ vector
        outputs.append(UnseenOutput(source=speakers[i], target=speakers[t], wav=str(path.relative_to(out_dir)),
                                    identified=speakers[int(similarity.argmax())], predicted=speakers[int(label)],
                                    cosine_target=float(similarity[t]), cosine_source=float(similarity[i]),
                                    voice=voices[t] if isinstance(voices[t], str) else "reference"))

    errors = {}
    if asr:
        recognizer = Recognizer()
        heard = [recognizer.words(p.a) for p in tqdm(pieces, desc="ASR of sources", disable=not progress, leave=False)]
        said = [recognizer.words(w) for w in tqdm(waves, desc="ASR of outputs", disable=not progress, leave=False)]
        coded = [recognizer.words(baselines.codec2(p.a, sample_rate, 2400).audio[: len(p.a)]) for p in pieces]
        for name, keep in (("converted", lambda i, t: i != t), ("reconstructed", lambda i, t: i == t)):
            chosen = [j for j, (i, t) in enumerate(jobs) if keep(i, t)]
            errors[name] = agreement_error([heard[jobs[j][0]] for j in chosen], [said[j] for j in chosen])
        errors["codec2"] = agreement_error(heard, coded)

    def group(name: str, rows: list[UnseenOutput]) -> GroupScores:
        return GroupScores(outputs=len(rows), identified_as_target=_share(rows, "identified", "target"),
                           classified_as_target=_share(rows, "predicted", "target"),
                           identified_as_source=_share(rows, "identified", "source"),
                           cosine_target=float(np.mean([r.cosine_target for r in rows])),
                           cosine_source=float(np.mean([r.cosine_source for r in rows])),
                           asr_agreement_error=errors.get(name))

    b_vectors = np.stack([encoder(p.b) for p in pieces])
    b_similarity = b_vectors @ centroids.T                              # [N, N]
    converted_pairs = [(i, t) for i, t in jobs if i != t]
    report = UnseenReport(
        speakers=speakers, pieces=pieces_kind(corpus), seconds=float(np.mean([len(p.a) for p in pieces])) / sample_rate,
        reference_seconds=float(np.mean([len(p.b) for p in pieces])) / sample_rate, conditioning=conditioning,
        chance=1.0 / n, judge_accuracy_real=float(np.mean(b_similarity.argmax(axis=1) == np.arange(n))),
        classifier_accuracy_real=classifier.accuracy([p.b for p in pieces], list(range(n))),
        cosine_real_same=float(np.mean(np.diag(b_similarity))),
        cosine_real_other=float(np.mean([centroids[i] @ centroids[t] for i, t in converted_pairs])),
        asr_codec2_2400=errors.get("codec2"), generation_rtf=rtf,
        converted=group("converted", [o for o in outputs if o.source != o.target]),
        reconstructed=group("reconstructed", [o for o in outputs if o.source == o.target]), outputs=outputs,
        pieces_wavs=pieces_wavs)
    write_report(out_dir, "unseen", report.markdown())
    write_atomic(out_dir / "unseen.json", json.dumps(asdict(report), indent=2))
    return report


def heldout_pieces(corpus: Corpus) -> list[tuple]:
    """Per held-out speaker (sorted), the Utterance rows of its A and B pieces: its first two utterances, or
    the halves of its only one (rows with start/end)."""
    from dataclasses import replace

    import soundfile as sf

    by_speaker: dict[str, list] = {}
    for utt in corpus.split(HELDOUT):
        by_speaker.setdefault(utt.speaker, []).append(utt)
    if len(by_speaker) < 2:
        raise UserError(f"corpus {corpus.description} holds {len(by_speaker)} held-out speaker(s) (split heldout); "
                        f"unseen voices need at least 2: prepare it with --n-heldout-speakers N")
    out = []
    for speaker in sorted(by_speaker):
        utts = by_speaker[speaker]
        if len(utts) >= 2:
            out.append((speaker, utts[0], utts[1]))
            continue
        utt = utts[0]
        seconds = sf.info(str(utt.path)).duration if utt.end is None else utt.end
        middle = round(((utt.start or 0.0) + seconds) / 2, 3)
        out.append((speaker, replace(utt, end=middle), replace(utt, start=middle)))
    return out


def pieces_kind(corpus: Corpus) -> str:
    counts = {}
    for utt in corpus.split(HELDOUT):
        counts[utt.speaker] = counts.get(utt.speaker, 0) + 1
    return "two utterances" if min(counts.values()) >= 2 else "halves of one utterance"


def _pieces(corpus: Corpus, sample_rate: int, hop: int, max_seconds: float | None, progress: bool) -> list[_Piece]:
    rows = heldout_pieces(corpus)
    a = load_split([r[1] for r in rows], [r[0] for r in rows], sample_rate, progress, "load held-out audio")
    b = load_split([r[2] for r in rows], [r[0] for r in rows], sample_rate, progress, "load held-out audio")
    limit = None if max_seconds is None else int(max_seconds * sample_rate)
    wav_a = {u.speaker: w[:limit] for u, w in zip(a.utterances, a.waves)}
    wav_b = {u.speaker: w[:limit] for u, w in zip(b.utterances, b.waves)}
    pieces = [_Piece(spk, wav_a[spk][: len(wav_a[spk]) // hop * hop], wav_b[spk]) for spk, *_ in rows
              if spk in wav_a and spk in wav_b and len(wav_a[spk]) >= hop]
    if len(pieces) < 2:
        raise UserError(f"fewer than 2 held-out speakers of {corpus.description} have readable audio")
    return pieces


def _classifier(pieces: list[_Piece], sample_rate: int) -> SpeakerClassifier:
    """The second judge, trained on chunks of CHUNK_SECONDS of every A piece (a shorter piece is one chunk)."""
    chunk = int(CHUNK_SECONDS * sample_rate)
    waves, labels = [], []
    for label, p in enumerate(pieces):
        parts = [p.a[s:s + chunk] for s in range(0, len(p.a), chunk)]
        parts = [w for w in parts if len(w) >= chunk // 2] or [p.a]
        waves += parts
        labels += [label] * len(parts)
    return SpeakerClassifier.fit(waves, labels, len(pieces), sample_rate)


def _nearest_training_voices(model: VQVAE, corpus: Corpus, encoder: SpeakerEncoder, references: list[np.ndarray],
                             progress: bool) -> list[str]:
    """For a table model: per reference vector, the training speaker whose mean d-vector is nearest."""
    train = load_split(corpus.split("train"), model.speakers.names, encoder.sample_rate, progress, "load train audio")
    segments = cached_segments(encoder, [(u.path, u.part) for u in train.utterances], train.waves,
                               corpus.root / "speaker_vectors", progress)
    means = speaker_means(segments, train.speaker_ids, len(model.speakers.names))
    return [model.speakers.names[int((means @ r).argmax())] for r in references]


def unseen_voices(model: VQVAE, corpus: Corpus, progress: bool = True) -> tuple[list, dict[str, Voice]]:
    """For ``evaluate-reconstruction --unseen``: the A pieces of the held-out speakers (Utterance rows) and
    the voice to decode each speaker in: the speaker vector of its B piece (a reference model), else the
    nearest training voice to it."""
    rows = heldout_pieces(corpus)
    encoder = SpeakerEncoder.shared(model.sample_rate, getattr(model.speakers, "segment_seconds", 2.0))
    b = load_split([r[2] for r in rows], [r[0] for r in rows], model.sample_rate, progress, "load references")
    speakers = [u.speaker for u in b.utterances]
    if model.speakers.kind == "reference":
        voices: list[Voice] = [voice_of_waves(model, [w]) for w in b.waves]
    else:
        voices = _nearest_training_voices(model, corpus, encoder, [encoder.voice([w]) for w in b.waves], progress)
    return [r[1] for r in rows if r[0] in speakers], dict(zip(speakers, voices))


def _share(rows: list[UnseenOutput], field_name: str, whom: str) -> float:
    return float(np.mean([getattr(r, field_name) == getattr(r, whom) for r in rows])) if rows else float("nan")
