"""Composing a recipe's Hydra config: the recipe's config.yaml, the groups shipped in configs/, overrides."""

from __future__ import annotations

import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from vqspeech.errors import UserError


def configs_dir() -> Path:
    """The shipped config groups (model/, decoder/, bottleneck/, speaker/, data/, train/, debug/, frontend/), installed as vqspeech.configs."""
    return Path(str(resources.files("vqspeech.configs")))


def compose_recipe(recipe_dir: str | Path, overrides: Sequence[str] = ()) -> DictConfig:
    """Compose ``recipe_dir/config.yaml`` with the shipped groups and Hydra-syntax overrides.

    Hydra composes the recipe with the group choices and top-level values (``bottleneck=ema``, ``+debug=tiny``,
    ``run_dir=...``); the dotted overrides (``train.lr=1e-3``, ``+model.new=1``, ``~train.seed``) are then
    applied here, each checked against the type of the value it replaces, so they win over every group.
    ``init_from=NAME``, a shipped model's name, brings its settings first (configs/pretrained/NAME.yaml).

    Raises:
        UserError: missing recipe, unknown key, bad override syntax, a value of the wrong type, an old
            spelling (one line each).
    """
    recipe = Path(recipe_dir).resolve()
    if not (recipe / "config.yaml").is_file():
        raise UserError(f"no recipe at {recipe_dir}: expected a folder holding config.yaml "
                        f"(for example recipes/demo)")
    for override in overrides:
        _refuse_old_spelling(override)
    overrides = [*_pretrained_preset(overrides), *overrides]
    dotted = [o for o in overrides if "." in o.split("=", 1)[0]]
    cfg = _compose(recipe, recipe_dir, [o for o in overrides if o not in dotted])
    _apply(cfg, dotted, recipe_dir)
    return cfg


def _pretrained_preset(overrides: Sequence[str]) -> list[str]:
    """``+pretrained=NAME`` when the overrides fine-tune from the shipped model NAME (``init_from=NAME``, no
    folder or file of that name) and configs/pretrained/NAME.yaml holds its settings; else nothing."""
    from vqspeech import pretrained

    given = {key.lstrip("+"): value for key, value in (o.split("=", 1) for o in overrides if "=" in o)}
    name = given.get("init_from")
    if (name is None or Path(name).exists() or name not in pretrained.names() or "pretrained" in given
            or not (configs_dir() / "pretrained" / f"{name}.yaml").is_file()):
        return []
    return [f"+pretrained={name}"]


def _refuse_old_spelling(override: str) -> None:
    """The quantizer group and model.bottleneck=KIND became the bottleneck group (configs/bottleneck/);
    the decoder is chosen by the decoder group (configs/decoder/), not by model.decoder=KIND."""
    key, _, value = override.partition("=")
    key = key.lstrip("+~")
    if key == "quantizer":
        raise UserError(f"the quantizer group is now the bottleneck group: write bottleneck={value} "
                        f"instead of quantizer={value}")
    if key.startswith("quantizer."):
        raise UserError(f"the VQ options are now under model.bottleneck: write model.bottleneck."
                        f"{key[len('quantizer.'):]}={value} instead of {override}")
    if key == "model.decoder" and "=" in override:
        raise UserError(f"choose the decoder with the decoder group: write decoder={value} (wavenet or "
                        f"parallel) instead of model.decoder={value}")
    if key == "model.bottleneck" and "=" in override:
        raise UserError(f"choose the bottleneck with the bottleneck group: write bottleneck={value} "
                        f"instead of model.bottleneck={value}")


def _apply(cfg: DictConfig, overrides: Sequence[str], recipe_dir: str | Path) -> None:
    """Apply dotted Hydra-syntax overrides to the composed ``cfg`` in place (see :func:`compose_recipe`)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except HydraException as exc:
        raise UserError(f"bad config for {recipe_dir}: {_first_line(exc)}") from None
    for override in parsed:
        key = override.key_or_group
        exists = OmegaConf.select(cfg, key, default=_MISSING) is not _MISSING
        if override.is_delete():
            if not exists:
                raise UserError(f"cannot delete config key '{key}': the recipe has no such key")
            parent, _, leaf = key.rpartition(".")
            with open_dict(cfg):
                del (OmegaConf.select(cfg, parent) if parent else cfg)[leaf]
            continue
        value = override.value()
        if override.is_add() and exists and not override.is_force_add():
            raise UserError(f"config key '{key}' already exists: set it with {key}=... (no +)")
        if not exists and not (override.is_add() or override.is_force_add()):
            raise UserError(f"unknown config key '{key}' (check the spelling, or add a new key with +{key}=...)")
        if exists:
            _check_type(key, value, _plain(OmegaConf.select(cfg, key)))
        with open_dict(cfg):
            OmegaConf.update(cfg, key, value, merge=True, force_add=True)


_MISSING = object()


def _plain(value):
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, (DictConfig, ListConfig)) else value


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


def _check_type(where: str, value, expected) -> None:
    """Raise a one-line UserError where an override's value differs in type from the recipe's (null accepts any)."""
    if isinstance(expected, dict):
        if not isinstance(value, dict):
            raise UserError(f"{where} is a group of keys, not a value (got {value!r}); set {where}.KEY=... instead")
        for key in value.keys() & expected.keys():
            _check_type(f"{where}.{key}", value[key], expected[key])
    elif expected is None or value is None:
        return
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
