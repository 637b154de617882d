"""Objective evaluation of speaker conversion: every held-out sentence of every speaker, spoken by every voice.

The matrix: each source speaker × each target speaker (source = target is reconstruction) × each of
``n_sentences`` held-out sentences (the test split, else the valid one). On a parallel corpus (the same
``utterance`` id, or the same id after the first "_" as in VCTK's p225_003, held out for every speaker)
the sentences are ids shared by all speakers; otherwise each speaker's own first held-out utterances.
Every source is encoded once and all conversions generate in one batch (folded); each output is
written to ``out_dir/wavs/<sentence>_<source>_to_<target>.wav`` as generated (no loudness matching).

Three questions, each beside the value it would have without conversion:
  * **whose voice?** the nearest voice by speaker embedding: each output's Resemblyzer d-vector is
    identified as the speaker whose centroid (the unit-norm mean d-vector of its real held-out utterances,
    leaving out the sentence itself) is closest in cosine; the share identified as the target (and, for
    reconstructions, as their own voice), beside the same identification of the real held-out utterances.
    Codec-like artefacts move a d-vector far less than they move the log-mel statistics of
    a speaker classifier (:mod:`vqspeech.eval.speaker_classifier`), which is kept beside it: trained on real
    training audio, first scored on real held-out audio, then on the converted utterances: the share
    assigned to the target and to the source (confusion matrix in ``speaker_confusion.png``); and the
    cosine between Resemblyzer d-vectors of the output and of the target's real held-out utterances,
    beside source-vs-target (before conversion) and target-vs-target (same voice, other sentences).
    A speaker's reference d-vector leaves out the sentence it is compared with whenever it has others.
  * **content kept?** the output re-encoded: the share of frames whose code equals the source's.
  * **closer to the target's rendering?** on a parallel corpus only, mel-cepstral distortion (DTW, see
    :func:`~vqspeech.data.features.mel_cepstral_distortion`) between the output and the target's real
    utterance of the sentence, beside the MCD between the source's and the target's real utterances.
Results go to ``conversion.md`` and ``conversion.json`` in ``out_dir``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from vqspeech.data.audio import save_audio
from vqspeech.data.corpus import Corpus, Utterance
from vqspeech.data.dataset import load_split
from vqspeech.data.features import mel_cepstral_distortion
from vqspeech.data.speaker_vectors import SpeakerEncoder
from vqspeech.errors import UserError
from vqspeech.files import write_atomic
from vqspeech.eval.speaker_classifier import SpeakerClassifier
from vqspeech.models import VQVAE
from vqspeech.pages import image, listen, write_report
from vqspeech.synthesis import decode_in_voices
from vqspeech.models.generation import SEGMENT_SECONDS, GenerationConfig

log = logging.getLogger(__name__)

CLASSIFIER_UTTERANCES = 60  # real training utterances per speaker for the speaker classifier
REFERENCE_UTTERANCES = 10   # real held-out utterances per speaker for references and classifier accuracy


@dataclass
class ConvertedUtterance:
    """One cell of the matrix: ``sentence`` spoken by ``source``, converted to ``target``'s voice."""

    sentence: str
    source: str
    target: str
    wav: str                   # path relative to the report folder
    predicted: str             # the speaker classifier's verdict on the output
    identified: str            # the nearest speaker-embedding centroid to the output
    similarity: float          # Resemblyzer cosine between the output and the target's real voice
    code_agreement: float | None  # share of frames whose code, re-encoded from the output, is the source's
                                  # (None for a continuous bottleneck: no codes to agree on)
    mcd: float | None = None          # dB, output vs the target's real utterance (parallel corpora)
    mcd_source: float | None = None   # dB, the source's real utterance vs the target's (the baseline)


@dataclass
class SourceAudio:
    """A row of the listening grid: ``sentence`` as ``source`` spoke it (the real audio, as cut)."""

    source: str
    sentence: str
    wav: str                   # path relative to the report folder


@dataclass
class ConversionReport:
    """Means over converted pairs (source ≠ target) unless named "reconstructed" (source = target)."""

    speakers: list[str]
    sentences: list[str]                 # sentence ids (parallel), else the sources' own utterance ids
    parallel: bool
    sample_rate: int
    seconds: float                       # mean length of a source utterance, as cut
    generation_rtf: float                # generation wall time ÷ generated audio duration
    classifier_train_utterances: int
    classifier_test_utterances: int
    classifier_accuracy: float           # on real held-out audio
    embedding_accuracy: float            # real held-out utterances identified as their speaker by embedding
    embedding_target_share: float        # outputs whose nearest embedding centroid is the target's
    embedding_source_share: float        # … the source's
    embedding_reconstructed_share: float  # source = target outputs identified as that speaker
    target_share: float                  # outputs the classifier assigns to the target
    source_share: float                  # … to the source
    reconstructed_share: float           # source = target outputs assigned to that speaker
    similarity_converted: float          # cosine(output, target's real voice)
    similarity_source: float             # cosine(source's real utterance, target's real voice): before conversion
    similarity_same_speaker: float | None  # cosine(real utterance, own real voice from other sentences)
    similarity_reconstructed: float      # cosine(source = target output, own real voice)
    code_agreement_converted: float | None
    code_agreement_reconstructed: float | None
    mcd_converted: float | None          # dB; None on a non-parallel corpus
    mcd_source: float | None             # dB, source's real vs target's real
    mcd_reconstructed: float | None      # dB, source = target output vs its own real utterance
    confusion: list[list[int]] = field(default_factory=list)  # [target][predicted], converted outputs
    utterances: list[ConvertedUtterance] = field(default_factory=list)
    originals: list[SourceAudio] = field(default_factory=list)

    def markdown(self) -> str:
        def num(value: float | None, fmt: str = ".3f") -> str:
            return "n/a" if value is None else format(value, fmt)

        kind = "parallel" if self.parallel else "non-parallel: no MCD"
        n = len(self.sentences)
        lines = ["# vqspeech conversion report", "",
                 f"{len(self.speakers)} speakers × {len(self.speakers)} voices × {n} sentence{'s' * (n != 1)} "
                 f"({kind}), {self.seconds:.2f} s per source on average; generation real-time factor "
                 f"{self.generation_rtf:.1f}.", "",
                 "| measure | converted | before conversion | reference |", "|---|---|---|---|",
                 f"| speaker embedding (nearest Resemblyzer centroid): share identified as the target | "
                 f"{self.embedding_target_share:.3f} | source share {self.embedding_source_share:.3f} | "
                 f"reconstructions {self.embedding_reconstructed_share:.3f}, real held-out "
                 f"{self.embedding_accuracy:.3f} |",
                 f"| speaker classifier: share assigned to the target | {self.target_share:.3f} | "
                 f"source share {self.source_share:.3f} | reconstructions {self.reconstructed_share:.3f}, "
                 f"real held-out {self.classifier_accuracy:.3f} |",
                 f"| Resemblyzer cosine to the target's real voice | {self.similarity_converted:.3f} | "
                 f"{self.similarity_source:.3f} | reconstructions {self.similarity_reconstructed:.3f}, "
                 f"real same speaker {num(self.similarity_same_speaker)} |",
                 f"| code agreement with the source (re-encoded) | {_num(self.code_agreement_converted)} | – | "
                 f"reconstructions {_num(self.code_agreement_reconstructed)} |",
                 f"| MCD to the target's real utterance (dB, DTW) | {num(self.mcd_converted, '.2f')} | "
                 f"{num(self.mcd_source, '.2f')} | reconstructions {num(self.mcd_reconstructed, '.2f')} |", "",
                 f"Speaker classifier: log-mel statistics + logistic regression, trained on "
                 f"{self.classifier_train_utterances} real training utterances, scored on "
                 f"{self.classifier_test_utterances} real held-out ones. Confusion matrix of the converted "
                 f"outputs:", "", image("speaker_confusion.png", "speaker classifier's confusion matrix"), ""]
        lines += self._matrix("Share of outputs identified as the target by speaker embedding (rows: source, "
                              "columns: target)", lambda rows: float(np.mean([r.identified == r.target for r in rows])))
        lines += self._matrix("Share of outputs the classifier assigns to the target (rows: source, columns: target)",
                              lambda rows: float(np.mean([r.predicted == r.target for r in rows])))
        lines += self._matrix("Resemblyzer cosine to the target's real voice (rows: source, columns: target)",
                              lambda rows: float(np.mean([r.similarity for r in rows])))
        lines += self._listening_grid()
        return "\n".join(lines)

    def _listening_grid(self) -> list[str]:
        """Sources (each sentence as spoken) by targets: the diagonal is the source's own voice."""
        if not self.originals:
            return []
        wav = {(r.source, r.sentence, r.target): r.wav for r in self.utterances}
        lines = ["## Listen", "", "Rows: a source and its sentence, as spoken, then converted to each target "
                 "(the diagonal: reconstructed in its own voice).", "",
                 "| source | sentence | original | " + " | ".join(f"→ {t}" for t in self.speakers) + " |",
                 "|---" * (len(self.speakers) + 3) + "|"]
        for o in self.originals:
            cells = [listen(wav[o.source, o.sentence, t], t) if (o.source, o.sentence, t) in wav else "–"
                     for t in self.speakers]
            lines.append(f"| {o.source} | {o.sentence} | {listen(o.wav, 'original')} | " + " | ".join(cells) + " |")
        return lines + [""]

    def _matrix(self, title: str, cell: Callable[[list[ConvertedUtterance]], float]) -> list[str]:
        lines = [f"**{title}**", "", "| source \\ target | " + " | ".join(self.speakers) + " |",
                 "|---" * (len(self.speakers) + 1) + "|"]
        for src in self.speakers:
            cells = []
            for tgt in self.speakers:
                rows = [r for r in self.utterances if r.source == src and r.target == tgt]
                cells.append(f"{cell(rows):.2f}" if rows else "–")
            lines.append(f"| {src} | " + " | ".join(cells) + " |")
        return lines + [""]


@dataclass
class _HeldOut:
    """Real held-out audio of the usable speakers, cut; ``sources`` are the utterances to convert."""

    speakers: list[str]
    pool: dict[str, list[tuple[str, np.ndarray]]]  # speaker -> (sentence key, wav [T]) per utterance
    sources: list[tuple[str, str, np.ndarray]]     # (speaker, sentence, wav [T]); T a multiple of the hop
    parallel: bool


def evaluate_conversion(model: VQVAE, corpus: Corpus, sample_rate: int, out_dir: str | Path, n_sentences: int = 3,
                        generation: GenerationConfig | None = None, max_seconds: float | None = 4.0,
                        seed: int = 0, progress: bool = True) -> ConversionReport:
    """Convert held-out sentences between all speakers and score the outputs; see the module docstring.

    Args:
        generation: how to generate; None samples at temperature 1, folded into 0.5 s segments.
        max_seconds: cut every utterance (held-out and classifier training audio) to this length.
        seed: seed of the sampler.
    """
    out_dir = Path(out_dir)
    device, hop = model.device, model.hop_length
    if generation is None:
        generation = GenerationConfig.from_seconds(SEGMENT_SECONDS, sample_rate, hop)
    known = set(corpus.speakers)
    candidates = [name for name in model.speakers.names if name in known]
    held = _load_held_out(corpus, candidates, n_sentences, sample_rate, max_seconds, hop, progress)
    speakers = held.speakers
    classifier, n_train = _train_classifier(corpus, speakers, sample_rate, max_seconds, progress)

    # generate the matrix: each source encoded once, all conversions in one batch
    codes = [model.encode_waveform(wav) for _, _, wav in held.sources]
    jobs = [(i, tgt) for i in range(len(held.sources)) for tgt in speakers]
    started = time.monotonic()
    outputs = decode_in_voices(model, [codes[i] for i, _ in jobs], [t for _, t in jobs], generation,
                               torch.Generator(device=device).manual_seed(seed), progress,
                               sources=[held.sources[i][2] for i, _ in jobs])
    generation_time = time.monotonic() - started
    waves = [out.float().cpu().numpy() for out in outputs]

    predicted = classifier.predict(waves)
    embed = SpeakerEncoder.shared(sample_rate)
    references = {spk: [(key, embed(wav)) for key, wav in held.pool[spk]]
                  for spk in tqdm(speakers, desc="embed real audio", disable=not progress, leave=False)}
    real = {(spk, key): wav for spk in speakers for key, wav in held.pool[spk]}
    rows = []
    originals = [SourceAudio(src, sentence, save_audio(out_dir / "wavs" / f"{sentence}_{src}_original.wav", wav,
                                                       sample_rate, overwrite=True).relative_to(out_dir).as_posix())
                 for src, sentence, wav in held.sources]
    for (i, tgt), wav, label in tqdm(list(zip(jobs, waves, predicted)), desc="score conversions",
                                     disable=not progress, leave=False):
        src, sentence, source_wav = held.sources[i]
        path = save_audio(out_dir / "wavs" / f"{sentence}_{src}_to_{tgt}.wav", wav, sample_rate, overwrite=True)
        vector = embed(wav)
        row = ConvertedUtterance(sentence=sentence, source=src, target=tgt, wav=str(path.relative_to(out_dir)),
                                 predicted=speakers[label], identified=_identify(vector, references, sentence),
                                 similarity=_cosine(vector, _reference(references[tgt], sentence)),
                                 code_agreement=float((model.encode_waveform(wav) == codes[i]).float().mean())
                                 if model.bottleneck.discrete else None)
        if held.parallel:
            row.mcd = mel_cepstral_distortion(real[tgt, sentence], wav, sample_rate)
            if src != tgt:
                row.mcd_source = mel_cepstral_distortion(real[tgt, sentence], source_wav, sample_rate)
        rows.append(row)

    converted = [r for r in rows if r.source != r.target]
    reconstructed = [r for r in rows if r.source == r.target]
    pool = [(spk, key, wav) for spk in speakers for key, wav in held.pool[spk]]
    real_vectors = {(spk, key): vector for spk in speakers for key, vector in references[spk]}
    before = [_cosine(real_vectors[src, sentence], _reference(references[tgt], sentence))
              for src, sentence, _ in held.sources for tgt in speakers if tgt != src]
    same = [_cosine(vector, _reference(references[spk], key))
            for spk in speakers for key, vector in references[spk]
            if any(other != key for other, _ in references[spk])]
    index = {spk: k for k, spk in enumerate(speakers)}
    confusion = np.zeros((len(speakers), len(speakers)), dtype=int)
    for r in converted:
        confusion[index[r.target], index[r.predicted]] += 1

    def mean(values: Sequence[float | None]) -> float | None:
        kept = [v for v in values if v is not None]
        return float(np.mean(kept)) if kept else None

    generated_seconds = sum(len(w) for w in waves) / sample_rate
    report = ConversionReport(
        speakers=speakers, sentences=sorted({sentence for _, sentence, _ in held.sources}), parallel=held.parallel,
        sample_rate=sample_rate, seconds=float(np.mean([len(w) for _, _, w in held.sources])) / sample_rate,
        generation_rtf=generation_time / generated_seconds,
        classifier_train_utterances=n_train, classifier_test_utterances=len(pool),
        classifier_accuracy=classifier.accuracy([w for _, _, w in pool], [index[s] for s, _, _ in pool]),
        embedding_accuracy=mean([_identify(vector, references, key) == spk
                                 for spk in speakers for key, vector in references[spk]]),
        embedding_target_share=mean([r.identified == r.target for r in converted]),
        embedding_source_share=mean([r.identified == r.source for r in converted]),
        embedding_reconstructed_share=mean([r.identified == r.target for r in reconstructed]),
        target_share=mean([r.predicted == r.target for r in converted]),
        source_share=mean([r.predicted == r.source for r in converted]),
        reconstructed_share=mean([r.predicted == r.target for r in reconstructed]),
        similarity_converted=mean([r.similarity for r in converted]), similarity_source=mean(before),
        similarity_same_speaker=mean(same), similarity_reconstructed=mean([r.similarity for r in reconstructed]),
        code_agreement_converted=mean([r.code_agreement for r in converted]),
        code_agreement_reconstructed=mean([r.code_agreement for r in reconstructed]),
        mcd_converted=mean([r.mcd for r in converted]), mcd_source=mean([r.mcd_source for r in converted]),
        mcd_reconstructed=mean([r.mcd for r in reconstructed]), confusion=confusion.tolist(), utterances=rows,
        originals=originals)
    plot_confusion(confusion, speakers, out_dir / "speaker_confusion.png")
    write_report(out_dir, "conversion", report.markdown())
    write_atomic(out_dir / "conversion.json", json.dumps(asdict(report), indent=2))
    return report


def _cut(wav: np.ndarray, sample_rate: int, max_seconds: float | None, multiple: int = 1) -> np.ndarray:
    if max_seconds is not None:
        wav = wav[: int(max_seconds * sample_rate)]
    return wav[: len(wav) // multiple * multiple]


def _sentence_key(utterances: dict[str, list[Utterance]]) -> Callable[[Utterance], str] | None:
    """How to read a sentence id off an utterance so that some id is held out for every speaker:
    the utterance id, else its part after the first "_" (VCTK's p225_003 -> 003); None if neither does."""
    for key in (lambda u: u.utterance, lambda u: u.utterance.split("_", 1)[-1]):
        if set.intersection(*({key(u) for u in utts} for utts in utterances.values())):
            return key
    return None


def _load_held_out(corpus: Corpus, speakers: list[str], n_sentences: int, sample_rate: int,
                   max_seconds: float | None, hop: int, progress: bool) -> _HeldOut:
    by_speaker: dict[str, list[Utterance]] = {}
    for split in ("test", "valid"):
        by_speaker = {spk: [u for u in corpus.split(split) if u.speaker == spk] for spk in speakers}
        by_speaker = {spk: utts for spk, utts in by_speaker.items() if utts}
        if len(by_speaker) >= 2:
            break
    key = _sentence_key(by_speaker) if len(by_speaker) >= 2 else None
    chosen: list[str] = []
    if key is not None:
        chosen = sorted(set.intersection(*({key(u) for u in utts} for utts in by_speaker.values())))[:n_sentences]
    keep = max(n_sentences, REFERENCE_UTTERANCES)
    ordered = [u for utts in by_speaker.values()  # the chosen sentences first, then the others in corpus order
               for u in sorted(utts, key=lambda u: key is None or key(u) not in chosen)[:keep]]
    loaded = load_split(ordered, speakers, sample_rate, progress, "load held-out audio")
    pool: dict[str, list[tuple[str, np.ndarray]]] = {}
    for utt, wav in zip(loaded.utterances, loaded.waves):
        wav, sentence = _cut(wav, sample_rate, max_seconds, hop), key(utt) if key else utt.utterance
        if len(wav) and not np.any(wav):  # no voice to identify or convert
            log.warning("%s: the audio is silent; left out", utt.path)
            continue
        if not len(wav):
            log.warning("%s: shorter than one code (%d samples); left out", utt.path, hop)
            continue
        if all(k != sentence for k, _ in pool.get(utt.speaker, [])):  # one per sentence
            pool.setdefault(utt.speaker, []).append((sentence, wav))
    usable = [spk for spk in speakers if spk in pool]
    if len(usable) < 2:
        raise UserError(f"conversion needs held-out (test or valid) audio of at least 2 of the model's speakers; "
                        f"corpus {corpus.root} has it for {len(usable)} ({', '.join(usable) or 'none'})")
    shared = [s for s in chosen if all(any(k == s for k, _ in pool[spk]) for spk in usable)]
    if shared:
        sources = [(spk, s, next(w for k, w in pool[spk] if k == s)) for s in shared for spk in usable]
    else:
        sources = [(spk, k, w) for spk in usable for k, w in pool[spk][:n_sentences]]
    return _HeldOut(speakers=usable, pool={spk: pool[spk] for spk in usable}, sources=sources,
                    parallel=bool(shared))


def _train_classifier(corpus: Corpus, speakers: list[str], sample_rate: int, max_seconds: float | None,
                      progress: bool) -> tuple[SpeakerClassifier, int]:
    train = [u for spk in speakers for u in [u for u in corpus.split("train") if u.speaker == spk]
             [:CLASSIFIER_UTTERANCES]]
    loaded = load_split(train, speakers, sample_rate, progress, "load classifier audio")
    waves = [_cut(w, sample_rate, max_seconds) for w in loaded.waves]
    if not waves:
        raise UserError(f"corpus {corpus.root} has no readable training audio of {', '.join(speakers)} "
                        f"to train the speaker classifier on")
    return SpeakerClassifier.fit(waves, loaded.speaker_ids, len(speakers), sample_rate), len(waves)


def _reference(embeddings: list[tuple[str, np.ndarray]], sentence: str) -> np.ndarray:
    """A speaker's voice: the unit-norm mean of its utterances' d-vectors, leaving out ``sentence`` unless
    that would leave nothing."""
    others = [v for key, v in embeddings if key != sentence]
    vectors = np.stack(others or [v for _, v in embeddings])
    mean = vectors.mean(axis=0)
    return mean / max(float(np.linalg.norm(mean)), 1e-12)


def _identify(vector: np.ndarray, references: dict[str, list[tuple[str, np.ndarray]]], sentence: str) -> str:
    """The speaker whose reference (centroid without ``sentence``) is nearest in cosine to ``vector`` [256]."""
    return max(references, key=lambda spk: _cosine(vector, _reference(references[spk], sentence)))


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12))


def plot_confusion(confusion: np.ndarray, speakers: Sequence[str], path: Path) -> Path:
    """Save the [target, predicted] count matrix as a PNG heat map with the counts written in."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(speakers)
    fig = Figure(figsize=(1.2 + 0.6 * n, 1.0 + 0.6 * n))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.imshow(confusion, cmap="Blues", vmin=0, vmax=max(int(confusion.max()), 1))
    ax.set_xticks(range(n), list(speakers), rotation=45, ha="right")
    ax.set_yticks(range(n), list(speakers))
    ax.set_xlabel("predicted speaker")
    ax.set_ylabel("target speaker")
    ax.set_title("converted outputs (source ≠ target)")
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(confusion[i, j]), ha="center", va="center",
                    color="white" if confusion[i, j] > confusion.max() / 2 else "black")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
