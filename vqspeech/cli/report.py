"""vqspeech report: a trained run's test-split scores and reconstructed samples."""

from __future__ import annotations

import argparse

from vqspeech.cli.options import COMMON, DEVICE, RUN


def add(sub) -> None:
    p = sub.add_parser("report", parents=[COMMON, RUN, DEVICE],
                       help="test-split scores and reconstructed samples of a trained run")
    p.add_argument("--out", help="output folder (default RUN/report)")
    p.add_argument("--samples", type=int, default=2, help="test utterances to reconstruct")
    p.add_argument("--seconds", type=float, default=1.5, help="seconds of each to reconstruct")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from vqspeech.device import pick_device
    from vqspeech.errors import UserError
    from vqspeech.eval.report import report_run

    if args.samples < 0 or not args.seconds > 0:
        raise UserError("--samples must be 0 or more and --seconds positive")
    report = report_run(args.run, args.checkpoint, args.out, n_samples=args.samples, seconds=args.seconds,
                        progress=not args.quiet, device=pick_device(args.device))
    print(report.markdown())
