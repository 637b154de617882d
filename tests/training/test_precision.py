"""train.precision: under bf16 the encoder and decoder run in bfloat16 while the VQ layer's distances, codebook and
EMA buffers stay float32; the fp16 path (GradScaler) rides out overflows; unsupported choices are refused.

fp16 needs CUDA, which the test machine lacks: its test runs the same code on the CPU by allowing fp16 there
(torch's CPU autocast and GradScaler support float16), to exercise the scaler logic of the loop."""

import math
import time

import pytest
import torch

from vqspeech.errors import UserError
from vqspeech.quantization import vq as vq_module
from vqspeech.training import precision as precision_module
from vqspeech.training import trainer as trainer_module
from vqspeech.training import train
from vqspeech.checkpoint import load_checkpoint, model_from_checkpoint


def test_a_bf16_run_keeps_the_quantizer_in_float32_and_stays_finite(tiny_config, tmp_path, monkeypatch):
    seen = {"z": set(), "distances": set()}
    forward, distances = vq_module.VectorQuantizer.forward, vq_module.nearest_codes

    def recording_forward(self, z):
        seen["z"].add(z.dtype)
        return forward(self, z)

    def recording_distances(x, codebook, *args):
        seen["distances"].add((x.dtype, codebook.dtype, torch.is_autocast_enabled("cpu")))
        return distances(x, codebook, *args)

    monkeypatch.setattr(vq_module.VectorQuantizer, "forward", recording_forward)
    monkeypatch.setattr(vq_module, "nearest_codes", recording_distances)
    result = train(tiny_config("train.precision=bf16", "bottleneck=ema", "model.bottleneck.dead_code_steps=1",
                               "train.max_steps=3", run_dir=tmp_path / "run"), progress=False)

    assert seen["z"] == {torch.bfloat16}  # the encoder ran under autocast, in training and validation
    assert seen["distances"] == {(torch.float32, torch.float32, False)}  # float32, autocast off
    assert result.skipped_steps == 0
    assert all(math.isfinite(v) for v in result.train_losses.values()) and math.isfinite(result.valid_loss)
    payload = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert "scaler" not in payload
    model = model_from_checkpoint(payload)
    vq = model.bottleneck
    for name in ("codebook", "embed_sum", "cluster_size"):
        assert getattr(vq, name).dtype == torch.float32 and torch.isfinite(getattr(vq, name)).all(), name
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in model.parameters())


def test_the_fp16_scaler_rides_out_overflows_and_is_saved_and_resumed(tiny_config, tmp_path, monkeypatch):
    monkeypatch.setitem(precision_module.DEVICES, "fp16", ("cuda", "cpu"))
    scaler = torch.amp.GradScaler
    # a start scale this large overflows float16 gradients for the first steps
    monkeypatch.setattr(torch.amp, "GradScaler", lambda *a, **k: scaler(*a, init_scale=2.0 ** 40, **k))
    run_dir = tmp_path / "run"
    result = train(tiny_config("train.precision=fp16", "train.max_steps=4", "train.max_bad_steps=1",
                               run_dir=run_dir), progress=False)
    assert (result.step, result.skipped_steps) == (4, 0)  # overflows are the scaler's, not bad steps
    scale = load_checkpoint(run_dir / "checkpoints" / "last.pt")["scaler"]["scale"]
    assert scale <= 2.0 ** 36  # backed off (×0.5) at each of the overflowing steps

    monkeypatch.setattr(torch.amp, "GradScaler", scaler)  # a resumed run takes the saved scale, not its own
    resumed = train(tiny_config("train.precision=fp16", "train.max_steps=5", run_dir=run_dir), progress=False)
    assert resumed.resumed_from == 4
    assert 2.0 ** 34 <= load_checkpoint(run_dir / "checkpoints" / "last.pt")["scaler"]["scale"] <= scale


@pytest.mark.parametrize("override, message", [
    ("train.precision=fp16", "train.precision=fp16 runs on cuda, not cpu; use bf16 or fp32"),
    ("train.precision=half", "train.precision must be one of auto, fp32, bf16, fp16, got 'half'"),
])
def test_unsupported_precisions_are_refused_before_anything_is_written(tiny_config, tmp_path, override, message):
    with pytest.raises(UserError, match=message):
        train(tiny_config(override, run_dir=tmp_path / "run"), progress=False)
    assert not (tmp_path / "run").exists()


def _timed(slow: str, calls: list):
    """A fake training step that takes 20 ms under ``slow`` and 1 ms under the other precision."""

    def step(precision):
        calls.append(precision.name)
        time.sleep(0.02 if precision.name == slow else 0.001)

    return step


@pytest.mark.parametrize("slow, chosen", [("bf16", "fp32"), ("fp32", "bf16")])
def test_auto_measures_both_interleaved_and_picks_the_faster(slow, chosen, monkeypatch, tmp_path):
    monkeypatch.setattr(precision_module, "native_bf16", lambda device: True)
    calls: list = []
    choice = precision_module.measure_auto(_timed(slow, calls), torch.device("cpu"), {"k": 1}, tmp_path)
    assert (choice.name, choice.source) == (chosen, "measured")
    assert choice.ms_per_step[slow] > 10 > choice.ms_per_step[chosen]
    steps = precision_module.TIMED_STEPS + 1  # one warm-up each
    assert calls == ["fp32", "bf16"] * steps
    assert chosen in choice.describe() and "ms/step" in choice.describe()


def test_auto_is_cached_per_config_and_measured_again_for_another(monkeypatch, tmp_path):
    monkeypatch.setattr(precision_module, "native_bf16", lambda device: True)
    cpu, calls = torch.device("cpu"), []
    first = precision_module.measure_auto(_timed("fp32", calls), cpu, {"model": "a"}, tmp_path)
    calls.clear()
    again = precision_module.measure_auto(_timed("bf16", calls), cpu, {"model": "a"}, tmp_path)
    assert calls == [] and (again.name, again.source, again.ms_per_step) == ("bf16", "cached", first.ms_per_step)
    other = precision_module.measure_auto(_timed("bf16", calls), cpu, {"model": "b"}, tmp_path)
    assert calls and (other.name, other.source) == ("fp32", "measured")


def test_auto_without_native_bf16_is_fp32_unmeasured(monkeypatch, tmp_path):
    monkeypatch.setattr(precision_module, "native_bf16", lambda device: False)
    calls: list = []
    choice = precision_module.measure_auto(_timed("fp32", calls), torch.device("cpu"), {}, tmp_path)
    assert (choice.name, choice.source, calls) == ("fp32", "no native bf16", [])


@pytest.mark.parametrize("forced", ["fp32", "bf16"])
def test_an_auto_run_trains_exactly_as_the_precision_it_chose(forced, tiny_config, tmp_path, monkeypatch):
    """The timing steps run on a copy of the model with the RNG kept: they leave no trace in the run."""
    monkeypatch.setenv("VQSPEECH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(precision_module, "native_bf16", lambda device: True)
    real = precision_module.measure_auto

    def measured(step, device, key, cache_dir=None, steps=1, cache=True):
        choice = real(step, device, key, cache_dir, steps, cache=False)  # the real timing steps run ...
        return precision_module.AutoChoice(forced, choice.ms_per_step, "measured")  # ... the choice is forced

    monkeypatch.setattr(trainer_module, "measure_auto", measured)
    states = {}
    for name in ("auto", forced):
        train(tiny_config(f"train.precision={name}", "train.max_steps=3", run_dir=tmp_path / name), progress=False)
        states[name] = load_checkpoint(tmp_path / name / "checkpoints" / "last.pt")
    assert all(torch.equal(states["auto"]["model"][k], v) for k, v in states[forced]["model"].items())
    assert states["auto"]["config"]["train"]["precision"] == "auto"


def test_the_cpu_recipes_train_in_auto_precision(demo_recipe):
    from vqspeech.config import compose_recipe

    assert compose_recipe(demo_recipe).train.precision == "auto"
