"""Memory and time of a long input (a benchmark, not a test): one file of --minutes of speech-like audio.

    python tools/bench_long_input.py --run runs/demo30 [--minutes 60] [--convert]

Writes the file to a temp folder, then in a fresh process each: encodes it with the run's model (the
encoder works in chunks outside training, so memory follows the waveform, not the network's width), and
with --convert runs ``vqspeech convert`` on it (generation is long: RTF × duration). Prints wall time and
peak resident memory of each.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ENCODE = """
import resource, sys, time, torch
from vqspeech.data.audio import load_audio
from vqspeech.runs import load_run
run = load_run(sys.argv[1], None, torch.device("cpu"))
wav = load_audio(sys.argv[2], run.config["data"]["sample_rate"])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
started = time.perf_counter()
with torch.inference_mode():
    codes = run.model.encode(torch.from_numpy(wav[: len(wav) // run.model.hop_length * run.model.hop_length])[None, None]).codes
print(f"encode: {codes.shape[-1]} codes in {time.perf_counter() - started:.1f} s; peak resident "
      f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB ({before:.0f} MB with the audio loaded)")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--convert", action="store_true", help="also convert it (slow: RTF × duration)")
    parser.add_argument("--speaker", help="target voice for --convert (default: the model's first)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.wav"
        n = int(args.minutes * 60 * 16000)
        t = np.arange(n, dtype=np.float32) / 16000
        wav = 0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2
        wav += 0.01 * np.random.default_rng(0).standard_normal(n).astype(np.float32)
        sf.write(str(path), wav, 16000, subtype="PCM_16")
        del t, wav
        print(f"input: {args.minutes:g} min at 16 kHz ({path.stat().st_size / 2**20:.0f} MB wav)")
        subprocess.run([sys.executable, "-c", ENCODE, args.run, str(path)], check=True)
        if args.convert:
            speaker = args.speaker or subprocess.run(
                [sys.executable, "-m", "vqspeech", "convert", "--list-speakers", "--run", args.run],
                check=True, capture_output=True, text=True).stdout.split()[0]
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "vqspeech", "convert", str(path), "--speaker", speaker, "--run",
                            args.run, "-o", str(Path(tmp) / "out"), "-q"], check=True)
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            print(f"convert: {time.perf_counter() - started:.0f} s wall; peak resident {peak:.0f} MB")


if __name__ == "__main__":
    main()
