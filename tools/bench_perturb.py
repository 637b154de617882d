"""What the perturbation bank costs: seconds to build it for a corpus's training split, and its size on disk.

    python tools/bench_perturb.py --recipe recipes/librispeech data.root=data/librispeech-excerpt model.perturb.variants=4

Builds (or, when it is already there, only measures) ``<corpus root>/perturbation/<bank id>/`` exactly as
training would (vqspeech.training.conditioning.crop_perturbation: the same utterances at the model's input
level), on every CPU core, and prints one line: utterances, audio minutes, variants, build seconds, MB.
Delete the bank folder first to time a build from scratch.
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="recipes/librispeech")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()

    from vqspeech.config import compose_recipe
    from vqspeech.data.corpus import Corpus
    from vqspeech.data.dataset import load_split
    from vqspeech.data.perturb import PerturbConfig, cached_bank

    cfg = compose_recipe(args.recipe, args.overrides)
    config = PerturbConfig.from_config(cfg.model.get("perturb"))
    if not config.enabled:
        raise SystemExit("error: model.perturb.variants is 0; give model.perturb.variants=N")
    corpus = Corpus.from_config(cfg.data)
    rate = cfg.data.sample_rate
    split = load_split(corpus.split("train"), corpus.speakers, rate, False, pcm16=True,
                       loudness_lufs=cfg.model.get("loudness_lufs"))
    started = time.monotonic()
    bank = cached_bank(config, [(u.path, u.part) for u in split.utterances], split.waves, rate,
                       cfg.model.get("loudness_lufs"), corpus.root, progress=True)
    wall = time.monotonic() - started
    minutes = split.samples / rate / 60
    print(f"perturbation bank {bank.folder}: {len(split.waves)} utterances, {minutes:.1f} min of audio, "
          f"{config.variants} variants; built {bank.built} in {wall:.1f} s wall on {os.cpu_count()} cores "
          f"({bank.built and minutes * 60 * bank.built / len(split.waves) / wall:.1f} s of audio per s); "
          f"{bank.bytes / 1e6:.1f} MB on disk")


if __name__ == "__main__":
    main()
