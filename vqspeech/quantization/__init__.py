"""The shared VQ layer: every model in vqspeech quantises through :class:`VectorQuantizer`; :func:`code_usage`
summarises how its codebook is used."""

from vqspeech.quantization.result import QuantizedResult
from vqspeech.quantization.usage import CodeUsage, code_usage
from vqspeech.quantization.vq import VectorQuantizer

__all__ = ["CodeUsage", "QuantizedResult", "VectorQuantizer", "code_usage"]
