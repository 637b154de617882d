"""Speed of encode + decode through the public path, both decoders (a benchmark, not a test).

    python tools/bench_decode.py [--audio DIR] [--seconds 10] [--batch 1 8] [--repeats 3] [--threads 2]
    python tools/bench_decode.py --run runs/quality/parallel-60 --run runs/quality/wavenet-30   # trained weights

For each decoder and batch size, ``--batch`` utterances of ``--seconds`` of real speech are encoded
(``VQVAE.encode_waveform``) and decoded (``VQVAE.decode``) as ``vqspeech reconstruct`` does: the WaveNet
sampled and folded into the evaluations' 0.5 s segments, the parallel decoder in one pass per chunk. The two
decoders are timed in turn (A B A B …), so that a drift of the machine's speed hits both, and the median wall
time of ``--repeats`` runs is printed as the real-time factor (wall ÷ audio; below 1 is faster than real time)
and as "× real time" (audio ÷ wall).

Without ``--run``, each decoder is the CPU command's model (recipes/librispeech with model=demo, K = 256,
``decoder=KIND``) with fresh weights: the speed does not depend on the weights. The audio is the first
utterances of ``--audio`` (default: the LibriSpeech excerpt), concatenated and cut to ``--seconds``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
CPU_COMMAND = ["model=demo", "train=cpu", "bottleneck=vq", "model.bottleneck.codebook_size=256",
               "data.root=data/librispeech-excerpt"]


def speech(root: Path, seconds: float, sample_rate: int) -> np.ndarray:
    """``seconds`` of real speech: the first audio files under ``root``, concatenated."""
    from vqspeech.data.audio import load_audio

    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".wav", ".flac"))
    if not files:
        sys.exit(f"error: no .wav or .flac files under {root}; pass --audio DIR")
    need, parts = int(seconds * sample_rate), []
    for path in files:
        parts.append(load_audio(path, sample_rate))
        if sum(len(p) for p in parts) >= need:
            break
    wav = np.concatenate(parts)[:need]
    if len(wav) < need:
        sys.exit(f"error: {root} holds only {len(wav) / sample_rate:.1f} s of audio, fewer than --seconds {seconds}")
    return wav.astype(np.float32)


def fresh_model(kind: str):
    from vqspeech.config import compose_recipe
    from vqspeech.models import build_model
    from vqspeech.models.builders import model_kwargs

    cfg = compose_recipe(REPO / "recipes" / "librispeech", [*CPU_COMMAND, f"decoder={kind}"])
    speakers = [f"s{i}" for i in range(4)]
    return build_model(model_kwargs(cfg.model, speakers, cfg.data.sample_rate)).eval(), "fresh weights"


def trained_model(run_dir: str):
    from vqspeech.runs import load_run

    run = load_run(run_dir)
    return run.model.eval(), f"{run_dir} step {run.step}"


def time_once(model, wav: np.ndarray, batch: int) -> float:
    """Wall seconds to encode ``batch`` copies of wav and decode them in one call, in each one's own voice."""
    from vqspeech.models.generation import SEGMENT_SECONDS, GenerationConfig

    config = GenerationConfig.from_seconds(SEGMENT_SECONDS, model.sample_rate, model.hop_length)
    vectors = None
    if getattr(model.speakers, "vector_dim", None) is not None:
        vectors = torch.nn.functional.normalize(torch.randn(batch, model.speakers.vector_dim), dim=-1)
    started = time.perf_counter()
    codes = [model.encode_waveform(wav) for _ in range(batch)]
    if vectors is None:
        model.decode(codes, torch.zeros(batch, dtype=torch.long), config, torch.Generator().manual_seed(0))
    else:
        model.decode(codes, None, config, torch.Generator().manual_seed(0), speaker_vectors=vectors)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audio", default=str(REPO.parent / "shared" / "data" / "librispeech-excerpt"))
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--wavenet-repeats", type=int, default=1, help="runs of a sampling decoder, the WaveNet (each takes minutes)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--run", action="append", help="a trained run to time instead of fresh weights (repeat)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    models = [trained_model(r) for r in args.run] if args.run else [fresh_model("parallel"), fresh_model("wavenet")]
    wav = speech(Path(args.audio), args.seconds, models[0][0].sample_rate)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.seconds:g} s of speech from "
          f"{args.audio}; encode + decode per batch, median of the repeats")
    print("| decoder | weights | batch | audio (s) | wall (s), each run | median RTF | × real time |")
    print("|---|---|---|---|---|---|---|")
    for batch in args.batch:
        walls: dict[int, list[float]] = {i: [] for i in range(len(models))}
        for model, _ in models:
            time_once(model, wav[: model.hop_length * 64], 1)  # warm-up: allocator, kernels
        rounds = max(args.repeats, args.wavenet_repeats)
        for r in range(rounds):
            for i, (model, _) in enumerate(models):
                wanted = args.wavenet_repeats if model.decoder.stochastic else args.repeats
                if r < wanted:
                    walls[i].append(time_once(model, wav, batch))
        for i, (model, source) in enumerate(models):
            audio = batch * len(wav) / model.sample_rate
            median = statistics.median(walls[i])
            print(f"| {model.decoder.kind} | {source} | {batch} | {audio:.1f} | "
                  f"{', '.join(f'{w:.2f}' for w in walls[i])} | {median / audio:.4f} | {audio / median:.1f} |",
                  flush=True)


if __name__ == "__main__":
    main()
