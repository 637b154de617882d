"""The .vqs codec on a run's test split: file size against the prior's cross-entropy, exactness and speed
(a benchmark, not a test).

    python tools/bench_codec.py --run runs/demo60 [--prior DIR] [--data-root DIR] [--limit N]

Every test utterance of the run's speakers is compressed (in its own speaker's voice) into a temporary
folder and its codes decoded again, without synthesis. Prints, over all of them: audio seconds, the prior's
cross-entropy rate, the payload and whole-file rates (bit/s) and their ratio to the cross-entropy, the
number of utterances whose decoded codes equal the encoder's bit for bit, and the real-time factors of
compress (load + encode + one parallel pass of the prior + range coding) and of decoding the codes
(sequential cached prior + range decoding). Torch runs on one thread for the decoder loop (as the
command does); the machine's load average is printed beside the figures.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from vqspeech.codec import coding_prior, compress_file, decompress_codes, speaker_vectors_input
from vqspeech.errors import UserError
from vqspeech.runs import load_prior, load_run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True)
    parser.add_argument("--prior")
    parser.add_argument("--data-root")
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()
    run = load_run(args.run)
    prior = load_prior(run, args.prior)
    coder = coding_prior(prior.model)
    test = [u for u in run.corpus(args.data_root).split("test") if u.speaker in run.model.speakers.names]
    test = test[: args.limit] if args.limit else test
    seconds = payload = whole = ce_bits = 0.0
    exact = 0
    t_compress = t_decode = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for i, utt in enumerate(test):
            path = Path(tmp) / f"{i}.vqs"
            started = time.perf_counter()
            done = compress_file(run, prior, utt.path, path, utt.speaker, coder=coder)
            t_compress += time.perf_counter() - started
            started = time.perf_counter()
            _, codes = decompress_codes(run, prior, path, coder)
            t_decode += time.perf_counter() - started
            exact += int(torch.equal(codes, done.codes))
            seconds += done.seconds
            payload += 8 * done.payload_bytes
            whole += 8 * done.file_bytes
            with torch.inference_mode():
                speaker = speaker_vectors_input(run, utt.speaker)
                ce_bits -= float(coder.log_probs(done.codes[None], speaker).sum()) / math.log(2)
    print(f"run {run.checkpoint} (step {run.step}); prior {prior.checkpoint} (step {prior.step}); "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{len(test)} test utterances, {seconds:.1f} s of audio")
    print(f"prior cross-entropy: {ce_bits / seconds:.1f} bit/s")
    print(f"payload: {payload / seconds:.1f} bit/s ({payload / ce_bits:.4f} x the cross-entropy)")
    print(f"whole files (24-byte header each): {whole / seconds:.1f} bit/s ({whole / ce_bits:.4f} x)")
    print(f"bit-exact codes: {exact} of {len(test)}")
    print(f"compress: {seconds / t_compress:.1f}x real time; decode the codes: {seconds / t_decode:.1f}x real time")
    return 0 if exact == len(test) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
