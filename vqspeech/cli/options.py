"""What several commands share: the parent parsers of their common options, and the helpers that turn those
options into a loaded run, a generation config and an exit status."""

from __future__ import annotations

import argparse
import sys

COMMON = argparse.ArgumentParser(add_help=False)
COMMON.add_argument("-q", "--quiet", action="store_true", help="no progress bars, warnings only")

RUN = argparse.ArgumentParser(add_help=False)
RUN.add_argument("--run", help="run folder (default: the shipped librispeech model, docs/pretrained.md)")
RUN.add_argument("--checkpoint", help="a checkpoint file instead of --run")

DEVICE = argparse.ArgumentParser(add_help=False)
DEVICE.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps")

CORPUS = argparse.ArgumentParser(add_help=False)
CORPUS.add_argument("--out", help="output folder (default: a folder in the run)")
CORPUS.add_argument("--data-root", help="the corpus, if it moved since training; with --unseen, any prepared corpus "
                    "whose held-out speakers are to be scored (prepare ... --all-heldout makes one of new voices)")

FILES = argparse.ArgumentParser(add_help=False)  # convert and reconstruct: audio files in, audio files out
FILES.add_argument("inputs", nargs="*", help="audio files (any format and rate soundfile reads)")
FILES.add_argument("--overwrite", action="store_true", help="replace existing output files")
FILES.add_argument("--greedy", action="store_true", help="argmax decoding instead of sampling")
FILES.add_argument("--temperature", type=float,
                   help="sampling temperature (default: the recipe's generation.temperature, else 1.0)")
FILES.add_argument("--top-p", type=float, help="nucleus sampling: draw from the most likely levels holding this "
                   "much probability, in (0, 1] (default: the recipe's generation.top_p, else 1.0)")
FILES.add_argument("--loud-temperature", type=float,
                   help="conditional sampling (FFTNet): this temperature where the audio generated over the last "
                        "frame is louder than --loud-db (default: the recipe's generation.loud_temperature, else off)")
FILES.add_argument("--loud-db", type=float, help="the loudness threshold of --loud-temperature, in dBFS "
                   "(default: the recipe's generation.loud_db, else -30)")
FILES.add_argument("--segment-seconds", type=float, default=0.5,
                   help="fold long inputs into segments of this length, generated as one batch (default 0.5)")
FILES.add_argument("--no-fold", dest="segment_seconds", action="store_const", const=None,
                   help="generate each input in one piece")
FILES.add_argument("--overlap-frames", type=int, default=8, help="cross-fade between segments, in codes (default 8)")
FILES.add_argument("--seed", type=int, help="seed of the sampler, for reproducible output")


def load_run(args: argparse.Namespace):
    """The run named by --run/--checkpoint (default the shipped model), on --device; says which it used."""
    from vqspeech.device import pick_device
    from vqspeech.pretrained import index
    from vqspeech.runs import load_run as load

    run = load(args.run, args.checkpoint, pick_device(getattr(args, "device", "cpu")))
    if run.shipped:
        print(f"using the shipped model {run.shipped!r} ({index()[run.shipped].get('summary', '')}); outputs default to "
              f"{run.run_dir}/; --run RUN for your own", file=sys.stderr)
    else:
        print(f"using {run.checkpoint} (step {run.step})", file=sys.stderr)
    return run


def generation(args: argparse.Namespace, run):
    """The GenerationConfig of --segment-seconds, --greedy and the sampling options over the recipe's."""
    from vqspeech.errors import UserError
    from vqspeech.models.generation import GenerationConfig, recipe_sampling

    if args.segment_seconds is not None and not args.segment_seconds > 0:
        raise UserError(f"--segment-seconds must be positive, got {args.segment_seconds} (--no-fold: one piece)")
    if not run.model.decoder.stochastic:
        given = [f"--{key.replace('_', '-')}" for key in ("greedy", "temperature", "top_p", "loud_temperature",
                                                         "loud_db") if getattr(args, key) not in (None, False)]
        if given:
            raise UserError(f"{', '.join(given)}: this run's {run.model.decoder.kind} decoder has no sampling (it "
                            f"decodes in one pass); leave the option out")
    # the recipe's sampling settings, as measured for it, and the options given on the command line over them
    sampling = {key: default if getattr(args, key) is None else getattr(args, key)
                for key, default in recipe_sampling(run.config).items()}
    try:
        return GenerationConfig.from_seconds(args.segment_seconds, run.sample_rate, run.model.hop_length,
                                             greedy=args.greedy, overlap_frames=args.overlap_frames, **sampling)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def torch_generator(seed: int | None):
    import torch

    return None if seed is None else torch.Generator().manual_seed(seed)


def print_files(results) -> int:
    """One line per file, errors on stderr; exit status 2 if any file failed."""
    for r in results:
        if r.error is None:
            print(f"{r.source} -> {r.output} ({r.seconds:.2f} s)")
        else:
            print(f"error: {r.error}", file=sys.stderr)
    return 2 if any(r.error for r in results) else 0


def print_report(report, out) -> None:
    print(report.markdown())
    print(f"written to {out}")
