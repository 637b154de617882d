"""vqspeech: a VQ-VAE on raw speech waveforms (van den Oord et al. 2017, §4.3)."""

__version__ = "0.1.0"
