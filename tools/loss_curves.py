"""Training loss of runs against step, from their TensorBoard logs (for comparing two settings' curves).

    python tools/loss_curves.py runs/quality/baseline runs/quality/bf16 [--tag train/loss_reconstruction]
        [--until 1000] [--every 100] [--window 10]

Prints one row per --every steps: each run's loss averaged over the --window logged points ending there.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vqspeech.compare import scalars


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--tag", default="train/loss_reconstruction")
    parser.add_argument("--until", type=int, default=1000)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--window", type=int, default=10, help="logged points averaged per row")
    args = parser.parse_args()
    curves = [scalars(run, args.tag).get(args.tag, {}) for run in args.runs]
    print("| step | " + " | ".join(str(r) for r in args.runs) + " |")
    print("|---" * (len(args.runs) + 1) + "|")
    for step in range(args.every, args.until + 1, args.every):
        cells = []
        for curve in curves:
            points = [v for s, v in sorted(curve.items()) if s <= step][-args.window:]
            cells.append(f"{sum(points) / len(points):.3f}" if points else "–")
        print(f"| {step} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
