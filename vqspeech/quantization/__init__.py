"""The shared VQ layer: every model in vqspeech quantises through :class:`VectorQuantizer`."""

from vqspeech.quantization.result import QuantizedResult
from vqspeech.quantization.vq import VectorQuantizer

__all__ = ["QuantizedResult", "VectorQuantizer"]
