"""A short report on a trained run: held-out loss, codebook health, bitrate, latent usage, and reconstructed
samples.

On the test split it reports the teacher-forced reconstruction loss, codebook usage (distinct codes,
perplexity), the bitrate (frame rate × log2 K, and the entropy rate of the codes), how much the decoder relies
on its latents and speaker embedding (:mod:`vqspeech.eval.latent_usage`), the learned prior's rates when the
run has one (:mod:`vqspeech.eval.prior`), then reconstructs a
few test utterances by autoregressive generation with their own speaker and writes them beside the
originals with the log-mel L1 distance between the two: a light preset of the reconstruction evaluation
(:class:`vqspeech.eval.reconstruction.Evaluation`), which ``vqspeech evaluate-reconstruction`` runs in full.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from vqspeech.data.audio import save_audio
from vqspeech.data.corpus import Utterance
from vqspeech.data.dataset import load_split
from vqspeech.errors import UserError
from vqspeech.eval.latent_usage import LatentUsage, latent_usage
from vqspeech.eval.prior import PriorReport, run_prior_report
from vqspeech.eval.reconstruction import MODEL_SAMPLED, ORIGINAL, Evaluation
from vqspeech.files import write_atomic
from vqspeech.models.scoring import teacher_forced_loss
from vqspeech.models.generation import GenerationConfig, recipe_sampling
from vqspeech.pages import listen, write_report
from vqspeech.quantization import code_usage
from vqspeech.reference import Standing, run_standing
from vqspeech.runs import load_run


@dataclass
class Reconstruction:
    utterance: str
    speaker: str
    seconds: float
    log_mel_l1: float
    original: str
    reconstructed: str


@dataclass
class RunReport:
    checkpoint: str
    step: int
    test_utterances: int
    test_loss: float            # the decoder's reconstruction score (WaveNet: teacher-forced cross-entropy, nats/sample)
    bottleneck: str             # vq | vae | ae
    used_codes: int | None      # distinct codes over the test split (None, as the next three: continuous latents)
    codebook_size: int
    perplexity: float | None    # exp entropy of the test code histogram
    frame_rate: float           # codes per second
    bitrate: float | None       # frame_rate × log2 K, bit/s
    entropy_bitrate: float | None  # frame_rate × entropy (bits) of the code histogram, bit/s
    generation_rtf: float       # generation wall time ÷ audio duration
    sampling: str = ""          # the sampling settings the reconstructions were generated with
    test_loss_name: str = "cross-entropy, nats/sample, teacher-forced"  # what test_loss measures
    latent_usage: LatentUsage | None = None
    reconstructions: list[Reconstruction] = field(default_factory=list)
    prior: PriorReport | None = None  # the learned prior (RUN/prior) on the test codes, when there is one
    reference: Standing | None = None  # the run against the shipped run's curve at the same audio-hours read
    pitch_bitrate: float | None = None  # the pitch stream beside the codes, bit/s (None: the model has none)

    def markdown(self) -> str:
        lines = ["# vqspeech run report", "", f"checkpoint `{self.checkpoint}` (step {self.step})", "",
                 "| measure | value |", "|---|---|",
                 f"| test utterances | {self.test_utterances} |",
                 f"| test reconstruction loss ({self.test_loss_name}) | {self.test_loss:.4f} |",
                 f"| bottleneck | {self.bottleneck} |"]
        if self.bitrate is None:
            lines += [f"| codes | continuous latents at {self.frame_rate:g} frames/s (no codebook) |"]
        else:
            lines += [f"| codes used on test | {self.used_codes} / {self.codebook_size} |",
                      f"| code perplexity on test | {self.perplexity:.1f} |",
                      f"| bitrate (frame rate × log2 K) | {self.bitrate:.0f} bit/s |",
                      f"| entropy rate of the codes | {self.entropy_bitrate:.0f} bit/s |"]
            if self.pitch_bitrate is not None:
                lines += [f"| pitch stream | {self.pitch_bitrate:.0f} bit/s (with the codes: "
                          f"{self.bitrate + self.pitch_bitrate:.0f} bit/s) |"]
        lines += [f"| generation real-time factor (this machine) | {self.generation_rtf:.1f} |",
                  f"| generation (the recipe's settings) | {self.sampling} |", ""]
        if self.reference is not None:
            lines += [f"**{self.reference.describe()}**", ""]
        if self.prior is not None:
            lines += [self.prior.markdown(), ""]
        if self.latent_usage is not None:
            lines += [self.latent_usage.markdown()]
        lines += ["| utterance | speaker | seconds | log-mel L1 | original | reconstruction |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {r.utterance} | {r.speaker} | {r.seconds:.2f} | {r.log_mel_l1:.3f} | "
                  f"{listen(r.original, r.original)} | {listen(r.reconstructed, r.reconstructed)} |"
                  for r in self.reconstructions]
        return "\n".join(lines) + "\n"


@torch.no_grad()
def report_run(run_dir: str | Path | None = None, checkpoint: str | Path | None = None,
               out_dir: str | Path | None = None, n_samples: int = 2, seconds: float = 1.5,
               progress: bool = True, device: torch.device | str = "cpu", usage_utterances: int = 16,
               usage_seconds: float = 4.0) -> RunReport:
    """Score the test split and reconstruct ``n_samples`` test utterances (first ``seconds`` of each), on
    ``device``. The reconstructions are the reconstruction evaluation's loop in a light preset: one sampled,
    unfolded decoding per utterance, no Codec2, no μ-law, no DNSMOS. The latent-usage section scores the first
    ``usage_utterances`` test utterances, each cut to ``usage_seconds``."""
    run = load_run(run_dir, checkpoint, device)
    model, cfg = run.model, run.config
    sample_rate = run.sample_rate
    if n_samples > 0 and int(seconds * sample_rate) < model.hop_length:
        raise UserError(f"--seconds {seconds} is shorter than one code ({model.hop_length} samples = "
                        f"{1000 * model.hop_length / sample_rate:g} ms); reconstruct at least that much")
    corpus = run.corpus()
    test = load_split(corpus.split("test"), model.speakers.names, sample_rate, progress, "load test audio",
                      loudness_lufs=model.loudness_lufs)  # at the model's input level, as in training
    if not test.waves:
        raise UserError(f"corpus {corpus.root} has no usable test utterances of the model's speakers")
    out_dir = Path(out_dir) if out_dir is not None else run.run_dir / "report"

    hop = model.hop_length
    scored = teacher_forced_loss(model, test, progress=progress)
    usage = code_usage(scored.code_counts, sample_rate / hop) if scored.code_counts is not None else None
    latents = latent_usage(model, [w[: int(usage_seconds * sample_rate)] for w in test.waves[:usage_utterances]],
                           test.speaker_ids[:usage_utterances], sample_rate) if usage_utterances else None

    def save_example(utt: Utterance, outputs: dict[str, tuple[np.ndarray, float | None]]) -> tuple[str, str]:
        stem = f"{utt.speaker}_{utt.utterance}"
        original = save_audio(out_dir / f"{stem}_original.wav", outputs[ORIGINAL][0], sample_rate, overwrite=True)
        recon = save_audio(out_dir / f"{stem}_reconstructed.wav", outputs[MODEL_SAMPLED][0], sample_rate,
                           overwrite=True)
        return original.name, recon.name

    shown = min(n_samples, len(test.waves))
    generation = GenerationConfig(**recipe_sampling(cfg))
    evaluation = Evaluation(model, sample_rate, {MODEL_SAMPLED: generation}, save_example=save_example,
                            examples=shown, progress=progress)
    for utt, wav in zip(test.utterances[:shown], test.waves[:shown]):
        evaluation.add([(utt, wav[: int(seconds * sample_rate) // hop * hop])])  # one at a time, as generated
    sampled = [r for r in evaluation.rows if r.system == MODEL_SAMPLED]
    recons = [Reconstruction(utterance=r.utterance, speaker=r.speaker, seconds=r.seconds, log_mel_l1=r.log_mel_l1,
                             original=original, reconstructed=recon)
              for r, (original, recon) in zip(sampled, evaluation.examples_saved)]

    report = RunReport(checkpoint=str(run.checkpoint), step=run.step, test_utterances=len(test.waves),
                       test_loss=scored.per_sample or 0.0, test_loss_name=model.decoder.score_name,
                       bottleneck=model.bottleneck.kind,
                       used_codes=usage and int(usage.used_codes), codebook_size=model.bottleneck.codebook_size,
                       perplexity=usage and float(usage.perplexity), frame_rate=sample_rate / hop,
                       bitrate=usage and usage.bitrate, entropy_bitrate=usage and float(usage.entropy_rate),
                       generation_rtf=evaluation.generation_rtf, latent_usage=latents,
                       sampling=model.decoder.describe_generation(generation),
                       reconstructions=recons, prior=run_prior_report(run, progress=progress),
                       reference=run_standing(run),
                       pitch_bitrate=model.pitch.bits_per_second(sample_rate) if model.pitch is not None else None)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_report(out_dir, "report", report.markdown())
    write_atomic(out_dir / "report.json", json.dumps(asdict(report), indent=2))
    return report
