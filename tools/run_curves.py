"""Runs' curves against hours of audio read, beside the shipped run's reference curve (docs/training.md).

    python tools/run_curves.py runs/a runs/b --out docs/images/healthy-run.png [--title TEXT]

Three panels, each against audio-hours read (step × batch × crop / rate, vqspeech/reference.py): the training
loss train/loss_total (smoothed) and the validation score valid/loss_reconstruction with the shipped run's
reference curve; the codes used per batch (train/used_codes); the code perplexity (train/perplexity).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SMOOTHING = 25  # logged points per mean on the training-loss panel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--title", default="")
    args = parser.parse_args()
    import yaml

    from vqspeech.compare import scalars
    from vqspeech.plots import figure
    from vqspeech.reference import audio_hours, shipped_curve

    fig, (loss, used, ppl) = figure(9, 9, rows=3)
    for i, run in enumerate(args.runs):
        config = yaml.safe_load((run / "config.yaml").read_text())
        hours = lambda steps: np.array([audio_hours(s, config) for s in steps])
        logged = scalars(run)
        colour = f"C{i}"
        train = sorted(logged.get("train/loss_total", {}).items())
        if train:
            steps, values = map(np.array, zip(*train))
            k = min(SMOOTHING, len(values))
            loss.plot(hours(steps[k - 1:]), np.convolve(values, np.ones(k) / k, "valid"), color=colour, lw=0.8,
                      alpha=0.6, label=f"{run.name}: train/loss_total")
        valid = sorted(logged.get("valid/loss_reconstruction", {}).items())
        if valid:
            steps, values = map(np.array, zip(*valid))
            loss.plot(hours(steps), values, "o-", color=colour, ms=3, label=f"{run.name}: valid")
        for ax, tag in ((used, "train/used_codes"), (ppl, "train/perplexity")):
            points = sorted(logged.get(tag, {}).items())
            if points:
                steps, values = map(np.array, zip(*points))
                k = min(SMOOTHING, len(values))
                ax.plot(hours(steps[k - 1:]), np.convolve(values, np.ones(k) / k, "valid"), color=colour,
                        label=run.name)
    curve = shipped_curve()
    if curve is not None:
        known = ~np.isnan(curve.valid)
        limit = max(line.get_xdata().max() for line in loss.get_lines()) if loss.get_lines() else curve.audio_hours[-1]
        keep = known & (curve.audio_hours <= 1.2 * limit)
        loss.plot(curve.audio_hours[keep], curve.valid[keep], "k--", marker=".", label=f"reference ({curve.name}): valid")
    loss.set(ylabel="loss", title=args.title or "training and validation loss")
    used.set(ylabel="codes used per batch")
    ppl.set(ylabel="code perplexity", xlabel="hours of audio read")
    for ax in (loss, used, ppl):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=100)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
