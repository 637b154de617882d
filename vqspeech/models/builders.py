"""Builders own the config: plain dicts in, built modules out. The same dicts are stored in every
checkpoint ("model_kwargs"), so a checkpoint rebuilds its model without the Hydra config."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from vqspeech.models.adversary import SpeakerAdversary
from vqspeech.models.cpc import ContrastivePredictor
from vqspeech.models.encoder import ConvEncoder
from vqspeech.models.speaker import build_speakers
from vqspeech.models.vqvae import VQVAE
from vqspeech.models.wavenet import WaveNetDecoder
from vqspeech.quantization import Bottleneck, GaussianBottleneck, IdentityBottleneck, VectorQuantizer

BOTTLENECKS = ("vq", "vae", "ae")


def model_kwargs(model_cfg: Mapping[str, Any], quantizer_cfg: Mapping[str, Any], speakers: Sequence[str],
                 sample_rate: int | None = None) -> dict[str, Any]:
    """The constructor arguments of a VQVAE as plain Python values (what a checkpoint stores). A continuous
    bottleneck keeps only quantizer.codebook_size (the K of the k-means that scores its latents).
    ``sample_rate`` (the data's) is stored when given; models built without it assume 16 kHz."""
    model, quantizer = _plain(model_cfg), _plain(quantizer_cfg)
    if _bottleneck_spec(model)["kind"] != "vq":
        quantizer = {"codebook_size": quantizer["codebook_size"]}
    kwargs = {"model": model, "quantizer": quantizer, "speakers": list(speakers)}
    return kwargs if sample_rate is None else {**kwargs, "sample_rate": int(sample_rate)}


def build_model(kwargs: Mapping[str, Any]) -> VQVAE:
    """Build a VQVAE from :func:`model_kwargs` output."""
    model, quant = kwargs["model"], kwargs["quantizer"]
    encoder = ConvEncoder(**model["encoder"])
    bottleneck = build_bottleneck(_bottleneck_spec(model), quant, encoder.latent_dim, encoder.hop_length)
    speakers = build_speakers(model.get("speaker"), kwargs["speakers"], model["speaker_dim"],
                              kwargs.get("sample_rate", 16000))
    decoder = WaveNetDecoder(latent_dim=encoder.latent_dim, speaker_dim=speakers.dim,
                             hop_length=encoder.hop_length, **model["decoder"])
    channels = model.get("speaker_adversary", 0)
    if channels < 0:
        raise ValueError(f"model.speaker_adversary must be 0 (off) or the classifier's channels, got {channels}")
    adversary = SpeakerAdversary(encoder.latent_dim, len(speakers.names), channels) if channels else None
    steps = model.get("cpc_steps", 0)
    cpc = ContrastivePredictor(encoder.latent_dim, steps) if steps else None
    return VQVAE(encoder, bottleneck, decoder, speakers, jitter=model.get("jitter", 0.0),
                 preemphasis=model.get("preemphasis", 0.0), adversary=adversary, cpc=cpc,
                 loudness_lufs=model.get("loudness_lufs"), sample_rate=kwargs.get("sample_rate", 16000))


def build_bottleneck(spec: Mapping[str, Any], quantizer: Mapping[str, Any], dim: int, hop_length: int) -> Bottleneck:
    """The bottleneck ``model.bottleneck`` names (configs/bottleneck/): "vq" is the VQ layer with the
    ``quantizer`` options; "vae" and "ae" take K = quantizer.codebook_size only, for the k-means that scores
    their continuous latents where discrete codes are needed.

    Raises:
        ValueError: an unknown kind, or a bad option value.
        TypeError: an option the kind does not take.
    """
    options = {k: v for k, v in spec.items() if k != "kind"}
    kind = spec.get("kind")
    if kind == "vq":
        if options:
            raise TypeError(f"model.bottleneck vq takes no options (got {sorted(options)}); set quantizer.* instead")
        return VectorQuantizer(dim=dim, **quantizer)
    if kind == "vae":
        return GaussianBottleneck(dim, hop_length, codebook_size=quantizer["codebook_size"], **options)
    if kind == "ae":
        return IdentityBottleneck(dim, codebook_size=quantizer["codebook_size"], **options)
    raise ValueError(f"model.bottleneck must be one of {', '.join(BOTTLENECKS)}, got {kind!r}")


def _bottleneck_spec(model: Mapping[str, Any]) -> Mapping[str, Any]:
    """model.bottleneck; kwargs written without one (tests, hand-made dicts) mean the VQ layer."""
    return model.get("bottleneck", {"kind": "vq"})


def _plain(cfg: Mapping[str, Any]) -> dict[str, Any]:
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(cfg, DictConfig):
            return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except ImportError:  # pragma: no cover
        pass
    return {k: _plain(v) if isinstance(v, Mapping) else v for k, v in cfg.items()}
