"""Recipes compose and build; overrides and groups behave; every shipped train/data key is read by code."""

import re
from pathlib import Path

import pytest
import torch
import yaml
from omegaconf.errors import ConfigAttributeError

from vqspeech.config import compose_recipe, configs_dir
from vqspeech.errors import UserError
from vqspeech.models import build_model
from vqspeech.models.builders import model_kwargs

REPO_ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted(REPO_ROOT.glob("recipes/*/config.yaml"))
LIBRARY = REPO_ROOT / "vqspeech"


def test_recipes_are_discovered():
    assert REPO_ROOT / "recipes" / "demo" / "config.yaml" in RECIPES


@pytest.mark.parametrize("recipe", [p.parent for p in RECIPES], ids=[p.parent.name for p in RECIPES])
def test_every_recipe_composes_and_builds_a_model(recipe):
    cfg = compose_recipe(recipe)
    assert {"model", "data", "train", "run_dir"} <= set(cfg)
    model = build_model(model_kwargs(cfg.model, ["a", "b"]))
    assert model.speakers.names == ["a", "b"]
    assert model.bottleneck.codebook_size == cfg.model.bottleneck.codebook_size
    assert cfg.train.crop_samples % model.hop_length == 0, "the recipe's crop must be a multiple of the hop"


@pytest.mark.parametrize("recipe", [p.parent for p in RECIPES], ids=[p.parent.name for p in RECIPES])
def test_every_recipe_composes_with_the_debug_config_without_adding_keys(recipe):
    full, tiny = compose_recipe(recipe), compose_recipe(recipe, ["+debug=tiny"])
    assert flat_keys(tiny) == flat_keys(full), "debug/tiny.yaml must only override keys the groups define"
    assert tiny.train.max_steps < full.train.max_steps


def test_the_demo_recipe_is_found_from_any_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert compose_recipe(REPO_ROOT / "recipes" / "demo").model.encoder.n_layers == 6


def test_ema_quantizer_group(demo_recipe):
    cfg = compose_recipe(demo_recipe, ["bottleneck=ema"])
    assert cfg.model.bottleneck.ema_decay == 0.99
    assert cfg.model.bottleneck.codebook_size == 256, "the recipe's own VQ settings still apply"
    model = build_model(model_kwargs(cfg.model, ["a"]))
    assert model.bottleneck.uses_ema and not model.bottleneck.codebook.requires_grad


def test_plain_override_changes_a_value(demo_recipe):
    cfg = compose_recipe(demo_recipe, ["train.lr=0.01", "model.decoder.stacks=1"])
    assert (cfg.train.lr, cfg.model.decoder.stacks) == (0.01, 1)


@pytest.mark.parametrize("override, key", [("train.max_stepz=3", "train.max_stepz"),
                                           ("model.decoder.residual_channel=8", "model.decoder.residual_channel"),
                                           ("nonsense=1", "nonsense")])
def test_unknown_override_key_raises_naming_it(demo_recipe, override, key):
    with pytest.raises(UserError, match=re.escape(f"'{key}'")) as info:
        compose_recipe(demo_recipe, [override])
    assert "\n" not in str(info.value)


def test_unknown_group_option_raises_listing_the_choices(demo_recipe):
    with pytest.raises(UserError, match="unknown bottleneck 'nope'; the choices are ae, ema, vae, vq") as info:
        compose_recipe(demo_recipe, ["bottleneck=nope"])
    assert "\n" not in str(info.value)


def test_missing_recipe_raises(tmp_path):
    with pytest.raises(UserError, match="no recipe at"):
        compose_recipe(tmp_path / "recipes" / "nope")
    with pytest.raises(UserError, match="no recipe at"):
        compose_recipe(tmp_path)  # a folder, but without config.yaml


def test_composed_config_is_struct(demo_recipe):
    cfg = compose_recipe(demo_recipe)
    with pytest.raises(ConfigAttributeError):
        cfg.train.typo_key = 1
    assert "hydra" not in cfg


def test_configs_dir_holds_the_groups():
    assert configs_dir().resolve() == (REPO_ROOT / "configs").resolve()
    assert {"model", "bottleneck", "data", "train", "debug"} <= {p.name for p in configs_dir().iterdir() if p.is_dir()}


def flat_keys(cfg, prefix=""):
    keys = set()
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        keys |= flat_keys(value, name + ".") if hasattr(value, "items") else {name}
    return keys


def library_source() -> str:
    return "\n".join(p.read_text() for p in LIBRARY.rglob("*.py"))


def group_keys(group: str) -> set[str]:
    keys = set()
    for path in (REPO_ROOT / "configs" / group).glob("*.yaml"):
        keys |= {k for k in (yaml.safe_load(path.read_text()) or {}) if k != "defaults"}
    return keys


@pytest.mark.parametrize("group", ["train", "data"])
def test_every_key_of_the_group_is_read_by_code(group):
    """Static check: each top-level key in configs/<group>/*.yaml is read as ``.key`` or ``["key"]``."""
    source = library_source()
    keys = group_keys(group)
    assert keys, f"configs/{group} has no keys"
    unread = sorted(k for k in keys if not re.search(rf"\.{k}\b|\[[\"']{k}[\"']\]", source))
    assert not unread, f"configs/{group} keys that no code reads: {unread}"


AUXILIARY = {"speaker_adv", "cpc"}  # the terms of the speaker adversary and CPC, off in the recipes
PARALLEL = {"stft", "mel"}           # the parallel decoder's terms (the recipes' decoder is the WaveNet)


@pytest.mark.parametrize("choices, unused", [
    (["bottleneck=vq"], {"kl", *AUXILIARY, *PARALLEL}), (["bottleneck=ema"], {"codebook", "kl", *AUXILIARY, *PARALLEL}),
    (["bottleneck=vae"], {"codebook", "commitment", *AUXILIARY, *PARALLEL}),
    (["bottleneck=ae"], {"codebook", "commitment", "kl", *AUXILIARY, *PARALLEL}),
    (["model.speaker_adversary=4", "model.cpc_steps=2"], {"kl", *PARALLEL}),
    (["decoder=parallel", "model.decoder.channels=8", "model.decoder.blocks=1"],
     {"reconstruction", "kl", *AUXILIARY})])
def test_loss_weights_name_exactly_the_model_loss_terms(demo_recipe, choices, unused):
    """Every loss term the model returns has a weight; the weights it leaves unused are the other bottlenecks'
    terms (EMA drops 'codebook', only a VAE returns 'kl'), the other decoder's, and those of the auxiliary
    losses that are off."""
    cfg = compose_recipe(demo_recipe, ["+debug=tiny", *choices])
    model = build_model(model_kwargs(cfg.model, ["a"]))
    out = model(torch.rand(1, 1, 512) * 2 - 1, torch.tensor([0]))
    weights = set(cfg.train.loss_weights)
    assert set(out.losses) <= weights
    assert weights - set(out.losses) == unused


@pytest.mark.parametrize("frontend", ["mfcc", "logmel"])
def test_frontend_group_sets_the_encoder_and_takes_the_data_rate(demo_recipe, frontend):
    cfg = compose_recipe(demo_recipe, [f"+frontend={frontend}", "data.sample_rate=8000"])
    kwargs = model_kwargs(cfg.model, ["a", "b"])
    assert kwargs["model"]["encoder"]["frontend"] == frontend
    assert kwargs["model"]["encoder"]["sample_rate"] == 8000  # resolved: the checkpoint stores the number
    assert build_model(kwargs).encoder.features is not None


@pytest.mark.parametrize("variant, kind", [("vq", "vq"), ("vae", "vae"), ("ae", "ae"), ("vae_annealed", "vae")])
def test_every_bottleneck_variant_composes_and_builds(variant, kind):
    cfg = compose_recipe(REPO_ROOT / "recipes" / "bottlenecks", [f"variant={variant}"])
    assert cfg.model.bottleneck.kind == kind and cfg.run_dir == f"runs/bottlenecks/{variant}"
    assert build_model(model_kwargs(cfg.model, ["a"])).bottleneck.kind == kind
    if variant == "vae_annealed":  # the variant's remedies win over the recipe's defaults
        assert cfg.model.bottleneck.free_bits > 0 and cfg.train.kl_warmup_steps > 0


@pytest.mark.parametrize("old, new", [("quantizer=ema", "bottleneck=ema"),
                                      ("quantizer.codebook_size=64", "model.bottleneck.codebook_size=64"),
                                      ("model.bottleneck=vae", "bottleneck=vae")])
def test_old_bottleneck_spellings_get_a_one_line_error_naming_the_new(demo_recipe, old, new):
    with pytest.raises(UserError, match=re.escape(f"write {new} instead of {old}")) as info:
        compose_recipe(demo_recipe, [old])
    assert "\n" not in str(info.value)


def test_a_recipes_vq_options_do_not_reach_a_continuous_bottleneck(demo_recipe):
    cfg = compose_recipe(demo_recipe, ["bottleneck=vae"])
    assert cfg.model.bottleneck.codebook_size == 256  # the recipe's VQ setting is in the config ...
    assert model_kwargs(cfg.model, ["a"])["model"]["bottleneck"] == {"kind": "vae", "free_bits": 0.0}  # ... not the model


def test_an_option_no_bottleneck_takes_is_refused_naming_the_kinds_options(demo_recipe):
    cfg = compose_recipe(demo_recipe, ["bottleneck=ae", "+model.bottleneck.free_bit=0.1"])
    with pytest.raises(ValueError, match="has no option free_bit \\(the ae options are none\\)"):
        model_kwargs(cfg.model, ["a"])


def test_dotted_overrides_win_over_groups_and_keep_hydra_syntax(demo_recipe):
    cfg = compose_recipe(demo_recipe, ["+debug=tiny", "train.max_steps=7", "+model.extra=1", "~train.seed"])
    assert cfg.train.max_steps == 7 and cfg.model.extra == 1 and "seed" not in cfg.train
    for bad, message in [("train.max_steps=abc", "train.max_steps must be an integer"),
                         ("+train.max_steps=3", "config key 'train.max_steps' already exists"),
                         ("~train.nothing", "cannot delete config key 'train.nothing'")]:
        with pytest.raises(UserError, match=re.escape(message)):
            compose_recipe(demo_recipe, [bad])
