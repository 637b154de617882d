"""The ``vqspeech`` command: parse arguments, compose the config, call one library function.

One module per command group, each with ``add(subparsers)`` and its handlers; a new command is a new module
in :data:`GROUPS`. Errors the user can fix (UserError) print as one line, ``error: ...``, and exit with status 2.
"""

from __future__ import annotations

import argparse
import errno
import logging
import sys
from collections.abc import Sequence

from vqspeech.cli import align, codec, evaluate, prepare, prior, probe, report, sample, synthesis, train

GROUPS = (train, prepare, report, synthesis, evaluate, probe, align, prior, sample, codec)  # in the order `vqspeech -h` lists them
LOG_BAR_SECONDS = 30  # when stderr is not a terminal (a log file), a progress bar writes a line this often at most


def quiet_bars_in_logs(stream=None) -> bool:
    """When ``stream`` (stderr) is not a terminal, make every tqdm bar of the process refresh at most every
    LOG_BAR_SECONDS, so a redirected log holds a line per half minute, not thousands of carriage returns.
    Returns whether it did."""
    stream = sys.stderr if stream is None else stream
    if stream.isatty():
        return False
    from functools import partialmethod

    from tqdm import tqdm

    if not getattr(tqdm, "_vqspeech_log_bars", False):
        tqdm.__init__ = partialmethod(tqdm.__init__, mininterval=LOG_BAR_SECONDS, maxinterval=LOG_BAR_SECONDS)
        tqdm._vqspeech_log_bars = True
    return True


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vqspeech", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from vqspeech.errors import UserError

    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command in ("train", "train-prior") and all("=" in e and not e.startswith("-") for e in extra):
        args.overrides += extra  # Hydra overrides after an option: vqspeech train RECIPE -q key=value
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    quiet_bars_in_logs()
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        code = args.func(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError) as exc:
        # a path the user named that cannot be used as such: an --out that is a file, a read-only folder
        print(f"error: {exc.strerror}: {exc.filename}; check the paths given (--out, -o, run_dir=...)",
              file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        print(f"error: no space left on the device of {exc.filename or 'an output file'}; free some space and "
              f"run the command again (written files are whole or absent)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return code or 0
