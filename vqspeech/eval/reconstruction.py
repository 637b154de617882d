"""How good is the audio after the bottleneck, and at what bitrate: the model's reconstructions of the
held-out test utterances scored beside Codec2 and μ-law PCM (:mod:`vqspeech.eval.baselines`).

Every test utterance (of a speaker the model knows; cut to ``max_seconds`` if given) is encoded and
decoded in its own speaker's voice twice, by sampling and by argmax, generated in batches of folded
0.5 s segments; the outputs are scored as generated (no loudness matching). Each system's output is
scored against the original over their common length by :func:`vqspeech.eval.speech_metrics.score`
(PESQ-WB, STOI and ESTOI, log-mel L1, MCD; DNSMOS of the output alone), where the metrics and their
exclusions are defined.

Metrics run on one utterance at a time, so memory is bounded by the longest utterance (the MCD's DTW
matrix grows with the square of its frames) and by one generation batch (``batch_segments`` segments).
Written to ``out_dir``: ``per_utterance.csv`` (one row per utterance × system), ``reconstruction.md``,
``reconstruction.json``, and spectrograms (original / model / Codec2 2400) with the wavs of the first
two utterances.

:func:`log_reconstructions` is the small version for TensorBoard during training.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from vqspeech.data.audio import AudioError, load_audio, save_audio
from vqspeech.data.corpus import Utterance
from vqspeech.errors import UserError
from vqspeech.eval import baselines
from vqspeech.eval.plots import save_spectrograms, spectrogram_image
from vqspeech.eval.speech_metrics import METRICS, Dnsmos, Metrics, score
from vqspeech.files import write_atomic
from vqspeech.models import VQVAE
from vqspeech.models.generation import GenerationConfig

SEGMENT_SECONDS = 0.5       # fold length of generation
OVERLAP_FRAMES = 8
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


@dataclass
class SystemSummary(Metrics, _System):
    """Means over the utterances where each metric applies."""


@dataclass
class ReconstructionReport:
    source: str                       # what was evaluated, e.g. the checkpoint and its step
    sample_rate: int
    utterances: int
    seconds: float                    # total audio scored per system
    max_seconds: float | None
    frame_rate: float                 # codes per second
    codebook_size: int
    bitrate: float                    # frame rate × log2 K
    entropy_bitrate: float            # frame rate × entropy (bits) of the test-set code histogram
    used_codes: int
    perplexity: float
    generation_rtf: float             # generation wall time (both decodings) ÷ audio duration
    wall_seconds: float               # the whole evaluation
    dnsmos_unavailable: str | None    # why the DNSMOS column is empty, if it is
    codec2_delay_ms: dict[str, float] = field(default_factory=dict)  # median per mode, compensated
    systems: list[SystemSummary] = field(default_factory=list)
    rows: list[UtteranceScore] = field(default_factory=list)
    exclusions: list[dict[str, str]] = field(default_factory=list)  # speaker, utterance, system, metric, reason
    skipped: list[str] = field(default_factory=list)      # unreadable files
    plots: list[str] = field(default_factory=list)

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
            pesq = num(s.pesq, ".2f") + (f" ({s.pesq_excluded} excl.)" if s.pesq_excluded and s.system != ORIGINAL
                                         else "")
            lines.append(f"| {s.system} | {num(s.bitrate, '.0f')} | {pesq} | {num(s.stoi, '.3f')} | "
                         f"{num(s.estoi, '.3f')} | {num(s.log_mel_l1, '.3f')} | {num(s.mcd, '.2f')} | "
                         f"{num(s.dnsmos_ovrl, '.2f')} |")
        lines += ["", "**The model's codes on the test set**", "", "| measure | value |", "|---|---|",
                  f"| frame rate | {self.frame_rate:g} codes/s |",
                  f"| bitrate (frame rate × log2 K) | {self.bitrate:.0f} bit/s |",
                  f"| entropy rate of the codes (unigram) | {self.entropy_bitrate:.0f} bit/s |",
                  f"| codes used | {self.used_codes} / {self.codebook_size} |",
                  f"| code perplexity | {self.perplexity:.1f} |", "",
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
        if self.plots:
            lines += ["Spectrograms: " + ", ".join(f"`{p}`" for p in self.plots), ""]
        return "\n".join(lines)


def evaluate_reconstruction(model: VQVAE, utterances: list[Utterance], sample_rate: int, out_dir: str | Path,
                            max_seconds: float | None = None, dnsmos: bool = True, seed: int = 0,
                            codec2_modes: tuple[int, ...] = baselines.CODEC2_MODES, batch_segments: int = 64,
                            source: str = "model", progress: bool = True) -> ReconstructionReport:
    """Reconstruct and score ``utterances`` (those of speakers the model knows); see the module docstring."""
    started = time.monotonic()
    out_dir = Path(out_dir)
    if codec2_modes:
        baselines.codec2_tools()  # fail before generating anything
    utterances = [u for u in utterances if u.speaker in model.speakers.names]
    if not utterances:
        raise UserError(f"no test utterances of the model's speakers ({', '.join(model.speakers.names)})")
    mos = Dnsmos() if dnsmos else None
    device = next(model.parameters()).device
    hop, k = model.hop_length, model.quantizer.codebook_size
    frame_rate = sample_rate / hop
    segment = max(1, round(SEGMENT_SECONDS * sample_rate / hop))
    sampling = GenerationConfig(greedy=False, segment_frames=segment, overlap_frames=OVERLAP_FRAMES)
    argmax = GenerationConfig(greedy=True, segment_frames=segment, overlap_frames=OVERLAP_FRAMES)
    generator = torch.Generator(device=device).manual_seed(seed)
    counts = torch.zeros(k, dtype=torch.long)
    rows: list[UtteranceScore] = []
    exclusions, skipped, plots = [], [], []
    delays: dict[str, list[int]] = {}
    generation_time, total_seconds = 0.0, 0.0

    def process(batch: list[tuple[Utterance, np.ndarray]]) -> None:
        nonlocal generation_time, total_seconds
        codes = []
        for _, wav in batch:
            padded = torch.from_numpy(np.pad(wav, (0, -len(wav) % hop))).to(device)
            with torch.inference_mode():
                codes.append(model.encode(padded[None, None]).codes[0])
            counts.add_(torch.bincount(codes[-1].cpu(), minlength=k))
        ids = model.speakers.ids([u.speaker for u, _ in batch], device)
        t0 = time.monotonic()
        sampled = model.decode(codes, ids, sampling, generator, progress)
        greedy = model.decode(codes, ids, argmax, None, progress)
        generation_time += time.monotonic() - t0
        model_bitrate = frame_rate * math.log2(k)
        for (utt, wav), s, g in zip(batch, sampled, greedy):
            outputs = {MODEL_SAMPLED: (s[: len(wav)].float().cpu().numpy(), model_bitrate),
                       MODEL_GREEDY: (g[: len(wav)].float().cpu().numpy(), model_bitrate)}
            for mode in codec2_modes:
                coded = baselines.codec2(wav, sample_rate, mode)
                outputs[f"Codec2 {mode}"] = (coded.audio, coded.bitrate)
                delays.setdefault(str(mode), []).append(coded.delay)
            for bits in (8, 4):
                coded = baselines.mu_law(wav, sample_rate, bits)
                outputs[f"μ-law {bits}-bit"] = (coded.audio, coded.bitrate)
            outputs[ORIGINAL] = (wav, None)
            total_seconds += len(wav) / sample_rate
            for system, (audio, bitrate) in outputs.items():
                scores = score(wav, audio, sample_rate, mos, intrusive=system != ORIGINAL)
                rows.append(UtteranceScore(speaker=utt.speaker, utterance=utt.utterance,
                                           seconds=len(wav) / sample_rate, system=system, bitrate=bitrate,
                                           **{m: getattr(scores, m) for m in METRICS},
                                           excluded="; ".join(f"{m}: {r}" for m, r in scores.excluded.items())))
                exclusions.extend({"speaker": utt.speaker, "utterance": utt.utterance, "system": system,
                                   "metric": m, "reason": r} for m, r in scores.excluded.items())
            if len(plots) < PLOTTED_UTTERANCES:
                plots.append(_save_examples(out_dir, utt, outputs, sample_rate))
            bar.update(1)

    bar = tqdm(total=len(utterances), desc="evaluate reconstruction", unit="utt", disable=not progress)
    batch, batch_segments_used = [], 0
    for utt in utterances:
        try:
            wav = load_audio(utt.path, sample_rate)
        except AudioError as exc:
            skipped.append(str(exc))
            bar.update(1)
            continue
        if max_seconds is not None:
            wav = wav[: int(max_seconds * sample_rate)]
        batch.append((utt, wav))
        batch_segments_used += math.ceil(math.ceil(len(wav) / hop) / segment)
        if batch_segments_used >= batch_segments:
            process(batch)
            batch, batch_segments_used = [], 0
    if batch:
        process(batch)
    bar.close()
    if not rows:
        raise UserError(f"none of the {len(utterances)} test utterances could be read")

    probs = counts.double() / counts.sum()
    entropy_bits = float(-(probs[probs > 0] * probs[probs > 0].log2()).sum())
    order = list(dict.fromkeys(r.system for r in rows))
    report = ReconstructionReport(
        source=source, sample_rate=sample_rate, utterances=len({(r.speaker, r.utterance) for r in rows}),
        seconds=total_seconds, max_seconds=max_seconds, frame_rate=frame_rate, codebook_size=k,
        bitrate=frame_rate * math.log2(k), entropy_bitrate=frame_rate * entropy_bits,
        used_codes=int((counts > 0).sum()), perplexity=2 ** entropy_bits,
        generation_rtf=generation_time / (2 * total_seconds), wall_seconds=0.0,
        dnsmos_unavailable="not computed (--no-dnsmos)" if mos is None else mos.unavailable and
        f"unavailable: {mos.unavailable}",
        codec2_delay_ms={mode: 1000 * float(np.median(d)) / sample_rate for mode, d in delays.items()},
        systems=[_summary(system, [r for r in rows if r.system == system]) for system in order],
        rows=rows, exclusions=exclusions, skipped=skipped, plots=plots)
    report.wall_seconds = time.monotonic() - started
    _write(report, out_dir)
    return report


def _summary(system: str, rows: list[UtteranceScore]) -> SystemSummary:
    def mean(metric: str) -> float | None:
        values = [getattr(r, metric) for r in rows if getattr(r, metric) is not None]
        return float(np.mean(values)) if values else None

    return SystemSummary(system=system, bitrate=rows[0].bitrate, utterances=len(rows),
                         pesq_excluded=sum(r.pesq is None for r in rows), **{m: mean(m) for m in METRICS})


def _slug(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z]+", "_", name.replace("μ", "mu")).strip("_").lower()


def _save_examples(out_dir: Path, utt: Utterance, outputs: dict[str, tuple[np.ndarray, float | None]],
                   sample_rate: int) -> str:
    """Spectrograms of original / model / Codec2 2400 (when run), and every system's wav."""
    stem = _slug(utt.utterance if utt.utterance.startswith(utt.speaker) else f"{utt.speaker}_{utt.utterance}")
    for system, (audio, _) in outputs.items():
        save_audio(out_dir / "wavs" / f"{stem}_{_slug(system)}.wav", audio, sample_rate, overwrite=True)
    shown = [s for s in (ORIGINAL, MODEL_SAMPLED, "Codec2 2400") if s in outputs]
    path = save_spectrograms(out_dir / f"spectrogram_{stem}.png", [(s, outputs[s][0]) for s in shown],
                             sample_rate, title=f"{utt.speaker} {utt.utterance}")
    return path.name


def _write(report: ReconstructionReport, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    columns = [f.name for f in fields(UtteranceScore)]
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=columns)
    writer.writeheader()
    for row in report.rows:
        writer.writerow({key: "" if value is None else value for key, value in asdict(row).items()})
    write_atomic(out_dir / "per_utterance.csv", table.getvalue())
    write_atomic(out_dir / "reconstruction.md", report.markdown())
    write_atomic(out_dir / "reconstruction.json", json.dumps(asdict(report), indent=2, ensure_ascii=False))


@torch.no_grad()
def log_reconstructions(writer, model: VQVAE, waves: list[np.ndarray], speaker_ids: list[int], tags: list[str],
                        step: int, sample_rate: int, seconds: float = 1.0) -> None:
    """Write to TensorBoard each utterance's original and its reconstruction (sampled, folded, the first
    ``seconds``), with their spectrograms, under ``reconstruction/<tag>/``. waves: [T_i] each."""
    hop = model.hop_length
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    cut = [w[: int(seconds * sample_rate) // hop * hop] for w in waves]
    keep = [i for i, w in enumerate(cut) if len(w)]
    if not keep:
        return
    codes = [model.encode(torch.from_numpy(cut[i]).to(device)[None, None]).codes[0] for i in keep]
    config = GenerationConfig(greedy=False, segment_frames=max(1, round(SEGMENT_SECONDS * sample_rate / hop)),
                              overlap_frames=OVERLAP_FRAMES)
    ids = torch.tensor([speaker_ids[i] for i in keep], dtype=torch.long, device=device)
    # a generator of its own: logging must not move the training RNG
    generated = model.decode(codes, ids, config, torch.Generator(device=device).manual_seed(step))
    model.train(was_training)
    for i, audio in zip(keep, generated):
        original, audio = cut[i], audio.float().cpu().numpy()
        for name, wav in (("original", original), ("reconstructed", audio)):
            tag = f"reconstruction/{tags[i]}/{name}"
            writer.add_audio(tag, torch.from_numpy(wav)[None], step, sample_rate=sample_rate)
            writer.add_image(f"{tag}_spectrogram", spectrogram_image(wav, sample_rate, f"{tags[i]} {name}"), step)
