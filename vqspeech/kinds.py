"""Config sections that choose a class by ``kind`` (model.bottleneck, model.decoder): the options a kind
takes, read from its constructor; a section cut down to its kind's own options; and the kind built from them."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any


def constructor_options(cls: type, built: tuple[str, ...]) -> tuple[str, ...]:
    """The constructor arguments of ``cls`` that a config sets: all but the ``built`` ones (sizes the model
    passes in)."""
    return tuple(name for name in inspect.signature(cls).parameters if name not in built)


def own_options(section: str, spec: Mapping[str, Any], kinds: Mapping[str, type], built: tuple[str, ...],
                default: str | None = None, choose: str = "") -> dict[str, Any]:
    """``spec`` (the config section ``section``) with its kind and only that kind's own options: the options of
    other kinds (a model file's settings for the kind not chosen) are left out. No kind is ``default``;
    ``choose`` ends the unknown-kind error (how to choose one, e.g. " (choose it with decoder=KIND)").

    Raises:
        ValueError: an unknown kind, or an option that no kind takes (one line naming the choices).
    """
    kind = spec.get("kind", default)
    if kind not in kinds:
        raise ValueError(f"{section}.kind must be one of {', '.join(kinds)}, got {kind!r}{choose}")
    known = {name for cls in kinds.values() for name in constructor_options(cls, built)}
    unknown = sorted(set(spec) - known - {"kind"})
    own = constructor_options(kinds[kind], built)
    if unknown:
        raise ValueError(f"{section} has no option {', '.join(unknown)} (the {kind} options are "
                         f"{', '.join(own) or 'none'})")
    return {"kind": kind, **{k: v for k, v in spec.items() if k in own}}


def build_kind(cls: type, options: Mapping[str, Any], given: Mapping[str, Any]):
    """``cls`` built from a section's ``options`` (its own, without the kind) and those of the model's sizes
    ``given`` that its constructor takes."""
    wanted = inspect.signature(cls).parameters
    return cls(**{k: v for k, v in given.items() if k in wanted}, **options)
