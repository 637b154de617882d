"""vqspeech: a VQ-VAE on raw speech waveforms (van den Oord et al. 2017, §4.3).

The Python API (vqspeech/api.py), imported on first use so that ``import vqspeech`` stays light::

    import vqspeech
    model = vqspeech.load("runs/demo")            # vqspeech.Model: encode, decode, convert, reconstruct
    vq = vqspeech.VectorQuantizer(dim=64, codebook_size=512)   # the shared VQ layer, in any torch model
    vqspeech.prepare("demo", "data/demo")         # a corpus, as `vqspeech prepare`
    vqspeech.train("recipes/demo", ["train.max_minutes=10"])   # a run, as `vqspeech train`
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["BottleneckResult", "Model", "VectorQuantizer", "load", "prepare", "train", "__version__"]

_EXPORTS = {"Model": "vqspeech.api", "load": "vqspeech.api", "prepare": "vqspeech.api", "train": "vqspeech.api",
            "VectorQuantizer": "vqspeech.quantization.vq", "BottleneckResult": "vqspeech.quantization.result"}


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'vqspeech' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
