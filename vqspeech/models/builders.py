"""Builders own the config: plain dicts in, built modules out. The same dicts are stored in every
checkpoint ("model_kwargs"), so a checkpoint rebuilds its model without the Hydra config."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from vqspeech.models.encoder import ConvEncoder
from vqspeech.models.speaker import SpeakerTable
from vqspeech.models.vqvae import VQVAE
from vqspeech.models.wavenet import WaveNetDecoder
from vqspeech.quantization import VectorQuantizer


def model_kwargs(model_cfg: Mapping[str, Any], quantizer_cfg: Mapping[str, Any],
                 speakers: Sequence[str]) -> dict[str, Any]:
    """The constructor arguments of a VQVAE as plain Python values (what a checkpoint stores)."""
    return {"model": _plain(model_cfg), "quantizer": _plain(quantizer_cfg), "speakers": list(speakers)}


def build_model(kwargs: Mapping[str, Any]) -> VQVAE:
    """Build a VQVAE from :func:`model_kwargs` output."""
    model, quant = kwargs["model"], kwargs["quantizer"]
    encoder = ConvEncoder(**model["encoder"])
    quantizer = VectorQuantizer(dim=encoder.latent_dim, **quant)
    speakers = SpeakerTable(kwargs["speakers"], model["speaker_dim"])
    decoder = WaveNetDecoder(latent_dim=encoder.latent_dim, speaker_dim=speakers.dim,
                             hop_length=encoder.hop_length, **model["decoder"])
    return VQVAE(encoder, quantizer, decoder, speakers, jitter=model.get("jitter", 0.0))


def _plain(cfg: Mapping[str, Any]) -> dict[str, Any]:
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(cfg, DictConfig):
            return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except ImportError:  # pragma: no cover
        pass
    return {k: _plain(v) if isinstance(v, Mapping) else v for k, v in cfg.items()}
