"""The README's results table, made from the committed harness CSVs and evaluation JSON, never pasted by hand.

    python tools/results.py            # print the table
    python tools/results.py --write    # replace the table between the README's results markers

Sources (all committed under benchmarks/):
* quality.csv, row ``default-60`` at its last point: the demo recipe after 60 CPU minutes
  (`python tools/bench_quality.py --name default-60 --minutes 60 --every 20`): reconstruction, conversion and
  the phoneme probe, with MFCC k-means at the same K and frame rate from the same probe;
* demo60-reconstruction.json: `vqspeech evaluate-reconstruction --run runs/demo60 --limit 12 --seconds 2`,
  the 60-minute demo checkpoint beside Codec2 2400 on the same 12 test utterances;
* librispeech.csv, row ``reference`` at its last point: real speech, readers the model never heard, beside
  Codec2 2400 on the same audio (the WaveNet decoder, 2026-12-04);
* librispeech.csv, rows ``parallel-60`` (the parallel decoder, 60 CPU minutes) and ``wavenet-30`` (the WaveNet,
  30 CPU minutes, run after it on 2026-12-07): the two decoders on the same held-out readers;
* voice-levers.csv, row ``combo-60`` at its last point (when it is there): the parallel decoder at hop 320 with
  perturbation and the pitch stream, 60 CPU minutes (docs/experiments/2026-12-07-voice-out-of-the-codes.md);
* quality.csv, row ``parallel-demo-20``: the demo recipe with the parallel decoder after 20 CPU minutes,
  beside ``default-60``'s 20-minute point (the WaveNet, 2026-12-05).

The conversion column is the harness's: the share of conversions whose nearest Resemblyzer centroid is the
target (demo: every voice to every voice on 2 held-out sentences, chance 0.25; LibriSpeech: each held-out
reader to one other held-out reader, chance 0.05).

tests/test_results.py checks that the README's table is what this script makes.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- results:begin (python tools/results.py --write) -->", "<!-- results:end -->"
COLUMNS = ["system", "STOI", "PESQ-WB", "DNSMOS", "conversion → target", "phone mapping acc.", "PNMI",
           "ABX across", "bit/s"]


def last_row(path: Path, name: str) -> dict[str, str]:
    rows = [r for r in csv.DictReader(path.open()) if r["name"] == name]
    if not rows:
        raise SystemExit(f"{path} has no row named {name!r}")
    return max(rows, key=lambda r: float(r["minutes"]))


def row_at(path: Path, name: str, minutes: float) -> dict[str, str]:
    rows = [r for r in csv.DictReader(path.open()) if r["name"] == name and float(r["minutes"]) == minutes]
    if not rows:
        raise SystemExit(f"{path} has no row named {name!r} at {minutes:g} minutes")
    return rows[-1]


def fmt(value, digits: int = 3) -> str:
    if value in (None, ""):
        return "–"
    return f"{float(value):.{digits}f}"


def system_summary(report: dict, system: str) -> dict:
    return next(s for s in report["systems"] if s["system"] == system)


def table(bench: Path) -> str:
    demo = last_row(bench / "quality.csv", "default-60")
    libri = last_row(bench / "librispeech.csv", "reference")
    rows = [[f"vqspeech WaveNet, demo, {float(demo['minutes']):g} CPU min (harness run default-60)", fmt(demo["stoi"]), fmt(demo["pesq"], 2),
             fmt(demo["dnsmos_ovrl"], 2), fmt(demo["conv_target_embedding"], 2), fmt(demo["mapping_accuracy"]),
             fmt(demo["pnmi"]), fmt(demo["abx_across"]), fmt(demo["bitrate"], 0)],
            ["MFCC k-means, same K and frame rate", "–", "–", "–", "–", fmt(demo["mfcc_mapping_accuracy"]),
             fmt(demo["mfcc_pnmi"]), "–", "–"]]
    recon = bench / "demo60-reconstruction.json"
    if recon.is_file():
        report = json.loads(recon.read_text())
        import re

        found = re.search(r"\(step (\d+)\)", report.get("source", ""))
        trained = f"runs/demo60, step {int(found.group(1)):,}" if found else "runs/demo60"
        for system, label in (("vqspeech (sampling)", f"vqspeech WaveNet, demo, another 60 CPU min training ({trained}, "
                                                      "evaluate-reconstruction)"),
                              ("Codec2 2400", "Codec2 2400, same demo utterances")):
            s = system_summary(report, system)
            rows.append([label, fmt(s.get("stoi")), fmt(s.get("pesq"), 2), fmt(s.get("dnsmos_ovrl"), 2), "–", "–",
                         "–", "–", fmt(s.get("bitrate"), 0)])
    for name, decoder in (("parallel-demo-20", "parallel"),):
        demo_parallel = last_row(bench / "quality.csv", name)
        demo_wavenet = row_at(bench / "quality.csv", "default-60", float(demo_parallel["minutes"]))
        for row, label in ((demo_parallel, decoder), (demo_wavenet, "WaveNet")):
            rows.append([f"vqspeech {label}, demo, {float(row['minutes']):g} CPU min (harness)", fmt(row["stoi"]),
                         fmt(row["pesq"], 2), fmt(row["dnsmos_ovrl"], 2), fmt(row["conv_target_embedding"], 2),
                         fmt(row["mapping_accuracy"]), fmt(row["pnmi"]), fmt(row["abx_across"]),
                         fmt(row["bitrate"], 0)])
    for row, label in ((last_row(bench / "librispeech.csv", "parallel-60"), "parallel"),
                       (last_row(bench / "librispeech.csv", "wavenet-30"), "WaveNet, same day"),
                       (libri, "WaveNet")):
        rows.append([f"vqspeech {label}, LibriSpeech unseen readers, {float(row['minutes']):g} CPU min",
                     fmt(row["stoi"]), fmt(row["pesq"], 2), fmt(row["dnsmos_ovrl"], 2), fmt(row["conv_identified"], 2),
                     "–", "–", "–", "2000"])
    levers = bench / "voice-levers.csv"
    if levers.is_file() and any(r["name"] == "combo-60" for r in csv.DictReader(levers.open())):
        row = last_row(levers, "combo-60")
        rows.append([f"vqspeech parallel, hop 320 + perturbation + pitch stream, LibriSpeech unseen readers, "
                     f"{float(row['minutes']):g} CPU min", fmt(row["stoi"]), fmt(row["pesq"], 2),
                     fmt(row["dnsmos_ovrl"], 2), fmt(row["conv_identified"], 2), "–", "–", "–", fmt(row["bitrate"], 0)])
    rows += [["Codec2 2400, same LibriSpeech audio", fmt(libri["codec2_stoi"]), fmt(libri["codec2_pesq"], 2),
              fmt(libri["codec2_dnsmos_ovrl"], 2), "–", "–", "–", "–", "2400"]]
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def readme_with(readme: str, made: str) -> str:
    if BEGIN not in readme or END not in readme:
        raise SystemExit(f"README.md lacks the markers {BEGIN} ... {END}")
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{made}\n{END}{tail}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="replace the README's table")
    parser.add_argument("--benchmarks", default=str(REPO / "benchmarks"))
    args = parser.parse_args()
    made = table(Path(args.benchmarks))
    if args.write:
        readme = REPO / "README.md"
        readme.write_text(readme_with(readme.read_text(), made))
        print(f"wrote the results table into {readme}")
    else:
        print(made)
    return 0


if __name__ == "__main__":
    sys.exit(main())
