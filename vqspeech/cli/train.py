"""vqspeech train RECIPE [key=value ...]: train (or resume) a recipe's VQ-VAE."""

from __future__ import annotations

import argparse

from vqspeech.cli.options import COMMON


def add(sub) -> None:
    p = sub.add_parser("train", parents=[COMMON],
                       help="train (or resume) a recipe: vqspeech train recipes/demo [key=value ...]")
    p.add_argument("recipe", help="a recipe folder holding config.yaml, e.g. recipes/demo")
    p.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. train.max_steps=200 +debug=tiny")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vqspeech.config import compose_recipe
    from vqspeech.training import train
    from vqspeech.training.distributed import from_env
    from vqspeech.training.stopping import exit_status, stopped_note

    cfg = compose_recipe(args.recipe, args.overrides)
    result = train(cfg, progress=not args.quiet)
    if not from_env().is_main:  # under torchrun every rank returns the same result; rank 0 reports it
        return exit_status(result.stopped_by)
    if result.already_done:
        print(f"{result.run_dir} is already at its step bound (step {result.step}, train.max_steps="
              f"{cfg.train.max_steps}): nothing to train; raise train.max_steps=... to train further")
        return 0
    losses = ", ".join(f"{k} {v:.4f}" for k, v in result.train_losses.items())
    valid = f"{result.valid_loss:.4f}" if result.valid_loss is not None else "n/a"
    metrics = "".join(f"; {k} {v:.1f}" for k, v in result.metrics.items())
    print(f"trained {result.run_dir} to step {result.step} (from {result.resumed_from}); "
          f"train: {losses}; valid reconstruction {valid}{metrics}; checkpoint {result.checkpoint}"
          + (f"; {result.skipped_steps} non-finite steps skipped" if result.skipped_steps else "")
          + stopped_note(result.stopped_by))
    return exit_status(result.stopped_by)

