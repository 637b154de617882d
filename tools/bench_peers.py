"""vqspeech beside its peers at equal sizes, in one table (a benchmark, not a test).

    pip install -e ".[bench]"        # the peers: vector-quantize-pytorch, wavenet-vocoder (r9y9)
    python tools/bench_peers.py [--steps 8] [--parts train vq] [--compile]

train: one optimizer step (forward, backward, Adam) on a batch of 4 × 8192 samples with the decoder at
r9y9/wavenet_vocoder's demo size: 20 layers in 2 stacks, 64 residual / 128 gate / 64 skip channels, kernel 2.
vqspeech runs its whole VQ-VAE (encoder, VQ, decoder, speaker table). r9y9's WaveNet is conditioned the way
its recipe is: 64 local channels upsampled ×64 by transposed convolutions, and a speaker embedding (32).
Each configuration runs in its own process, so its peak resident memory is its own. Reported: step time,
audio-seconds trained per wall-second, and peak RSS above the process after building the model.

vq: forward + backward of a VQ layer with K = 512, D = 64 on [64, 1024, 64] vectors: vqspeech's (gradient
codebook, and EMA with dead-code restarts), a bare reference (one matmul, argmin, EMA update: the floor
anything must pay), and lucidrains' VectorQuantize (EMA, its defaults) when installed.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import time_steps  # noqa: E402  (tools/ is not a package)

BATCH, CROP, HOP = 4, 8192, 64
R9_SIZE = ["model.decoder.residual_channels=64", "model.decoder.skip_channels=64",
           "model.decoder.layers_per_stack=10", "model.decoder.stacks=2", "model.decoder.kernel_size=2",
           f"train.batch_size={BATCH}", f"train.crop_samples={CROP}"]

# name -> (implementation, precision, checkpointing, compile)
TRAIN_ROWS = {
    "vqspeech fp32": ("vqspeech", "fp32", None, False),
    "vqspeech bf16": ("vqspeech", "bf16", None, False),
    "vqspeech auto (measured)": ("vqspeech", "auto", None, False),
    "vqspeech fp32 + checkpointing (block)": ("vqspeech", "fp32", "block", False),
    "vqspeech bf16 + checkpointing (block)": ("vqspeech", "bf16", "block", False),
    "vqspeech bf16 + checkpointing (stack)": ("vqspeech", "bf16", "stack", False),
    "r9y9 wavenet_vocoder fp32": ("r9y9", "fp32", None, False),
    "r9y9 wavenet_vocoder bf16": ("r9y9", "bf16", None, False),
}
COMPILE_ROWS = {
    "vqspeech fp32 + compile": ("vqspeech", "fp32", None, True),
    "vqspeech bf16 + compile": ("vqspeech", "bf16", None, True),
}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _autocast(precision: str):
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")


def run_vqspeech(precision: str, checkpointing: str | None, compile_: bool, steps: int, warmup: int) -> dict:
    from vqspeech.config import compose_recipe
    from vqspeech.models import build_model
    from vqspeech.models.builders import model_kwargs
    from vqspeech.training.precision import resolve, timing_step
    from vqspeech.training.trainer import weighted_loss

    repo = Path(__file__).resolve().parents[1]
    cfg = compose_recipe(repo / "recipes" / "demo", [*R9_SIZE, f"train.precision={precision}"])
    model = build_model(model_kwargs(cfg.model, ["a", "b", "c", "d"]))
    model.decoder.activation_checkpointing = checkpointing
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    net = torch.compile(model) if compile_ else model
    base = peak_rss_mb()

    def batch():
        return (0.1 * torch.randn(BATCH, 1, CROP)).clamp(-1, 1), torch.randint(4, (BATCH,))

    cpu = torch.device("cpu")
    chosen, choice = resolve(precision, cpu, lambda: timing_step(
        model, batch, lambda m, b: weighted_loss(m(*b).losses, cfg.train.loss_weights)),
        {"model": model_kwargs(cfg.model, ["a", "b", "c", "d"]), "batch": [BATCH, CROP], "tool": "bench_peers"})
    if choice is not None:
        print(f"vqspeech: {choice.describe()}")
    times = time_steps(net, optimizer, batch, cfg.train, cpu, steps, warmup, chosen)
    return {"times": times, "base": base}


def run_r9y9(precision: str, steps: int, warmup: int) -> dict:
    from wavenet_vocoder import WaveNet

    model = WaveNet(out_channels=256, layers=20, stacks=2, residual_channels=64, gate_channels=128,
                    skip_out_channels=64, kernel_size=2, dropout=0.05, cin_channels=64, gin_channels=32,
                    n_speakers=4, upsample_conditional_features=True, upsample_scales=[4, 4, 4])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    base = peak_rss_mb()
    times = []
    for i in range(warmup + steps):
        targets = torch.randint(256, (BATCH, CROP))
        x = F.one_hot(targets, 256).transpose(1, 2).float()
        c, g = torch.randn(BATCH, 64, CROP // HOP), torch.randint(4, (BATCH, 1))
        started = time.perf_counter()
        with _autocast(precision):
            logits = model(x, c=c, g=g)
            loss = F.cross_entropy(logits[:, :, :-1].float(), targets[:, 1:])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        times.append(time.perf_counter() - started)
    return {"times": times, "base": base}


def one(name: str, steps: int, warmup: int) -> None:
    impl, precision, checkpointing, compile_ = {**TRAIN_ROWS, **COMPILE_ROWS}[name]
    torch.manual_seed(0)
    if impl == "vqspeech":
        result = run_vqspeech(precision, checkpointing, compile_, steps, warmup)
    else:
        result = run_r9y9(precision, steps, warmup)
    step = sum(result["times"][warmup:]) / steps
    print(json.dumps({"name": name, "step_ms": 1000 * step, "audio_per_s": BATCH * CROP / 16000 / step,
                      "peak_mb": peak_rss_mb(), "above_model_mb": peak_rss_mb() - result["base"],
                      "first_step_s": result["times"][0]}))


def train_table(steps: int, warmup: int, compile_: bool) -> None:
    rows = {**TRAIN_ROWS, **(COMPILE_ROWS if compile_ else {})}
    print(f"train step, batch {BATCH} × {CROP} at r9y9's demo size, {torch.get_num_threads()} threads, "
          f"mean of {steps} steps after {warmup}")
    print("| configuration | step (ms) | audio-s per s | peak RSS (MB) | above model (MB) | first step (s) |")
    print("|---|---|---|---|---|---|")
    for name in rows:
        proc = subprocess.run([sys.executable, __file__, "--one", name, "--steps", str(steps),
                               "--warmup", str(warmup)], capture_output=True, text=True)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        if proc.returncode or not lines:
            reason = (proc.stderr.strip().splitlines() or ["failed"])[-1]
            print(f"| {name} | not run: {reason[:100]} | | | | |")
            continue
        r = json.loads(lines[-1])
        print(f"| {name} | {r['step_ms']:.0f} | {r['audio_per_s']:.2f} | {r['peak_mb']:.0f} | "
              f"{r['above_model_mb']:.0f} | {r['first_step_s']:.1f} |", flush=True)


class BareVQ(torch.nn.Module):
    """The floor: one matmul for the distances, argmin, straight-through, EMA update. Nothing else."""

    def __init__(self, dim: int, k: int, decay: float = 0.99):
        super().__init__()
        self.decay = decay
        self.register_buffer("codebook", torch.randn(k, dim))
        self.register_buffer("size", torch.ones(k))
        self.register_buffer("sums", self.codebook.clone())

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        flat = z.reshape(-1, z.shape[-1])
        codes = (self.codebook.pow(2).sum(1) - 2 * flat.detach() @ self.codebook.t()).argmin(1)
        q = self.codebook[codes]
        with torch.no_grad():
            self.size.mul_(self.decay).add_(torch.bincount(codes, minlength=len(self.size)), alpha=1 - self.decay)
            self.sums.mul_(self.decay).add_(torch.zeros_like(self.sums).index_add_(0, codes, flat), alpha=1 - self.decay)
            self.codebook.copy_(self.sums / self.size.clamp(min=1e-5)[:, None])
        return (flat + (q - flat).detach()).view_as(z), F.mse_loss(flat, q)


def vq_table(repeats: int = 10) -> None:
    from vqspeech.quantization import VectorQuantizer

    batch, frames, dim, k = 64, 1024, 64, 512
    n = batch * frames

    def rate(step) -> float:
        for _ in range(2):
            step()
        started = time.perf_counter()
        for _ in range(repeats):
            step()
        return n * repeats / (time.perf_counter() - started)

    rows = {}
    for name, vq in [("vqspeech, gradient codebook", VectorQuantizer(dim, k)),
                     ("vqspeech, EMA + dead-code restart", VectorQuantizer(dim, k, ema_decay=0.99, dead_code_steps=100))]:
        vq.train()
        z = torch.randn(batch, dim, frames, requires_grad=True)  # vqspeech's layout: [B, D, F]

        def step(vq=vq, z=z):
            r = vq(z)
            (r.quantized.mean() + sum(r.losses.values())).backward()
        rows[name] = rate(step)
    bare, zb = BareVQ(dim, k), torch.randn(batch, frames, dim, requires_grad=True)

    def bare_step():
        q, loss = bare(zb)
        (q.mean() + loss).backward()
    rows["bare matmul + argmin + EMA"] = rate(bare_step)
    try:
        from vector_quantize_pytorch import VectorQuantize

        luci = VectorQuantize(dim=dim, codebook_size=k, decay=0.99, commitment_weight=0.25).train()

        def luci_step():
            q, _, loss = luci(zb)
            (q.mean() + loss.sum()).backward()
        rows["lucidrains vector-quantize-pytorch (EMA)"] = rate(luci_step)
    except ImportError:
        rows["lucidrains vector-quantize-pytorch (EMA)"] = None
    print(f"\nVQ forward + backward, K = {k}, D = {dim}, [{batch}, {frames}, {dim}] vectors, "
          f"{torch.get_num_threads()} threads")
    print("| VQ layer | vectors per second |")
    print("|---|---|")
    for name, value in rows.items():
        print(f"| {name} | {'not installed' if value is None else f'{value / 1e3:.0f} k'} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--parts", nargs="+", default=["train", "vq"], choices=["train", "vq"])
    parser.add_argument("--compile", action="store_true", help="add torch.compile rows (about 90 s each to compile)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(args.one, args.steps, args.warmup)
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if "train" in args.parts:
        train_table(args.steps, args.warmup, args.compile)
    if "vq" in args.parts:
        vq_table()


if __name__ == "__main__":
    main()
