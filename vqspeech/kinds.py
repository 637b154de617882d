"""Config sections that choose a class by ``kind`` (model.bottleneck, model.decoder): the options a kind
takes, read from its constructor, and a section cut down to its kind's own options."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any


def constructor_options(cls: type, built: tuple[str, ...]) -> tuple[str, ...]:
    """The constructor arguments of ``cls`` that a config sets: all but the ``built`` ones (sizes the model
    passes in)."""
    return tuple(name for name in inspect.signature(cls).parameters if name not in built)


def own_options(section: str, spec: Mapping[str, Any], kinds: Mapping[str, type], built: tuple[str, ...],
                default: str | None = None) -> dict[str, Any]:
    """``spec`` (the config section ``section``) with its kind and only that kind's own options: the options of
    other kinds (a model file's settings for the kind not chosen) are left out. No kind is ``default``.

    Raises:
        ValueError: an unknown kind, or an option that no kind takes (one line naming the choices).
    """
    kind = spec.get("kind", default)
    if kind not in kinds:
        raise ValueError(f"{section}.kind must be one of {', '.join(kinds)}, got {kind!r}")
    known = {name for cls in kinds.values() for name in constructor_options(cls, built)}
    unknown = sorted(set(spec) - known - {"kind"})
    own = constructor_options(kinds[kind], built)
    if unknown:
        raise ValueError(f"{section} has no option {', '.join(unknown)} (the {kind} options are "
                         f"{', '.join(own) or 'none'})")
    return {"kind": kind, **{k: v for k, v in spec.items() if k in own}}
