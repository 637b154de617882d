"""Speech from nothing: codes drawn from the prior, decoded by the WaveNet decoder (``vqspeech sample``).

prior (cached steps, one code at a time; optionally after a prompt's codes, GSLM's continuation) -> codes
LongTensor[n, F] -> VQVAE.decode (folded generation, as convert) -> waveforms. :func:`sample_statistics`
says how data-like the codes are: their cross-entropy under the prior, the KL of their histogram from the
test codes', and their mean run length of repeated codes beside the data's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from vqspeech.device import single_thread
from vqspeech.eval.prior import merged_units
from vqspeech.models.prior import Prior


@torch.inference_mode()
def sample_codes(prior: Prior, frames: int, n: int = 1, speaker: torch.Tensor | None = None,
                 temperature: float = 1.0, prompt: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw ``n`` code sequences of ``frames`` codes, LongTensor[n, frames].

    Args:
        speaker: the prior's speaker input for the n rows (LongTensor[n] or Tensor[n, V]; None: no speaker).
        temperature: of the softmax; 0 takes the most likely code at every step (argmax).
        prompt: LongTensor[P] codes every row starts with (P < frames), continued by the prior.
    """
    if temperature < 0:
        raise ValueError(f"the temperature must be 0 or more, got {temperature}")
    prompt = torch.empty(0, dtype=torch.long) if prompt is None else prompt.cpu()
    if len(prompt) >= frames:
        raise ValueError(f"the prompt holds {len(prompt)} codes, not fewer than the {frames} to generate")
    was_training = prior.training
    prior.eval()
    device = prior.device
    stepper = prior.stepper(None if speaker is None else speaker.to(device), n)
    out = torch.empty(n, frames, dtype=torch.long)
    out[:, : len(prompt)] = prompt
    previous = torch.full((n,), prior.bos, dtype=torch.long, device=device)
    with single_thread():
        for t in range(frames):
            logits = stepper.step(previous).float()
            if t < len(prompt):
                code = prompt[t].expand(n).to(device)
            elif temperature == 0:
                code = logits.argmax(-1)
            else:
                probs = torch.softmax(logits / temperature, dim=-1)
                code = torch.multinomial(probs.cpu(), 1, generator=generator)[:, 0].to(device)
            out[:, t] = code.cpu()
            previous = code
    prior.train(was_training)
    return out


def histogram(codes: list[torch.Tensor] | torch.Tensor, size: int) -> torch.Tensor:
    flat = torch.cat([c.reshape(-1) for c in codes]) if isinstance(codes, list) else codes.reshape(-1)
    return torch.bincount(flat, minlength=size).double()


def histogram_kl(sampled: torch.Tensor, reference: torch.Tensor, pseudo_count: float = 0.5) -> float:
    """KL(sampled ‖ reference) in nats of two code histograms (counts, Tensor[K]), each smoothed by
    ``pseudo_count`` per code so that a code one side never used does not make it infinite."""
    p = (sampled + pseudo_count) / (sampled + pseudo_count).sum()
    q = (reference + pseudo_count) / (reference + pseudo_count).sum()
    return float((p * (p / q).log()).sum())


def mean_run_length(codes: list[torch.Tensor] | torch.Tensor) -> float:
    """Mean length of the runs of repeated codes (codes per merged unit)."""
    rows = list(codes)
    units = sum(merged_units(r) for r in rows)
    return sum(len(r) for r in rows) / units if units else math.nan


@dataclass
class SampleStatistics:
    """How data-like sampled codes are, at one temperature."""

    temperature: float
    bits_per_code: float        # their cross-entropy under the prior (with the speaker)
    histogram_kl_nats: float    # KL(samples' code histogram ‖ the test codes')
    mean_run_length: float
    data_mean_run_length: float
    dnsmos_ovrl: float | None = None


@torch.inference_mode()
def sample_statistics(prior: Prior, codes: torch.Tensor, speaker: torch.Tensor | None, test_codes: list[torch.Tensor],
                      temperature: float, skip: int = 0) -> SampleStatistics:
    """Statistics of sampled codes LongTensor[n, F] (their first ``skip`` codes, a prompt, left out)."""
    log_probs = prior.log_probs(codes.to(prior.device), None if speaker is None else speaker.to(prior.device))
    generated = codes[:, skip:]
    bits = -float(log_probs[:, skip:].double().mean()) / math.log(2)
    size = prior.codebook_size
    return SampleStatistics(temperature=temperature, bits_per_code=bits,
                            histogram_kl_nats=histogram_kl(histogram(generated, size), histogram(test_codes, size)),
                            mean_run_length=mean_run_length(generated), data_mean_run_length=mean_run_length(test_codes))


def write_samples(run, prior_dir, out: Path, speaker: str, seconds: float, n: int, temperatures: list[float],
                  prompt: str | None = None, prompt_seconds: float = 2.0, overwrite: bool = False,
                  dnsmos: bool = True, seed: int = 0, progress: bool = False) -> str:
    """Sample ``n`` utterances of ``seconds`` per temperature in ``speaker``'s voice (after ``prompt``'s first
    ``prompt_seconds``, when given), decode them, write out/<sample|prompt>_T<t>_<i>.wav, the codes
    (out/<sample|prompt>_T<t>_codes.pt, LongTensor[n, F]) and out/samples.md with its page out/samples.html (prompts.md, prompts.html).
    Returns the markdown.

    Raises:
        UserError: an unknown speaker, files in the way (without ``overwrite``), a prompt that cannot be read
            or is not shorter than the samples.
    """
    from vqspeech.codes import extract_codes, load_codes, speaker_vectors
    from vqspeech.data.audio import load_audio, save_audio
    from vqspeech.errors import UserError
    from vqspeech.eval.prior import sequence_nats
    from vqspeech.models.generation import SEGMENT_SECONDS, GenerationConfig, recipe_sampling
    from vqspeech.pages import listen, write_report
    from vqspeech.runs import load_prior
    from vqspeech.synthesis import decode_in_voices

    model = run.model
    if model.pitch is not None:
        raise UserError("this model has a pitch stream, and the prior samples content codes only; sample from a "
                        "model trained without model.pitch")
    index = model.speakers.index(speaker)
    prior = load_prior(run, prior_dir, model.device)
    frames = max(1, round(seconds * run.sample_rate / model.hop_length))
    stem = "prompt" if prompt else "sample"
    paths = {t: [out / f"{stem}_T{t:g}_{i}.wav" for i in range(n)] for t in temperatures}
    report_name = "prompts" if prompt else "samples"
    in_the_way = [p for t, ps in paths.items() for p in [*ps, out / f"{stem}_T{t:g}_codes.pt"] if p.exists()]
    in_the_way += [p for p in (out / f"{report_name}.md", out / f"{report_name}.html") if p.exists()]
    if in_the_way and not overwrite:
        raise UserError(f"{in_the_way[0]} already exists; pass --overwrite to replace the files in {out}")
    prompt_codes = None
    if prompt:
        wav = load_audio(prompt, run.sample_rate)[: int(prompt_seconds * run.sample_rate)]
        prompt_codes = model.encode_waveform(wav).cpu()
        if len(prompt_codes) >= frames:
            raise UserError(f"the prompt's {len(prompt_codes)} codes are not fewer than the {frames} of "
                            f"--seconds {seconds:g}; sample longer or shorten --prompt-seconds")
    vectors = speaker_vectors(run)
    ids = torch.full((n,), index, dtype=torch.long)
    condition = ids if vectors is None else vectors[ids]
    test = load_codes(extract_codes(run, progress=progress), "test")
    picks = [i for i, c in enumerate(test.codes) if len(c)]
    test_bits = sum(sequence_nats(prior.model, test, picks)) / max(1, test.frames) / math.log(2)
    # the voice's own test codes (the codes carry some voice): all the test codes when it has none
    own = [test.codes[i] for i in picks if test.speaker_ids[i] == index] or [test.codes[i] for i in picks]
    generation = GenerationConfig.from_seconds(SEGMENT_SECONDS, run.sample_rate, model.hop_length,
                                               **recipe_sampling(run.config))
    scorer = None
    if dnsmos:
        from vqspeech.eval.speech_metrics import Dnsmos

        scorer = Dnsmos()
        if scorer.unavailable:
            scorer = None
    draws = torch.Generator().manual_seed(seed)
    audio = torch.Generator().manual_seed(seed + 1)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for t in temperatures:
        codes = sample_codes(prior.model, frames, n, condition, t, prompt_codes, draws)
        stats = sample_statistics(prior.model, codes, condition, own, t,
                                  skip=0 if prompt_codes is None else len(prompt_codes))
        torch.save(codes, out / f"{stem}_T{t:g}_codes.pt")
        waves = decode_in_voices(model, [c.to(model.device) for c in codes], [speaker] * n, generation, audio, progress)
        scores = []
        for path, wave in zip(paths[t], waves):
            save_audio(path, wave, run.sample_rate, overwrite=True)
            if scorer is not None:
                scores.append(scorer(wave.cpu().float().numpy(), run.sample_rate)["ovrl"])
        stats.dnsmos_ovrl = sum(scores) / len(scores) if scores else None
        rows.append(stats)
    lines = [f"# {'Prompt continuations' if prompt else 'Samples'} from the prior", "",
             f"- run `{run.checkpoint}` (step {run.step}); prior `{prior.checkpoint}` (step {prior.step})",
             f"- voice {speaker}; {n} × {frames} codes ({frames * model.hop_length / run.sample_rate:.2f} s); "
             f"seed {seed}" + (f"; prompt `{prompt}`, its first {len(prompt_codes)} codes kept" if prompt else ""),
             f"- the test codes under the prior: {test_bits:.3f} bits/code; the histogram and run lengths are "
             f"compared with the {len(own)} test utterances of {speaker} (mean run length "
             f"{rows[0].data_mean_run_length:.2f} codes)", "",
             f"| temperature | bits/code under the prior | KL(histogram ‖ {speaker}'s test codes), nats | "
             f"mean run length | DNSMOS OVRL | samples |",
             "|---|---|---|---|---|---|"]
    for s in rows:
        mos = f"{s.dnsmos_ovrl:.2f}" if s.dnsmos_ovrl is not None else "n/a"
        clips = " ".join(listen(p.name, str(i)) for i, p in enumerate(paths[s.temperature]))
        lines.append(f"| {s.temperature:g} | {s.bits_per_code:.3f} | {s.histogram_kl_nats:.3f} | "
                     f"{s.mean_run_length:.2f} | {mos} | {clips} |")
    text = "\n".join(lines) + "\n"
    write_report(out, report_name, text)
    return text
