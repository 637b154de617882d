"""train.precision: fp32, or autocast to bfloat16 / float16 for the encoder and decoder.

  fp32  everything in float32 (the default of configs/train/default.yaml).
  auto  whichever of fp32 and bf16 trains faster here, measured (:func:`measure_auto`): a few
        forward+backward steps of the actual model in each, interleaved, at start-up. The choice is cached
        per machine and config (``$VQSPEECH_CACHE_DIR``, else ``~/.cache/vqspeech``, precision.json) and
        logged with both timings. Where bf16 has no hardware support (emulated, always slower) it is fp32
        without measuring. The CPU recipes' default (configs/train/cpu.yaml): on this 2-core AMX CPU bf16
        made 28% more demo-recipe steps than fp32 in 10 minutes (1292 against 1010: benchmarks/quality.csv,
        rows bf16 and baseline, by tools/bench_quality.py and benchmarks/run_levers.sh) and 19% more in
        benchmarks/precision-auto.md. On an avx512_bf16 CPU without AMX it was once seen to be about 20%
        slower (a historical note: no committed file or command holds that measurement), so neither can be
        assumed.
  bf16  torch.autocast(bfloat16) on CUDA or the CPU; bfloat16 has float32's range, so no loss scaling.
  fp16  torch.autocast(float16) with a GradScaler, CUDA only. A step whose scaled gradient overflows
        makes no update and lowers the scale (the GradScaler's usual behaviour); it is not counted as a
        non-finite step.

An explicit fp32 or bf16 is used as given, never second-guessed. Weights, optimizer state and the VQ
codebook stay float32 throughout; the VQ layer turns autocast off for its distances and codebook updates
(see quantization/vq.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vqspeech.errors import UserError
from vqspeech.files import write_atomic

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
CHOICES = ("auto", *DTYPES)
DEVICES = {"bf16": ("cuda", "cpu"), "fp16": ("cuda",)}  # device types each reduced precision runs on
TIMED_STEPS = 3  # per precision, after one warm-up step each


class Precision:
    """The autocast context and gradient scaler for one precision (fp32, bf16 or fp16) on one device."""

    def __init__(self, name: str, device: torch.device):
        if name not in DTYPES:
            raise UserError(f"train.precision must be one of {', '.join(CHOICES)}, got {name!r}")
        if name in DEVICES and device.type not in DEVICES[name]:
            raise UserError(f"train.precision={name} runs on {' or '.join(DEVICES[name])}, not {device.type}; "
                            f"use {'bf16 or ' if device.type in DEVICES['bf16'] else ''}fp32")
        self.name = name
        self.device = device
        self.dtype = DTYPES[name]
        self.scaler = torch.amp.GradScaler(device.type, enabled=name == "fp16")

    def autocast(self) -> torch.autocast:
        """The context for forward passes (a disabled autocast for fp32)."""
        return torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None)


def check_choice(name: str) -> None:
    if name not in CHOICES:
        raise UserError(f"train.precision must be one of {', '.join(CHOICES)}, got {name!r}")


@dataclass
class AutoChoice:
    """What ``precision: auto`` chose, and why.

    Attributes:
        name: "fp32" or "bf16".
        ms_per_step: median forward+backward milliseconds per precision ({} when bf16 is not native).
        source: "measured", "cached" (an earlier measurement for this machine and config) or "no native bf16".
    """

    name: str
    ms_per_step: dict[str, float]
    source: str

    def describe(self) -> str:
        timings = ", ".join(f"{k} {v:.0f} ms/step" for k, v in self.ms_per_step.items())
        return f"precision auto -> {self.name} ({self.source}{': ' + timings if timings else ''})"


def cached_choice(device: torch.device, config_key: Any, cache_dir: str | Path | None = None) -> AutoChoice | None:
    """An earlier measurement of :func:`measure_auto` for this machine and ``config_key``, if any."""
    if not native_bf16(device):
        return AutoChoice("fp32", {}, "no native bf16")
    cached = _read_cache(cache_path(cache_dir)).get(_cache_key(device, config_key))
    return None if cached is None else AutoChoice(cached["name"], cached["ms_per_step"], "cached")


def measure_auto(step: Callable[[Precision], None], device: torch.device, config_key: Any,
                 cache_dir: str | Path | None = None, steps: int = TIMED_STEPS, cache: bool = True) -> AutoChoice:
    """Choose fp32 or bf16 for ``precision: auto`` by timing ``step`` (one forward+backward of the actual
    model on an example batch, run under the given precision) in each, interleaved fp32, bf16, fp32, …

    ``step`` must leave no trace (the caller runs it on a copy of the model and keeps the RNG). The result is
    cached under ``config_key`` (any JSON-able value: the model's kwargs and batch shape) and this machine;
    ``cache=False`` neither reads nor writes the cache (the other ranks of a DDP run, which time alongside rank 0
    so that the model's collectives match).
    """
    earlier = cached_choice(device, config_key, cache_dir)
    if earlier is not None and (cache or earlier.source == "no native bf16"):
        return earlier
    candidates = {name: Precision(name, device) for name in ("fp32", "bf16")}
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for round_ in range(steps + 1):
        for name, precision in candidates.items():
            _sync(device)
            start = time.perf_counter()
            step(precision)
            _sync(device)
            if round_:  # round 0 warms up (allocations, oneDNN kernel selection)
                times[name].append(1000 * (time.perf_counter() - start))
    ms = {name: statistics.median(t) for name, t in times.items()}
    choice = AutoChoice(min(ms, key=ms.get), ms, "measured")
    if not cache:
        return choice
    path = cache_path(cache_dir)
    entries = _read_cache(path)
    entries[_cache_key(device, config_key)] = {"name": choice.name, "ms_per_step": ms}
    try:
        write_atomic(path, json.dumps(entries, indent=1, sort_keys=True))
    except OSError:  # a read-only home: measure again next time
        pass
    return choice


def timing_step(model: torch.nn.Module, make_batch: Callable[[], Any],
                loss_of: Callable[[torch.nn.Module, Any], torch.Tensor]) -> Callable[[Precision], None]:
    """The ``step`` of :func:`measure_auto` for a model: one forward+backward of a copy of ``model`` on
    ``make_batch()`` (made-up content of the training shape), loss ``loss_of(copy, batch)``; the model and the
    RNG are left as they were."""
    import copy

    twin = copy.deepcopy(model).train()
    device = next(model.parameters()).device
    devices = [device] if device.type == "cuda" else []

    def step(precision: Precision) -> None:
        with torch.random.fork_rng(devices=devices):
            batch = make_batch()
            with precision.autocast():
                loss = loss_of(twin, batch)
            loss.backward()
        twin.zero_grad(set_to_none=True)

    return step


def resolve(name: str, device: torch.device, step: Callable[[], Callable[[Precision], None]],
            config_key: Any) -> tuple[Precision, AutoChoice | None]:
    """train.precision ``name`` as a Precision; ``auto`` is measured (``step()`` gives the timing step, built
    only then), with what it chose."""
    check_choice(name)
    if name != "auto":
        return Precision(name, device), None
    choice = measure_auto(step(), device, config_key)
    return Precision(choice.name, device), choice


def cache_path(cache_dir: str | Path | None = None) -> Path:
    root = cache_dir or os.environ.get("VQSPEECH_CACHE_DIR") or Path.home() / ".cache" / "vqspeech"
    return Path(root) / "precision.json"


def _cache_key(device: torch.device, config_key: Any) -> str:
    machine = {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": device.type,
               "processor": _processor(device)}
    text = json.dumps({"machine": machine, "config": config_key}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _processor(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:  # the model name and flags: two machines with the same name and flags time alike
        info = Path("/proc/cpuinfo").read_text()
        lines = [line for line in info.splitlines() if line.startswith(("model name", "flags"))]
        return "\n".join(dict.fromkeys(lines))
    except OSError:
        return platform.processor() or platform.machine()


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return entries if isinstance(entries, dict) else {}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 in hardware (elsewhere bf16 is emulated, and slower than fp32)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False
