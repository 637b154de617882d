"""vqspeech evaluate-conversion | evaluate-reconstruction: score a run on its corpus (files in the run)."""

from __future__ import annotations

import argparse

from vqspeech.cli.options import COMMON, CORPUS, DEVICE, RUN, load_run, print_report


def add(sub) -> None:
    p = sub.add_parser("evaluate-conversion", parents=[COMMON, RUN, DEVICE, CORPUS],
                       help="convert held-out sentences between all voices and score them (RUN/conversion)")
    p.add_argument("--sentences", type=int, default=3, help="held-out sentences per voice (default 3)")
    p.add_argument("--unseen", action="store_true", help="any-to-any over the held-out speakers (split heldout), "
                   "each target given by reference audio (RUN/unseen)")
    p.add_argument("--targets", type=int, default=3, help="with --unseen: targets per source (default 3)")
    p.add_argument("--no-asr", action="store_true", help="with --unseen: skip the pocketsphinx agreement proxy")
    p.add_argument("--seconds", type=float, default=4.0, help="cut utterances to this length (default 4)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=conversion)

    p = sub.add_parser("evaluate-reconstruction", parents=[COMMON, RUN, DEVICE, CORPUS],
                       help="score reconstructions of the test split beside Codec2 and μ-law (RUN/reconstruction)")
    p.add_argument("--limit", type=int, help="score only the first N test utterances")
    p.add_argument("--seconds", type=float, help="cut utterances to this length (default: whole)")
    p.add_argument("--no-dnsmos", action="store_true", help="skip DNSMOS (the slowest metric)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampler (default 0)")
    p.add_argument("--unseen", action="store_true", help="score the held-out speakers (split heldout) instead: "
                   "the first half of each, decoded in the voice of its second half (RUN/reconstruction-unseen)")
    p.set_defaults(func=reconstruction)


def conversion(args: argparse.Namespace) -> None:
    from vqspeech.errors import UserError
    from vqspeech.eval.conversion import evaluate_conversion

    if args.sentences < 1 or not args.seconds > 0:
        raise UserError("--sentences must be at least 1 and --seconds positive")
    run = load_run(args)
    corpus = run.corpus(args.data_root)
    if args.unseen:
        from vqspeech.eval.unseen import evaluate_unseen

        out = args.out or run.run_dir / "unseen"
        report = evaluate_unseen(run.model, corpus, out, targets_per_source=args.targets, max_seconds=args.seconds,
                                 seed=args.seed, asr=not args.no_asr, progress=not args.quiet)
    else:
        out = args.out or run.run_dir / "conversion"
        report = evaluate_conversion(run.model, corpus, run.sample_rate, out, n_sentences=args.sentences,
                                     max_seconds=args.seconds, seed=args.seed, progress=not args.quiet)
    print_report(report, out)


def reconstruction(args: argparse.Namespace) -> None:
    from vqspeech.errors import UserError
    from vqspeech.eval.reconstruction import evaluate_reconstruction

    if args.limit is not None and args.limit < 1 or args.seconds is not None and args.seconds <= 0:
        raise UserError("--limit must be at least 1 and --seconds positive")
    run = load_run(args)
    corpus = run.corpus(args.data_root)
    voices = None
    if args.unseen:  # held-out speakers: the first half of each, in the voice of its second half
        from vqspeech.eval.unseen import unseen_voices

        test, voices = unseen_voices(run.model, corpus, progress=not args.quiet)
    else:
        test = [u for u in corpus.split("test") if u.speaker in run.model.speakers.names]
        if not test:
            raise UserError(f"corpus {corpus.root} has no test utterances of the model's speakers")
    if args.limit is not None:
        test = test[: args.limit]
    out = args.out or run.run_dir / ("reconstruction-unseen" if args.unseen else "reconstruction")
    source = f"checkpoint `{run.checkpoint}` (step {run.step})"
    if args.unseen:
        source += ", held-out speakers, each in the voice of its own reference"
    from vqspeech.eval.prior import run_prior_report

    prior = None if args.unseen else run_prior_report(run, progress=not args.quiet)
    report = evaluate_reconstruction(run.model, test, run.sample_rate, out, max_seconds=args.seconds,
                                     dnsmos=not args.no_dnsmos, seed=args.seed, source=source,
                                     progress=not args.quiet, voices=voices, prior=prior)
    print_report(report, out)
