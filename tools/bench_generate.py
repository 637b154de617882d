"""Real-time factor of WaveNet generation on this machine, path by path (a benchmark, not a test; both
decoders' encode + decode speed: tools/bench_decode.py).

    python tools/bench_generate.py [--run RUN_DIR] [--seconds 10] [--segment 0.5] [--overlap 4]

RTF = wall time ÷ audio duration (below 1 is faster than real time). Paths measured on the demo
decoder (a trained run's weights with --run, else the demo config's freshly initialised weights; the
speed is the same):
  naive          re-run the decoder over its receptive field for every new sample (a few hundred
                 samples, extrapolated)
  cached         one utterance, one step per block per sample (models/generation.py)
  cached+folded  the same utterance cut into segments generated as one batch
  batch of 8     eight utterances at once, unfolded
  batch of 8 + folded
Then a profile of single steps: where the time goes.
"""

from __future__ import annotations

import argparse
import sys
import warnings
import time

import torch

from vqspeech.config import compose_recipe
from vqspeech.errors import UserError
from vqspeech.models import build_model
from vqspeech.models.builders import model_kwargs
from vqspeech.models.generation import GenerationConfig, IncrementalWaveNet, generate
from vqspeech.models.wavenet import SILENCE, WaveNetDecoder
from vqspeech.runs import load_run


def naive_seconds_per_sample(decoder, cond_latents, speaker, n_samples: int) -> float:
    """Per-sample time of generating by re-running the full network over the receptive field."""
    hop = decoder.hop_length
    window_frames = -(-decoder.receptive_field // hop) + 1
    samples = torch.full((1, n_samples + window_frames * hop), SILENCE, dtype=torch.long)
    started = time.perf_counter()
    with torch.inference_mode():
        for t in range(n_samples):
            frame = t // hop
            first = max(0, frame - window_frames + 1)
            window = samples[:, first * hop:(frame + 1) * hop]
            logits = decoder(window, cond_latents[..., first:frame + 1], speaker)
            samples[0, t] = logits[0, :, t - first * hop].argmax()
    return (time.perf_counter() - started) / n_samples


def rtf(decoder, conds, config, sample_rate: int) -> tuple[float, float]:
    audio = sum(c.shape[-1] for c in conds) * decoder.hop_length / sample_rate
    started = time.perf_counter()
    generate(decoder, conds, config, torch.Generator().manual_seed(0))
    wall = time.perf_counter() - started
    return wall / audio, audio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a trained run directory (default: fresh demo-config weights)")
    parser.add_argument("--recipe", default="recipes/demo")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the long utterance")
    parser.add_argument("--short", type=float, default=1.0, help="seconds generated unfolded (single / batch)")
    parser.add_argument("--segment", type=float, default=0.5, help="fold segment length, seconds")
    parser.add_argument("--overlap", type=int, default=8, help="fold overlap, frames (the CLI default)")
    parser.add_argument("--naive-samples", type=int, default=300)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", module="torch.profiler")
    torch.manual_seed(0)
    if args.run:
        run = load_run(args.run)
        model, sample_rate, source = run.model, run.config["data"]["sample_rate"], str(run.checkpoint)
    else:
        cfg = compose_recipe(args.recipe)
        model = build_model(model_kwargs(cfg.model, ["a", "b", "c", "d"])).eval()
        sample_rate, source = cfg.data.sample_rate, f"{args.recipe} config, untrained weights"
    decoder, hop = model.decoder, model.hop_length
    if not isinstance(decoder, WaveNetDecoder):
        sys.exit(f"error: {source} has a {decoder.kind} decoder; this profiles WaveNet generation "
                 f"(tools/bench_decode.py times either decoder)")
    frames_per_second = sample_rate / hop
    print(f"decoder: {source}; {len(decoder.blocks)} blocks × {decoder.channels} channels, receptive field "
          f"{decoder.receptive_field} samples; torch threads {torch.get_num_threads()}")

    def random_codes(n: int, frames: int) -> torch.Tensor:
        """What the bottleneck would transmit for n utterances: code indices, or continuous latents."""
        if model.bottleneck.discrete:
            return torch.randint(model.bottleneck.codebook_size, (n, frames))
        return torch.randn(n, model.encoder.latent_dim, frames)

    def conds(n: int, seconds: float) -> list[torch.Tensor]:
        with torch.inference_mode():
            frames = int(seconds * frames_per_second)
            codes = random_codes(n, frames)
            speakers = model.speakers(torch.arange(n) % len(model.speakers.names))
            return list(decoder.conditioning(model.bottleneck.decode(codes), speakers))

    segment = max(1, int(args.segment * frames_per_second))
    folded = GenerationConfig(segment_frames=segment, overlap_frames=args.overlap)
    plain = GenerationConfig()
    rows = []
    with torch.inference_mode():
        latents = model.bottleneck.decode(random_codes(1, 64))
        speaker = model.speakers(torch.tensor([0]))
    naive = naive_seconds_per_sample(decoder, latents, speaker, args.naive_samples) * sample_rate
    rows.append(("naive (re-run over the receptive field)", naive, f"{args.naive_samples} samples, extrapolated"))
    single, _ = rtf(decoder, conds(1, args.short), plain, sample_rate)
    rows.append(("cached, 1 utterance", single, f"{args.short:.1f} s"))
    fold, audio = rtf(decoder, conds(1, args.seconds), folded, sample_rate)
    n_segments = -(-int(args.seconds * frames_per_second) // segment)
    rows.append(("cached + folded, 1 utterance", fold,
                 f"{audio:.1f} s in {n_segments} segments of {args.segment} s, overlap {args.overlap} frames"))
    batch, audio = rtf(decoder, conds(8, args.short), plain, sample_rate)
    rows.append(("cached, batch of 8 utterances", batch, f"8 × {args.short:.1f} s"))
    batch_fold, audio = rtf(decoder, conds(8, args.seconds / 4), folded, sample_rate)
    rows.append(("cached + folded, batch of 8", batch_fold, f"8 × {args.seconds / 4:.1f} s"))

    print(f"\n{'path':44s} {'RTF':>9s} {'× faster than naive':>20s}  what")
    for name, value, what in rows:
        print(f"{name:44s} {value:9.3f} {naive / value:20.1f}  {what}")

    print("\nprofile of 200 steps at batch 1 (cached), top operators by self CPU time:")
    net = IncrementalWaveNet(decoder)
    with torch.inference_mode():
        net.start(torch.stack(conds(1, 1.0)))
        previous = torch.full((1,), SILENCE, dtype=torch.long)
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(200):
                logits = net.step(previous)
                previous = torch.multinomial(torch.softmax(logits, -1), 1)[:, 0]
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    print(f"operator time per step under the profiler: {total / 200:.0f} µs "
          f"({total / 200 / len(decoder.blocks):.1f} µs per block)")
    print(events.table(sort_by="self_cpu_time_total", row_limit=12))


if __name__ == "__main__":
    try:
        main()
    except UserError as exc:
        sys.exit(f"error: {exc}")
