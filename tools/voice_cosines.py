"""Whose voice an output has: its Resemblyzer cosine to the target's and to the source's voices.

    python tools/voice_cosines.py converted.wav --target other_audio_of_target.wav --source other_audio_of_source.wav

Each voice is the unit-norm mean of the 2 s segments' d-vectors (vqspeech.data.speaker_vectors, as the
conversion evaluations compute it). Give audio the model did not get (not the --reference file itself) for
an honest target cosine.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", help="the converted file")
    parser.add_argument("--target", nargs="+", required=True, help="audio of the target voice")
    parser.add_argument("--source", nargs="+", required=True, help="audio of the source voice")
    parser.add_argument("--sample-rate", type=int, default=16000)
    args = parser.parse_args()

    import numpy as np

    from vqspeech.data.speaker_vectors import SpeakerEncoder

    encoder = SpeakerEncoder.shared(args.sample_rate)
    out = encoder.reference([args.output])
    target, source = encoder.reference(args.target), encoder.reference(args.source)
    print(f"{args.output}: cosine to the target {float(np.dot(out, target)):.3f}, to the source "
          f"{float(np.dot(out, source)):.3f} (Resemblyzer; target and source voices {float(np.dot(target, source)):.3f} "
          f"apart)")


if __name__ == "__main__":
    main()
