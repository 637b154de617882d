"""vqspeech sample: speech drawn from the prior and decoded, with how data-like its codes are."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vqspeech.cli.options import COMMON, DEVICE, RUN, load_run


def add(sub) -> None:
    p = sub.add_parser("sample", parents=[COMMON, RUN, DEVICE],
                       help="draw codes from the prior and decode them: vqspeech sample --speaker NAME --seconds 4 -n 4")
    p.add_argument("--prior", help="the prior's folder (default RUN/prior)")
    p.add_argument("--speaker", help="the voice (a training speaker of the run; see convert --list-speakers)")
    p.add_argument("--seconds", type=float, default=4.0, help="length of each sample (default 4)")
    p.add_argument("-n", type=int, default=4, help="samples per temperature (default 4)")
    p.add_argument("--temperature", type=float, nargs="+", default=[1.0],
                   help="temperatures of the prior's softmax (0: argmax); several give one row each (default 1.0)")
    p.add_argument("--prompt", help="continue this utterance's codes (GSLM's continuation)")
    p.add_argument("--prompt-seconds", type=float, default=2.0, help="seconds of the prompt to keep (default 2)")
    p.add_argument("-o", "--output", default="samples", help="output folder (default samples/)")
    p.add_argument("--overwrite", action="store_true", help="replace existing files in the output folder")
    p.add_argument("--no-dnsmos", action="store_true", help="skip DNSMOS of the decoded audio")
    p.add_argument("--seed", type=int, default=0, help="seed of both samplers (default 0)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from vqspeech.errors import UserError
    from vqspeech.sampling import write_samples

    if not args.seconds > 0 or args.n < 1 or any(t < 0 for t in args.temperature) or not args.prompt_seconds > 0:
        raise UserError("--seconds and --prompt-seconds must be positive, -n at least 1, temperatures 0 or more")
    loaded = load_run(args)
    if args.speaker is None:
        raise UserError(f"name the voice with --speaker NAME; this run knows: {', '.join(loaded.model.speakers.names)}")
    report = write_samples(loaded, args.prior, Path(args.output), args.speaker, args.seconds, args.n,
                           args.temperature, prompt=args.prompt, prompt_seconds=args.prompt_seconds,
                           overwrite=args.overwrite, dnsmos=not args.no_dnsmos, seed=args.seed,
                           progress=not args.quiet)
    print(report)
    print(f"written to {args.output}", file=sys.stderr)
