"""The ``vqspeech`` command: parse arguments, compose the config, call one library function.

Errors the user can fix (UserError) print as one line, ``error: ...``, and exit with status 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence


def _train(args: argparse.Namespace) -> None:
    from vqspeech.config import compose_recipe
    from vqspeech.training import train

    from vqspeech.training.distributed import from_env

    cfg = compose_recipe(args.recipe, args.overrides)
    result = train(cfg, progress=not args.quiet)
    if not from_env().is_main:  # under torchrun every rank returns the same result; rank 0 reports it
        return
    if result.already_done:
        print(f"{result.run_dir} is already at its step bound (step {result.step}, train.max_steps="
              f"{cfg.train.max_steps}): nothing to train; raise train.max_steps=... to train further")
        return
    losses = ", ".join(f"{k} {v:.4f}" for k, v in result.train_losses.items())
    valid = f"{result.valid_loss:.4f}" if result.valid_loss is not None else "n/a"
    metrics = "".join(f"; {k} {v:.1f}" for k, v in result.metrics.items())
    print(f"trained {result.run_dir} to step {result.step} (from {result.resumed_from}); "
          f"train: {losses}; valid reconstruction {valid}{metrics}; checkpoint {result.checkpoint}"
          + (f"; {result.skipped_steps} non-finite steps skipped" if result.skipped_steps else ""))


def _prepare(args: argparse.Namespace) -> None:
    from vqspeech.data.demo import prepare_demo

    corpus = prepare_demo(args.out, n_sentences=args.sentences, n_valid=args.valid, n_test=args.test,
                          seed=args.seed, workers=args.workers, progress=not args.quiet)
    print(f"demo corpus {corpus.root}: {corpus.n_utterances} utterances ({corpus.n_created} made, "
          f"{corpus.n_skipped} already there), {corpus.seconds / 60:.1f} min of audio; manifest {corpus.manifest}")


def _prepare_recorded(args: argparse.Namespace) -> None:
    """vqspeech prepare vctk | librispeech: options not given come from configs/data/<corpus>.yaml."""
    from vqspeech.data.prepare import corpus_options
    from vqspeech.errors import UserError

    given = {"out_dir": args.out, "sample_rate": args.sample_rate, "trim_db": args.trim_db, "no_trim": args.no_trim,
             "valid_per_speaker": args.valid, "test_per_speaker": args.test, "heldout_speakers": args.heldout_speakers,
             "n_heldout_speakers": args.n_heldout_speakers}
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


def _report(args: argparse.Namespace) -> None:
    from vqspeech.device import pick_device
    from vqspeech.errors import UserError
    from vqspeech.eval.report import report_run

    if args.samples < 0 or not args.seconds > 0:
        raise UserError("--samples must be 0 or more and --seconds positive")
    report = report_run(args.run, args.checkpoint, args.out, n_samples=args.samples, seconds=args.seconds,
                        progress=not args.quiet, device=pick_device(args.device))
    print(report.markdown())


def _load_run(args: argparse.Namespace):
    """The run named by --run/--checkpoint (default the most recent), on --device; says which it used."""
    from vqspeech.device import pick_device
    from vqspeech.runs import load_run

    run = load_run(args.run, args.checkpoint, pick_device(getattr(args, "device", "cpu")))
    print(f"using {run.checkpoint} (step {run.step})", file=sys.stderr)
    return run


def _run_corpus(run, args: argparse.Namespace):
    """The corpus the run was trained on (or --data-root)."""
    from vqspeech.data.corpus import load_corpus

    data = run.config["data"]
    return load_corpus(args.data_root or data["root"], data["manifest"], data["valid_fraction"],
                       data["test_fraction"])


def _generation(args: argparse.Namespace, run):
    from vqspeech.errors import UserError
    from vqspeech.models.generation import GenerationConfig, recipe_sampling

    if args.segment_seconds is not None and not args.segment_seconds > 0:
        raise UserError(f"--segment-seconds must be positive, got {args.segment_seconds} (--no-fold: one piece)")
    # the recipe's sampling settings, as measured for it, and the options given on the command line over them
    sampling = {key: default if getattr(args, key) is None else getattr(args, key)
                for key, default in recipe_sampling(run.config).items()}
    try:
        return GenerationConfig.from_seconds(args.segment_seconds, run.model.sample_rate,
                                             run.model.hop_length, greedy=args.greedy,
                                             overlap_frames=args.overlap_frames, **sampling)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _print_files(results) -> int:
    """One line per file, errors on stderr; exit status 2 if any file failed."""
    for r in results:
        if r.error is None:
            print(f"{r.source} -> {r.output} ({r.seconds:.2f} s)")
        else:
            print(f"error: {r.error}", file=sys.stderr)
    return 2 if any(r.error for r in results) else 0


def _convert(args: argparse.Namespace) -> int:
    from vqspeech.convert import convert_files
    from vqspeech.errors import UserError

    run = _load_run(args)
    if args.list_speakers:
        print("\n".join(run.model.speakers.names))
        return 0
    if not args.inputs or (args.speaker is None) == (not args.reference):
        raise UserError("name the input files and one target voice: vqspeech convert in.wav --speaker NAME "
                        "(--list-speakers shows the voices), or --reference target.wav [more.wav ...]")
    results = convert_files(run.model, args.inputs, args.speaker, args.output, run.model.sample_rate,
                            _generation(args, run), overwrite=args.overwrite,
                            generator=torch_generator(args.seed), progress=not args.quiet,
                            reference=args.reference or ())
    return _print_files(results)


def _evaluate_conversion(args: argparse.Namespace) -> None:
    from vqspeech.errors import UserError
    from vqspeech.eval.conversion import evaluate_conversion

    if args.sentences < 1 or not args.seconds > 0:
        raise UserError("--sentences must be at least 1 and --seconds positive")
    run = _load_run(args)
    corpus = _run_corpus(run, args)
    if args.unseen:
        from vqspeech.eval.unseen import evaluate_unseen

        out = args.out or run.checkpoint.parent.parent / "unseen"
        report = evaluate_unseen(run.model, corpus, out, targets_per_source=args.targets, max_seconds=args.seconds,
                                 seed=args.seed, asr=not args.no_asr, progress=not args.quiet)
        print(report.markdown())
        print(f"written to {out}")
        return
    out = args.out or run.checkpoint.parent.parent / "conversion"
    report = evaluate_conversion(run.model, corpus, run.model.sample_rate, out,
                                 n_sentences=args.sentences, max_seconds=args.seconds, seed=args.seed,
                                 progress=not args.quiet)
    print(report.markdown())
    print(f"written to {out}")


def _reconstruct(args: argparse.Namespace) -> int:
    from vqspeech.errors import UserError
    from vqspeech.reconstruct import reconstruct_files

    if not args.inputs:
        raise UserError("name the input files: vqspeech reconstruct in.wav [more.flac ...] [--speaker NAME]")
    run = _load_run(args)
    results = reconstruct_files(run.model, args.inputs, args.output, run.model.sample_rate,
                                _generation(args, run), speaker=args.speaker, overwrite=args.overwrite,
                                generator=torch_generator(args.seed), progress=not args.quiet,
                                reference=args.reference or ())
    return _print_files(results)


def _evaluate_reconstruction(args: argparse.Namespace) -> None:
    from vqspeech.errors import UserError
    from vqspeech.eval.reconstruction import evaluate_reconstruction

    if args.limit is not None and args.limit < 1 or args.seconds is not None and args.seconds <= 0:
        raise UserError("--limit must be at least 1 and --seconds positive")
    run = _load_run(args)
    corpus = _run_corpus(run, args)
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
    out = args.out or run.checkpoint.parent.parent / ("reconstruction-unseen" if args.unseen else "reconstruction")
    report = evaluate_reconstruction(run.model, test, run.model.sample_rate, out,
                                     max_seconds=args.seconds, dnsmos=not args.no_dnsmos, seed=args.seed,
                                     source=f"checkpoint `{run.checkpoint}` (step {run.step})"
                                     + (", held-out speakers, each in the voice of its own reference" if args.unseen
                                        else ""), progress=not args.quiet, voices=voices)
    print(report.markdown())
    print(f"written to {out}")


def _probe_phonemes(args: argparse.Namespace) -> None:
    import torch

    from vqspeech.data.alignments import PhoneSet
    from vqspeech.errors import UserError
    from vqspeech.eval.probe_data import probe_corpus
    from vqspeech.eval.probing import probe_phonemes

    if args.max_utterances is not None and args.max_utterances < 1:
        raise UserError(f"--max-utterances must be at least 1, got {args.max_utterances}")
    torch.set_num_threads(1)  # the probes are many small fits; two threads thrash on them
    run = _load_run(args)
    probed = probe_corpus(run.config["data"], args.data_root, args.manifest, args.no_manifest, args.split)
    out = args.out or run.checkpoint.parent.parent / "probe"
    phone_set = PhoneSet(strip_stress=not args.keep_stress, fold_timit=args.fold_timit,
                         inventory=None if args.any_symbol else PhoneSet().inventory)
    report = probe_phonemes(run.model, probed.corpus, run.model.sample_rate, out, phone_set,
                            split=probed.splits, max_utterances=args.max_utterances, seed=args.seed, tier=args.tier,
                            model_kwargs=run.model_kwargs, trained_on=probed.trained_on, progress=not args.quiet)
    print(report.markdown())
    print(f"written to {out}")


def _align(args: argparse.Namespace) -> int:
    from vqspeech.data.forced_align import align_corpus

    result = align_corpus(args.data_root, args.manifest, args.out, manifest_out=args.manifest_out,
                          workers=args.workers, overwrite=args.overwrite, extra_dictionary=args.dict,
                          progress=not args.quiet)
    print(result.summary())
    return 2 if result.failed else 0


def torch_generator(seed: int | None):
    import torch

    return None if seed is None else torch.Generator().manual_seed(seed)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bars, warnings only")
    parser = argparse.ArgumentParser(prog="vqspeech", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", parents=[common], help="train (or resume) a recipe: vqspeech train recipes/demo [key=value ...]")
    p.add_argument("recipe", help="a recipe folder holding config.yaml, e.g. recipes/demo")
    p.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. train.max_steps=200 +debug=tiny")
    p.set_defaults(func=_train)

    prepare = sub.add_parser("prepare", help="build a corpus: vqspeech prepare demo | vctk | librispeech")
    corpora = prepare.add_subparsers(dest="corpus", required=True)
    p = corpora.add_parser("demo", parents=[common], help="synthesise the offline demo corpus with flite")
    p.add_argument("--out", default="data/demo", help="output folder (default data/demo)")
    p.add_argument("--sentences", type=int, default=240, help="sentences per voice (default 240)")
    p.add_argument("--valid", type=int, default=10, help="held-out sentences for validation (default 10)")
    p.add_argument("--test", type=int, default=10, help="held-out sentences for testing (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    p.set_defaults(func=_prepare)

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
    recorded.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                          help="resampling processes (default: the CPU count, at most 4)")
    p = corpora.add_parser("vctk", parents=[common, recorded],
                           help="resample VCTK 0.92 or 0.80 and write its manifest (configs/data/vctk.yaml)")
    p.add_argument("--root", help="the VCTK folder; with --download, where to fetch and unpack it "
                   "(default data/VCTK-Corpus-0.92)")
    p.add_argument("--download", action="store_true", help="fetch VCTK 0.92 (11 GB; resumes, checks its checksum)")
    p.add_argument("--url", help="download from this address instead of the official one")
    p.add_argument("--checksum",
                   help="md5:HEX or sha256:HEX of the archive (default: the sha256 torchaudio checks)")
    p.add_argument("--mic", choices=["mic1", "mic2"], help="VCTK 0.92's microphone (default mic1)")
    p.set_defaults(func=_prepare_recorded)
    p = corpora.add_parser("librispeech", parents=[common, recorded],
                           help="resample LibriSpeech and write its manifest (configs/data/librispeech.yaml)")
    p.add_argument("--root", required=True, help="the LibriSpeech folder, or one subset of it")
    p.set_defaults(func=_prepare_recorded)

    run_opts = argparse.ArgumentParser(add_help=False)
    run_opts.add_argument("--run", help="run folder (default: the most recent under runs/)")
    run_opts.add_argument("--checkpoint", help="a checkpoint file instead of --run")
    device_opts = argparse.ArgumentParser(add_help=False)
    device_opts.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps")

    p = sub.add_parser("report", parents=[common, run_opts, device_opts],
                       help="test-split scores and reconstructed samples of a trained run")
    p.add_argument("--out", help="output folder (default RUN/report)")
    p.add_argument("--samples", type=int, default=2, help="test utterances to reconstruct")
    p.add_argument("--seconds", type=float, default=1.5, help="seconds of each to reconstruct")
    p.set_defaults(func=_report)
    corpus_opts = argparse.ArgumentParser(add_help=False)
    corpus_opts.add_argument("--out", help="output folder (default: a folder in the run)")
    corpus_opts.add_argument("--data-root", help="the corpus, if it moved since training")
    files_opts = argparse.ArgumentParser(add_help=False)
    files_opts.add_argument("inputs", nargs="*", help="audio files (any format and rate soundfile reads)")
    files_opts.add_argument("--overwrite", action="store_true", help="replace existing output files")
    files_opts.add_argument("--greedy", action="store_true", help="argmax decoding instead of sampling")
    files_opts.add_argument("--temperature", type=float,
                            help="sampling temperature (default: the recipe's generation.temperature, else 1.0)")
    files_opts.add_argument("--top-p", type=float, help="nucleus sampling: draw from the most likely levels "
                            "holding this much probability, in (0, 1] (default: the recipe's generation.top_p, else 1.0)")
    files_opts.add_argument("--loud-temperature", type=float,
                            help="conditional sampling (FFTNet): this temperature where the audio generated over the "
                                 "last frame is louder than --loud-db (default: the recipe's "
                                 "generation.loud_temperature, else off)")
    files_opts.add_argument("--loud-db", type=float, help="the loudness threshold of --loud-temperature, in dBFS "
                            "(default: the recipe's generation.loud_db, else -30)")
    files_opts.add_argument("--segment-seconds", type=float, default=0.5,
                            help="fold long inputs into segments of this length, generated as one batch "
                                 "(default 0.5)")
    files_opts.add_argument("--no-fold", dest="segment_seconds", action="store_const", const=None,
                            help="generate each input in one piece")
    files_opts.add_argument("--overlap-frames", type=int, default=8,
                            help="cross-fade between segments, in codes (default 8)")
    files_opts.add_argument("--seed", type=int, help="seed of the sampler, for reproducible output")

    p = sub.add_parser("convert", parents=[common, run_opts, device_opts, files_opts], help="speak input files in another voice")
    p.add_argument("--speaker", help="the target voice (see --list-speakers)")
    p.add_argument("--reference", nargs="+", metavar="WAV", help="the target voice given by recordings (at least "
                   "1 s each; their speaker vectors are averaged): models trained with speaker=reference")
    p.add_argument("--list-speakers", action="store_true", help="print the voices the model knows")
    p.add_argument("-o", "--output", default="converted", help="output folder, or a .wav for one input "
                   "(default converted/)")
    p.set_defaults(func=_convert)

    p = sub.add_parser("reconstruct", parents=[common, run_opts, device_opts, files_opts],
                       help="encode and decode input files in their own speaker's voice")
    p.add_argument("--speaker", help="the voice to decode in (default: the folder each file lies in, when it "
                   "is named after a speaker the model knows)")
    p.add_argument("--reference", nargs="+", metavar="WAV", help="decode in the voice of these recordings "
                   "(speaker=reference models; without it such a model takes an unknown speaker's file itself)")
    p.add_argument("-o", "--output", default="reconstructed", help="output folder, or a .wav for one input "
                   "(default reconstructed/); files are named <stem>_reconstructed.wav")
    p.set_defaults(func=_reconstruct)

    p = sub.add_parser("evaluate-conversion", parents=[common, run_opts, device_opts, corpus_opts],
                       help="convert held-out sentences between all voices and score them (RUN/conversion)")
    p.add_argument("--sentences", type=int, default=3, help="held-out sentences per voice (default 3)")
    p.add_argument("--unseen", action="store_true", help="any-to-any over the held-out speakers (split heldout), "
                   "each target given by reference audio (RUN/unseen)")
    p.add_argument("--targets", type=int, default=3, help="with --unseen: targets per source (default 3)")
    p.add_argument("--no-asr", action="store_true", help="with --unseen: skip the pocketsphinx agreement proxy")
    p.add_argument("--seconds", type=float, default=4.0, help="cut utterances to this length (default 4)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_evaluate_conversion)

    p = sub.add_parser("evaluate-reconstruction", parents=[common, run_opts, device_opts, corpus_opts],
                       help="score reconstructions of the test split beside Codec2 and μ-law (RUN/reconstruction)")
    p.add_argument("--limit", type=int, help="score only the first N test utterances")
    p.add_argument("--seconds", type=float, help="cut utterances to this length (default: whole)")
    p.add_argument("--no-dnsmos", action="store_true", help="skip DNSMOS (the slowest metric)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampler (default 0)")
    p.add_argument("--unseen", action="store_true", help="score the held-out speakers (split heldout) instead: "
                   "the first half of each, decoded in the voice of its second half (RUN/reconstruction-unseen)")
    p.set_defaults(func=_evaluate_reconstruction)

    p = sub.add_parser("probe-phonemes", parents=[common, run_opts],
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
    p.add_argument("--tier", default="phones", help="TextGrid tier holding the phones (default phones)")
    p.add_argument("--fold-timit", action="store_true", help="fold TIMIT's 61 symbols to 39 (Lee & Hon)")
    p.add_argument("--keep-stress", action="store_true", help="keep ARPAbet stress digits (AH0 ≠ AH1)")
    p.add_argument("--any-symbol", action="store_true",
                   help="accept symbols outside the English ARPAbet/TIMIT set (other languages, other phone sets)")
    p.set_defaults(func=_probe_phonemes)

    p = sub.add_parser("align", parents=[common], help="forced phone alignment (pocketsphinx) of a corpus's "
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
    p.set_defaults(func=_align)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from vqspeech.errors import UserError

    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == "train" and all("=" in e and not e.startswith("-") for e in extra):
        args.overrides += extra  # Hydra overrides after an option: vqspeech train RECIPE -q key=value
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
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
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return code or 0
