"""How good is the audio after the bottleneck, and at what bitrate: the model's reconstructions of the
held-out test utterances scored beside Codec2 and μ-law PCM (:mod:`vqspeech.eval.baselines`).

Every test utterance (of a speaker the model knows; cut to ``max_seconds`` if given) is encoded and
decoded in its own speaker's voice: by the WaveNet twice, by sampling and by argmax, generated in batches
of folded 0.5 s segments; by the parallel decoder once (it has no sampling: one row, "vqspeech (sampling)"
in name only). The outputs are scored as generated (no loudness matching). Each system's output is
scored against the original over their common length by :func:`vqspeech.eval.speech_metrics.score`
(PESQ-WB, STOI and ESTOI, log-mel L1, MCD; DNSMOS of the output alone), where the metrics and their
exclusions are defined.

The loop is :class:`Evaluation`, fed batch after batch by :func:`batches`; ``vqspeech report`` runs it in a
light preset (:mod:`vqspeech.eval.report`). Metrics run on one utterance at a time, so memory is bounded by
the longest utterance (the MCD's DTW matrix grows with the square of its frames) and by one generation batch
(``batch_segments`` segments).
Written to ``out_dir``: ``per_utterance.csv`` (one row per utterance × system), ``reconstruction.md``,
``reconstruction.json``, and spectrograms (original / model / Codec2 2400) with the wavs of the first
two utterances.

:func:`vqspeech.training.tensorboard.log_reconstructions` is the small version for TensorBoard during training.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from vqspeech.data.audio import AudioError, load_audio, save_audio
from vqspeech.data.corpus import Utterance
from vqspeech.errors import UserError
from vqspeech.eval import baselines
from vqspeech.eval.prior import PriorReport
from vqspeech.plots import save_spectrograms
from vqspeech.eval.speech_metrics import METRICS, Dnsmos, Metrics, score
from vqspeech.files import write_atomic
from vqspeech.models import VQVAE
from vqspeech.models.generation import SEGMENT_SECONDS, GenerationConfig
from vqspeech.pages import image, listen, write_report
from vqspeech.quantization import CodeUsage, code_usage
from vqspeech.synthesis import Voice, decode_in_voices

log = logging.getLogger(__name__)

MU_LAW_BITS = (8, 4)
MODEL_SAMPLED, MODEL_GREEDY, ORIGINAL = "vqspeech (sampling)", "vqspeech (argmax)", "original"
PLOTTED_UTTERANCES = 2


# A row's own fields come first, then the metrics (a dataclass collects its bases' fields in reverse MRO
# order: the last base first), then the subclass's own: the column order of per_utterance.csv and the key
# order of reconstruction.json.
@dataclass
class _Output:
    speaker: str
    utterance: str
    seconds: float
    system: str
    bitrate: float | None  # bit/s; None for the original


@dataclass
class UtteranceScore(Metrics, _Output):
    """One row of per_utterance.csv: one system's output for one utterance, its metrics, and why any is None."""

    excluded: str = ""     # "metric: reason; …"


@dataclass
class _System:
    system: str
    bitrate: float | None
    utterances: int
    pesq_excluded: int
    excluded: dict[str, int] = field(default_factory=dict)  # metric -> utterances it was not computed for


@dataclass
class SystemSummary(Metrics, _System):
    """Means over the utterances where each metric applies; ``excluded`` counts, per metric, the utterances
    it left out (their reasons are in the report's exclusions)."""


@dataclass
class Example:
    """One utterance kept to listen to: every system's output and their spectrograms side by side."""
    speaker: str
    utterance: str
    spectrogram: str                                          # PNG, relative to the report folder
    wavs: dict[str, str] = field(default_factory=dict)        # system -> wav, relative to the report folder


@dataclass
class ReconstructionReport:
    source: str                       # what was evaluated, e.g. the checkpoint and its step
    sample_rate: int
    utterances: int
    seconds: float                    # total audio scored per system
    max_seconds: float | None
    frame_rate: float                 # codes per second
    codebook_size: int | None  # None: a continuous bottleneck
    bitrate: float | None             # frame rate × log2 K; None (as the next three) for a continuous bottleneck
    entropy_bitrate: float | None     # frame rate × entropy (bits) of the test-set code histogram
    used_codes: int | None
    perplexity: float | None
    generation_rtf: float             # generation wall time (both decodings) ÷ audio duration
    wall_seconds: float               # the whole evaluation
    dnsmos_unavailable: str | None    # why the DNSMOS column is empty, if it is
    codec2_delay_ms: dict[str, float] = field(default_factory=dict)  # median per mode, compensated
    systems: list[SystemSummary] = field(default_factory=list)
    rows: list[UtteranceScore] = field(default_factory=list)
    exclusions: list[dict[str, str]] = field(default_factory=list)  # speaker, utterance, system, metric, reason
    skipped: list[str] = field(default_factory=list)      # unreadable files
    examples: list[Example] = field(default_factory=list)
    prior: PriorReport | None = None  # the learned prior on the test codes: the rate `vqspeech compress` codes at

    def markdown(self) -> str:
        def num(value: float | None, fmt: str) -> str:
            return "–" if value is None else format(value, fmt)

        lines = ["# vqspeech reconstruction report", "",
                 f"{self.source}: {self.utterances} held-out test utterances, {self.seconds:.1f} s of audio "
                 f"per system" + (f" (each cut to {self.max_seconds:g} s)" if self.max_seconds else "") +
                 f", at {self.sample_rate} Hz. Evaluation wall time {self.wall_seconds:.1f} s "
                 f"(generation real-time factor {self.generation_rtf:.2f}).", "",
                 "| system | bitrate (bit/s) | PESQ-WB | STOI | ESTOI | log-mel L1 | MCD (dB) | DNSMOS OVRL |",
                 "|---|---|---|---|---|---|---|---|"]
        for s in self.systems:
            def cell(metric: str, fmt: str) -> str:
                left_out = s.excluded.get(metric, 0) if s.system != ORIGINAL else 0
                value = getattr(s, metric)
                return num(value, fmt) + (f" ({left_out} excl.)" if left_out and value is not None else "")

            lines.append(f"| {s.system} | {num(s.bitrate, '.0f')} | {cell('pesq', '.2f')} | {cell('stoi', '.3f')} | "
                         f"{cell('estoi', '.3f')} | {cell('log_mel_l1', '.3f')} | {cell('mcd', '.2f')} | "
                         f"{cell('dnsmos_ovrl', '.2f')} |")
        lines += ["", "**The model's codes on the test set**", "", "| measure | value |", "|---|---|",
                  f"| frame rate | {self.frame_rate:g} codes/s |"]
        if self.bitrate is None:
            lines += ["| bitrate | n/a: continuous latents (see the latent-usage section of `vqspeech report`) |"]
        else:
            lines += [f"| bitrate (frame rate × log2 K) | {self.bitrate:.0f} bit/s |",
                      f"| entropy rate of the codes (unigram) | {self.entropy_bitrate:.0f} bit/s |",
                      f"| codes used | {self.used_codes} / {self.codebook_size} |",
                      f"| code perplexity | {self.perplexity:.1f} |"]
        if self.prior is not None:
            lines += [f"| coded rate under the learned prior (`vqspeech compress`; + 24 bytes per file) | "
                      f"{self.prior.bits_per_second:.0f} bit/s |"]
            lines += ["", self.prior.markdown()]
        lines += ["",
                  "Scores are against the original over the common length of the two signals; the model's "
                  "outputs are scored as generated, in each utterance's own speaker's voice. PESQ is wide-band "
                  "(P.862.2) at 16 kHz. MCD: order 24 without c0, cepstra of the 80-band log-amplitude mel "
                  "spectrum (n_fft 1024, hop 256), DTW-aligned, no silence removal (not SPTK's mel-cepstrum). "
                  "DNSMOS is non-intrusive (the output alone; the original row is its ceiling). The model's "
                  "bitrate leaves out the speaker identity, sent once per utterance.",
                  ""]
        if self.codec2_delay_ms:
            delays = ", ".join(f"{mode}: {ms:.0f} ms" for mode, ms in self.codec2_delay_ms.items())
            lines += ["Codec2's output is advanced by its delay, estimated per utterance from the energy "
                      f"envelopes (median {delays}).", ""]
        if self.dnsmos_unavailable:
            lines += [f"DNSMOS: {self.dnsmos_unavailable}", ""]
        if self.exclusions:
            groups: dict[tuple[str, str], list[str]] = {}
            for e in self.exclusions:
                groups.setdefault((e["metric"], e["reason"]), []).append(f"{e['speaker']}/{e['utterance']}")
            lines += ["**Excluded from a metric** (per output in per_utterance.csv)", ""]
            for (metric, reason), outputs in groups.items():
                utts = list(dict.fromkeys(outputs))
                shown = ", ".join(utts[:6]) + (f" and {len(utts) - 6} more" if len(utts) > 6 else "")
                lines.append(f"- {metric}: {reason} — {len(outputs)} outputs of {len(utts)} "
                             f"utterance{'s' * (len(utts) != 1)}: {shown}")
            lines.append("")
        if self.skipped:
            lines += ["**Skipped (unreadable)**", ""] + [f"- {s}" for s in self.skipped] + [""]
        if self.examples:
            systems = list(dict.fromkeys(s for e in self.examples for s in e.wavs))
            lines += ["## Listen", "", "| utterance | " + " | ".join(systems) + " |", "|---" * (len(systems) + 1) + "|"]
            lines += [f"| {e.speaker} {e.utterance} | " + " | ".join(listen(e.wavs[s], s) if s in e.wavs else "–"
                                                            for s in systems) + " |" for e in self.examples]
            lines += [""] + [image(e.spectrogram, f"spectrograms of {e.speaker} {e.utterance}") for e in self.examples]
            lines += [""]
        return "\n".join(lines)


class Evaluation:
    """What the evaluation has gathered so far, fed one batch of utterances at a time by :meth:`add`.

    Each utterance is encoded, decoded once per entry of ``generations`` (system name -> config, all with
    ``generator``), coded by each baseline, and every output scored against the original; the first
    ``examples`` utterances are also handed to ``save_example`` (utterance, outputs), whose return value is
    kept in :attr:`examples_saved`. :meth:`usage` summarises the codes of every utterance added.
    """

    def __init__(self, model: VQVAE, sample_rate: int, generations: dict[str, GenerationConfig],
                 generator: torch.Generator | None = None, codec2_modes: tuple[int, ...] = (),
                 mu_law_bits: tuple[int, ...] = (), mos: Dnsmos | None = None,
                 save_example: Callable[[Utterance, dict[str, tuple[np.ndarray, float | None]]], object] | None
                 = None, examples: int = 0, progress: bool = False,
                 voice_of: Callable[[Utterance], Voice] | None = None):
        self.model, self.sample_rate, self.generations, self.generator = model, sample_rate, generations, generator
        self.voice_of = voice_of or (lambda utt: utt.speaker)  # the voice each utterance is decoded in
        self.codec2_modes, self.mu_law_bits, self.mos, self.progress = codec2_modes, mu_law_bits, mos, progress
        self.save_example, self.examples = save_example, examples
        self.frame_rate = sample_rate / model.hop_length
        bits = model.bottleneck.bits_per_frame()
        pitch_bits = model.pitch.bits_per_second(sample_rate) if model.pitch is not None else 0.0  # its stream too
        self.model_bitrate = None if bits is None else self.frame_rate * bits + pitch_bits
        self.counts = torch.zeros(model.bottleneck.codebook_size or 0, dtype=torch.long)  # a discrete bottleneck's
        self.rows: list[UtteranceScore] = []
        self.exclusions: list[dict[str, str]] = []
        self.examples_saved: list = []
        self.delays: dict[str, list[int]] = {}
        self.generation_seconds = 0.0   # wall time of every decoding
        self.audio_seconds = 0.0        # audio scored per system

    def add(self, batch: list[tuple[Utterance, np.ndarray]]) -> None:
        """Reconstruct and score a batch of (utterance, wav [T]), generated together."""
        model = self.model
        codes = [model.encode_waveform(wav) for _, wav in batch]
        for c in codes if model.bottleneck.discrete else ():
            self.counts.add_(torch.bincount(c.cpu(), minlength=len(self.counts)))
        voices = [self.voice_of(u) for u, _ in batch]
        started = time.monotonic()
        generated = {system: decode_in_voices(model, codes, voices, config,
                                              self.generator if not config.greedy else None, self.progress,
                                              sources=[wav for _, wav in batch])
                     for system, config in self.generations.items()}
        self.generation_seconds += time.monotonic() - started
        for i, (utt, wav) in enumerate(batch):
            outputs = {system: (waves[i][: len(wav)].float().cpu().numpy(), self.model_bitrate)
                       for system, waves in generated.items()}
            outputs.update(self._baselines(wav))
            outputs[ORIGINAL] = (wav, None)
            self.audio_seconds += len(wav) / self.sample_rate
            for system, (audio, bitrate) in outputs.items():
                self._score(utt, wav, system, audio, bitrate)
            if self.save_example is not None and len(self.examples_saved) < self.examples:
                self.examples_saved.append(self.save_example(utt, outputs))

    def _baselines(self, wav: np.ndarray) -> dict[str, tuple[np.ndarray, float]]:
        outputs = {}
        for mode in self.codec2_modes:
            coded = baselines.codec2(wav, self.sample_rate, mode)
            outputs[f"Codec2 {mode}"] = (coded.audio, coded.bitrate)
            self.delays.setdefault(str(mode), []).append(coded.delay)
        for bits in self.mu_law_bits:
            coded = baselines.mu_law(wav, self.sample_rate, bits)
            outputs[f"μ-law {bits}-bit"] = (coded.audio, coded.bitrate)
        return outputs

    def _score(self, utt: Utterance, wav: np.ndarray, system: str, audio: np.ndarray, bitrate: float | None) -> None:
        scores = score(wav, audio, self.sample_rate, self.mos, intrusive=system != ORIGINAL)
        self.rows.append(UtteranceScore(speaker=utt.speaker, utterance=utt.utterance,
                                        seconds=len(wav) / self.sample_rate, system=system, bitrate=bitrate,
                                        **{m: getattr(scores, m) for m in METRICS},
                                        excluded="; ".join(f"{m}: {r}" for m, r in scores.excluded.items())))
        self.exclusions.extend({"speaker": utt.speaker, "utterance": utt.utterance, "system": system,
                                "metric": m, "reason": r} for m, r in scores.excluded.items())

    def usage(self) -> CodeUsage | None:
        """The codes' histogram summarised; None for a continuous bottleneck."""
        return code_usage(self.counts, self.frame_rate) if self.model.bottleneck.discrete else None

    @property
    def generation_rtf(self) -> float:
        """Generation wall time ÷ the audio it generated (every decoding counted)."""
        generated = len(self.generations) * self.audio_seconds
        return self.generation_seconds / generated if generated else float("nan")


def batches(utterances: list[Utterance], sample_rate: int, hop: int, segment_frames: int, batch_segments: int,
            max_seconds: float | None, skipped: list[str], bar) -> Iterator[list[tuple[Utterance, np.ndarray]]]:
    """The utterances' audio (each cut to ``max_seconds``) in batches of about ``batch_segments`` generation
    segments; an unreadable file goes to ``skipped``. ``bar`` counts every utterance."""
    batch, used = [], 0
    for utt in utterances:
        try:
            wav = utt.cut(load_audio(utt.path, sample_rate), sample_rate)
        except AudioError as exc:
            log.warning("%s; left out", exc)
            skipped.append(str(exc))
            bar.update(1)
            continue
        if max_seconds is not None:
            wav = wav[: int(max_seconds * sample_rate)]
        batch.append((utt, wav))
        used += math.ceil(math.ceil(len(wav) / hop) / segment_frames)
        if used >= batch_segments:
            yield batch
            bar.update(len(batch))
            batch, used = [], 0
    if batch:
        yield batch
        bar.update(len(batch))


def evaluate_reconstruction(model: VQVAE, utterances: list[Utterance], sample_rate: int, out_dir: str | Path,
                            max_seconds: float | None = None, dnsmos: bool = True, seed: int = 0,
                            codec2_modes: tuple[int, ...] = baselines.CODEC2_MODES, batch_segments: int = 64,
                            source: str = "model", progress: bool = True,
                            voices: dict[str, Voice] | None = None,
                            prior: PriorReport | None = None) -> ReconstructionReport:
    """Reconstruct and score ``utterances`` (those of speakers the model knows, or that ``voices`` gives a
    voice: a speaker vector from their own reference audio, or a training speaker's name); see the module
    docstring."""
    started = time.monotonic()
    out_dir = Path(out_dir)
    if codec2_modes:
        baselines.codec2_tools()  # fail before generating anything
    voices = voices or {}
    utterances = [u for u in utterances if u.speaker in model.speakers.names or u.speaker in voices]
    if not utterances:
        raise UserError(f"no test utterances of the model's speakers ({', '.join(model.speakers.names)})")
    mos = Dnsmos() if dnsmos else None
    hop = model.hop_length
    sampling = GenerationConfig.from_seconds(SEGMENT_SECONDS, sample_rate, hop, greedy=False)
    argmax = GenerationConfig.from_seconds(SEGMENT_SECONDS, sample_rate, hop, greedy=True)
    generations = {MODEL_SAMPLED: sampling, MODEL_GREEDY: argmax} if model.decoder.stochastic else {MODEL_SAMPLED: sampling}
    evaluation = Evaluation(model, sample_rate, generations,
                            torch.Generator(device=model.device).manual_seed(seed), codec2_modes, MU_LAW_BITS, mos,
                            lambda utt, outputs: _save_examples(out_dir, utt, outputs, sample_rate),
                            PLOTTED_UTTERANCES, progress, lambda utt: voices.get(utt.speaker, utt.speaker))
    skipped: list[str] = []
    bar = tqdm(total=len(utterances), desc="evaluate reconstruction", unit="utt", disable=not progress)
    for batch in batches(utterances, sample_rate, hop, sampling.segment_frames, batch_segments, max_seconds,
                         skipped, bar):
        evaluation.add(batch)
    bar.close()
    rows = evaluation.rows
    if not rows:
        raise UserError(f"none of the {len(utterances)} test utterances could be read")

    usage = evaluation.usage()
    order = list(dict.fromkeys(r.system for r in rows))
    report = ReconstructionReport(
        source=source, sample_rate=sample_rate, utterances=len({(r.speaker, r.utterance) for r in rows}),
        seconds=evaluation.audio_seconds, max_seconds=max_seconds, frame_rate=evaluation.frame_rate,
        codebook_size=model.bottleneck.codebook_size, bitrate=usage and usage.bitrate,
        entropy_bitrate=usage and float(usage.entropy_rate), used_codes=usage and int(usage.used_codes),
        perplexity=usage and float(usage.perplexity),
        generation_rtf=evaluation.generation_rtf, wall_seconds=0.0,
        dnsmos_unavailable="not computed (--no-dnsmos)" if mos is None else mos.unavailable and
        f"unavailable: {mos.unavailable}",
        codec2_delay_ms={mode: 1000 * float(np.median(d)) / sample_rate for mode, d in evaluation.delays.items()},
        systems=[summarize(system, [r for r in rows if r.system == system]) for system in order],
        rows=rows, exclusions=evaluation.exclusions, skipped=skipped, examples=evaluation.examples_saved,
        prior=prior)
    report.wall_seconds = time.monotonic() - started
    _write(report, out_dir)
    return report


def summarize(system: str, rows: list[UtteranceScore]) -> SystemSummary:
    """One system's means over ``rows`` (its utterance scores), each metric over the rows where it applies."""
    def mean(metric: str) -> float | None:
        values = [getattr(r, metric) for r in rows if getattr(r, metric) is not None]
        return float(np.mean(values)) if values else None

    excluded = {m: sum(getattr(r, m) is None for r in rows) for m in METRICS}
    return SystemSummary(system=system, bitrate=rows[0].bitrate, utterances=len(rows), pesq_excluded=excluded["pesq"],
                         excluded={m: n for m, n in excluded.items() if n}, **{m: mean(m) for m in METRICS})


def _slug(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z]+", "_", name.replace("μ", "mu")).strip("_").lower()


def _save_examples(out_dir: Path, utt: Utterance, outputs: dict[str, tuple[np.ndarray, float | None]],
                   sample_rate: int) -> Example:
    """Spectrograms of original / model / Codec2 2400 (when run), and every system's wav."""
    stem = _slug(utt.utterance if utt.utterance.startswith(utt.speaker) else f"{utt.speaker}_{utt.utterance}")
    wavs = {}
    for system, (audio, _) in outputs.items():
        path = save_audio(out_dir / "wavs" / f"{stem}_{_slug(system)}.wav", audio, sample_rate, overwrite=True)
        wavs[system] = path.relative_to(out_dir).as_posix()
    shown = [s for s in (ORIGINAL, MODEL_SAMPLED, "Codec2 2400") if s in outputs]
    path = save_spectrograms(out_dir / f"spectrogram_{stem}.png", [(s, outputs[s][0]) for s in shown],
                             sample_rate, title=f"{utt.speaker} {utt.utterance}")
    return Example(speaker=utt.speaker, utterance=utt.utterance, spectrogram=path.name, wavs=wavs)


def _write(report: ReconstructionReport, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    columns = [f.name for f in fields(UtteranceScore)]
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=columns)
    writer.writeheader()
    for row in report.rows:
        writer.writerow({key: "" if value is None else value for key, value in asdict(row).items()})
    write_atomic(out_dir / "per_utterance.csv", table.getvalue())
    write_report(out_dir, "reconstruction", report.markdown())
    write_atomic(out_dir / "reconstruction.json", json.dumps(asdict(report), indent=2, ensure_ascii=False))
