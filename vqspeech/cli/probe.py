"""vqspeech probe-phonemes: how phonetic the codes are, against phone alignments."""

from __future__ import annotations

import argparse

from vqspeech.cli.options import COMMON, RUN, load_run, print_report


def add(sub) -> None:
    p = sub.add_parser("probe-phonemes", parents=[COMMON, RUN],
                       help="how phonetic are the codes: mapping accuracy, purity, PNMI, probes, baselines "
                            "(RUN/probe)")
    p.add_argument("--out", help="output folder (default RUN/probe)")
    p.add_argument("--data-root", help="the corpus folder to probe (default: the run's): the run's corpus moved, "
                   "or any other aligned corpus")
    p.add_argument("--split", nargs="+", help="corpus splits to probe (default: test valid on the run's own "
                   "corpus, every utterance on another)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--manifest", help="read this manifest under the corpus folder instead of the run's")
    which.add_argument("--no-manifest", action="store_true", help="scan the folder: ROOT/<speaker>/**/x.wav|flac "
                       "(or TIMIT's ROOT/{TRAIN,TEST}/DRx/SPEAKER/x.WAV) beside x.TextGrid|.PHN|.lab")
    p.add_argument("--max-utterances", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--kmeans-k", type=int, default=256, help="a continuous (vae, ae) bottleneck: the K of the "
                   "k-means through which its latents are scored (default 256); a VQ model uses its own codes")
    p.add_argument("--tier", default="phones", help="TextGrid tier holding the phones (default phones)")
    p.add_argument("--fold-timit", action="store_true", help="fold TIMIT's 61 symbols to 39 (Lee & Hon)")
    p.add_argument("--keep-stress", action="store_true", help="keep ARPAbet stress digits (AH0 ≠ AH1)")
    p.add_argument("--any-symbol", action="store_true",
                   help="accept symbols outside the English ARPAbet/TIMIT set (other languages, other phone sets)")
    p.add_argument("--export-features", action="store_true",
                   help="also write each column's ABX frames to OUT/features/ (.npy per utterance, ZeroSpeech's "
                        "layout) for tools/zrc_abx.py")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    import torch

    from vqspeech.data.alignments import PhoneSet
    from vqspeech.errors import UserError
    from vqspeech.eval.probe_data import probe_corpus
    from vqspeech.eval.probing import probe_phonemes

    if args.max_utterances is not None and args.max_utterances < 1:
        raise UserError(f"--max-utterances must be at least 1, got {args.max_utterances}")
    if args.kmeans_k < 1:
        raise UserError(f"--kmeans-k must be at least 1, got {args.kmeans_k}")
    torch.set_num_threads(1)  # the probes are many small fits; two threads thrash on them
    loaded = load_run(args)
    probed = probe_corpus(loaded.config["data"], args.data_root, args.manifest, args.no_manifest, args.split)
    out = args.out or loaded.run_dir / "probe"
    phone_set = PhoneSet(strip_stress=not args.keep_stress, fold_timit=args.fold_timit,
                         inventory=None if args.any_symbol else PhoneSet().inventory)
    report = probe_phonemes(loaded.model, probed.corpus, loaded.sample_rate, out, phone_set,
                            split=probed.splits, max_utterances=args.max_utterances, seed=args.seed, tier=args.tier,
                            model_kwargs=loaded.model_kwargs, trained_on=probed.trained_on, progress=not args.quiet,
                            kmeans_k=args.kmeans_k, export_features=args.export_features)
    print_report(report, out)
