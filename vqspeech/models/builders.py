"""Builders own the config: plain dicts in, built modules out. The same dicts are stored in every
checkpoint ("model_kwargs"), so a checkpoint rebuilds its model without the Hydra config."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from vqspeech.kinds import build_kind, own_options
from vqspeech.models.adversary import SpeakerAdversary
from vqspeech.models.cpc import ContrastivePredictor
from vqspeech.models.decoder import Decoder
from vqspeech.models.encoder import ConvEncoder
from vqspeech.models.parallel import ParallelDecoder
from vqspeech.models.pitch import CHANNELS as PITCH_CHANNELS
from vqspeech.models.pitch import PitchStream
from vqspeech.models.speaker import build_speakers
from vqspeech.models.vqvae import VQVAE
from vqspeech.models.wavenet import WaveNetDecoder
from vqspeech.quantization.registry import bottleneck_options, build_bottleneck

DECODERS: dict[str, type[Decoder]] = {"wavenet": WaveNetDecoder, "parallel": ParallelDecoder}  # decoder=KIND
_BUILT_FROM_THE_MODEL = ("latent_dim", "speaker_dim", "hop_length", "sample_rate")  # not options


def decoder_options(spec: Mapping[str, Any]) -> dict[str, Any]:
    """``model.decoder`` with only its kind's own options (a model file's WaveNet sizes are left out when
    decoder=parallel is chosen). No ``kind`` is the WaveNet (checkpoints made before there were two).

    Raises:
        ValueError: an unknown kind, or an option that no kind takes.
    """
    return own_options("model.decoder", spec, DECODERS, _BUILT_FROM_THE_MODEL, default="wavenet",
                       choose=" (choose it with decoder=KIND)")


def build_decoder(spec: Mapping[str, Any], latent_dim: int, speaker_dim: int, hop_length: int,
                  sample_rate: int) -> Decoder:
    """The decoder ``spec`` (``model.decoder``: kind and options) for the given model sizes."""
    options = decoder_options(spec)
    return build_kind(DECODERS[options.pop("kind")], options, {"latent_dim": latent_dim, "speaker_dim": speaker_dim,
                                                               "hop_length": hop_length, "sample_rate": sample_rate})


def model_kwargs(model_cfg: Mapping[str, Any], speakers: Sequence[str], sample_rate: int | None = None) -> dict[str, Any]:
    """The constructor arguments of a VQVAE as plain Python values (what a checkpoint stores, with its kind).
    ``model.bottleneck`` and ``model.decoder`` keep only their kind's own options (quantization/registry.py,
    :func:`decoder_options`). ``sample_rate`` (the data's) is stored when given; models built without it
    assume 16 kHz."""
    model = _plain(model_cfg)
    model["bottleneck"] = bottleneck_options(model.get("bottleneck", {"kind": "vq"}))
    model["decoder"] = decoder_options(model.get("decoder", {}))
    kwargs = {"kind": "vqvae", "model": model, "speakers": list(speakers)}
    return kwargs if sample_rate is None else {**kwargs, "sample_rate": int(sample_rate)}


def build_model(kwargs: Mapping[str, Any]) -> VQVAE:
    """Build a VQVAE from :func:`model_kwargs` output."""
    model = kwargs["model"]
    encoder = ConvEncoder(**model["encoder"])
    bottleneck = build_bottleneck(model["bottleneck"], encoder.latent_dim, encoder.hop_length)
    speakers = build_speakers(model.get("speaker"), kwargs["speakers"], model["speaker_dim"],
                              kwargs.get("sample_rate", 16000))
    pitch = build_pitch(model.get("pitch"))
    decoder = build_decoder(model["decoder"], encoder.latent_dim + (PITCH_CHANNELS if pitch else 0), speakers.dim,
                            encoder.hop_length, kwargs.get("sample_rate", 16000))
    channels = model.get("speaker_adversary", 0)
    if channels < 0:
        raise ValueError(f"model.speaker_adversary must be 0 (off) or the classifier's channels, got {channels}")
    adversary = (SpeakerAdversary(encoder.latent_dim, len(speakers.names), channels,
                                  pooled=model.get("speaker_adversary_pooled", False)) if channels else None)
    steps = model.get("cpc_steps", 0)
    cpc = ContrastivePredictor(encoder.latent_dim, steps) if steps else None
    return VQVAE(encoder, bottleneck, decoder, speakers, jitter=model.get("jitter", 0.0),
                 preemphasis=model.get("preemphasis", 0.0), adversary=adversary, cpc=cpc,
                 loudness_lufs=model.get("loudness_lufs"), sample_rate=kwargs.get("sample_rate", 16000), pitch=pitch)


def build_pitch(spec: Mapping[str, Any] | None) -> PitchStream | None:
    """``model.pitch`` (levels, hop, z_range) -> the pitch stream; None or levels 0 is off."""
    if not spec or not spec.get("levels"):
        return None
    unknown = set(spec) - {"levels", "hop", "z_range"}
    if unknown:
        raise ValueError(f"model.pitch has no option {', '.join(sorted(unknown))}; it takes levels, hop, z_range")
    return PitchStream(**spec)


def _plain(cfg: Mapping[str, Any]) -> dict[str, Any]:
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(cfg, DictConfig):
            return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except ImportError:  # pragma: no cover
        pass
    return {k: _plain(v) if isinstance(v, Mapping) else v for k, v in cfg.items()}
