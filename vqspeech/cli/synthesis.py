"""vqspeech convert | reconstruct: audio files in, audio files out, in another voice or in their own."""

from __future__ import annotations

import argparse

from vqspeech.cli.options import COMMON, DEVICE, FILES, RUN, generation, load_run, print_files, torch_generator


def add(sub) -> None:
    p = sub.add_parser("convert", parents=[COMMON, RUN, DEVICE, FILES], help="speak input files in another voice")
    p.add_argument("--speaker", help="the target voice (see --list-speakers)")
    p.add_argument("--reference", nargs="+", metavar="WAV", help="the target voice given by recordings (at least "
                   "1 s each; their speaker vectors are averaged): models trained with speaker=reference")
    p.add_argument("--list-speakers", action="store_true", help="print the voices the model knows")
    p.add_argument("-o", "--output", default="converted", help="output folder, or a .wav for one input "
                   "(default converted/)")
    p.set_defaults(func=convert)

    p = sub.add_parser("reconstruct", parents=[COMMON, RUN, DEVICE, FILES],
                       help="encode and decode input files in their own speaker's voice")
    p.add_argument("--speaker", help="the voice to decode in (default: the folder each file lies in, when it "
                   "is named after a speaker the model knows)")
    p.add_argument("--reference", nargs="+", metavar="WAV", help="decode in the voice of these recordings "
                   "(speaker=reference models; without it such a model takes an unknown speaker's file itself)")
    p.add_argument("-o", "--output", default="reconstructed", help="output folder, or a .wav for one input "
                   "(default reconstructed/); files are named <stem>_reconstructed.wav")
    p.set_defaults(func=reconstruct)


def convert(args: argparse.Namespace) -> int:
    from vqspeech.convert import convert_files
    from vqspeech.errors import UserError

    run = load_run(args)
    if args.list_speakers:
        print("\n".join(run.model.speakers.names))
        return 0
    if not args.inputs or (args.speaker is None) == (not args.reference):
        raise UserError("name the input files and one target voice: vqspeech convert in.wav --speaker NAME "
                        "(--list-speakers shows the voices), or --reference target.wav [more.wav ...]")
    results = convert_files(run.model, args.inputs, args.speaker, args.output, run.sample_rate,
                            generation(args, run), overwrite=args.overwrite,
                            generator=torch_generator(args.seed), progress=not args.quiet,
                            reference=args.reference or ())
    return print_files(results)


def reconstruct(args: argparse.Namespace) -> int:
    from vqspeech.errors import UserError
    from vqspeech.reconstruct import reconstruct_files

    if not args.inputs:
        raise UserError("name the input files: vqspeech reconstruct in.wav [more.flac ...] [--speaker NAME]")
    run = load_run(args)
    results = reconstruct_files(run.model, args.inputs, args.output, run.sample_rate,
                                generation(args, run), speaker=args.speaker, overwrite=args.overwrite,
                                generator=torch_generator(args.seed), progress=not args.quiet,
                                reference=args.reference or ())
    return print_files(results)
