"""vqspeech prepare demo | vctk | librispeech: build a corpus and its manifest."""

from __future__ import annotations

import argparse
import os

from vqspeech.cli.options import COMMON


def add(sub) -> None:
    prepare = sub.add_parser("prepare", help="build a corpus: vqspeech prepare demo | vctk | librispeech")
    corpora = prepare.add_subparsers(dest="corpus", required=True)
    p = corpora.add_parser("demo", parents=[COMMON], help="synthesise the offline demo corpus with flite")
    p.add_argument("--out", default="data/demo", help="output folder (default data/demo)")
    p.add_argument("--sentences", type=int, default=240, help="sentences per voice (default 240)")
    p.add_argument("--valid", type=int, default=10, help="held-out sentences for validation (default 10)")
    p.add_argument("--test", type=int, default=10, help="held-out sentences for testing (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    p.set_defaults(func=demo)

    recorded = argparse.ArgumentParser(add_help=False)  # defaults of None: from configs/data/<corpus>.yaml
    recorded.add_argument("--out", help="output folder (default: the config's root, data/<corpus>)")
    recorded.add_argument("--sample-rate", type=int, help="resample to this rate (default 16000)")
    recorded.add_argument("--trim-db", type=float, help="trim leading/trailing audio this many dB below the peak "
                          "(default 30)")
    recorded.add_argument("--no-trim", action="store_true", help="keep the audio whole")
    recorded.add_argument("--valid", type=int, help="held-out validation sentences per speaker")
    recorded.add_argument("--test", type=int, help="held-out test sentences per speaker")
    recorded.add_argument("--heldout-speakers", nargs="+", metavar="SPEAKER",
                          help="speakers kept out of training (split heldout)")
    recorded.add_argument("--n-heldout-speakers", type=int, metavar="N",
                          help="hold out N more speakers, picked by a stable hash of their names")
    recorded.add_argument("--all-heldout", action="store_true",
                          help="hold out every speaker: an evaluation-only set of new voices, for "
                          "evaluate-conversion/-reconstruction --unseen --data-root of a run trained elsewhere")
    recorded.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                          help="resampling processes (default: the CPU count, at most 4)")
    p = corpora.add_parser("vctk", parents=[COMMON, recorded],
                           help="resample VCTK 0.92 or 0.80 and write its manifest (configs/data/vctk.yaml)")
    p.add_argument("--root", help="the VCTK folder; with --download, where to fetch and unpack it "
                   "(default data/VCTK-Corpus-0.92)")
    p.add_argument("--download", action="store_true", help="fetch VCTK 0.92 (11 GB; resumes, checks its checksum)")
    p.add_argument("--url", help="download from this address instead of the official one")
    p.add_argument("--checksum",
                   help="md5:HEX or sha256:HEX of the archive (default: the sha256 torchaudio checks)")
    p.add_argument("--mic", choices=["mic1", "mic2"], help="VCTK 0.92's microphone (default mic1)")
    p.set_defaults(func=recorded_corpus)
    p = corpora.add_parser("librispeech", parents=[COMMON, recorded],
                           help="resample LibriSpeech and write its manifest (configs/data/librispeech.yaml)")
    p.add_argument("--root", required=True, help="the LibriSpeech folder, or one subset of it")
    p.set_defaults(func=recorded_corpus)


def demo(args: argparse.Namespace) -> None:
    from vqspeech.data.demo import prepare_demo

    corpus = prepare_demo(args.out, n_sentences=args.sentences, n_valid=args.valid, n_test=args.test,
                          seed=args.seed, workers=args.workers, progress=not args.quiet)
    print(f"demo corpus {corpus.root}: {corpus.n_utterances} utterances ({corpus.n_created} made, "
          f"{corpus.n_skipped} already there), {corpus.seconds / 60:.1f} min of audio; manifest {corpus.manifest}")


def recorded_corpus(args: argparse.Namespace) -> None:
    """vqspeech prepare vctk | librispeech: options not given come from configs/data/<corpus>.yaml."""
    from vqspeech.data.prepare import corpus_options
    from vqspeech.errors import UserError

    given = {"out_dir": args.out, "sample_rate": args.sample_rate, "trim_db": args.trim_db, "no_trim": args.no_trim,
             "valid_per_speaker": args.valid, "test_per_speaker": args.test, "heldout_speakers": args.heldout_speakers,
             "n_heldout_speakers": args.n_heldout_speakers, "all_heldout": args.all_heldout or None}
    if args.corpus == "vctk":
        from vqspeech.data.vctk import VCTK_CHECKSUM, VCTK_URL, prepare_vctk

        if args.root is None and not args.download:
            raise UserError("name the corpus: vqspeech prepare vctk --root PATH (or --download to fetch VCTK 0.92)")
        root = args.root or "data/VCTK-Corpus-0.92"
        result = prepare_vctk(root, **corpus_options("vctk", mic=args.mic, **given), download_corpus=args.download,
                              url=args.url or VCTK_URL, checksum=args.checksum or VCTK_CHECKSUM, workers=args.workers,
                              progress=not args.quiet)
    else:
        from vqspeech.data.librispeech import prepare_librispeech

        result = prepare_librispeech(args.root, **corpus_options("librispeech", **given), workers=args.workers,
                                     progress=not args.quiet)
    print(result.summary())
