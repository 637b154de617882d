"""What the prior measures: the true information rate of the codes.

* cross-entropy of the test codes under the prior, in bits per code and bit/s: the rate an entropy coder
  reaches with it (``vqspeech compress`` writes files of that size);
* beside the unigram entropy rate (the codes' histogram, no context) and the nominal rate (log2 K per code);
* the speaker gap: the cross-entropy without the speaker condition minus with it, in bit/s: how much of
  the voice the codes still carry (0 for codes free of it);
* bits per merged unit: an utterance's bits divided by its number of runs of repeated codes, the unit
  GSLM's LMs are scored on (their sequences merge repeats), for comparison with unit LMs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from vqspeech.codes import CodeSplit
from vqspeech.models.prior import Prior

LN2 = math.log(2)


@torch.inference_mode()
def sequence_nats(prior: Prior, split: CodeSplit, picks: Sequence[int], conditioned: bool = True) -> list[float]:
    """−log p(codes) in nats of each picked utterance (whole, from BOS), with or without its speaker."""
    was_training = prior.training
    prior.eval()
    out = []
    for i in picks:
        codes = split.codes[i][None].to(prior.device)
        speaker = split.speaker_condition(i).to(prior.device) if conditioned else None
        out.append(-float(prior.log_probs(codes, speaker).double().sum()))
    prior.train(was_training)
    return out


def merged_units(codes: torch.Tensor) -> int:
    """The number of runs of repeated codes in LongTensor[F] (GSLM's deduplicated units)."""
    return int(torch.unique_consecutive(codes).numel()) if len(codes) else 0


def unigram_bits(split: CodeSplit) -> float:
    """The entropy of the split's code histogram, bits per code."""
    counts = torch.bincount(torch.cat(split.codes), minlength=split.codebook_size).double()
    p = counts[counts > 0] / counts.sum()
    return float(-(p * p.log2()).sum())


@dataclass
class PriorReport:
    """The prior on one split. Rates are bit/s at ``frame_rate`` codes per second."""

    split: str
    utterances: int
    frames: int
    frame_rate: float
    codebook_size: int
    bits_per_code: float           # with the speaker condition
    unconditioned_bits_per_code: float
    unigram_bits_per_code: float
    bits_per_merged_unit: float
    merged_units_per_second: float

    @property
    def bits_per_second(self) -> float:
        return self.bits_per_code * self.frame_rate

    @property
    def unigram_bits_per_second(self) -> float:
        return self.unigram_bits_per_code * self.frame_rate

    @property
    def nominal_bits_per_second(self) -> float:
        return math.log2(self.codebook_size) * self.frame_rate

    @property
    def speaker_gap_bits_per_second(self) -> float:
        return (self.unconditioned_bits_per_code - self.bits_per_code) * self.frame_rate

    def rows(self) -> list[tuple[str, str, str]]:
        return [
            ("prior cross-entropy", f"{self.bits_per_code:.3f}", f"{self.bits_per_second:.0f}"),
            ("prior, no speaker", f"{self.unconditioned_bits_per_code:.3f}",
             f"{self.unconditioned_bits_per_code * self.frame_rate:.0f}"),
            ("unigram entropy", f"{self.unigram_bits_per_code:.3f}", f"{self.unigram_bits_per_second:.0f}"),
            ("nominal (log2 K)", f"{math.log2(self.codebook_size):.3f}", f"{self.nominal_bits_per_second:.0f}"),
        ]

    def markdown(self) -> str:
        lines = [f"### Prior on the {self.split} codes ({self.utterances} utterances, {self.frames} codes at "
                 f"{self.frame_rate:g} Hz, K = {self.codebook_size})", "",
                 "| rate | bits/code | bit/s |", "|---|---|---|"]
        lines += [f"| {a} | {b} | {c} |" for a, b, c in self.rows()]
        lines += ["", f"- prior / unigram: {self.bits_per_code / self.unigram_bits_per_code:.3f}",
                  f"- speaker gap (no speaker − speaker): {self.speaker_gap_bits_per_second:.1f} bit/s",
                  f"- merged repeats: {self.bits_per_merged_unit:.3f} bits per unit, "
                  f"{self.merged_units_per_second:.1f} units/s"]
        return "\n".join(lines)


def evaluate_prior(prior: Prior, split: CodeSplit, name: str = "test") -> PriorReport:
    """Score every non-empty utterance of ``split`` with and without its speaker."""
    picks = [i for i, c in enumerate(split.codes) if len(c)]
    frames = sum(len(split.codes[i]) for i in picks)
    if not frames:
        raise ValueError(f"the {name} split has no codes to score")
    conditioned = sum(sequence_nats(prior, split, picks, True))
    unconditioned = sum(sequence_nats(prior, split, picks, False))
    units = sum(merged_units(split.codes[i]) for i in picks)
    return PriorReport(split=name, utterances=len(picks), frames=frames, frame_rate=split.frame_rate,
                       codebook_size=split.codebook_size, bits_per_code=conditioned / frames / LN2,
                       unconditioned_bits_per_code=unconditioned / frames / LN2,
                       unigram_bits_per_code=unigram_bits(split), bits_per_merged_unit=conditioned / units / LN2,
                       merged_units_per_second=units / frames * split.frame_rate)


def run_prior_report(run, split: str = "test", progress: bool = False) -> PriorReport | None:
    """The prior section of a run's reports: its prior (RUN/prior) on the ``split`` codes, None without a prior.

    Raises:
        UserError: a prior trained on another checkpoint's codes.
    """
    from vqspeech.codes import extract_codes, load_codes
    from vqspeech.runs import load_prior

    if not (run.run_dir / "prior" / "checkpoints").is_dir():
        return None
    prior = load_prior(run, device=run.model.device)
    return evaluate_prior(prior.model, load_codes(extract_codes(run, progress=progress), split), split)
