"""The bottleneck switch: the VAE's KL against its closed form, free bits, the AE's identity gradient, the
config group, and a switch that round-trips through a checkpoint and is refused on resume."""

import math

import pytest
import torch

from vqspeech.config import compose_recipe
from vqspeech.errors import UserError
from vqspeech.models import build_model
from vqspeech.models.builders import model_kwargs
from vqspeech.quantization import build_bottleneck
from vqspeech.quantization import GaussianBottleneck, IdentityBottleneck, VectorQuantizer
from vqspeech.quantization.continuous import gaussian_kl
from vqspeech.training import train
from vqspeech.checkpoint import load_checkpoint, model_from_checkpoint
from vqspeech.training.keys import loss_weights

QUANT = {"codebook_size": 16, "ema_decay": None, "ema_epsilon": 1e-5, "init": None, "kmeans_iters": 10,
         "dead_code_steps": None}


def vae_with_stats(means, logvars, hop=8, free_bits=0.0):
    """A GaussianBottleneck whose posterior is N(means[d], exp(logvars[d])) whatever its input."""
    bottleneck = GaussianBottleneck(len(means), hop, free_bits=free_bits).eval()
    with torch.no_grad():
        bottleneck.to_stats.weight.zero_()
        bottleneck.to_stats.bias.copy_(torch.tensor([*means, *logvars]))
    return bottleneck


def test_gaussian_kl_matches_the_closed_form_by_hand():
    # KL(N(1, 1) ‖ N(0, 1)) = ½ · 1² = 0.5; KL(N(0, 2) ‖ N(0, 1)) = ½ (2 − 1 − ln 2)
    kl = gaussian_kl(torch.tensor([1.0, 0.0]), torch.tensor([0.0, math.log(2.0)]))
    torch.testing.assert_close(kl, torch.tensor([0.5, 0.5 * (1 - math.log(2.0))]))


def test_vae_kl_loss_is_nats_per_sample_summed_over_dimensions():
    hop = 8
    bottleneck = vae_with_stats([1.0, 0.0], [0.0, math.log(2.0)], hop=hop)
    out = bottleneck(torch.randn(3, 2, 5))
    per_frame = 0.5 + 0.5 * (1 - math.log(2.0))
    torch.testing.assert_close(out.losses["kl"], torch.tensor(per_frame / hop))
    torch.testing.assert_close(out.metrics["kl_nats_per_frame"], torch.tensor(per_frame))
    torch.testing.assert_close(out.quantized, torch.tensor([1.0, 0.0])[None, :, None].expand(3, 2, 5))  # eval: mean


def test_free_bits_floor_the_kl_of_each_dimension_not_the_sum():
    # dimension 0 carries 0.5 nats per frame, dimension 1 none; a floor of 0.2 lifts dimension 1 only
    bottleneck = vae_with_stats([1.0, 0.0], [0.0, 0.0], hop=1, free_bits=0.2)
    out = bottleneck(torch.randn(2, 2, 4))
    torch.testing.assert_close(out.losses["kl"], torch.tensor(0.5 + 0.2))
    torch.testing.assert_close(out.metrics["kl_nats_per_frame"], torch.tensor(0.5))  # the metric is before the floor
    # a floor below every dimension's KL changes nothing
    with torch.no_grad():
        assert float(vae_with_stats([1.0, 1.0], [0.0, 0.0], hop=1, free_bits=0.1)(torch.randn(1, 2, 3)).losses["kl"]) == 1.0


def test_vae_samples_in_training_with_the_posterior_spread():
    bottleneck = vae_with_stats([2.0], [math.log(0.25)]).train()
    sample = bottleneck(torch.zeros(1, 1, 20000)).quantized.detach()
    assert abs(float(sample.mean()) - 2.0) < 0.02 and abs(float(sample.std()) - 0.5) < 0.02


def test_ae_passes_the_gradient_to_the_encoder_unchanged():
    z = torch.randn(2, 4, 6, requires_grad=True)
    out = IdentityBottleneck(4)(z)
    upstream = torch.randn_like(z)
    out.quantized.backward(upstream)
    assert torch.equal(z.grad, upstream) and out.losses == {} and torch.equal(out.codes, z)


@pytest.mark.parametrize("kind, cls", [("vq", VectorQuantizer), ("vae", GaussianBottleneck), ("ae", IdentityBottleneck)])
def test_build_bottleneck_by_kind(kind, cls):
    bottleneck = build_bottleneck({"kind": kind, **QUANT}, dim=4, hop_length=8)
    assert isinstance(bottleneck, cls) and bottleneck.kind == kind and bottleneck.codebook_size == (16 if kind == "vq" else None)
    assert bottleneck.discrete == (kind == "vq")
    assert (bottleneck.bits_per_frame() is None) == (kind != "vq")


def test_unknown_bottleneck_names_the_choices():
    with pytest.raises(ValueError, match="must be one of vq, vae, ae, got 'gan'"):
        build_bottleneck({"kind": "gan"}, dim=4, hop_length=8)


def test_the_config_group_sets_model_bottleneck(demo_recipe):
    assert compose_recipe(demo_recipe).model.bottleneck.kind == "vq"  # the default is the VQ layer
    assert compose_recipe(demo_recipe, ["bottleneck=vae"]).model.bottleneck.kind == "vae"
    cfg = compose_recipe(demo_recipe, ["bottleneck=vae", "model.bottleneck.free_bits=0.25"])
    assert build_model(model_kwargs(cfg.model, ["a"])).bottleneck.free_bits == 0.25


def test_an_unknown_bottleneck_is_one_line_listing_the_choices(demo_recipe):
    with pytest.raises(UserError, match="unknown bottleneck 'gan'; the choices are ae, ema, vae, vq") as info:
        compose_recipe(demo_recipe, ["bottleneck=gan"])
    assert "\n" not in str(info.value)


def test_kl_warmup_raises_the_kl_weight_linearly(demo_recipe):
    tcfg = compose_recipe(demo_recipe, ["train.kl_warmup_steps=100", "train.loss_weights.kl=2.0"]).train
    assert [loss_weights(tcfg, s)["kl"] for s in (0, 50, 100, 400)] == [0.0, 1.0, 2.0, 2.0]
    assert loss_weights(tcfg, 0)["reconstruction"] == 1.0  # only the kl weight is annealed


def test_a_negative_kl_weight_is_refused(tiny_config, tmp_path):
    with pytest.raises(UserError, match=r"train.loss_weights.kl must be 0 or more, got -1.0"):
        train(tiny_config("bottleneck=vae", "train.loss_weights.kl=-1.0", run_dir=tmp_path / "run"), progress=False)
    assert not (tmp_path / "run").exists()


def test_a_checkpoint_from_before_the_switch_loads_and_resumes(tiny_config, tmp_path):
    """Checkpoints written before the bottleneck switch (no model.bottleneck, the VQ layer's weights under
    "quantizer.") load as a VQ model and resume under today's config."""
    run_dir = tmp_path / "run"
    train(tiny_config(run_dir=run_dir), progress=False)
    path = run_dir / "checkpoints" / "last.pt"
    payload = torch.load(path, map_location="cpu", weights_only=True)
    kwargs = payload["model_kwargs"]  # in the form of those days: no kind, the VQ options beside the model
    vq_options = kwargs["model"].pop("bottleneck")
    del vq_options["kind"], kwargs["kind"]
    kwargs["quantizer"] = vq_options
    payload["model"] = {k.replace("bottleneck.", "quantizer.", 1): v for k, v in payload["model"].items()}
    torch.save(payload, path)
    model = model_from_checkpoint(load_checkpoint(path))
    assert model.bottleneck.kind == "vq"
    assert torch.equal(model.bottleneck.codebook, payload["model"]["quantizer.codebook"])
    assert train(tiny_config("train.max_steps=3", run_dir=run_dir), progress=False).step == 3


@pytest.mark.parametrize("kind", ["vae", "ae"])
def test_a_continuous_bottleneck_trains_round_trips_and_refuses_another_on_resume(tiny_config, tmp_path, kind):
    run_dir = tmp_path / "run"
    result = train(tiny_config(f"bottleneck={kind}", run_dir=run_dir), progress=False)
    expected = {"total", "reconstruction"} | ({"kl"} if kind == "vae" else set())
    assert set(result.train_losses) == expected and result.valid_loss is not None
    payload = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert payload["model_kwargs"]["model"]["bottleneck"]["kind"] == kind
    own = {"kind": "vae", "free_bits": 0.0} if kind == "vae" else {"kind": "ae"}
    assert payload["model_kwargs"]["model"]["bottleneck"] == own  # the recipe's VQ options are not its
    assert "quantizer" not in payload["model_kwargs"]
    model = model_from_checkpoint(payload)
    assert model.bottleneck.kind == kind
    state = model.state_dict()
    assert all(torch.equal(state[k], payload["model"][k]) for k in payload["model"])
    other = "ae" if kind == "vae" else "vq"
    with pytest.raises(UserError, match=r"differs at 'model\.bottleneck\.\w+'"):
        train(tiny_config(f"bottleneck={other}", "train.max_steps=4", run_dir=run_dir), progress=False)
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["step"] == 2
