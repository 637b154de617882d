"""The bottleneck kinds by name (configs/bottleneck/ and ``model.bottleneck.kind``): each kind's class, and
the options it takes, read from its constructor."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vqspeech.kinds import build_kind, constructor_options, own_options
from vqspeech.quantization.continuous import GaussianBottleneck, IdentityBottleneck
from vqspeech.quantization.result import Bottleneck
from vqspeech.quantization.vq import VectorQuantizer

BOTTLENECKS: dict[str, type[Bottleneck]] = {"vq": VectorQuantizer, "vae": GaussianBottleneck, "ae": IdentityBottleneck}
_BUILT_FROM_THE_ENCODER = ("dim", "hop_length")  # constructor arguments that are not options


def options_of(kind: str) -> tuple[str, ...]:
    """The option names a kind takes (its constructor's arguments beyond dim and hop_length)."""
    return constructor_options(BOTTLENECKS[kind], _BUILT_FROM_THE_ENCODER)


def bottleneck_options(spec: Mapping[str, Any]) -> dict[str, Any]:
    """``model.bottleneck`` with only its kind's own options: the options of other kinds (a recipe's VQ
    settings when bottleneck=vae is chosen) are left out.

    Raises:
        ValueError: an unknown kind, or an option that no kind takes.
    """
    return own_options("model.bottleneck", spec, BOTTLENECKS, _BUILT_FROM_THE_ENCODER)


def build_bottleneck(spec: Mapping[str, Any], dim: int, hop_length: int) -> Bottleneck:
    """The bottleneck ``spec`` (``model.bottleneck``: kind and options) on encoder outputs of ``dim``
    channels, one frame per ``hop_length`` samples."""
    options = {k: v for k, v in bottleneck_options(spec).items() if k != "kind"}
    return build_kind(BOTTLENECKS[spec["kind"]], options, {"dim": dim, "hop_length": hop_length})
