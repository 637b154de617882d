"""The bottlenecks between encoder and decoder. The shared VQ layer, :class:`VectorQuantizer`, is the default;
:mod:`~vqspeech.quantization.continuous` holds the VAE and plain-autoencoder bottlenecks it is compared with.
:func:`build_bottleneck` builds any kind by name (registry.py); :func:`code_usage` summarises how a codebook is used."""

from vqspeech.quantization.continuous import GaussianBottleneck, IdentityBottleneck
from vqspeech.quantization.registry import BOTTLENECKS, build_bottleneck
from vqspeech.quantization.result import Bottleneck, BottleneckResult
from vqspeech.quantization.usage import CodeUsage, code_usage
from vqspeech.quantization.vq import VectorQuantizer

__all__ = ["BOTTLENECKS", "Bottleneck", "BottleneckResult", "CodeUsage", "GaussianBottleneck", "IdentityBottleneck",
           "VectorQuantizer", "build_bottleneck", "code_usage"]
