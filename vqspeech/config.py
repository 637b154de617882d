"""Composing a recipe's Hydra config: the recipe's config.yaml, the groups shipped in configs/, overrides."""

from __future__ import annotations

import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from vqspeech.errors import UserError


def configs_dir() -> Path:
    """The shipped config groups (model/, quantizer/, data/, train/, debug/), installed as vqspeech.configs."""
    return Path(str(resources.files("vqspeech.configs")))


def compose_recipe(recipe_dir: str | Path, overrides: Sequence[str] = ()) -> DictConfig:
    """Compose ``recipe_dir/config.yaml`` with the shipped groups and Hydra-syntax overrides.

    Raises:
        UserError: missing recipe, unknown key, bad override syntax (one line each).
    """
    recipe = Path(recipe_dir).resolve()
    if not (recipe / "config.yaml").is_file():
        raise UserError(f"no recipe at {recipe_dir}: expected a folder holding config.yaml "
                        f"(for example recipes/demo)")
    # model.bottleneck=vae is the bottleneck group's choice (configs/bottleneck/, whose package is model.bottleneck)
    overrides = [f"bottleneck={o.split('=', 1)[1]}" if o.split("=", 1)[0] == "model.bottleneck" else o
                 for o in overrides]
    cfg = _compose(recipe, recipe_dir, overrides)
    # the same recipe with only the top-level choices (groups, +debug=..., run_dir=...) gives every
    # key's expected type, against which the dotted overrides are checked
    reference = _compose(recipe, recipe_dir, [o for o in overrides if "." not in o.split("=", 1)[0]])
    _check_types(OmegaConf.to_container(cfg, resolve=True), OmegaConf.to_container(reference, resolve=True))
    return cfg


def _compose(recipe: Path, recipe_dir: str | Path, overrides: Sequence[str]) -> DictConfig:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(recipe), version_base="1.3", job_name="vqspeech"):
            cfg = compose("config", overrides=[*overrides, f"hydra.searchpath=[file://{configs_dir()}]"])
    except (HydraException, OmegaConfBaseException, ValueError) as exc:
        message = _first_line(exc)
        missing = re.search(r"Could not find '([\w-]+)/([^']+)'", message)
        if missing and (configs_dir() / missing[1]).is_dir():
            group, name = missing[1], missing[2]
            choices = sorted(p.stem for p in (configs_dir() / group).glob("*.yaml"))
            message = f"unknown {group} '{name}'; the choices are {', '.join(choices)} ({group}=NAME)"
        elif message.startswith("Could not override '"):
            key = message.split("'")[1]
            message = f"unknown config key '{key}' (check the spelling, or add a new key with +{key}=...)"
        raise UserError(f"bad config for {recipe_dir}: {message}") from None
    finally:
        GlobalHydra.instance().clear()
    cfg = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    OmegaConf.set_struct(cfg, True)
    return cfg


def _check_types(cfg: dict, reference: dict, prefix: str = "") -> None:
    """Raise a one-line UserError where a value's type differs from the recipe's own (null accepts any)."""
    for key, expected in reference.items():
        if key not in cfg:
            continue
        value, where = cfg[key], f"{prefix}{key}"
        if isinstance(expected, dict):
            if not isinstance(value, dict):
                raise UserError(f"{where} is a group of keys, not a value (got {value!r}); set {where}.KEY=... instead")
            _check_types(value, expected, f"{where}.")
        elif expected is None or value is None:
            continue
        elif isinstance(expected, bool):
            if not isinstance(value, bool):
                raise UserError(f"{where} must be true or false, got {value!r}")
        elif isinstance(expected, int):
            if isinstance(value, bool) or not isinstance(value, int):
                raise UserError(f"{where} must be an integer, got {value!r}")
        elif isinstance(expected, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise UserError(f"{where} must be a number, got {value!r}")
        elif isinstance(expected, str) and not isinstance(value, str):
            raise UserError(f"{where} must be a string, got {value!r}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    # omegaconf appends "full_key: ... object_type=..." lines; the first line says what is wrong
    return text.splitlines()[0] if text else type(exc).__name__
