"""Leaf layers: causal convolution and the gated WaveNet residual block (stepped by models/generation.py)."""

from vqspeech.nn.causal_conv import CausalConv1d
from vqspeech.nn.wavenet_block import GatedResidualBlock

__all__ = ["CausalConv1d", "GatedResidualBlock"]
