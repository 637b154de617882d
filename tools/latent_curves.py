"""Latent usage against training steps: score every snapshot of quality-harness runs with the latent-usage
measure of ``vqspeech report`` (vqspeech.eval.latent_usage), write a CSV and a plot, and print the
bottleneck comparison table joined with the harness's figures.

    python tools/latent_curves.py runs/quality/bn-vq runs/quality/bn-vae ... \
        --csv benchmarks/latent_usage.csv --png recipes/bottlenecks/latent_usage.png
    python tools/latent_curves.py --table --csv benchmarks/latent_usage.csv --quality-csv benchmarks/bottlenecks.csv

Each snapshot (checkpoints/minutes-*.pt, from ``train.snapshot_minutes``) is scored on the harness's fixed
reconstruction set (3 test utterances per voice, cut to --seconds): teacher-forced loss with the true latents
and with them shuffled in time, from another utterance, zero, and with another speaker's embedding. The
CSV holds one row per (run, snapshot): the gaps in bit/s, the KL rate of a VAE and the nominal rate of VQ.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_quality import append_row, read_rows, recon_set, snapshots  # noqa: E402  (tools/ is not a package)

REPO = Path(__file__).resolve().parents[1]
FIELDS = ["name", "minutes", "steps", "bottleneck", "nominal_bitrate", "kl_bitrate", "loss_true",
          "gap_shuffled", "gap_other_utterance", "gap_zero", "gap_other_speaker"]  # gaps in bit/s


def score_run(run_dir: Path, seconds: float) -> list[dict]:
    from vqspeech.data.corpus import Corpus
    from vqspeech.data.dataset import load_split
    from vqspeech.eval.latent_usage import OTHER_SPEAKER, OTHER_UTTERANCE, SHUFFLED, TRUE, ZERO, latent_usage
    from vqspeech.runs import load_run

    rows = []
    for minutes, checkpoint in snapshots(run_dir):
        run = load_run(checkpoint=checkpoint, device="cpu")
        data = run.config["data"]
        corpus = Corpus.from_config(data)
        split = load_split(recon_set(corpus), run.model.speakers.names, data["sample_rate"], False)
        cut = [w[: int(seconds * data["sample_rate"])] for w in split.waves]
        usage = latent_usage(run.model, cut, split.speaker_ids, data["sample_rate"])
        gaps = {f"gap_{key}": usage.gap_bitrate(cond) if cond in usage.loss else None
                for key, cond in (("shuffled", SHUFFLED), ("other_utterance", OTHER_UTTERANCE), ("zero", ZERO),
                                  ("other_speaker", OTHER_SPEAKER))}
        rows.append({"name": run_dir.name, "minutes": minutes, "steps": run.step, "bottleneck": usage.bottleneck,
                     "nominal_bitrate": usage.nominal_bitrate, "kl_bitrate": usage.kl_bitrate,
                     "loss_true": usage.loss[TRUE], **gaps})
        print(rows[-1], flush=True)
    return rows


def plot(rows: list[dict], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (gap_ax, kl_ax) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name in dict.fromkeys(r["name"] for r in rows):
        mine = sorted((r for r in rows if r["name"] == name), key=lambda r: int(r["steps"]))
        steps = [int(r["steps"]) for r in mine]
        line, = gap_ax.plot(steps, [float(r["gap_other_utterance"]) for r in mine], marker="o",
                            label=f"{name}: another utterance's latents")
        gap_ax.plot(steps, [float(r["gap_shuffled"]) for r in mine], marker="x", ls="--",
                    color=line.get_color(), label=f"{name}: shuffled in time")
        rate = [float(r["kl_bitrate"] or r["nominal_bitrate"] or "nan") for r in mine]
        if not all(math.isnan(v) for v in rate):
            kl_ax.plot(steps, rate, marker="o", color=line.get_color(),
                       label=f"{name}: {'KL' if mine[0]['kl_bitrate'] else 'nominal log2 K × frame rate'}")
    gap_ax.set_title("latent-usage gap: loss rise when the latents are replaced (bit/s)")
    kl_ax.set_title("rate of the bottleneck (bit/s): a VAE's KL, VQ's nominal rate")
    for ax in (gap_ax, kl_ax):
        ax.set_xlabel("training steps")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    kl_ax.set_yscale("symlog", linthresh=10)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=80)
    plt.close(fig)


def table(rows: list[dict], quality: list[dict]) -> str:
    """One row per name at its last snapshot, joined with the harness row of the same name and minutes."""
    def num(value, fmt=".0f") -> str:
        return "–" if value in (None, "") else format(float(value), fmt)

    last = {}
    for r in rows:
        if r["name"] not in last or float(r["minutes"]) >= float(last[r["name"]]["minutes"]):
            last[r["name"]] = r
    lines = ["| variant | min | steps | valid loss | latent gap, other utt. (bit/s) | gap, shuffled (bit/s) | "
             "gap, zero (bit/s) | speaker gap (bit/s) | KL or nominal rate (bit/s) | map. acc. | PNMI | "
             "spk acc. codes | conv. → target (emb.) |", "|---" * 13 + "|"]
    for name, r in last.items():
        q = next((x for x in quality if x["name"] == name and float(x["minutes"]) == float(r["minutes"])), {})
        rate = f"{num(r['kl_bitrate'])} (KL)" if r["kl_bitrate"] not in (None, "") else (
            f"{num(r['nominal_bitrate'])} (nominal)" if r["nominal_bitrate"] not in (None, "") else "unbounded")
        lines.append(f"| {name} | {num(r['minutes'], 'g')} | {r['steps']} | {num(q.get('valid_loss'), '.3f')} | "
                     f"{num(r['gap_other_utterance'])} | {num(r['gap_shuffled'])} | {num(r['gap_zero'])} | "
                     f"{num(r['gap_other_speaker'])} | "
                     f"{rate} | {num(q.get('mapping_accuracy'), '.3f')} | {num(q.get('pnmi'), '.3f')} | "
                     f"{num(q.get('speaker_accuracy_codes'), '.3f')} | {num(q.get('conv_target_embedding'), '.3f')} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", type=Path, help="harness run folders (runs/quality/NAME)")
    parser.add_argument("--csv", type=Path, default=REPO / "benchmarks" / "latent_usage.csv")
    parser.add_argument("--png", type=Path, default=REPO / "recipes" / "bottlenecks" / "latent_usage.png")
    parser.add_argument("--quality-csv", type=Path, default=REPO / "benchmarks" / "bottlenecks.csv")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--table", action="store_true", help="only print the joined table")
    args = parser.parse_args()
    missing = [str(r) for r in args.runs if not (r / "checkpoints").is_dir()]
    if missing:
        sys.exit(f"error: no checkpoints/ in {', '.join(missing)}; pass harness run folders (runs/quality/NAME)")
    for run_dir in args.runs:
        for row in score_run(run_dir, args.seconds):
            append_row(args.csv, row, FIELDS)
    rows = read_rows(args.csv)
    if not rows:
        sys.exit(f"error: {args.csv} holds no rows yet; pass run folders to score")
    if args.runs:
        plot(rows, args.png)
        print(f"rows appended to {args.csv}; plot {args.png}")
    print(table(rows, read_rows(args.quality_csv)))


if __name__ == "__main__":
    main()
