"""Training throughput and peak memory of a recipe's config on this machine (a benchmark, not a test).

    python tools/bench_train.py [--recipe recipes/demo] [--steps 20] [override ...]

Times optimizer steps on random crops of real audio when the recipe's corpus exists (else speech-like
noise), after warm-up, and prints audio-seconds trained per wall-second and the peak resident memory.
The steps run as the training loop runs them: in ``train.precision``'s autocast, with
``train.checkpoint_activations`` and ``train.compile`` applied (the time compilation took is printed).

At r9y9/wavenet_vocoder's demo size (20 layers in 2 stacks, 64 residual / 128 gate / 64 skip, batch 4 × 8192):
    python tools/bench_train.py model.decoder.residual_channels=64 model.decoder.skip_channels=64 \
        model.decoder.layers_per_stack=10 model.decoder.stacks=2 train.batch_size=4 train.crop_samples=8192 \
        [train.precision=bf16] [train.compile=true] [train.checkpoint_activations=block]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import torch

from vqspeech.config import compose_recipe
from vqspeech.data.corpus import Corpus
from vqspeech.data.dataset import RandomCrops, crop_loader, load_split
from vqspeech.device import pick_device
from vqspeech.errors import UserError
from vqspeech.models import build_model
from vqspeech.models.builders import model_kwargs
from vqspeech.training.trainer import weighted_loss
from vqspeech.training.precision import Precision, resolve, timing_step


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_steps(model, optimizer, batch, tcfg, device: torch.device, steps: int, warmup: int,
               precision: Precision) -> list[float]:
    """Wall seconds of each of ``steps`` optimizer steps after ``warmup`` untimed ones; batch() -> (wav, speaker).
    Step 0 (warm-up) includes compilation when the model is compiled."""
    times = []
    for i in range(warmup + steps):
        wav, spk = batch()
        wav, spk = wav.to(device), spk.to(device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        with precision.autocast():
            out = model(wav, spk)
            loss = weighted_loss(out.losses, tcfg.loss_weights)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg.grad_clip)
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="recipes/demo")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    cfg = compose_recipe(args.recipe, args.overrides)
    tcfg = cfg.train
    device = pick_device(tcfg.device)
    torch.manual_seed(0)
    try:
        corpus = Corpus.from_config(cfg.data)
        split = load_split(corpus.split("train")[:200], corpus.speakers, cfg.data.sample_rate, progress=False,
                           pcm16=True)
        speakers, source = corpus.speakers, f"{len(split.waves)} utterances of {corpus.root}"
        batches = iter(crop_loader(RandomCrops(split, tcfg.crop_samples, 0), tcfg.batch_size, 0, 0, False))
    except UserError:
        speakers, source, batches = ["a", "b", "c", "d"], "random noise (no corpus found)", None
    model = build_model(model_kwargs(cfg.model, speakers)).to(device)
    model.decoder.activation_checkpointing = tcfg.checkpoint_activations
    optimizer = torch.optim.Adam(model.parameters(), lr=tcfg.lr)
    shape = (tcfg.batch_size, 1, tcfg.crop_samples)

    def noise():
        return (0.1 * torch.randn(shape, device=device)).clamp(-1, 1), torch.zeros(shape[0], dtype=torch.long,
                                                                                    device=device)

    precision, choice = resolve(tcfg.precision, device, lambda: timing_step(
        model, noise, lambda m, b: weighted_loss(m(*b).losses, tcfg.loss_weights)),
        {"model": model_kwargs(cfg.model, speakers), "batch": list(shape), "tool": "bench_train"})
    net = torch.compile(model) if tcfg.compile else model
    base_rss = peak_rss_mb()

    def batch():
        if batches is not None:
            return next(batches)
        wav = (0.1 * torch.randn(tcfg.batch_size, 1, tcfg.crop_samples)).clamp(-1, 1)
        return wav, torch.randint(len(speakers), (tcfg.batch_size,))

    all_times = time_steps(net, optimizer, batch, tcfg, device, args.steps, args.warmup, precision)
    step_times = all_times[args.warmup:]
    per_step = sum(step_times) / len(step_times)
    audio_per_step = tcfg.batch_size * tcfg.crop_samples / cfg.data.sample_rate
    print(f"recipe {args.recipe} {' '.join(args.overrides)}".rstrip())
    print(f"device {device}, torch threads {torch.get_num_threads()}, data: {source}")
    print(model.summary())
    print(f"batch {tcfg.batch_size} × {tcfg.crop_samples} samples = {audio_per_step:.3f} s of audio per step")
    if choice is not None:
        print(choice.describe())
    print(f"precision {precision.name}, compile {bool(tcfg.compile)}, checkpoint_activations "
          f"{tcfg.checkpoint_activations}")
    if tcfg.compile:
        print(f"first step (compilation) {all_times[0]:.1f} s")
    print(f"step time {1000 * per_step:.0f} ms (mean of {len(step_times)} after {args.warmup} warm-up)")
    print(f"throughput {audio_per_step / per_step:.2f} audio-seconds per wall-second "
          f"({1 / per_step:.2f} steps/s)")
    print(f"peak memory: {peak_rss_mb():.0f} MB resident ({peak_rss_mb() - base_rss:.0f} MB above the built model)"
          + (f", CUDA {torch.cuda.max_memory_allocated() / 2**20:.0f} MB" if device.type == "cuda" else ""))


if __name__ == "__main__":
    try:
        main()
    except UserError as exc:
        sys.exit(f"error: {exc}")
