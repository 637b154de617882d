"""Issue 42's scaling table and curve: the long run's kept checkpoints scored on the held-out readers.

    python tools/scaling.py --point HOURS STEPS LOAD RECONSTRUCTION.json UNSEEN.json [--point ...] \
        --config benchmarks/long-run/config.yaml --csv benchmarks/long-run/scaling.csv \
        --png benchmarks/long-run/scaling.png

Each --point is one checkpoint: its training hours (over every segment), its step, the machine's load at the
end of the segment that wrote it (benchmarks/long-run.csv), and the JSON reports of ``vqspeech evaluate-reconstruction --unseen`` and ``vqspeech
evaluate-conversion --unseen`` on it. Audio-hours read are step × batch × crop / rate (vqspeech/reference.py).
The PNG plots STOI, DNSMOS and the conversions identified as the target against audio-hours (top) and CPU
hours (bottom), with Codec2 2400's STOI and DNSMOS on the same audio as lines.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

COLUMNS = ["cpu_hours", "step", "audio_hours", "stoi", "pesq", "dnsmos_ovrl", "mcd", "identified_as_target",
           "classified_as_target", "classifier_accuracy_real", "identified_as_source", "cosine_target",
           "cosine_source", "codec2_2400_stoi", "codec2_2400_dnsmos", "load", "reconstruction", "conversion"]


def row(hours: float, step: int, load: float, recon_path: Path, unseen_path: Path, config: dict) -> dict:
    from vqspeech.reference import audio_hours

    recon, unseen = json.loads(recon_path.read_text()), json.loads(unseen_path.read_text())
    systems = {s["system"]: s for s in recon["systems"]}
    model = next(s for name, s in systems.items() if name.startswith("vqspeech"))
    codec2 = systems["Codec2 2400"]
    conv = unseen["converted"]
    return {"cpu_hours": hours, "step": step, "audio_hours": round(audio_hours(step, config), 1),
            "stoi": model["stoi"], "pesq": model["pesq"], "dnsmos_ovrl": model["dnsmos_ovrl"], "mcd": model["mcd"],
            "identified_as_target": conv["identified_as_target"], "classified_as_target": conv["classified_as_target"],
            "classifier_accuracy_real": unseen["classifier_accuracy_real"],
            "identified_as_source": conv["identified_as_source"], "cosine_target": conv["cosine_target"],
            "cosine_source": conv["cosine_source"], "codec2_2400_stoi": codec2["stoi"],
            "codec2_2400_dnsmos": codec2["dnsmos_ovrl"], "load": load, "reconstruction": str(recon_path),
            "conversion": str(unseen_path)}


def plot(rows: list[dict], path: Path) -> None:
    from vqspeech.plots import figure

    fig, axes = figure(9, 7, rows=2)
    for ax, x, label in ((axes[0], "audio_hours", "hours of audio read"), (axes[1], "cpu_hours", "CPU hours (2 cores)")):
        xs = [r[x] for r in rows]
        ax.plot(xs, [r["stoi"] for r in rows], "o-", label="STOI")
        ax.plot(xs, [r["dnsmos_ovrl"] / 5 for r in rows], "s-", label="DNSMOS OVRL / 5")
        ax.plot(xs, [r["identified_as_target"] for r in rows], "^-", label="conversion identified as target")
        ax.axhline(rows[-1]["codec2_2400_stoi"], color="C0", ls=":", lw=1, label="Codec2 2400 STOI")
        ax.axhline(rows[-1]["codec2_2400_dnsmos"] / 5, color="C1", ls=":", lw=1, label="Codec2 2400 DNSMOS / 5")
        ax.axhline(0.9, color="grey", ls="--", lw=0.8, label="goal 0.9 (STOI, identified)")
        ax.set(xlabel=label, ylim=(0, 1))
        ax.grid(alpha=0.3)
    axes[0].set_title("the long run on the 20 held-out readers")
    axes[0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--point", nargs=5, action="append", required=True,
                        metavar=("HOURS", "STEP", "LOAD", "RECONSTRUCTION_JSON", "UNSEEN_JSON"))
    parser.add_argument("--config", required=True, help="the run's config.yaml (its train and data sections)")
    parser.add_argument("--csv", required=True)
    parser.add_argument("--png", required=True)
    args = parser.parse_args()
    import yaml

    config = yaml.safe_load(Path(args.config).read_text())
    rows = sorted((row(float(h), int(s), float(load), Path(r), Path(u), config) for h, s, load, r, u in args.point),
                  key=lambda r: r["cpu_hours"])
    with open(args.csv, "w", newline="") as f:
        out = csv.DictWriter(f, COLUMNS)
        out.writeheader()
        for r in rows:
            out.writerow({k: f"{v:.4f}" if isinstance(v, float) else v for k, v in r.items()})
    plot(rows, Path(args.png))
    for r in rows:
        print(f"{r['cpu_hours']:g} h, step {r['step']}, {r['audio_hours']:g} audio-h: STOI {r['stoi']:.3f}, DNSMOS "
              f"{r['dnsmos_ovrl']:.2f}, identified {r['identified_as_target']:.3f}, classified "
              f"{r['classified_as_target']:.3f} (real {r['classifier_accuracy_real']:.3f}), cos target "
              f"{r['cosine_target']:.3f} / source {r['cosine_source']:.3f}")
    for first, last in zip(rows, rows[1:]):  # is a change between checkpoints more than the utterances' noise?
        for key in ("stoi", "dnsmos_ovrl"):
            mean, low, high = paired_change(Path(first["reconstruction"]), Path(last["reconstruction"]), key)
            print(f"{key} {first['cpu_hours']:g} h -> {last['cpu_hours']:g} h: {mean:+.4f} per utterance "
                  f"(95 % bootstrap interval {low:+.4f} to {high:+.4f})")
    print(f"wrote {args.csv} and {args.png}")


def paired_change(before: Path, after: Path, key: str, draws: int = 10000) -> tuple[float, float, float]:
    """The mean change of ``key`` over the utterances both reconstruction reports scored, and its 95 %
    bootstrap interval (utterances resampled, seed 0)."""
    import numpy as np

    def scores(path: Path) -> dict[str, float]:
        rows = json.loads(path.read_text())["rows"]
        return {r["utterance"]: r[key] for r in rows if r["system"].startswith("vqspeech") and r.get(key) is not None}

    a, b = scores(before), scores(after)
    change = np.array([b[u] - a[u] for u in sorted(set(a) & set(b))])
    rng = np.random.default_rng(0)
    means = rng.choice(change, (draws, len(change))).mean(axis=1)
    return float(change.mean()), *map(float, np.percentile(means, [2.5, 97.5]))


if __name__ == "__main__":
    main()
