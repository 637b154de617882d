"""vqspeech align: forced phone alignment of a corpus's transcripts."""

from __future__ import annotations

import argparse

from vqspeech.cli.options import COMMON


def add(sub) -> None:
    p = sub.add_parser("align", parents=[COMMON], help="forced phone alignment (pocketsphinx) of a corpus's "
                       "transcripts: TextGrids and a manifest listing them")
    p.add_argument("--data-root", default="data/demo", help="the corpus folder (default data/demo)")
    p.add_argument("--manifest", default="manifest.jsonl", help="its manifest, with a text column "
                   "(default manifest.jsonl)")
    p.add_argument("--out", help="write TextGrids and the manifest here, mirroring the corpus layout "
                   "(default: TextGrids beside the audio, the manifest in the corpus folder)")
    p.add_argument("--manifest-out", default="manifest.aligned.jsonl",
                   help="name of the manifest written (default manifest.aligned.jsonl)")
    p.add_argument("--dict", help="extra pronunciations, CMUdict format ('word W ER D' per line)")
    p.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    p.add_argument("--overwrite", action="store_true", help="re-align utterances that have a TextGrid")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vqspeech.data.forced_align import align_corpus

    result = align_corpus(args.data_root, args.manifest, args.out, manifest_out=args.manifest_out,
                          workers=args.workers, overwrite=args.overwrite, extra_dictionary=args.dict,
                          progress=not args.quiet)
    print(result.summary())
    return 2 if result.failed else 0
