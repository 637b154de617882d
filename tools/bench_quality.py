"""The quality harness: train a fresh run for N CPU minutes, score it at several points, append to a CSV.

    python tools/bench_quality.py --name baseline --minutes 15 [--every 5] [override ...]
    python tools/bench_quality.py --name cosine --minutes 15 train.lr_schedule=cosine train.warmup_steps=200
    python tools/bench_quality.py --name baseline-top-p0.9 --from-run baseline --top-p 0.9  # sampling only: no training
    python tools/bench_quality.py --plot                                     # only redraw the learning curves
    python tools/bench_quality.py --table                                    # markdown: each name at its last point

    python tools/bench_quality.py --recipe recipes/librispeech --name reference --minutes 15 $LIBRISPEECH_CPU
                                    # real speech: the held-out readers are scored (benchmarks/librispeech.csv)

Every lever is judged here at equal CPU minutes, never at equal steps. The run trains once for --minutes
(``train.max_minutes``) keeping a checkpoint every --every minutes (``train.snapshot_minutes``); scoring
happens after training, so it costs no training time. Each checkpoint is scored on one fixed small set:

* reconstruction: 12 test utterances (3 per voice, the first by id), cut to --seconds, generated with the
  sampling settings (--temperature, --top-p, --loud-temperature) in folded batches: STOI, PESQ-WB, DNSMOS
  OVRL, MCD;
* conversion: every voice to every voice on 2 held-out sentences (4 × 4 × 2 on the demo corpus): the share
  identified as the target by speaker embedding (nearest Resemblyzer centroid) and by the log-mel
  classifier, and reconstructions identified as their own voice;
* the phoneme probe on the test + valid split: mapping accuracy, PNMI, held-out-voice mapping accuracy,
  speaker accuracy from code histograms, ABX within and across speakers; and the codes' bitrate.

A corpus with held-out speakers (split ``heldout``: recipes/librispeech) is scored on them instead, voices the
model never heard (:mod:`vqspeech.eval.unseen`): each reader's first half reconstructed in the voice of its
second half (STOI, PESQ-WB, DNSMOS OVRL, MCD, with Codec2 2400 on the same audio), converted to
--targets other held-out readers (share identified as the target by Resemblyzer and by the speaker
classifier, cosine to the target's and the source's real voice), the pocketsphinx agreement proxy
(--asr), and the code perplexity on that audio.

One CSV row per (run, checkpoint): name, config hash, overrides, minutes, steps, valid loss and every figure.
The CSV is rewritten whole through an atomic rename, so an interrupted harness never leaves it half-written.
The learning-curve PNG plots each figure against CPU minutes, one line per name.
Runs live in runs/quality/<name>; a name that exists is refused (choose another, or remove the folder).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import re
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loss_curves import scalars  # noqa: E402  (tools/ is not a package)

REPO = Path(__file__).resolve().parents[1]
FIELDS = ["name", "config_hash", "overrides", "sampling", "minutes", "steps", "train_wall_s", "valid_loss",
          "stoi", "pesq", "dnsmos_ovrl", "mcd", "conv_target_embedding", "recon_own_embedding",
          "real_embedding_accuracy", "conv_target_classifier", "recon_own_classifier", "similarity_target",
          "mapping_accuracy", "pnmi", "mapping_accuracy_heldout_voice", "speaker_accuracy_codes", "abx_across",
          "mfcc_mapping_accuracy", "mfcc_pnmi", "score_wall_s", "machine_load", "abx_within", "bitrate",
          "audio_seconds_trained", "decoder"]
CURVES = [("stoi", "STOI"), ("pesq", "PESQ-WB"), ("dnsmos_ovrl", "DNSMOS OVRL"), ("mcd", "MCD (dB)"),
          ("conv_target_embedding", "conversions identified as target"), ("mapping_accuracy", "mapping accuracy"),
          ("pnmi", "PNMI"), ("valid_loss", "valid loss (the decoder's score; WaveNet: nats/sample)")]
RECON_UTTERANCES_PER_VOICE = 3
PROBE_UTTERANCES = 48  # of the test + valid split, chosen by utterance id (the same for every run)
UNSEEN_FIELDS = ["name", "config_hash", "overrides", "minutes", "steps", "train_wall_s", "valid_loss", "stoi", "pesq",
                 "dnsmos_ovrl", "mcd", "codec2_stoi", "codec2_pesq", "codec2_dnsmos_ovrl", "conv_identified",
                 "conv_classified", "conv_cosine_target", "conv_cosine_source", "recon_identified",
                 "recon_cosine_target", "asr_conv", "asr_recon", "asr_codec2", "perplexity", "used_codes",
                 "score_wall_s", "machine_load", "audio_seconds_trained", "decoder", "bitrate"]
UNSEEN_CURVES = [("stoi", "STOI (held-out readers)"), ("dnsmos_ovrl", "DNSMOS OVRL"),
                 ("conv_identified", "conversions identified as target"), ("conv_cosine_target", "cosine to target"),
                 ("perplexity", "code perplexity"), ("valid_loss", "valid loss (the decoder's score; WaveNet: nats/sample)")]


def config_hash(cfg) -> str:
    from omegaconf import OmegaConf

    plain = OmegaConf.to_container(cfg, resolve=True)
    plain.pop("run_dir", None)
    return hashlib.sha256(json.dumps(plain, sort_keys=True).encode()).hexdigest()[:10]


def read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def append_row(path: Path, row: dict, fields: list[str] = FIELDS) -> None:
    """Rewrite the CSV (columns ``fields``) with ``row`` added, atomically (temp file + rename)."""
    from vqspeech.files import write_atomic

    rows = read_rows(path) + [row]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, out.getvalue())


def snapshots(run_dir: Path) -> list[tuple[float, Path]]:
    """(minutes, checkpoint) for every minutes-NNN snapshot, in order."""
    found = [(float(re.match(r"minutes-([\d.]+)$", p.stem).group(1)), p)
             for p in (run_dir / "checkpoints").glob("minutes-*.pt")]
    return sorted(found)


def recon_set(corpus):
    """The fixed reconstruction set: the first RECON_UTTERANCES_PER_VOICE test utterances of each voice by id."""
    by_speaker: dict[str, list] = {}
    for utt in sorted(corpus.split("test"), key=lambda u: (u.speaker, u.utterance)):
        by_speaker.setdefault(utt.speaker, []).append(utt)
    return [u for spk in sorted(by_speaker) for u in by_speaker[spk][:RECON_UTTERANCES_PER_VOICE]]


def score_checkpoint(checkpoint: Path, corpus, sample_rate: int, sampling: dict, seconds: float, out_dir: Path,
                     mos) -> dict:
    from vqspeech.eval.conversion import evaluate_conversion
    from vqspeech.eval.probing import probe_phonemes
    from vqspeech.eval.reconstruction import MODEL_SAMPLED, Evaluation, batches, summarize
    from vqspeech.models.generation import SEGMENT_SECONDS, GenerationConfig
    from vqspeech.runs import load_run

    started = time.monotonic()
    run = load_run(checkpoint=checkpoint, device="cpu")
    model = run.model
    generation = GenerationConfig.from_seconds(SEGMENT_SECONDS, sample_rate, model.hop_length, **sampling)
    evaluation = Evaluation(model, sample_rate, {MODEL_SAMPLED: generation},
                            torch.Generator().manual_seed(0), mos=mos)
    for batch in batches(recon_set(corpus), sample_rate, model.hop_length, generation.segment_frames, 64, seconds,
                         [], _NoBar()):
        evaluation.add(batch)
    recon = summarize(MODEL_SAMPLED, [r for r in evaluation.rows if r.system == MODEL_SAMPLED])
    timings = {"reconstruction": time.monotonic() - started}

    conversion = evaluate_conversion(model, corpus, sample_rate, out_dir / "conversion", n_sentences=2,
                                     generation=generation, max_seconds=seconds, progress=False)
    timings["conversion"] = time.monotonic() - started - sum(timings.values())
    probe = probe_phonemes(model, corpus, sample_rate, out_dir / "probe", split=["test", "valid"],
                           max_utterances=PROBE_UTTERANCES, progress=False)
    timings["probe"] = time.monotonic() - started - sum(timings.values())
    print("scoring seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()), file=sys.stderr)
    figures = dict(zip(probe.columns, zip(*[probe.metrics[k] for k in
                                            ("mapping_accuracy", "pnmi", "mapping_accuracy_speaker_split",
                                             "speaker_accuracy", "abx_across", "abx_within")])))
    model_column = probe.columns[0]
    mfcc_column = next(c for c in probe.columns if "MFCC" in c)
    acc, pnmi, heldout, speaker_acc, abx, abx_within = figures[model_column]
    bits = model.bottleneck.bits_per_frame()
    return {"steps": run.step, "sampling": model.decoder.describe_generation(generation), "stoi": recon.stoi,
            "pesq": recon.pesq, "dnsmos_ovrl": recon.dnsmos_ovrl, "mcd": recon.mcd, "conv_target_embedding": conversion.embedding_target_share,
            "recon_own_embedding": conversion.embedding_reconstructed_share,
            "real_embedding_accuracy": conversion.embedding_accuracy,
            "conv_target_classifier": conversion.target_share, "recon_own_classifier": conversion.reconstructed_share,
            "similarity_target": conversion.similarity_converted, "mapping_accuracy": acc, "pnmi": pnmi,
            "mapping_accuracy_heldout_voice": heldout, "speaker_accuracy_codes": speaker_acc, "abx_across": abx,
            "abx_within": abx_within, "bitrate": None if bits is None else bits * sample_rate / model.hop_length,
            "mfcc_mapping_accuracy": figures[mfcc_column][0], "mfcc_pnmi": figures[mfcc_column][1]}


def score_unseen(checkpoint: Path, corpus, seconds: float, out_dir: Path, mos, targets: int, asr: bool) -> dict:
    """The held-out-reader figures of one checkpoint (see the module docstring)."""
    from vqspeech.eval.reconstruction import MODEL_SAMPLED, Evaluation, batches, summarize
    from vqspeech.eval.unseen import evaluate_unseen, unseen_voices
    from vqspeech.models.generation import SEGMENT_SECONDS, GenerationConfig
    from vqspeech.runs import load_run

    run = load_run(checkpoint=checkpoint, device="cpu")
    model, sample_rate = run.model, run.model.sample_rate
    pieces, voices = unseen_voices(model, corpus, progress=False)
    generation = GenerationConfig.from_seconds(SEGMENT_SECONDS, sample_rate, model.hop_length)
    evaluation = Evaluation(model, sample_rate, {MODEL_SAMPLED: generation}, torch.Generator().manual_seed(0),
                            codec2_modes=(2400,), mos=mos, voice_of=lambda utt: voices[utt.speaker])
    for batch in batches(pieces, sample_rate, model.hop_length, generation.segment_frames, 64, seconds, [], _NoBar()):
        evaluation.add(batch)
    recon = summarize(MODEL_SAMPLED, [r for r in evaluation.rows if r.system == MODEL_SAMPLED])
    codec = summarize("Codec2 2400", [r for r in evaluation.rows if r.system == "Codec2 2400"])
    usage = evaluation.usage()
    unseen = evaluate_unseen(model, corpus, out_dir / "unseen", targets_per_source=targets, max_seconds=seconds,
                             asr=asr, progress=False)
    c, r = unseen.converted, unseen.reconstructed
    return {"steps": run.step, "stoi": recon.stoi, "pesq": recon.pesq, "dnsmos_ovrl": recon.dnsmos_ovrl,
            "mcd": recon.mcd, "codec2_stoi": codec.stoi, "codec2_pesq": codec.pesq,
            "codec2_dnsmos_ovrl": codec.dnsmos_ovrl, "conv_identified": c.identified_as_target,
            "conv_classified": c.classified_as_target, "conv_cosine_target": c.cosine_target,
            "conv_cosine_source": c.cosine_source, "recon_identified": r.identified_as_target,
            "recon_cosine_target": r.cosine_target, "asr_conv": c.asr_agreement_error,
            "asr_recon": r.asr_agreement_error, "asr_codec2": unseen.asr_codec2_2400,
            "perplexity": usage and float(usage.perplexity), "used_codes": usage and int(usage.used_codes),
            "bitrate": usage and usage.bitrate + (model.pitch.bits_per_second(sample_rate) if model.pitch else 0.0)}


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass


def audio_seconds_trained(cfg, steps: int) -> float:
    """Seconds of audio the run trained on by ``steps``: steps × batch × crop / sample rate (one process)."""
    return steps * cfg.train.batch_size * cfg.train.crop_samples / cfg.data.sample_rate


def valid_loss_at(run_dir: Path, step: int) -> float | None:
    """The validation loss logged nearest before ``step`` (TensorBoard), None if none was."""
    logged = [value for at, value in sorted(scalars(run_dir, "valid/loss_reconstruction").items()) if at <= step]
    return logged[-1] if logged else None


def plot(csv_path: Path, png: Path, curves=CURVES) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_rows(csv_path)
    names = list(dict.fromkeys(r["name"] for r in rows))
    fig, axes = plt.subplots(2, 4, figsize=(18, 8))
    for ax, (key, label) in zip(axes.flat, curves):
        for name in names:
            points = sorted((float(r["minutes"]), float(r[key])) for r in rows if r["name"] == name and r[key])
            if points:
                ax.plot(*zip(*points), marker="o", label=name)
        ax.set_title(label)
        ax.set_xlabel("CPU minutes of training")
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle("vqspeech quality harness (tools/bench_quality.py): figures against training time")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=80)
    plt.close(fig)


TABLE = [("minutes", "min"), ("steps", "steps"), ("valid_loss", "valid loss"), ("stoi", "STOI"),
         ("pesq", "PESQ"), ("dnsmos_ovrl", "DNSMOS"), ("mcd", "MCD"),
         ("conv_target_embedding", "conv. → target (emb.)"), ("recon_own_embedding", "recon. → own (emb.)"),
         ("conv_target_classifier", "conv. → target (clf.)"), ("mapping_accuracy", "map. acc."), ("pnmi", "PNMI"),
         ("mapping_accuracy_heldout_voice", "map. acc. held-out voice"), ("speaker_accuracy_codes", "spk acc. codes"),
         ("abx_within", "ABX within"), ("abx_across", "ABX across"), ("bitrate", "bit/s")]


def table(csv_path: Path, columns=None, at: float | None = None) -> str:
    """One markdown row per name: its figures at its last scored point (at ``at`` minutes, if given), and its
    overrides and sampling."""
    rows = [r for r in read_rows(csv_path) if at is None or float(r["minutes"]) == at]
    last = {}
    for r in rows:
        if r["name"] not in last or float(r["minutes"]) >= float(last[r["name"]]["minutes"]):
            last[r["name"]] = r

    def cell(value: str) -> str:
        try:
            number = float(value)
        except ValueError:
            return value or "–"
        return f"{number:.0f}" if number.is_integer() else f"{number:.3f}"

    columns = columns or TABLE
    lines = ["| name | " + " | ".join(label for _, label in columns) + " | overrides, sampling |",
             "|---" * (len(columns) + 2) + "|"]
    for name, r in last.items():
        lines.append(f"| {name} | " + " | ".join(cell(r.get(key) or "") for key, _ in columns)
                     + f" | `{r['overrides'] or '(recipe)'}`; {r.get('sampling') or 'recipe sampling'} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", help="the configuration's name (a row label; runs/quality/NAME)")
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--every", type=float, default=5.0, help="score a checkpoint every this many minutes")
    parser.add_argument("--recipe", default=str(REPO / "recipes" / "demo"))
    parser.add_argument("--csv", default=str(REPO / "benchmarks" / "quality.csv"))
    parser.add_argument("--png", default=str(REPO / "benchmarks" / "quality.png"))
    parser.add_argument("--runs", default="runs/quality")
    parser.add_argument("--seconds", type=float, default=2.0, help="cut scored utterances to this length")
    parser.add_argument("--temperature", type=float, help="default: GenerationConfig's (1.0)")
    parser.add_argument("--top-p", type=float, help="default: GenerationConfig's (1.0)")
    parser.add_argument("--loud-temperature", type=float, help="conditional sampling: this temperature where the "
                        "generated audio is louder than --loud-db (default: off)")
    parser.add_argument("--loud-db", type=float, help="default: GenerationConfig's (-30 dBFS)")
    parser.add_argument("--from-run", help="score the snapshots of runs/quality/FROM_RUN again under --name, with "
                        "other sampling settings (no training; the overrides must be that run's)")
    parser.add_argument("--at", type=float, help="score only the snapshot at this many minutes (with --table: "
                        "the rows at this many minutes)")
    parser.add_argument("--plot", action="store_true", help="only redraw the PNG from the CSV")
    parser.add_argument("--table", action="store_true", help="only print the CSV's last point per name as markdown")
    parser.add_argument("--columns", nargs="+", help="with --table: only these CSV columns")
    parser.add_argument("--targets", type=int, default=1, help="held-out readers: conversion targets per source")
    parser.add_argument("--asr", action="store_true", help="held-out readers: also the pocketsphinx agreement proxy")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    unseen = Path(args.recipe).resolve().name == "librispeech"
    if unseen and args.csv == parser.get_default("csv"):
        args.csv, args.png = str(REPO / "benchmarks" / "librispeech.csv"), str(REPO / "benchmarks" / "librispeech.png")
    csv_path, png = Path(args.csv), Path(args.png)
    curves, fields = (UNSEEN_CURVES, UNSEEN_FIELDS) if unseen else (CURVES, FIELDS)
    if args.table:
        columns = args.columns or ([k for k in fields[3:] if k not in ("config_hash", "overrides")] if unseen
                                   else None)
        print(table(csv_path, [(k, k) for k in columns] if columns else None, args.at))
        return
    if args.plot:
        plot(csv_path, png, curves)
        print(f"wrote {png}")
        return
    if not args.name:
        sys.exit("error: --name is required (a label for this configuration)")

    from vqspeech.config import compose_recipe
    from vqspeech.data.corpus import Corpus
    from vqspeech.errors import UserError
    from vqspeech.eval.speech_metrics import Dnsmos
    from vqspeech.models.generation import SAMPLING_KEYS, GenerationConfig
    from vqspeech.training import train

    run_dir = Path(args.runs) / (args.from_run or args.name)
    overrides = [*args.overrides, f"run_dir={run_dir}", f"train.max_minutes={args.minutes}",
                 f"train.snapshot_minutes={args.every}", "train.audio_every=null"]
    try:
        cfg = compose_recipe(args.recipe, overrides)
        try:  # checked before training, so a bad --temperature / --top-p costs no minutes
            given = {key: getattr(args, key) for key in SAMPLING_KEYS}
            generation = GenerationConfig(**{key: value for key, value in given.items() if value is not None})
        except ValueError as exc:
            raise UserError(str(exc)) from None
        if not args.from_run:
            if run_dir.exists():
                sys.exit(f"error: {run_dir} exists; choose another --name, remove it, or score it with --from-run")
            started = time.monotonic()
            train(cfg, progress=False)
            train_wall = time.monotonic() - started
        else:
            train_wall = float("nan")
        corpus = Corpus.from_config(cfg.data)
    except UserError as exc:
        sys.exit(f"error: {exc}")
    sample_rate = cfg.data.sample_rate
    mos = Dnsmos()
    for minutes, checkpoint in snapshots(run_dir):
        if args.at is not None and minutes != args.at:
            continue
        started = time.monotonic()
        out_dir = run_dir / "scores" / f"minutes-{minutes:05.1f}"
        if unseen:
            figures = score_unseen(checkpoint, corpus, args.seconds, out_dir, mos, args.targets, args.asr)
        else:
            figures = score_checkpoint(checkpoint, corpus, sample_rate, generation.sampling, args.seconds, out_dir,
                                       mos)
        load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else ""
        row = {"name": args.name, "config_hash": config_hash(cfg), "overrides": " ".join(args.overrides),
               "sampling": generation.describe(), "minutes": minutes,
               "train_wall_s": f"{train_wall:.0f}", "valid_loss": valid_loss_at(run_dir, figures["steps"]),
               **{k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in figures.items()},
               "score_wall_s": f"{time.monotonic() - started:.0f}", "machine_load": load,
               "audio_seconds_trained": f"{audio_seconds_trained(cfg, figures['steps']):.0f}",
               "decoder": cfg.model.decoder.get("kind", "wavenet")}
        append_row(csv_path, {k: v for k, v in row.items() if k in fields}, fields)
        print(json.dumps(row), flush=True)
    plot(csv_path, png, curves)
    print(f"rows appended to {csv_path}; learning curves {png}")


if __name__ == "__main__":
    main()
