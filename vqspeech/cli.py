"""The ``vqspeech`` command: parse arguments, compose the config, call one library function.

Errors the user can fix (UserError) print as one line, ``error: ...``, and exit with status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence


def _train(args: argparse.Namespace) -> None:
    from vqspeech.config import compose_recipe
    from vqspeech.training import train

    cfg = compose_recipe(args.recipe, args.overrides)
    result = train(cfg, progress=not args.quiet)
    losses = ", ".join(f"{k} {v:.4f}" for k, v in result.train_losses.items())
    valid = f"{result.valid_loss:.4f}" if result.valid_loss is not None else "n/a"
    codes = ", ".join(f"{k} {v:.1f}" for k, v in result.metrics.items())
    print(f"trained {result.run_dir} to step {result.step} (from {result.resumed_from}); "
          f"train: {losses}; valid reconstruction {valid}; {codes}; checkpoint {result.checkpoint}")


def _prepare(args: argparse.Namespace) -> None:
    from vqspeech.data.demo import prepare_demo

    corpus = prepare_demo(args.out, n_sentences=args.sentences, n_valid=args.valid, n_test=args.test,
                          seed=args.seed, workers=args.workers, progress=not args.quiet)
    print(f"demo corpus {corpus.root}: {corpus.n_utterances} utterances ({corpus.n_created} made, "
          f"{corpus.n_skipped} already there), {corpus.seconds / 60:.1f} min of audio; manifest {corpus.manifest}")


def _report(args: argparse.Namespace) -> None:
    from vqspeech.eval.report import report_run

    report = report_run(args.run, args.checkpoint, args.out, n_samples=args.samples, seconds=args.seconds,
                        progress=not args.quiet)
    print(report.markdown())


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bars, warnings only")
    parser = argparse.ArgumentParser(prog="vqspeech", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", parents=[common], help="train (or resume) a recipe: vqspeech train recipes/demo [key=value ...]")
    p.add_argument("recipe", help="a recipe folder holding config.yaml, e.g. recipes/demo")
    p.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. train.max_steps=200 +debug=tiny")
    p.set_defaults(func=_train)

    p = sub.add_parser("prepare", parents=[common], help="build a corpus: vqspeech prepare demo")
    p.add_argument("corpus", choices=["demo"])
    p.add_argument("--out", default="data/demo", help="output folder (default data/demo)")
    p.add_argument("--sentences", type=int, default=240, help="sentences per voice (default 240)")
    p.add_argument("--valid", type=int, default=10, help="held-out sentences for validation (default 10)")
    p.add_argument("--test", type=int, default=10, help="held-out sentences for testing (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    p.set_defaults(func=_prepare)

    p = sub.add_parser("report", parents=[common], help="test-split scores and reconstructed samples of a trained run")
    p.add_argument("--run", help="run folder (default: the most recent under runs/)")
    p.add_argument("--checkpoint", help="a checkpoint file instead of --run")
    p.add_argument("--out", help="output folder (default RUN/report)")
    p.add_argument("--samples", type=int, default=2, help="test utterances to reconstruct")
    p.add_argument("--seconds", type=float, default=1.5, help="seconds of each to reconstruct")
    p.set_defaults(func=_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from vqspeech.errors import UserError

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        args.func(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
