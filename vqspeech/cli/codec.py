"""vqspeech compress | decompress: audio coded at its true bitrate, the codes range-coded under the prior."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from vqspeech.cli.options import COMMON, RUN, load_run, torch_generator


def add(sub) -> None:
    p = sub.add_parser("compress", parents=[COMMON, RUN], help="code audio files as .vqs: vqspeech compress "
                       "in.wav -o in.vqs --speaker NAME")
    p.add_argument("inputs", nargs="+", help="audio files")
    p.add_argument("-o", "--output", default="compressed", help="a .vqs file for one input, else a folder "
                   "(default compressed/)")
    p.add_argument("--speaker", help="the voice the prior is conditioned on and decompress speaks in (default: "
                   "the folder each file lies in, when named after a training speaker; else no speaker)")
    p.add_argument("--prior", help="the prior's folder (default RUN/prior)")
    p.add_argument("--overwrite", action="store_true", help="replace existing .vqs files")
    p.set_defaults(func=compress)

    p = sub.add_parser("decompress", parents=[COMMON, RUN], help="decode .vqs files and synthesise the audio")
    p.add_argument("inputs", nargs="+", help=".vqs files")
    p.add_argument("-o", "--output", default="decompressed", help="a .wav for one input, else a folder "
                   "(default decompressed/)")
    p.add_argument("--speaker", help="speak in this voice instead of the file's")
    p.add_argument("--reference", nargs="+", metavar="WAV", help="speak in the voice of these recordings "
                   "(speaker=reference models, such as the shipped one: a file compressed without a speaker)")
    p.add_argument("--prior", help="the prior's folder (default RUN/prior)")
    p.add_argument("--codes-only", action="store_true", help="decode the codes and time it, without synthesis")
    p.add_argument("--overwrite", action="store_true", help="replace existing .wav files")
    p.add_argument("--seed", type=int, help="seed of the decoder's sampler")
    p.set_defaults(func=decompress)


def _destinations(inputs: list[str], output: str, suffix: str) -> list[Path]:
    from vqspeech.errors import UserError

    out = Path(output)
    if out.suffix.lower() == suffix:
        if len(inputs) != 1:
            raise UserError(f"-o {out} names one {suffix} file, but {len(inputs)} inputs were given; name a folder")
        return [out]
    return [out / (Path(i).stem + suffix) for i in inputs]


def _loaded(args):
    from vqspeech.codec import coding_prior
    from vqspeech.runs import load_prior

    run = load_run(args)
    prior = load_prior(run, args.prior)
    return run, prior, coding_prior(prior.model)


def compress(args: argparse.Namespace) -> int:
    from vqspeech.codec import compress_file
    from vqspeech.errors import UserError

    run, prior, coder = _loaded(args)
    names = run.model.speakers.names
    if args.speaker is not None:
        run.model.speakers.index(args.speaker)  # an unknown name: one line listing the voices
    failed = 0
    for source, dest in zip(args.inputs, _destinations(args.inputs, args.output, ".vqs")):
        speaker = args.speaker or (Path(source).parent.name if Path(source).parent.name in names else None)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            started = time.perf_counter()
            done = compress_file(run, prior, source, dest, speaker, args.overwrite, coder)
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
            continue
        took = time.perf_counter() - started
        print(f"{source} -> {dest}: {len(done.codes)} codes, {done.file_bytes} bytes, {done.bits_per_second:.0f} bit/s "
              f"({done.seconds / took:.0f}x real time; voice {speaker or 'none'})")
    return 2 if failed else 0


def decompress(args: argparse.Namespace) -> int:
    from vqspeech.codec import NO_SPEAKER, decompress_codes
    from vqspeech.data.audio import save_audio
    from vqspeech.errors import UserError
    from vqspeech.models.generation import SEGMENT_SECONDS, GenerationConfig, recipe_sampling
    import torch

    from vqspeech.synthesis import decode_in_voices, reference_voice, voice_register

    run, prior, coder = _loaded(args)
    if args.speaker is not None and args.reference:
        raise UserError("give one voice: --speaker NAME or --reference WAV [...], not both")
    if args.speaker is not None:
        run.model.speakers.index(args.speaker)
    given = reference_voice(run.model, args.reference) if args.reference else None
    generation = GenerationConfig.from_seconds(SEGMENT_SECONDS, run.sample_rate, run.model.hop_length,
                                               **recipe_sampling(run.config))
    generator = torch_generator(args.seed)
    failed = 0
    for source, dest in zip(args.inputs, _destinations(args.inputs, args.output, ".wav")):
        try:
            if dest.exists() and not args.overwrite and not args.codes_only:
                raise UserError(f"{dest} already exists; pass --overwrite to replace it")
            started = time.perf_counter()
            header, codes = decompress_codes(run, prior, source, coder)
            took = time.perf_counter() - started
            seconds = len(codes) * run.model.hop_length / run.sample_rate
            line = f"{source}: {len(codes)} codes in {took:.2f} s ({seconds / took:.1f}x real time)"
            if args.codes_only:
                print(line)
                continue
            voice = given or args.speaker or (None if header.speaker == NO_SPEAKER
                                              else run.model.speakers.names[header.speaker])
            if voice is None:
                other = " or --reference WAV (a few seconds of the voice)" if run.model.speakers.kind == "reference" else ""
                raise UserError(f"{source} was compressed without a speaker; name the voice with --speaker NAME{other}")
            pitch = None
            if header.pitch:  # the melody and register the file carries; another --speaker's register
                from vqspeech.models.pitch import PitchCodes

                pitch = [PitchCodes(torch.tensor(header.pitch), torch.tensor(header.register))]
                if args.speaker or given is not None:
                    pitch = [pitch[0].in_register(voice_register(run.model, voice))]
            wav = decode_in_voices(run.model, [codes.to(run.model.device)], [voice], generation, generator,
                                   not args.quiet, pitch=pitch)[0]
            dest.parent.mkdir(parents=True, exist_ok=True)
            save_audio(dest, wav, run.sample_rate, overwrite=args.overwrite)
            print(f"{line} -> {dest} (voice {'of ' + ', '.join(args.reference) if given is not None else voice})")
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
    return 2 if failed else 0
