"""Ship a trained run inside the package: vqspeech/weights/NAME.pt (+ NAME-prior.pt, NAME-curve.csv, index.json).

    python tools/export_pretrained.py model --run runs/long/librispeech --name librispeech [--dtype float16]
    vqspeech train-prior --run runs/shipped-src/librispeech train.max_minutes=5      # its prior, on its codes
    python tools/export_pretrained.py prior --name librispeech --prior runs/shipped-src/librispeech/prior
    python tools/export_pretrained.py curve --name librispeech --run runs/long/librispeech --early CSV

``model`` writes the VQ-VAE's weights only (no optimizer), in --dtype, and measures what float16 costs against
float32 on the run corpus's held-out speakers (codes that differ, STOI of both reconstructions). It also makes
runs/shipped-src/NAME/, a run folder whose last.pt is the exported file, for train-prior. ``prior`` ships that
prior's best checkpoint, weights only. ``curve`` writes the run's validation and training curve against
audio-hours read (vqspeech/reference.py), from its TensorBoard plus earlier points given as CSV
(``step,minutes,valid``). Each writes index.json's entry with the files' sizes and SHA-256.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vqspeech import pretrained  # noqa: E402
from vqspeech.checkpoint import BEST, LAST, file_hash, load_checkpoint, save_checkpoint  # noqa: E402
from vqspeech.files import sha256  # noqa: E402

WEIGHTS = ROOT / "vqspeech" / "weights"
KEEP = ("step", "model_kwargs", "config", "best_valid_loss", "world_size", "minutes_trained")


def weights_only(payload: dict, dtype: torch.dtype) -> dict:
    """A checkpoint's model and description without its optimizer and RNG; floating tensors in ``dtype``."""
    model = {k: v.to(dtype) if v.is_floating_point() else v for k, v in payload["model"].items()}
    return {**{k: payload[k] for k in KEEP if k in payload}, "model": model, "weights_dtype": str(dtype)}


def write_index(name: str, part: str, path: Path, **fields) -> None:
    index = pretrained.index(WEIGHTS)
    entry = index.setdefault(name, {})
    entry[part] = {"file": path.name, "bytes": path.stat().st_size, "sha256": sha256(path)}
    entry.update(fields)
    (WEIGHTS / pretrained.INDEX).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    print(f"{path}: {path.stat().st_size / 1e6:.2f} MB, sha256 {entry[part]['sha256']}")


def fp16_cost(payload: dict, utterances: int, seconds: float) -> None:
    """Codes and STOI of the float32 and float16 weights on the held-out speakers' utterances."""
    from vqspeech.api import Model
    from vqspeech.checkpoint import model_from_checkpoint
    from vqspeech.data.audio import load_audio
    from vqspeech.data.corpus import Corpus
    from vqspeech.eval.speech_metrics import score
    from vqspeech.runs import LoadedRun

    models = {}
    for dtype in (torch.float32, torch.float16):
        part = weights_only(payload, dtype)
        net = model_from_checkpoint(part, kind="vqvae").eval()
        models[dtype] = Model(LoadedRun(net, part["config"], Path("export"), part["step"], part["model_kwargs"]))
    corpus = Corpus.from_config(payload["config"]["data"])
    held = corpus.split("heldout")[:utterances]
    rate = models[torch.float32].sample_rate
    same = total = 0
    stoi = {torch.float32: [], torch.float16: []}
    for utt in held:
        wav = utt.cut(load_audio(utt.path, rate), rate)[: int(seconds * rate)]
        codes = {d: m.encode(wav) for d, m in models.items()}
        same += int((codes[torch.float32] == codes[torch.float16]).sum())
        total += len(codes[torch.float32])
        for dtype, model in models.items():
            stoi[dtype].append(score(wav, model.reconstruct(wav), rate).stoi)
    print(f"float16 against float32 on {len(held)} held-out utterances ({seconds:g} s each): codes equal "
          f"{same}/{total} ({same / max(total, 1):.4f}); STOI {np.mean(stoi[torch.float32]):.4f} (float32) vs "
          f"{np.mean(stoi[torch.float16]):.4f} (float16)")


def export_model(args: argparse.Namespace) -> None:
    source = Path(args.run) / "checkpoints" / LAST if Path(args.run).is_dir() else Path(args.run)
    payload = load_checkpoint(source)
    if args.compare:
        fp16_cost(payload, args.compare, args.seconds)
    dtype = getattr(torch, args.dtype)
    WEIGHTS.mkdir(exist_ok=True)
    out = save_checkpoint(WEIGHTS / f"{args.name}.pt", weights_only(payload, dtype))
    data = payload["config"]["data"]
    model = payload["model_kwargs"]["model"]
    write_index(args.name, "checkpoint", out, summary=args.summary, source=str(source), step=int(payload["step"]),
                decoder=model["decoder"]["kind"], corpus=Path(data["root"]).name,
                preemphasis=float(model.get("preemphasis") or 0.0), sample_rate=int(payload["model_kwargs"]["sample_rate"]))
    src = ROOT / "runs" / "shipped-src" / args.name / "checkpoints"  # a run folder for train-prior
    src.mkdir(parents=True, exist_ok=True)
    (src / LAST).unlink(missing_ok=True)
    os.link(out, src / LAST)
    with open(src.parent / "config.yaml", "w") as f:
        import yaml

        yaml.safe_dump(payload["config"], f)
    print(f"train its prior: vqspeech train-prior --run {src.parent}")


def export_prior(args: argparse.Namespace) -> None:
    folder = Path(args.prior) / "checkpoints"
    path = folder / BEST if (folder / BEST).is_file() else folder / LAST
    payload = load_checkpoint(path)
    shipped = WEIGHTS / f"{args.name}.pt"
    if payload["model_kwargs"]["codes_hash"] != file_hash(shipped):
        sys.exit(f"error: {path} models the codes of another checkpoint than {shipped}")
    out = save_checkpoint(WEIGHTS / f"{args.name}-prior.pt", weights_only(payload, torch.float32))
    write_index(args.name, "prior", out)


def export_curve(args: argparse.Namespace) -> None:
    from vqspeech.compare import scalars
    from vqspeech.reference import Curve, audio_hours

    payload = load_checkpoint(Path(args.run) / "checkpoints" / LAST)
    config, world = payload["config"], int(payload.get("world_size", 1))
    rows: dict[int, dict] = {}
    if args.early:
        with open(args.early, newline="") as f:
            for r in csv.DictReader(f):
                rows[int(r["step"])] = {"minutes": float(r["minutes"]), "valid": float(r["valid"])}
    logged = scalars(Path(args.run))
    valid, train = logged.get("valid/loss_reconstruction", {}), logged.get("train/loss_total", {})
    for step, value in valid.items():
        rows.setdefault(step, {})["valid"] = value
    # the training loss every 250 steps, a mean over the 250 logged before it (it is noisy step to step)
    for end in range(min(train, default=0) // 250 * 250 + 250, max(train, default=0) + 1, 250):
        window = [v for s, v in train.items() if end - 250 < s <= end]
        if window:
            rows.setdefault(end, {})["train"] = float(np.mean(window))
    steps = np.array(sorted(rows))
    get = lambda key: np.array([rows[s].get(key, math.nan) for s in steps])
    curve = Curve(name=args.name, audio_hours=np.array([audio_hours(int(s), config, world) for s in steps]),
                  valid=get("valid"), train=get("train"), steps=steps)
    out = WEIGHTS / f"{args.name}-curve.csv"
    curve.write(out, get("minutes"))
    write_index(args.name, "curve", out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("model")
    p.add_argument("--run", required=True, help="a run folder (its last.pt) or a checkpoint file")
    p.add_argument("--name", required=True)
    p.add_argument("--dtype", default="float16", choices=["float16", "float32"])
    p.add_argument("--summary", required=True, help="one line: what it was trained on, for how long")
    p.add_argument("--compare", type=int, default=20, help="held-out utterances to measure float16 on (0: none)")
    p.add_argument("--seconds", type=float, default=4.0)
    p.set_defaults(func=export_model)
    p = sub.add_parser("prior")
    p.add_argument("--name", required=True)
    p.add_argument("--prior", required=True, help="the prior's run folder")
    p.set_defaults(func=export_prior)
    p = sub.add_parser("curve")
    p.add_argument("--name", required=True)
    p.add_argument("--run", required=True, help="the training run (its TensorBoard)")
    p.add_argument("--early", help="CSV step,minutes,valid: points the run's TensorBoard no longer holds")
    p.set_defaults(func=export_curve)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
