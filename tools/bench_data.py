"""Does data loading keep up with training? Loader throughput against a recipe's consumption (a benchmark).

    python tools/bench_data.py [--recipe recipes/vctk] [--workers 0,1,2,4] [--batches 200] [override ...]

Loads the recipe's training split (cached, resampled audio), then times the training loader (random crops,
``train.batch_size`` × ``train.crop_samples``, pinned memory on CUDA) at each worker count, in audio-seconds
delivered per wall-second. Consumption is measured by timing optimizer steps of the same config on this
machine's device (``--consumption`` gives it instead, e.g. a GPU's figure, in audio-seconds per second).
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from bench_train import time_steps
from vqspeech.config import compose_recipe
from vqspeech.data.corpus import Corpus
from vqspeech.data.dataset import RandomCrops, crop_loader, load_split
from vqspeech.device import pick_device
from vqspeech.errors import UserError
from vqspeech.models import build_model
from vqspeech.models.builders import model_kwargs


def loader_throughput(split, tcfg, sample_rate: int, workers: int, batches: int, pin_memory: bool) -> float:
    """Audio-seconds per wall-second the crop loader delivers with ``workers`` processes (after start-up)."""
    loader = iter(crop_loader(RandomCrops(split, tcfg.crop_samples, tcfg.seed), tcfg.batch_size, 0, workers,
                              pin_memory))
    for _ in range(max(2, 2 * workers)):  # start the workers and fill their queues
        next(loader)
    started = time.perf_counter()
    for _ in range(batches):
        next(loader)
    seconds = time.perf_counter() - started
    return batches * tcfg.batch_size * tcfg.crop_samples / sample_rate / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="recipes/vctk")
    parser.add_argument("--workers", type=lambda s: [int(w) for w in s.split(",")],
                        help="comma-separated worker counts to time (default: the config's)")
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--steps", type=int, default=2, help="training steps timed for the consumption")
    parser.add_argument("--consumption", type=float, help="audio-seconds per second training consumes "
                        "(default: measured here)")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    cfg = compose_recipe(args.recipe, args.overrides)
    tcfg, sr = cfg.train, cfg.data.sample_rate
    device = pick_device(tcfg.device)
    corpus = Corpus.from_config(cfg.data)
    started = time.perf_counter()
    split = load_split(corpus.split("train"), corpus.speakers, sr, progress=False, pcm16=True)  # as training does
    load_seconds = time.perf_counter() - started
    print(f"recipe {args.recipe} {' '.join(args.overrides)}".rstrip())
    print(f"train split: {len(split.waves)} utterances, {split.samples / sr / 60:.1f} min of audio, "
          f"loaded from the cache in {load_seconds:.1f} s")
    print(f"batch {tcfg.batch_size} × {tcfg.crop_samples} samples = "
          f"{tcfg.batch_size * tcfg.crop_samples / sr:.3f} s of audio per step")

    consumption = args.consumption
    if consumption is None:
        torch.manual_seed(0)
        model = build_model(model_kwargs(cfg.model, corpus.speakers)).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=tcfg.lr)
        batches = iter(crop_loader(RandomCrops(split, tcfg.crop_samples, 0), tcfg.batch_size, 0, 0, False))
        times = time_steps(model, optimizer, lambda: next(batches), tcfg, device, args.steps, 1)
        per_step = sum(times) / len(times)
        consumption = tcfg.batch_size * tcfg.crop_samples / sr / per_step
        print(f"training on {device} ({torch.get_num_threads()} threads): {per_step:.2f} s per step, "
              f"consumes {consumption:.2f} audio-seconds per second")
    else:
        print(f"consumption given: {consumption:.2f} audio-seconds per second")

    for workers in args.workers or [tcfg.num_workers]:
        rate = loader_throughput(split, tcfg, sr, workers, args.batches, device.type == "cuda")
        print(f"loader, {workers} worker(s): {rate:.0f} audio-seconds per second = {rate / consumption:.0f}× "
              f"the consumption ({rate / (tcfg.batch_size * tcfg.crop_samples / sr):.0f} steps/s)")


if __name__ == "__main__":
    try:
        main()
    except UserError as exc:
        sys.exit(f"error: {exc}")
