"""vqspeech report: a trained run's test-split scores and reconstructed samples; vqspeech compare: runs side by
side on one page."""

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

    p = sub.add_parser("compare", parents=[COMMON, DEVICE],
                       help="runs side by side on one page: the same test utterances reconstructed by each, their "
                            "loss curves, and their reports' figures (compare.md, compare.html)")
    p.add_argument("runs", nargs="+", help="two run folders or more")
    p.add_argument("--out", help="output folder (default runs/compare_<A>_vs_<B>...)")
    p.add_argument("--utterances", type=int, default=3, help="test utterances to reconstruct (default 3)")
    p.add_argument("--seconds", type=float, default=3.0, help="seconds of each (default 3)")
    p.set_defaults(func=compare)


def run(args: argparse.Namespace) -> None:
    from vqspeech.device import pick_device
    from vqspeech.errors import UserError
    from vqspeech.eval.report import report_run

    if args.samples < 0 or not args.seconds > 0:
        raise UserError("--samples must be 0 or more and --seconds positive")
    report = report_run(args.run, args.checkpoint, args.out, n_samples=args.samples, seconds=args.seconds,
                        progress=not args.quiet, device=pick_device(args.device))
    print(report.markdown())


def compare(args: argparse.Namespace) -> None:
    from pathlib import Path

    from vqspeech.compare import compare_runs, run_names
    from vqspeech.device import pick_device

    dirs = [Path(r) for r in args.runs]
    out = Path(args.out) if args.out else Path("runs") / ("compare_" + "_vs_".join(run_names(dirs))).replace("/", "_")
    comparison = compare_runs(dirs, out, utterances=args.utterances, seconds=args.seconds,
                              device=pick_device(args.device), progress=not args.quiet)
    print(f"{len(comparison.runs)} runs, {len(comparison.utterances)} utterances, {len(comparison.figures)} figures: "
          f"{out / 'compare.html'} (and compare.md)")
