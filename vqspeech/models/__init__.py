"""Encoder, WaveNet decoder, speaker table, their composition (VQVAE) and the builders that own the config."""

from vqspeech.models.builders import build_model
from vqspeech.models.vqvae import VQVAE, VQVAEOutput

__all__ = ["VQVAE", "VQVAEOutput", "build_model"]
