"""How much the decoder relies on its latents, and on its speaker embedding (the latent-usage section of
``vqspeech report``).

Each held-out utterance is scored by the decoder's reconstruction score (the WaveNet's teacher-forced
cross-entropy of the μ-law samples in nats per sample; the parallel decoder's spectral loss) with its true
conditioning, then with one part of it replaced:

* "shuffled in time": the utterance's own latent frames in a random order (what the latents say, not when);
* "other utterance": the latents of the next utterance in the list, repeated or cut to this one's length
  (left out with a single utterance);
* "zero": every latent frame zero (a VAE's prior mean, but no codebook vector of VQ: compare bottlenecks on the
  first two);
* "other speaker": the true latents with the next speaker's embedding (when the model knows two or more).

The rise of the loss over the true conditioning measures how much the decoder relies on that part: in nats
per sample, and (a cross-entropy only) times sample_rate / ln 2 in bit/s, beside the bottleneck's rate (log2 K × frame rate for VQ;
for a VAE the KL of its posterior on these utterances, the rate a sampled latent costs; unbounded for an
AE). The latents scored are what inference decodes: VQ codes, the VAE's posterior mean, the AE's z_e.
A decoder that ignores its latents (posterior collapse) shows gaps near zero. A wrong latent misleads a decoder
that relies on it, so the gap is not the information the latents carry: it can exceed it, and the nominal
rate (a trained VQ run here: 2000 bit/s nominal, gaps of 10–30 kbit/s).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from vqspeech.models import VQVAE
from vqspeech.models.pitch import PitchCodes

TRUE, SHUFFLED, OTHER_UTTERANCE, ZERO, OTHER_SPEAKER = (
    "true latents", "latents shuffled in time", "latents of another utterance", "latents zero",
    "another speaker's embedding")
ABLATIONS = (SHUFFLED, OTHER_UTTERANCE, ZERO, OTHER_SPEAKER)


@dataclass
class LatentUsage:
    """Teacher-forced losses under each conditioning, and the bottleneck's rate.

    Attributes:
        bottleneck: its kind ("vq", "vae", "ae").
        loss: conditioning (TRUE and the ABLATIONS measured) -> the decoder's score per sample (``score_name``),
            over every scored sample.
        nominal_bitrate: log2 K × frame rate (VQ), None for a continuous bottleneck.
        kl_bitrate: a VAE's KL on these utterances, bit/s (None otherwise).
    """

    bottleneck: str
    sample_rate: int
    frame_rate: float
    utterances: int
    seconds: float
    loss: dict[str, float]
    nominal_bitrate: float | None
    kl_bitrate: float | None
    score_name: str = "cross-entropy, nats/sample, teacher-forced"
    in_nats: bool = True  # the score is a cross-entropy in nats per sample (the decoder's score_in_nats)

    def gap(self, condition: str) -> float:
        """Score rise over the true latents (nats per sample for the WaveNet)."""
        return self.loss[condition] - self.loss[TRUE]

    def gap_bitrate(self, condition: str) -> float | None:
        """The same gap in bit/s (None when the score is not a cross-entropy in nats)."""
        return self.gap(condition) * self.sample_rate / math.log(2) if self.in_nats else None

    def rate(self) -> str:
        if self.nominal_bitrate is not None:
            return f"{self.nominal_bitrate:.0f} bit/s nominal (log2 K × {self.frame_rate:g} frames/s)"
        if self.kl_bitrate is not None:
            return f"{self.kl_bitrate:.0f} bit/s (the VAE posterior's KL on these utterances)"
        return "unbounded (continuous autoencoder latents)"

    def markdown(self) -> str:
        lines = ["## Latent usage", "",
                 f"Reconstruction score ({self.score_name}) on {self.utterances} test utterances ({self.seconds:.1f} s) with the true "
                 f"conditioning and with one part of it replaced; the rise measures how much the decoder relies on "
                 f"that part (wrong latents mislead, so it can exceed what they carry). "
                 f"Bottleneck {self.bottleneck}, rate {self.rate()}.", "",
                 "| conditioning | score | gap | gap (bit/s) |", "|---|---|---|---|",
                 f"| {TRUE} | {self.loss[TRUE]:.4f} | – | – |"]
        lines += [f"| {c} | {self.loss[c]:.4f} | {self.gap(c):.4f} | "
                  f"{'–' if self.gap_bitrate(c) is None else f'{self.gap_bitrate(c):.0f}'} |"
                  for c in ABLATIONS if c in self.loss]
        return "\n".join(lines) + "\n"


@torch.no_grad()
def latent_usage(model: VQVAE, waves: Sequence[np.ndarray], speaker_ids: Sequence[int], sample_rate: int,
                 seed: int = 0) -> LatentUsage:
    """Score ``waves`` (float32 [T_i], each cut to a multiple of the hop; shorter than one hop: left out) with
    their speakers ``speaker_ids`` under every conditioning of the module docstring, in eval mode."""
    model.eval()
    hop, device = model.hop_length, model.device
    kept = [(torch.from_numpy(np.ascontiguousarray(w[: len(w) // hop * hop], dtype=np.float32)), s)
            for w, s in zip(waves, speaker_ids) if len(w) >= hop]
    if not kept:
        raise ValueError("no utterance as long as one latent frame")
    generator = torch.Generator().manual_seed(seed)
    encoded = [model.encode(w.to(device)[None, None]) for w, _ in kept]
    latents = [e.quantized for e in encoded]  # [1, D, F_i]
    n_speakers = len(model.speakers.names)
    sums: dict[str, float] = {}
    kl_nats = None  # summed over frames, for a bottleneck that reports its KL
    for i, ((wav, speaker), z) in enumerate(zip(kept, latents)):
        target = model.target_signal(wav.to(device)[None, None])
        frames = z.shape[-1]
        # a pitch stream is kept as it is under every conditioning: only the content codes vary
        pitch = model.encode_pitch(wav.numpy()) if model.pitch is not None else None
        own = torch.tensor([speaker], device=device)
        conditions = {TRUE: (z, own),
                      SHUFFLED: (z[..., torch.randperm(frames, generator=generator).to(device)], own),
                      ZERO: (torch.zeros_like(z), own)}
        if len(kept) > 1:
            conditions[OTHER_UTTERANCE] = (_fit(latents[(i + 1) % len(latents)], frames), own)
        if n_speakers > 1:
            conditions[OTHER_SPEAKER] = (z, (own + 1) % n_speakers)
        for name, (cond, spk) in conditions.items():
            sums[name] = sums.get(name, 0.0) + _score(model, target, cond, spk, pitch) * target.shape[-1]
        kl = encoded[i].metrics.get("kl_nats_per_frame")
        if kl is not None:
            kl_nats = (kl_nats or 0.0) + float(kl) * frames
    samples = sum(len(w) for w, _ in kept)
    frame_rate = sample_rate / hop
    bits = model.bottleneck.bits_per_frame()
    return LatentUsage(bottleneck=model.bottleneck.kind, sample_rate=sample_rate, frame_rate=frame_rate,
                       utterances=len(kept), seconds=samples / sample_rate,
                       loss={k: v / samples for k, v in sums.items()},
                       nominal_bitrate=None if bits is None else bits * frame_rate,
                       kl_bitrate=None if kl_nats is None else kl_nats / (samples / hop) * frame_rate / math.log(2),
                       score_name=model.decoder.score_name, in_nats=model.decoder.score_in_nats)


def _fit(latents: Tensor, frames: int) -> Tensor:
    """latents [1, D, F'] repeated along time and cut to [1, D, frames]."""
    return latents.repeat(1, 1, math.ceil(frames / latents.shape[-1]))[..., :frames]


def _score(model: VQVAE, target: Tensor, latents: Tensor, speaker_ids: Tensor,
           pitch: PitchCodes | None = None) -> float:
    """The decoder's reconstruction score of target Tensor[1, 1, T] from latents [1, D, F] (with the
    utterance's pitch stream, for a model that has one)."""
    if pitch is not None:
        latents = model.append_pitch(latents, pitch.codes[None], pitch.register[None])
    return model.decoder.loss(target, latents, model.speakers(speaker_ids)).score.float().item()
