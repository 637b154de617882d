"""vqspeech extract-codes | train-prior | evaluate-prior: the learned prior over a run's codes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vqspeech.cli.options import COMMON, DEVICE, RUN, load_run


def add(sub) -> None:
    p = sub.add_parser("extract-codes", parents=[COMMON, RUN, DEVICE],
                       help="encode the run's corpus once: RUN/codes/<checkpoint hash>/{train,valid,test}.pt")
    p.add_argument("--data-root", help="the corpus, if it moved since training")
    p.set_defaults(func=extract)

    p = sub.add_parser("train-prior", parents=[COMMON],
                       help="train (or resume) the prior over a run's codes: vqspeech train-prior --run RUN "
                            "[prior=transformer] [key=value ...] (RUN/prior)")
    p.add_argument("--run", required=True, help="the VQ-VAE run folder")
    p.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. prior=transformer train.max_minutes=20")
    p.set_defaults(func=train)

    p = sub.add_parser("evaluate-prior", parents=[COMMON, RUN, DEVICE],
                       help="the prior's cross-entropy of the test codes beside the unigram and nominal rates")
    p.add_argument("--prior", help="the prior's folder (default RUN/prior)")
    p.add_argument("--split", default="test", choices=["train", "valid", "test"])
    p.set_defaults(func=evaluate)


def extract(args: argparse.Namespace) -> None:
    from vqspeech.codes import extract_codes

    run = load_run(args)
    out = extract_codes(run, args.data_root, progress=not args.quiet)
    print(f"codes of {run.checkpoint} in {out}")


def train(args: argparse.Namespace) -> int:
    from vqspeech.config import compose_recipe, configs_dir
    from vqspeech.training.prior_task import train_prior
    from vqspeech.training.stopping import exit_status, stopped_note

    run_dir = Path(args.run)
    given = {o.split("=", 1)[0].lstrip("+") for o in args.overrides}
    defaults = [f"run={run_dir}"] + ([] if "run_dir" in given else [f"run_dir={run_dir / 'prior'}"])
    cfg = compose_recipe(configs_dir() / "prior_run", [*defaults, *args.overrides])
    result = train_prior(cfg, progress=not args.quiet)
    if result.already_done:
        print(f"{result.run_dir} is already at train.max_steps={cfg.train.max_steps}: nothing to train")
        return 0
    valid = f"{result.valid_loss:.4f}" if result.valid_loss is not None else "n/a"
    print(f"trained the prior {result.run_dir} to step {result.step} (from {result.resumed_from}); "
          f"train {result.train_losses.get('prior', float('nan')):.4f} nats/code; valid {valid} bits/code; "
          f"checkpoint {result.checkpoint}{stopped_note(result.stopped_by)}")
    return exit_status(result.stopped_by)


def evaluate(args: argparse.Namespace) -> None:
    from vqspeech.codes import extract_codes, load_codes
    from vqspeech.eval.prior import evaluate_prior
    from vqspeech.pages import write_report
    from vqspeech.runs import load_prior

    run = load_run(args)
    prior = load_prior(run, args.prior, run.model.device)
    codes = load_codes(extract_codes(run, progress=not args.quiet), args.split)
    report = evaluate_prior(prior.model, codes, args.split)
    print(f"prior {prior.checkpoint} (step {prior.step})", file=sys.stderr)
    print(report.markdown())
    folder = run.run_dir / "prior" if run.shipped else prior.checkpoint.parent.parent  # never the installed package
    md, page = write_report(folder, f"evaluation-{args.split}", report.markdown() + "\n")
    print(f"written to {md} and {page}")
